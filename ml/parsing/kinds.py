"""WeChat's message types, placeholders and system notices mapped to weft's kinds.

Numeric types (MSG.Type, SubType; WeChat 4 packs SubType into the high 32 bits):

==========================  =================================================================
1                           text
3                           image
34                          voice
43, 62                      video
47; app 8 (GIF)             sticker
48; app 17 (live location)  location
50                          call (voice and video calls)
42 (name card)              other, raw["card"]
49 app messages             by the app type: 3/4/5/24/33/36/44/51/63/88 (music, links, notes,
                            mini programs, channels) link; 6/74 file; 2000 transfer;
                            2001/2002 red_packet; 1 (pasted text), 53 (接龙) text;
                            57 quote: text (the reply) with raw["quote"] = the quoted message;
                            19 merged forward (聊天记录): other, raw["title"]/["description"];
                            62 拍一拍: system, raw["notice"] = "pat"; 87 group notice: system
10000                       system; recall if it says 撤回; 拍一拍 and "加入了群聊" stay system
                            with raw["notice"] = "pat" / "join"
10002 (sysmsg XML)          recall for revokemsg, else system
37, 65, 66 (friend/verify)  system
anything else               other, raw["type"] keeps the code
==========================  =================================================================

Text exports only have placeholders; whole-body placeholders map the same way ([图片] image,
[语音] voice, [视频] video, [表情包]/[动画表情]/[表情] sticker, [文件] file, [链接]/[音乐分享]/
[分享]/[小程序] link, [位置] location, [语音通话]/[视频通话] call, [转账] transfer, [红包]
red_packet, [聊天记录]/[合并转发] other, [名片] other), as do chatlog's ``![图片](url)``,
``[链接|title](url)`` and ``[文件|name](url)`` forms. Emoji codes inside text ([微笑]) and
Unicode emoji stay text. For non-text kinds ``text`` becomes a canonical placeholder
(``[图片]``, ``[链接] title``, ``[文件] name``...) so the same message reads the same
whichever exporter wrote it.
"""

from __future__ import annotations

import html
import re
from typing import Any

PLACEHOLDER = {
    "image": "[图片]",
    "voice": "[语音]",
    "video": "[视频]",
    "sticker": "[表情]",
    "file": "[文件]",
    "link": "[链接]",
    "location": "[位置]",
    "call": "[通话]",
    "transfer": "[转账]",
    "red_packet": "[红包]",
    "other": "[消息]",
}

TYPE_KIND: dict[int, str] = {
    1: "text",
    3: "image",
    34: "voice",
    42: "other",
    43: "video",
    62: "video",
    47: "sticker",
    48: "location",
    50: "call",
    37: "system",
    65: "system",
    66: "system",
    10000: "system",
    10002: "system",
}

APP_KIND: dict[int, str] = {
    1: "text",
    3: "link",
    4: "link",
    5: "link",
    6: "file",
    7: "other",
    8: "sticker",
    17: "location",
    19: "other",
    24: "link",
    33: "link",
    36: "link",
    40: "other",
    44: "link",
    50: "other",
    51: "link",
    53: "text",
    57: "text",
    62: "system",
    63: "link",
    74: "file",
    87: "system",
    88: "link",
    2000: "transfer",
    2001: "red_packet",
    2002: "red_packet",
    2003: "other",
}

# PyWxDump's type names (its type_converter), to (Type, SubType).
PYWXDUMP_TYPES: dict[str, tuple[int, int]] = {
    "文本": (1, 0),
    "图片": (3, 0),
    "语音": (34, 0),
    "添加好友": (37, 0),
    "推荐公众号": (42, 0),
    "视频": (43, 0),
    "动画表情": (47, 0),
    "位置": (48, 0),
    "文件": (49, 6),
    "粘贴的文本": (49, 1),
    "(分享)音乐": (49, 3),
    "(分享)卡片式链接": (49, 5),
    "游戏相关": (49, 7),
    "用户上传的GIF表情": (49, 8),
    "位置共享": (49, 17),
    "合并转发的聊天记录": (49, 19),
    "(分享)笔记": (49, 24),
    "(分享)小程序": (49, 33),
    "(分享)收藏夹": (49, 40),
    "(分享)小说(猜)": (49, 44),
    "(分享)视频号名片": (49, 50),
    "(分享)视频号视频": (49, 51),
    "接龙": (49, 53),
    "引用回复": (49, 57),
    "视频号直播或直播回放": (49, 63),
    "文件(猜)": (49, 74),
    "群公告": (49, 87),
    "视频号直播或直播回放等": (49, 88),
    "转账": (49, 2000),
    "赠送红包封面": (49, 2003),
    "语音通话": (50, 0),
    "企业微信打招呼(猜)": (65, 0),
    "企业微信添加好友(猜)": (66, 0),
    "系统通知": (10000, 0),
    "消息撤回1": (10000, 1),
    "拍一拍": (10000, 4),
    "消息撤回5": (10000, 5),
    "消息撤回6": (10000, 6),
    "消息撤回33": (10000, 33),
    "消息撤回36": (10000, 36),
    "消息撤回57": (10000, 57),
    "邀请加群": (10000, 8000),
}


def split_type(value: int) -> tuple[int, int]:
    """WeChat 4 stores (SubType << 32) | Type in one integer."""
    if value > 0xFFFFFFFF:
        return value & 0xFFFFFFFF, value >> 32
    return value, 0


def kind_of(msg_type: int, sub_type: int) -> str:
    if msg_type == 49:
        return APP_KIND.get(sub_type, "link" if sub_type == 0 else "other")
    return TYPE_KIND.get(msg_type, "other")


# --- system notices -------------------------------------------------------------------------

_RECALL = re.compile(r"撤回了一条消息|recalled a message|撤回了一條訊息")
_PAT = re.compile(r"拍了拍|tickled|patted")
_JOIN = re.compile(r"加入了?群聊|加入群聊|joined the group")


def system_kind(text: str) -> tuple[str, str | None]:
    """(kind, notice) of a system line: recall, or system with a notice label."""
    if _RECALL.search(text):
        return "recall", None
    if _PAT.search(text):
        return "system", "pat"
    if _JOIN.search(text):
        return "system", "join"
    return "system", None


# Lines an exporter writes as a header with no sender (MemoTrace TXT's system messages).
SYSTEM_LINE = re.compile(
    r"撤回了一条消息|拍了拍|加入了?群聊|移出了?群聊|退出了群聊|修改群名为|你已添加了|以上是打招呼的内容|"
    r"开启了朋友验证|收到红包|领取了|成为新群主|群公告|现在可以开始聊天了|与群里其他人都不是朋友关系"
)

# --- XML bodies --------------------------------------------------------------------------------

_CDATA = re.compile(r"<!\[CDATA\[(.*?)\]\]>", re.S)
_TAGS = re.compile(r"<[^<>]+>")


def xml_text(xml: str, tag: str) -> str:
    """Text of the first <tag>...</tag> (CDATA unwrapped, entities decoded), or ""."""
    start = xml.find(f"<{tag}>")
    if start < 0:
        start = xml.find(f"<{tag} ")
        if start < 0:
            return ""
        start = xml.find(">", start)
        if start < 0:
            return ""
        start += 1
    else:
        start += len(tag) + 2
    end = xml.find(f"</{tag}>", start)
    if end < 0:
        return ""
    value = xml[start:end]
    if "<![CDATA[" in value:
        value = _CDATA.sub(r"\1", value)
        return value.strip()
    return html.unescape(value).strip()


def xml_attr(xml: str, name: str) -> str:
    match = re.search(rf"""\b{name}\s*=\s*["']([^"']*)["']""", xml)
    return html.unescape(match.group(1)) if match else ""


def strip_markup(text: str) -> str:
    """A system line without CDATA wrappers, tags and MemoTrace's 重新编辑 link."""
    text = _CDATA.sub(r"\1", text)
    text = _TAGS.sub("", text)
    return html.unescape(text).strip()


def looks_like_xml(text: str) -> bool:
    head = text.lstrip()[:64]
    return head.startswith("<") and (head.startswith(("<?xml", "<msg")) or "<" in head[1:])


def describe_xml(msg_type: int, sub_type: int, body: str) -> tuple[str, str, dict[str, Any]]:
    """(kind, text, raw details) of a message whose body is WeChat's XML (or empty)."""
    if msg_type == 49:
        app_type = xml_text(body, "type")
        if app_type.isdigit() and sub_type == 0:
            sub_type = int(app_type)
    kind = kind_of(msg_type, sub_type)
    raw: dict[str, Any] = {}
    text = PLACEHOLDER.get(kind, "")
    if kind == "image":
        _put(raw, "md5", xml_attr(body, "md5"))
    elif kind == "voice":
        _put(raw, "duration_ms", xml_attr(body, "voicelength"))
    elif kind == "video":
        _put(raw, "md5", xml_attr(body, "md5"))
        _put(raw, "duration_s", xml_attr(body, "playlength"))
    elif kind == "sticker":
        _put(raw, "md5", xml_attr(body, "md5"))
        _put(raw, "url", xml_attr(body, "cdnurl"))
    elif kind == "location":
        label = xml_attr(body, "label") or xml_attr(body, "poiname")
        for name in ("label", "poiname", "x", "y"):
            _put(raw, name, xml_attr(body, name))
        text = _joined(text, label)
    elif kind == "call":
        detail = xml_text(body, "msg") or (strip_markup(body) if body and "<" not in body else "")
        _put(raw, "detail", detail)
        text = _joined(text, detail)
    elif msg_type == 49:
        text = _describe_app(sub_type, kind, body, raw)
    elif kind == "system" or kind == "recall":
        kind, text, raw = _describe_system(msg_type, sub_type, body)
    elif msg_type == 42:
        nickname = xml_attr(body, "nickname")
        _put(raw, "card", nickname)
        _put(raw, "card_id", xml_attr(body, "username"))
        text = _joined("[名片]", nickname)
    if msg_type != 1:
        raw["type"] = msg_type
        if sub_type:
            raw["subtype"] = sub_type
    return kind, text, raw


def _describe_app(sub_type: int, kind: str, body: str, raw: dict[str, Any]) -> str:
    title = xml_text(body, "title")
    description = xml_text(body, "des")
    url = xml_text(body, "url")
    _put(raw, "title", title)
    if kind == "text":
        if sub_type == 57:
            quote = _quote(body)
            if quote:
                raw["quote"] = quote
        return title
    if kind == "file":
        _put(raw, "size", xml_text(body, "totallen"))
        _put(raw, "ext", xml_text(body, "fileext"))
        _put(raw, "md5", xml_text(body, "md5"))
        return _joined(PLACEHOLDER["file"], title)
    if kind == "link":
        _put(raw, "description", description)
        _put(raw, "url", url)
        _put(raw, "app", xml_text(body, "sourcedisplayname") or xml_text(body, "appname"))
        return _joined(PLACEHOLDER["link"], title)
    if kind == "transfer":
        fee = xml_text(body, "feedesc")
        memo = xml_text(body, "pay_memo")
        _put(raw, "amount", fee)
        _put(raw, "memo", memo)
        _put(raw, "pay_subtype", xml_text(body, "paysubtype"))
        return _joined(_joined(PLACEHOLDER["transfer"], fee), memo)
    if kind == "red_packet":
        return _joined(PLACEHOLDER["red_packet"], title)
    if kind == "sticker":
        _put(raw, "md5", xml_text(body, "md5"))
        return PLACEHOLDER["sticker"]
    if kind == "location":
        return _joined(PLACEHOLDER["location"], title)
    if kind == "system":
        if sub_type == 62:
            raw["notice"] = "pat"
            raw.pop("title", None)
            template = xml_text(body, "template")
            return title or (_fill_template(template, body) if template else "拍一拍")
        return title or description or "[群公告]"
    _put(raw, "description", description)
    if sub_type == 19:
        return _joined("[聊天记录]", title)
    return _joined(PLACEHOLDER["other"], title)


def _quote(body: str) -> dict[str, Any]:
    start = body.find("<refermsg>")
    if start < 0:
        return {}
    refer = body[start : body.find("</refermsg>", start) + len("</refermsg>")]
    quote: dict[str, Any] = {}
    _put(quote, "sender", xml_text(refer, "displayname"))
    _put(quote, "sender_id", xml_text(refer, "chatusr") or xml_text(refer, "fromusr"))
    content = xml_text(refer, "content")
    refer_type = xml_text(refer, "type")
    if content and looks_like_xml(content):
        kind = kind_of(int(refer_type), 0) if refer_type.isdigit() else "other"
        content = xml_text(content, "title") or PLACEHOLDER.get(kind, "[消息]")
    _put(quote, "text", content)
    _put(quote, "id", xml_text(refer, "svrid"))
    if refer_type.isdigit():
        quote["type"] = int(refer_type)
    return quote


def _describe_system(msg_type: int, sub_type: int, body: str) -> tuple[str, str, dict[str, Any]]:
    raw: dict[str, Any] = {}
    if msg_type == 10002 or "<sysmsg" in body:
        kind_attr = xml_attr(body, "type")
        if kind_attr == "revokemsg":
            return "recall", xml_text(body, "replacemsg") or "撤回了一条消息", raw
        if kind_attr == "pat":
            raw["notice"] = "pat"
            template = xml_text(body, "template")
            return "system", _fill_template(template, body) if template else "拍一拍", raw
        text = strip_markup(xml_text(body, "content") or body)
        return "system", text, raw
    text = strip_markup(body)
    kind, notice = system_kind(text)
    if notice:
        raw["notice"] = notice
    return kind, text, raw


def _fill_template(template: str, body: str) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: xml_text(body, m.group(1)) or m.group(1), template)


def _put(raw: dict[str, Any], name: str, value: str) -> None:
    if value:
        raw[name] = value


def _joined(prefix: str, detail: str) -> str:
    return f"{prefix} {detail}" if detail else prefix


# --- placeholders in text exports ------------------------------------------------------------

_WHOLE_PLACEHOLDER: dict[str, str] = {
    "[图片]": "image",
    "[语音]": "voice",
    "[语音消息]": "voice",
    "[视频]": "video",
    "[视频消息]": "video",
    "[表情包]": "sticker",
    "[动画表情]": "sticker",
    "[表情]": "sticker",
    "[GIF表情]": "sticker",
    "[文件]": "file",
    "[链接]": "link",
    "[音乐分享]": "link",
    "[音乐]": "link",
    "[分享]": "link",
    "[小程序]": "link",
    "[视频号]": "link",
    "[视频号直播]": "link",
    "[位置]": "location",
    "[位置消息]": "location",
    "[语音通话]": "call",
    "[视频通话]": "call",
    "[通话]": "call",
    "[通话消息]": "call",
    "[转账]": "transfer",
    "[红包]": "red_packet",
    "[红包封面]": "other",
    "[聊天记录]": "other",
    "[合并转发]": "other",
    "[名片]": "other",
    "[群公告]": "system",
    "[拍一拍]": "system",
}

# chatlog: ![图片](url), [语音](url), [链接|title](url), [文件|name](url), [转账|发送 ¥1](memo)
_LABELLED = re.compile(r"!?\[([^\]|\n]+)(?:\|([^\]\n]*))?\](?:\(([^)\n]*)\))?")
_PREFIXED = re.compile(r"\[([^\]\n]{1,8})\][ :：]?([^\n]*)")


def classify_placeholder(body: str) -> tuple[str, str, dict[str, Any]] | None:
    """(kind, text, raw) if a text export's body is a media placeholder, else None (text)."""
    kind = _WHOLE_PLACEHOLDER.get(body)
    if kind is not None:
        return kind, _label(kind, body[1:-1]), {}
    match = _LABELLED.fullmatch(body)
    if match:
        label, detail, url = match.groups()
        label, _, extra = label.strip().partition(" ")
        kind = _WHOLE_PLACEHOLDER.get(f"[{label}]")
        if kind is None and label in ("分享", "小程序", "视频号", "音乐"):
            kind = "link"
        if kind is None:
            return None
        raw: dict[str, Any] = {}
        if url:
            raw["url"] = url
        detail = (detail or "").strip()
        if kind in ("image", "video", "voice", "sticker"):
            if extra:
                raw["detail"] = extra
            return kind, PLACEHOLDER[kind], raw
        if detail:
            raw["title" if kind in ("link", "file") else "detail"] = detail.split("|")[0]
        if kind == "transfer" and url:
            raw.pop("url")
            raw["memo"] = url
        return kind, _joined(_label(kind, label), detail.split("|")[0]), raw
    match = _PREFIXED.fullmatch(body)
    if match:
        label, detail = match.groups()
        kind = _WHOLE_PLACEHOLDER.get(f"[{label}]")
        if kind is None or kind in ("system",):
            return None
        detail = detail.strip()
        if kind in ("voice", "video") or not detail:
            return kind, _label(kind, label), {"detail": detail} if detail else {}
        return kind, _joined(_label(kind, label), detail), {}
    return None


def _label(kind: str, label: str) -> str:
    return PLACEHOLDER[kind] if kind != "other" and kind in PLACEHOLDER else f"[{label}]"
