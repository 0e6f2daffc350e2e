"""PyWxDump's message rows, shared by its CSV, JSON and HTML (data.js) exports.

A row is ``{id, MsgSvrID, type_name, is_sender, talker, room_name, msg, src, extra,
CreateTime}``: ``type_name`` is a Chinese name from PyWxDump's type table, ``talker`` is "我"
(or the exporter's own wxid) for your messages and the sender's wxid otherwise, ``msg`` a
rendering of the message (e.g. "语音时长：3.00秒\\n翻译结果：..." for voice).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ml.parsing.clock import parse_time_text
from ml.parsing.formats.base import Context
from ml.parsing.kinds import PLACEHOLDER, PYWXDUMP_TYPES, kind_of, system_kind
from ml.parsing.model import ParsedMessage

_NOT_IDS = ("我", "系统", "未知", "")
_VOICE = re.compile(r"语音时长：([\d.]+)秒(?:\n翻译结果：(.*))?", re.S)
_LOCATION = re.compile(r"位置：(.*)")
_QUOTE = re.compile(r"(.*?)\n\n\[引用\]\(([^)]*)\)(.*?):(.*)", re.S)
_TRANSFER = re.compile(r"(已收款|转账)：(.*?)\n转账说明：(.*?)\n", re.S)
_CALL = re.compile(r"语音/视频通话\[(.*)\]", re.S)
_HREF = re.compile(r'<a href="([^"]*)">[^<]*</a>')

REQUIRED = ("type_name", "is_sender", "talker", "msg", "CreateTime")


def row_message(row: Mapping[str, Any], ctx: Context) -> ParsedMessage | None:
    """The message of one row, or None for a row without a usable time."""
    epoch = _epoch(ctx, row.get("CreateTime"))
    if epoch is None:
        return None
    type_name = str(row.get("type_name") or "")
    msg_type, sub_type = PYWXDUMP_TYPES.get(type_name, (0, 0))
    kind = kind_of(msg_type, sub_type) if msg_type else "other"
    msg = str(row.get("msg") or "")
    src = row.get("src")
    raw: dict[str, Any] = {"type_name": type_name}
    if msg_type:
        raw["type"] = msg_type
        if sub_type:
            raw["subtype"] = sub_type
    for source, target in (("room_name", "chat_id"), ("id", "local_id")):
        value = row.get(source)
        if value not in (None, ""):
            raw[target] = value
    if src not in (None, "", {}):
        raw["src"] = src
    kind, text = _describe(kind, msg_type, sub_type, type_name, msg, raw)
    talker = str(row.get("talker") or "")
    is_self = str(row.get("is_sender")) in ("1", "True", "true")
    if kind in ("system", "recall") or talker == "系统":
        return ctx.json_message("", None, epoch, text, kind, None, raw, _server_id(row))
    sender = ctx.names.get(talker, talker)
    sender_id = None if talker in _NOT_IDS else talker
    return ctx.json_message(sender, sender_id, epoch, text, kind, is_self, raw, _server_id(row))


def _server_id(row: Mapping[str, Any]) -> str | None:
    value = str(row.get("MsgSvrID") or "").strip()
    return value if value and value != "0" else None


def _epoch(ctx: Context, value: Any) -> float | None:
    if isinstance(value, str) and len(value) == 19 and value[4] == "-" and value[13] == ":":
        try:
            return ctx.clock.epoch_iso(value)
        except ValueError:
            return None
    return parse_time_text(ctx.clock, value)


def _describe(
    kind: str, msg_type: int, sub_type: int, type_name: str, msg: str, raw: dict[str, Any]
) -> tuple[str, str]:
    if kind == "text":
        if sub_type == 57:
            quote = _QUOTE.fullmatch(msg)
            if quote:
                reply, when, who, what = quote.groups()
                raw["quote"] = {"sender": who, "text": what, "time": when}
                return kind, reply
        return kind, msg
    if kind in ("system", "recall"):
        found, notice = system_kind(msg)
        if msg_type == 10000 and sub_type in (1, 5, 6, 33, 36, 57):
            found = "recall"
        elif sub_type == 4:
            notice = "pat"
        elif sub_type == 8000:
            notice = "join"
        if notice:
            raw["notice"] = notice
        return (found if kind == "system" else kind), msg
    if kind == "voice":
        voice = _VOICE.fullmatch(msg)
        if voice:
            raw["duration_s"] = voice.group(1)
            if voice.group(2):
                raw["transcription"] = voice.group(2)
        return kind, PLACEHOLDER["voice"]
    if kind == "location":
        place = _LOCATION.search(msg)
        label = place.group(1).strip() if place else ""
        raw["detail"] = msg
        return kind, f"[位置] {label}" if label else PLACEHOLDER["location"]
    if kind == "file":
        return kind, f"[文件] {msg}" if msg and msg != type_name else PLACEHOLDER["file"]
    if kind == "link":
        href = _HREF.search(msg)
        lines = _HREF.sub("", msg).strip().split("\n")
        title = lines[0].strip() if lines and lines[0] != type_name else ""
        if len(lines) > 1 and lines[1].strip() and not lines[1].startswith("http"):
            raw["description"] = lines[1].strip()
        if href:
            raw["url"] = href.group(1)
        elif lines and lines[-1].startswith("http"):
            raw["url"] = lines[-1].strip()
        if title:
            raw["title"] = title
        return kind, f"[链接] {title}" if title else PLACEHOLDER["link"]
    if kind == "transfer":
        transfer = _TRANSFER.match(msg)
        if transfer:
            state, amount, memo = (part.strip() for part in transfer.groups())
            raw["amount"] = amount
            if memo:
                raw["memo"] = memo
            if state == "已收款":
                raw["received"] = True
            return kind, " ".join(part for part in ("[转账]", amount, memo) if part)
        return kind, PLACEHOLDER["transfer"]
    if kind == "call":
        call = _CALL.fullmatch(msg)
        detail = call.group(1).strip() if call else ""
        return kind, f"[通话] {detail}" if detail else PLACEHOLDER["call"]
    if sub_type == 19:
        title, _, description = msg.partition("\n")
        raw["title"] = title
        if description:
            raw["description"] = description
        return kind, f"[聊天记录] {title}" if title else "[聊天记录]"
    if kind in PLACEHOLDER and kind != "other":
        return kind, PLACEHOLDER[kind]
    return kind, msg if msg and msg != type_name else f"[{type_name or '消息'}]"


def user_names(users: Any) -> dict[str, str]:
    """wxid → display name from PyWxDump's users.json / local_user_list."""
    names: dict[str, str] = {}
    if not isinstance(users, dict):
        return names
    for wxid, user in users.items():
        if isinstance(user, dict):
            name = user.get("remark") or user.get("nickname") or user.get("nickName")
            if isinstance(name, str) and name.strip():
                names[str(wxid)] = name.strip()
    return names
