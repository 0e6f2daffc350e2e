"""Parsing WeChat chat-history exports into messages, streamed.

Every export people actually have, detected from its content: MemoTrace/WeChatMsg TXT (and its
variants and "AI" TXT), chatlog text, text copied out of WeChat, MemoTrace and PyWxDump HTML,
MemoTrace, PyWxDump and chatlog CSV, chatlog, echotrace, PyWxDump and ChatLab JSON (and
ChatLab JSONL), and zip archives of any of them; UTF-8 with or without BOM, GB18030/GBK or
UTF-16, CRLF or LF. :mod:`ml.parsing.kinds` documents how WeChat's message types map to
weft's kinds.

    with open(path, "rb") as source:
        for message in parse(source, tz="Asia/Shanghai"):
            ...

Anything unreadable raises :class:`ParseError` with a one-line reason; :func:`diagnose`
lists every format tried and why it was or was not accepted.
"""

from ml.parsing.api import FORMATS, detect, diagnose, parse
from ml.parsing.errors import ParseError
from ml.parsing.limits import Limits
from ml.parsing.model import KINDS, Attempt, ParsedMessage

__all__ = [
    "FORMATS",
    "KINDS",
    "Attempt",
    "Limits",
    "ParseError",
    "ParsedMessage",
    "detect",
    "diagnose",
    "parse",
]
