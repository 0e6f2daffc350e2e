"""JSON exports, streamed element by element.

- ``chatlog_json``: chatlog's message objects ``{seq, time (RFC 3339), talker, talkerName,
  sender, senderName, isSelf, type, subType, content, contents}`` in an array (or under
  ``items``). ``seq`` is the key.
- ``echotrace_json``: ``{session: {...}, messages: [{localId, createTime, type, localType,
  content, isSend, senderUsername, senderDisplayName, ...}]}``; ``localType`` is WeChat 4's
  packed (SubType << 32 | Type).
- ``pywxdump_json``: an array of PyWxDump rows (see :mod:`ml.parsing.formats.pywxdump`).
- ``chatlab_json`` / ``chatlab_jsonl``: ChatLab's interchange format (``chatlab``, ``meta``,
  ``members``, ``messages`` with numeric types; JSONL lines typed by ``_type``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, TextIO

import orjson

from ml.parsing.clock import parse_time_text
from ml.parsing.errors import ParseError
from ml.parsing.formats import pywxdump
from ml.parsing.formats.base import Context, Format, Sniff, accept, reject
from ml.parsing.jsonstream import JsonReader
from ml.parsing.kinds import (
    PLACEHOLDER,
    classify_placeholder,
    kind_of,
    split_type,
    system_kind,
)
from ml.parsing.model import ParsedMessage

_DECODER = json.JSONDecoder()
_METADATA_FACTOR = 64  # metadata values (avatars, member lists) may be larger than one message


def _head_shape(head: str) -> tuple[str, Any]:
    text = head.lstrip("\ufeff \t\r\n")
    if text.startswith("["):
        start = len(text) - len(text[1:].lstrip())
        try:
            first, _ = _DECODER.raw_decode(text, start)
        except json.JSONDecodeError:
            first = None
        return "array", first
    if text.startswith("{"):
        return "object", None
    return "", None


def _has(head: str, *patterns: str) -> bool:
    return all(re.search(pattern, head) for pattern in patterns)


def _keys_sniffer(name: str, keys: tuple[str, ...], items_key: str | None) -> Any:
    def sniff(head: str) -> Sniff:
        shape, first = _head_shape(head)
        if shape == "array":
            if first is None:
                return reject("a JSON array whose first element is not readable in the head")
            if not isinstance(first, dict):
                return reject("a JSON array of non-objects")
            missing = [key for key in keys if key not in first]
            if missing:
                return reject(f"array elements lack {', '.join(missing)}")
            return accept(f"a JSON array of objects with {', '.join(keys)}")
        if shape == "object" and items_key:
            quoted = [f'"{key}"' for key in keys]
            if _has(head, rf'"{items_key}"\s*:\s*\[', *quoted):
                return accept(f"a JSON object whose {items_key!r} list has {', '.join(keys)}")
            return reject(f"a JSON object without an {items_key!r} list of such messages")
        return reject("not a JSON array" if shape != "object" else "a JSON object, not an array")

    sniff.__name__ = f"sniff_{name}"
    return sniff


def _reader(stream: TextIO, ctx: Context, what: str) -> JsonReader:
    return JsonReader(stream, ctx.limits.max_field_chars, what)


def _messages(reader: JsonReader, ctx: Context, list_key: str) -> Iterator[tuple[str, Any]]:
    """("", element) for the export's messages; (key, value) for the other top-level fields."""
    char = reader.peek()
    if char == "[":
        for item in reader.items():
            yield "", item
        return
    if char != "{":
        reader.fail("it is neither a JSON array nor an object")
    for key in reader.fields():
        if key == list_key and reader.peek() == "[":
            for item in reader.items():
                yield "", item
        else:
            yield key, reader.value(ctx.limits.max_field_chars * _METADATA_FACTOR)


def _dict(item: Any, what: str, reader: JsonReader) -> dict[str, Any]:
    if not isinstance(item, dict):
        reader.fail(f"a {what} message is not an object")
    return dict(item)


# --- chatlog -----------------------------------------------------------------------------------


def parse_chatlog(stream: TextIO, ctx: Context, hint: Any) -> Iterator[ParsedMessage]:
    reader = _reader(stream, ctx, "chatlog JSON")
    for key, item in _messages(reader, ctx, "items"):
        if not key:
            yield _chatlog_message(_dict(item, "chatlog", reader), ctx)


def _chatlog_message(item: dict[str, Any], ctx: Context) -> ParsedMessage:
    epoch = parse_time_text(ctx.clock, item.get("time"))
    if epoch is None:
        raise ParseError(f"a chatlog message has no valid time: {item.get('time')!r}")
    msg_type, sub_type = _int(item.get("type")), _int(item.get("subType"))
    if msg_type > 0xFFFFFFFF:
        msg_type, sub_type = split_type(msg_type)
    content = str(item.get("content") or "")
    found = item.get("contents")
    contents: dict[str, Any] = found if isinstance(found, dict) else {}
    kind = kind_of(msg_type, sub_type)
    raw: dict[str, Any] = {"type": msg_type}
    if sub_type:
        raw["subtype"] = sub_type
    for source, target in (("talker", "chat_id"), ("talkerName", "chat_name")):
        if item.get(source):
            raw[target] = item[source]
    details = {k: v for k, v in contents.items() if k not in ("host", "refer", "recordInfo")}
    raw.update(details)
    text = content
    if kind == "text":
        refer = contents.get("refer")
        if isinstance(refer, dict):
            quote = {
                "sender": refer.get("senderName") or refer.get("sender") or "",
                "text": refer.get("content") or "",
            }
            raw["quote"] = {k: v for k, v in quote.items() if v}
    elif kind in ("system", "recall"):
        kind, notice = system_kind(content)
        if sub_type == 62 or (msg_type == 49 and sub_type == 62):
            notice = "pat"
        if notice:
            raw["notice"] = notice
    else:
        placeholder = classify_placeholder(content) if content else None
        title = str(contents.get("title") or "")
        if placeholder is not None and placeholder[0] == kind:
            text = placeholder[1]
            raw.update(placeholder[2])
        elif kind in ("link", "file", "other") and title:
            text = f"{PLACEHOLDER.get(kind, '[消息]') if kind != 'other' else '[聊天记录]'} {title}"
        else:
            text = (
                content
                if content and not content.startswith("<")
                else PLACEHOLDER.get(kind, "[消息]")
            )
    seq = item.get("seq")
    server_id = str(seq) if seq not in (None, "", 0) else None
    sender_id = str(item.get("sender") or "")
    if kind in ("system", "recall") or sender_id == "系统消息":
        return ctx.json_message("", None, epoch, text, kind, None, raw, server_id)
    sender = str(item.get("senderName") or sender_id)
    is_self = item.get("isSelf")
    return ctx.json_message(
        sender,
        sender_id or None,
        epoch,
        text,
        kind,
        bool(is_self) if isinstance(is_self, bool | int) else None,
        raw,
        server_id,
    )


def _int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return 0


# --- echotrace ---------------------------------------------------------------------------------


def sniff_echotrace(head: str) -> Sniff:
    shape, _ = _head_shape(head)
    if shape != "object":
        return reject("not a JSON object")
    if not _has(head, r'"session"\s*:\s*\{'):
        return reject("no 'session' object")
    if not _has(head, r'"messages"\s*:\s*\[', r'"(createTime|localType|isSend)"'):
        return reject("no 'messages' list with createTime/localType/isSend near the start")
    return accept("a JSON object with 'session' and 'messages' (createTime, localType, isSend)")


def parse_echotrace(stream: TextIO, ctx: Context, hint: Any) -> Iterator[ParsedMessage]:
    reader = _reader(stream, ctx, "echotrace JSON")
    session: dict[str, Any] = {}
    for key, item in _messages(reader, ctx, "messages"):
        if key == "session" and isinstance(item, dict):
            session = item
        elif not key:
            yield _echotrace_message(_dict(item, "echotrace", reader), session, ctx)


def _echotrace_message(
    item: dict[str, Any], session: dict[str, Any], ctx: Context
) -> ParsedMessage:
    epoch = parse_time_text(ctx.clock, item.get("createTime"))
    if epoch is None:
        epoch = parse_time_text(ctx.clock, item.get("formattedTime"))
    if epoch is None:
        raise ParseError(
            f"an echotrace message has no valid createTime: {item.get('createTime')!r}"
        )
    local_type = _int(item.get("localType"))
    msg_type, sub_type = split_type(local_type)
    kind = kind_of(msg_type, sub_type) if local_type else "text"
    content = str(item.get("content") or "")
    raw: dict[str, Any] = {"type": msg_type}
    if sub_type:
        raw["subtype"] = sub_type
    if item.get("type"):
        raw["type_label"] = item["type"]
    for source, target in (("localId", "local_id"), ("emojiMd5", "md5")):
        if item.get(source) not in (None, ""):
            raw[target] = item[source]
    chat = session.get("wxid") or session.get("username")
    if chat:
        raw["chat_id"] = chat
    text = content
    if kind in ("system", "recall"):
        kind, notice = system_kind(content)
        if (msg_type == 49 and sub_type == 62) or content == "[拍一拍]":
            notice = "pat"
        if notice:
            raw["notice"] = notice
        return ctx.json_message("", None, epoch, text, kind, None, raw)
    if kind != "text":
        placeholder = classify_placeholder(content) if content else None
        if placeholder is not None and placeholder[0] == kind:
            text = placeholder[1]
            raw.update(placeholder[2])
        elif not content:
            text = PLACEHOLDER.get(kind, "[消息]")
    is_send = item.get("isSend")
    is_self = bool(is_send) if isinstance(is_send, bool | int) else None
    sender_id = str(item.get("senderUsername") or "") or None
    sender = str(item.get("senderDisplayName") or "")
    if not sender:
        if is_self:
            sender = "我"
        else:
            sender = str(session.get("remark") or session.get("displayName") or sender_id or "")
    return ctx.json_message(sender, sender_id, epoch, text, kind, is_self, raw)


# --- PyWxDump ------------------------------------------------------------------------------


def parse_pywxdump(stream: TextIO, ctx: Context, hint: Any) -> Iterator[ParsedMessage]:
    reader = _reader(stream, ctx, "PyWxDump JSON")
    for key, item in _messages(reader, ctx, "messages"):
        if not key:
            message = pywxdump.row_message(_dict(item, "PyWxDump", reader), ctx)
            if message is None:
                raise ParseError("a PyWxDump message has no valid CreateTime")
            yield message


# --- ChatLab -------------------------------------------------------------------------------

CHATLAB_KINDS = {
    0: "text",
    1: "image",
    2: "voice",
    3: "video",
    4: "file",
    5: "sticker",
    7: "link",
    8: "location",
    20: "red_packet",
    21: "transfer",
    22: "system",
    23: "call",
    24: "link",
    25: "text",
    26: "other",
    27: "other",
    80: "system",
    81: "recall",
    99: "other",
}


def sniff_chatlab(head: str) -> Sniff:
    shape, _ = _head_shape(head)
    if shape != "object":
        return reject("not a JSON object")
    if not _has(head, r'"chatlab"\s*:\s*\{', r'"version"'):
        return reject("no 'chatlab' header object with a version")
    return accept("a JSON object with a 'chatlab' header")


def sniff_chatlab_jsonl(head: str) -> Sniff:
    for line in head.split("\n"):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            first = orjson.loads(line)
        except orjson.JSONDecodeError:
            return reject("the first line is not a JSON object")
        if isinstance(first, dict) and first.get("_type") == "header" and "chatlab" in first:
            return accept("a JSONL file whose first line is a ChatLab header")
        return reject("the first line is not a ChatLab header ({'_type': 'header', ...})")
    return reject("no lines")


class _ChatLab:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.meta: dict[str, Any] = {}
        self.names: dict[str, str] = {}

    def member(self, member: Any) -> None:
        if isinstance(member, dict) and member.get("platformId"):
            name = member.get("groupNickname") or member.get("accountName")
            if name:
                self.names[str(member["platformId"])] = str(name)

    def message(self, item: dict[str, Any]) -> ParsedMessage:
        ctx = self.ctx
        epoch = parse_time_text(ctx.clock, item.get("timestamp"))
        if epoch is None:
            raise ParseError(f"a ChatLab message has no valid timestamp: {item.get('timestamp')!r}")
        code = _int(item.get("type"))
        kind = CHATLAB_KINDS.get(code, "other")
        content = item.get("content")
        text = str(content) if content is not None else PLACEHOLDER.get(kind, "[消息]")
        raw: dict[str, Any] = {"type": code}
        if item.get("replyToMessageId"):
            raw["reply_to"] = str(item["replyToMessageId"])
        for source, target in (("groupId", "chat_id"), ("name", "chat_name")):
            if self.meta.get(source):
                raw[target] = self.meta[source]
        if code == 22:
            raw["notice"] = "pat"
        message_id = item.get("platformMessageId")
        server_id = str(message_id) if message_id not in (None, "") else None
        if kind in ("system", "recall"):
            return ctx.json_message("", None, epoch, text, kind, None, raw, server_id)
        sender_id = str(item.get("sender") or "")
        sender = str(
            item.get("groupNickname")
            or item.get("accountName")
            or self.names.get(sender_id)
            or sender_id
        )
        owner = self.meta.get("ownerId")
        is_self = (sender_id == str(owner)) if owner else None
        return ctx.json_message(
            sender, sender_id or None, epoch, text, kind, is_self, raw, server_id
        )


def parse_chatlab(stream: TextIO, ctx: Context, hint: Any) -> Iterator[ParsedMessage]:
    reader = _reader(stream, ctx, "ChatLab JSON")
    chatlab = _ChatLab(ctx)
    for key, item in _messages(reader, ctx, "messages"):
        if key == "meta" and isinstance(item, dict):
            chatlab.meta = item
        elif key == "members" and isinstance(item, list):
            for member in item:
                chatlab.member(member)
        elif not key:
            yield chatlab.message(_dict(item, "ChatLab", reader))


def parse_chatlab_jsonl(stream: TextIO, ctx: Context, hint: Any) -> Iterator[ParsedMessage]:
    chatlab = _ChatLab(ctx)
    limit = ctx.limits.max_field_chars
    # readline with a limit: a line without end must not be read whole before it is refused.
    read = stream.readline
    number = 0
    while line := read(limit + 1):
        number += 1
        if len(line) > limit:
            raise ParseError(
                f"line {number:,} of the ChatLab JSONL is longer than {limit:,} characters"
            )
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            raise ParseError(
                f"line {number:,} of the ChatLab JSONL is not valid JSON ({error})"
            ) from None
        if not isinstance(item, dict):
            raise ParseError(f"line {number:,} of the ChatLab JSONL is not an object")
        line_type = item.get("_type")
        if line_type == "header":
            meta = item.get("meta")
            chatlab.meta = meta if isinstance(meta, dict) else {}
        elif line_type == "member":
            chatlab.member(item)
        elif line_type == "message":
            yield chatlab.message(item)


FORMATS = (
    Format(
        "chatlab_jsonl",
        "json",
        sniff_chatlab_jsonl,
        parse_chatlab_jsonl,
        "ChatLab JSONL: a header line, member lines, message lines",
    ),
    Format(
        "chatlab_json",
        "json",
        sniff_chatlab,
        parse_chatlab,
        "ChatLab JSON: {chatlab, meta, members, messages}",
    ),
    Format(
        "echotrace_json",
        "json",
        sniff_echotrace,
        parse_echotrace,
        "echotrace JSON: {session, messages: [{createTime, localType, content, isSend, ...}]}",
    ),
    Format(
        "chatlog_json",
        "json",
        _keys_sniffer("chatlog_json", ("seq", "time", "talker", "sender", "content"), "items"),
        parse_chatlog,
        "chatlog JSON: [{seq, time, talker, sender, senderName, isSelf, type, subType, content}]",
    ),
    Format(
        "pywxdump_json",
        "json",
        _keys_sniffer("pywxdump_json", pywxdump.REQUIRED, None),
        parse_pywxdump,
        "PyWxDump JSON: [{id, MsgSvrID, type_name, is_sender, talker, msg, CreateTime, ...}]",
    ),
)
