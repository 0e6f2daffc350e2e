"""HTML exports whose messages sit in an embedded JavaScript literal; nothing is executed.

- ``memotrace_html``: MemoTrace/WeChatMsg's page holds ``const chatMessages = [{ type:1,
  text:'...', is_send:0, timestamp:1700000000, displayname:'...', ... }, ...]``: a JavaScript
  literal (unquoted keys, single quotes), read with a small literal parser. Texts are
  HTML-escaped with WeChat emoji turned into ``<img ... id="微笑" class="emoji_img">``; both
  are undone, so ``[微笑]`` and a literal ``<script>`` come back as the text the user typed.
- ``pywxdump_html``: PyWxDump's data.js (or a page embedding it): ``const local_user_list =
  {...}`` and ``const local_msg_list = [...]`` in JSON, rows as in its other exports.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any, TextIO

from ml.parsing.clock import epoch_number
from ml.parsing.errors import ParseError
from ml.parsing.formats import pywxdump
from ml.parsing.formats.base import Context, Format, Sniff, accept, reject
from ml.parsing.jsonstream import JsonReader
from ml.parsing.kinds import PLACEHOLDER, system_kind
from ml.parsing.model import ParsedMessage

_CHAT_MESSAGES = re.compile(r"\bchatMessages\s*=\s*(?=\[)")
_LOCAL_MESSAGES = re.compile(r"\blocal_msg_list\s*=\s*(?=\[)")
_LOCAL_ANY = re.compile(r"\b(local_mywxid|local_user_list|local_msg_list)\s*=\s*")
_EMOJI_IMG = re.compile(r'<img\b[^>]*?\bid="([^"]*)"[^>]*class="emoji_img"[^>]*>')
_TAG = re.compile(r"<[^<>]+>")
_MARKER_WINDOW = 16 * 1024 * 1024


def _looks_html(head: str) -> bool:
    start = head.lstrip()[:512].lower()
    return start.startswith(("<!doctype", "<html")) or "<head" in start


def sniff_memotrace(head: str) -> Sniff:
    if _CHAT_MESSAGES.search(head):
        return accept("a page with a 'chatMessages = [' list")
    if _looks_html(head):
        return reject(
            "an HTML page without a 'chatMessages = [' list near the start "
            "(not a MemoTrace export, or truncated)"
        )
    return reject("not HTML")


def sniff_pywxdump(head: str) -> Sniff:
    if _LOCAL_MESSAGES.search(head) or ("local_msg_count" in head and "local_mywxid" in head):
        return accept("a data.js with 'local_msg_list'")
    return reject("no 'local_msg_list' (PyWxDump's data.js)")


# --- MemoTrace -----------------------------------------------------------------------------

_TEXT_TYPES = {1, 0}


def parse_memotrace(stream: TextIO, ctx: Context, hint: Any) -> Iterator[ParsedMessage]:
    reader = JsonReader(stream, ctx.limits.max_field_chars, "MemoTrace HTML")
    if reader.find(_CHAT_MESSAGES, _MARKER_WINDOW) is None:
        raise ParseError(
            "the HTML page holds no 'chatMessages' list; it is truncated or not a MemoTrace export"
        )
    for item in reader.items(js=True):
        if not isinstance(item, dict):
            reader.fail("a chatMessages element is not an object")
        message = _memotrace_message(item, ctx)
        if message is not None:
            yield message


def _page_text(value: Any) -> str:
    """Text as MemoTrace wrote it into the page, back to what the user typed."""
    text = str(value or "")
    if "<" in text:
        text = _EMOJI_IMG.sub(lambda m: f"[{m.group(1).replace(' ', '')}]", text)
        text = _TAG.sub("", text)
    return html.unescape(text) if "&" in text else text


def _memotrace_message(item: dict[str, Any], ctx: Context) -> ParsedMessage | None:
    given = item.get("timestamp")
    # MemoTrace writes epoch seconds; milliseconds are told apart by size as in its CSV.
    epoch = None
    if isinstance(given, int | float) and not isinstance(given, bool):
        epoch = epoch_number(given)
    if epoch is None:
        raise ParseError(f"a MemoTrace message has no valid timestamp: {given!r}")
    msg_type = item.get("type")
    sub_type = item.get("sub_type") or 0
    sender = _page_text(item.get("displayname"))
    is_send = item.get("is_send")
    is_self = bool(is_send) if isinstance(is_send, int | bool) else None
    raw: dict[str, Any] = {"type": msg_type}
    if sub_type:
        raw["subtype"] = sub_type
    if msg_type == 0:
        text = _page_text(item.get("text"))
        kind, notice = system_kind(text)
        if notice:
            raw["notice"] = notice
        return ctx.json_message("", None, epoch, text, kind, None, raw)
    kind, text = _describe(item, msg_type, sub_type, raw)
    return ctx.json_message(sender, None, epoch, text, kind, is_self, raw)


def _describe(
    item: dict[str, Any], msg_type: Any, sub_type: Any, raw: dict[str, Any]
) -> tuple[str, str]:
    value = str(item.get("text") or "")
    if msg_type == 1:
        return "text", _page_text(value)
    if msg_type == 3:
        # MemoTrace writes both pictures and stickers as type 3; stickers point at a URL.
        raw["path"] = value
        if value.startswith("http"):
            return "sticker", PLACEHOLDER["sticker"]
        return "image", PLACEHOLDER["image"]
    if msg_type == 34:
        raw["path"] = value
        transcript = _page_text(item.get("voice_to_text"))
        if transcript and transcript not in ("None", "undefined"):
            raw["transcription"] = transcript
        return "voice", PLACEHOLDER["voice"]
    if msg_type == 43:
        raw["path"] = value
        return "video", PLACEHOLDER["video"]
    if msg_type == 50:
        detail = _page_text(value)
        raw["call_type"] = item.get("call_type")
        return "call", f"[通话] {detail}" if detail else PLACEHOLDER["call"]
    if msg_type == 49:
        return _describe_app(item, sub_type, value, raw)
    if value:
        raw["text"] = value
    return "other", _page_text(value) or PLACEHOLDER["other"]


def _describe_app(
    item: dict[str, Any], sub_type: Any, value: str, raw: dict[str, Any]
) -> tuple[str, str]:
    def field(name: str) -> str:
        found = _page_text(item.get(name))
        return "" if found in ("None", "undefined") else found

    if sub_type == 57:
        refer = field("refer_text")
        if refer:
            who, sep, what = refer.partition("：")
            raw["quote"] = {"sender": who, "text": what} if sep else {"text": refer}
        return "text", _page_text(value)
    if sub_type == 6:
        name = field("file_name")
        for key in ("file_name", "file_size", "app_name"):
            if field(key):
                raw[key.replace("file_", "")] = field(key)
        if value:
            raw["path"] = value
        return "file", f"[文件] {name}" if name else PLACEHOLDER["file"]
    if sub_type in (3, 5):
        title = field("title")
        for key in (
            "title",
            "description",
            "url",
            "link_url",
            "app_name",
            "artist",
            "website_name",
        ):
            if field(key):
                raw[key] = field(key)
        return "link", f"[链接] {title}" if title else PLACEHOLDER["link"]
    if sub_type == 2000:
        fee, memo = field("feedesc"), field("pay_memo")
        raw["pay_subtype"] = item.get("paysubtype")
        if fee:
            raw["amount"] = fee
        if memo:
            raw["memo"] = memo
        state = _page_text(value)
        return "transfer", " ".join(part for part in ("[转账]", fee, state) if part)
    return "other", _page_text(value) or PLACEHOLDER["other"]


# --- PyWxDump --------------------------------------------------------------------------------


def parse_pywxdump(stream: TextIO, ctx: Context, hint: Any) -> Iterator[ParsedMessage]:
    reader = JsonReader(stream, ctx.limits.max_field_chars, "PyWxDump data.js")
    while True:
        found = reader.find(_LOCAL_ANY, _MARKER_WINDOW)
        if found is None:
            raise ParseError(
                "the data.js holds no 'local_msg_list'; it is truncated or not a PyWxDump export"
            )
        name = found.group(1)
        if name == "local_mywxid":
            reader.js()  # rows already flag your own messages with is_sender
        elif name == "local_user_list":
            ctx.names.update(pywxdump.user_names(reader.value(ctx.limits.max_field_chars * 64)))
        else:
            break
    for item in reader.items():
        if not isinstance(item, dict):
            reader.fail("a local_msg_list element is not an object")
        message = pywxdump.row_message(item, ctx)
        if message is None:
            raise ParseError("a PyWxDump message has no valid CreateTime")
        yield message


FORMATS = (
    Format(
        "memotrace_html",
        "html",
        sniff_memotrace,
        parse_memotrace,
        "MemoTrace/WeChatMsg HTML: const chatMessages = [{type, text, is_send, timestamp, ...}]",
    ),
    Format(
        "pywxdump_html",
        "html",
        sniff_pywxdump,
        parse_pywxdump,
        "PyWxDump HTML/data.js: const local_msg_list = [...]",
    ),
)
