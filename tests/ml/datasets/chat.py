"""Conversations written as lines, for tests.

    script("小李: 在吗", "我: 在 #topic=工作", "+40m", "小李: <image>")

Each line is "sender: text"; the sender 我 is the user (is_self). Messages are 30 s apart;
"+40m" / "+2h" / "+90s" moves the clock. "<image>" (any kind name) makes a non-text message;
trailing "#key=value" words become labels.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from ml.datasets import DatasetMessage

SELF = "我"
BASE = datetime(2024, 3, 1, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
_GAP = re.compile(r"\+(\d+)([smh])")
_UNITS = {"s": 1, "m": 60, "h": 3600}


def script(
    *lines: str, upload_id: str = "u1", start: datetime = BASE, first_id: int = 1
) -> list[DatasetMessage]:
    clock = start
    messages: list[DatasetMessage] = []
    for line in lines:
        gap = _GAP.fullmatch(line)
        if gap:
            clock += timedelta(seconds=int(gap.group(1)) * _UNITS[gap.group(2)])
            continue
        sender, _, text = line.partition(": ")
        labels: dict[str, list[str]] = {}
        words = text.split(" ")
        while words and words[-1].startswith("#") and "=" in words[-1]:
            key, _, value = words.pop()[1:].partition("=")
            labels.setdefault(key, []).insert(0, value)
        text = " ".join(words)
        kind = "text"
        if text.startswith("<") and text.endswith(">") and text[1:-1].isascii():
            kind, text = text[1:-1], ""
        messages.append(
            DatasetMessage(
                id=f"{upload_id}-{first_id + len(messages)}",
                upload_id=upload_id,
                sender=sender,
                timestamp=clock,
                text=text,
                kind=kind,  # type: ignore[arg-type]
                is_self=sender == SELF,
                labels=labels,
            )
        )
        clock += timedelta(seconds=30)
    return messages
