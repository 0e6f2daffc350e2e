"""Reading a message body from a text export: placeholders, quotes, link cards."""

from __future__ import annotations

import re
from typing import Any

from ml.parsing.kinds import classify_placeholder

QUOTE_RULE = "\n- - - - - - - - - - - - - - -\n"
MEMOTRACE_REFER = "\n引用:"
_SHARE_CARD = re.compile(
    r"\[链接\]:title:(?P<title>.*?)\n\s*description:(?P<description>.*?)\n\s*url:(?P<url>.*?)"
    r"\n\s*name:(?P<app>.*)",
    re.S,
)

Described = tuple[str, str, dict[str, Any]]
"""(kind, text, raw) of a body."""


def memotrace_body(body: str) -> Described:
    stripped = body.strip()
    if stripped.startswith("[链接]:title:"):
        card = _SHARE_CARD.match(stripped)
        if card:
            raw = {name: value.strip() for name, value in card.groupdict().items() if value.strip()}
            title = raw.get("title", "")
            return "link", f"[链接] {title}" if title else "[链接]", raw
    refer = body.find(MEMOTRACE_REFER)
    if refer >= 0:
        reply, quoted = body[:refer], body[refer + len(MEMOTRACE_REFER) :]
        who, sep, what = quoted.partition(":")
        quote = {"sender": who, "text": what} if sep else {"text": quoted}
        return "text", reply, {"quote": quote}
    return common_body(body)


def common_body(body: str) -> Described:
    first = body[:1]
    if first in ("[", "!"):
        placeholder = classify_placeholder(body.strip())
        if placeholder is not None:
            return placeholder
    elif first == "「":
        # WeChat's own quote form: 「Name：quoted」, a dashed rule, then the reply.
        rule = body.find(QUOTE_RULE)
        if rule > 0 and body[rule - 1] == "」":
            quoted = body[1 : rule - 1]
            who, sep, what = quoted.partition("：")
            quote = {"sender": who, "text": what} if sep else {"text": quoted}
            return "text", body[rule + len(QUOTE_RULE) :], {"quote": quote}
    return "text", body, {}


_CHATLOG_QUOTE = re.compile(r"((?:> [^\n]*\n?)+)(.*)", re.S)


_CHATLOG_QUOTE_HEADER = re.compile(
    r"(.+?)(?:\([^()\n]*\))?(?: \[[^\]\n]*\])? (?:\d{4}-)?(?:\d{2}-\d{2} )?\d{2}:\d{2}:\d{2}"
)
_CHATLOG_PAT = re.compile(r'(?:"[^"\n]*"|我)\s*拍了拍')


def chatlog_body(body: str) -> Described:
    if _CHATLOG_PAT.match(body):
        return "system", body, {"notice": "pat"}
    if body.startswith("> "):
        match = _CHATLOG_QUOTE.fullmatch(body)
        if match and match.group(2):
            lines = [line[2:] for line in match.group(1).rstrip("\n").split("\n")]
            header = _CHATLOG_QUOTE_HEADER.fullmatch(lines[0])
            if header and len(lines) > 1:
                quote = {"sender": header.group(1).strip(), "text": "\n".join(lines[1:])}
            else:
                quote = {"text": "\n".join(lines)}
            return "text", match.group(2), {"quote": quote}
    return common_body(body)
