"""The message shape a dataset is built from, and how non-text kinds are shown in a dataset."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from ml.kinds import KINDS as ALL_KINDS
from ml.kinds import MessageKind as MessageKind

KINDS: Final[frozenset[str]] = frozenset(ALL_KINDS)

# Not something a person said: never part of a conversation, whatever the spec says.
UNSPOKEN_KINDS: Final[frozenset[str]] = frozenset({"system", "recall"})

# What a kept non-text message looks like in a dataset (WeChat's own bracket style).
KIND_PLACEHOLDERS: Final[dict[str, str]] = {
    "image": "[图片]",
    "voice": "[语音]",
    "video": "[视频]",
    "file": "[文件]",
    "link": "[链接]",
    "sticker": "[表情]",
    "location": "[位置]",
    "call": "[通话]",
    "transfer": "[转账]",
    "red_packet": "[红包]",
    "other": "[消息]",
}


@dataclass(slots=True)
class DatasetMessage:
    """One chat message as the dataset builder reads it.

    A stream of these must be ordered by upload, then timestamp, then sequence number.
    `labels` maps a label key to its values (a message may carry several topics).
    """

    id: str
    upload_id: str
    sender: str
    timestamp: datetime
    text: str
    kind: MessageKind = "text"
    is_self: bool | None = None
    labels: dict[str, list[str]] = field(default_factory=dict)
