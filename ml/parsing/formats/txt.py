"""Plain-text exports: a header line per message, the body, a blank line.

Layouts (learned from the exporters' code):

- ``memotrace_txt``: MemoTrace/WeChatMsg's ``2023-01-01 12:00:00 Name`` then the body; system
  notices are a header with the notice instead of a name and no body. Variants with ``/`` or
  年月日 dates, no seconds, or AM/PM are read the same way.
- ``wechat_copy_txt``: the sender before the time, ``Name 2023/09/16 2:51 PM``, as text copied
  out of WeChat's desktop app or written by exporters that put the name first.
- ``chatlog_txt``: chatlog's ``Name(wxid|我) [Group(id@chatroom)] 01-02 15:04:05``; the date is
  written with or without the year (or not at all for a single day) depending on the range
  exported. Missing years are inferred: the current year, or last year where that would put
  the first message in the future, stepping on at a December-to-January turn;
  ``raw["year_inferred"]`` marks them.
- ``memotrace_ai_txt``: MemoTrace's "AI" export: ``****date****`` day dividers and a ``Name:``
  line only when the speaker changes, each speaker's consecutive texts run together. Such a
  run becomes one message at 00:00 of its day (``raw["date_only"]``), since the file keeps
  neither the boundaries nor the times of the messages inside it.

A header only counts after a blank line (or at the start), and never when its time is earlier
than the previous header's: a body line that merely looks like a header stays in the body. The
one step back allowed is into the second pass of an hour that a DST fall-back repeats: that
header and the ones after it in that hour take the later of the two times.
"""

from __future__ import annotations

import html
import operator
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TextIO
from zlib import crc32

from ml.parsing import native
from ml.parsing.bodies import MEMOTRACE_REFER, chatlog_body, common_body, memotrace_body
from ml.parsing.clock import SECOND_DELTAS, Clock, regular_hour
from ml.parsing.errors import ParseError
from ml.parsing.formats.base import Context, Format, Sniff, accept, reject
from ml.parsing.kinds import system_kind
from ml.parsing.model import ParsedMessage
from ml.parsing.textio import CHUNK_CHARS

_GAP = r"\n[ \t]*\n"
_DATE = r"(?P<y>\d{4})[-/.年](?P<mo>\d{1,2})[-/.月](?P<d>\d{1,2})日?"
_TIME = (
    r"(?P<ap1>上午|下午|凌晨|早上|中午|晚上)?(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2}))?"
    r"(?: ?(?P<ap2>[AaPp][Mm])\b)?"
)

# MemoTrace's own layout, read on a fast path: fixed-width time, then the name.
# Every part is a group so that a header rejected in context goes back into the body verbatim.
_MEMOTRACE = re.compile(r"(\n[ \t]*\n)(\d{4}-[01]\d-[0-3]\d [0-2]\d:[0-5]\d:[0-5]\d)( ?)([^\n]*)")
_MEMOTRACE_GROUPS = 4
_TIME_FIRST = re.compile(
    _GAP + _DATE + r"[ T]+" + _TIME + r"(?:[ \t]+(?P<name>[^\n]*))?[ \t]*(?=\n|\Z)"
)
_NAME_FIRST = re.compile(
    _GAP + r"(?P<name>[^\n]*?\S)[ \t]+\(?" + _DATE + r"[ T]+" + _TIME + r"\)?[:：]?[ \t]*(?=\n|\Z)"
)
# The chat name stops at a "[" as well as at the "]": otherwise every "[" of a long line would
# be tried as the start of the chat, each try reading to the end of the line (quadratic time
# on hostile input, and sniffing reads 256 KiB of every upload).
_CHATLOG_HEAD = _GAP + (
    r"(?P<name>[^\n]*?[^\s(])(?:\((?P<sid>[^()\n]*)\))?[ \t](?:\[(?P<chat>[^\[\]\n]*)\][ \t])?"
)
_CHATLOG_TIME = r"(?P<h>\d{2}):(?P<mi>\d{2}):(?P<s>\d{2})[ \t]*(?=\n|\Z)"
_CHATLOG = {
    "full": re.compile(
        _CHATLOG_HEAD + r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})[ \t]" + _CHATLOG_TIME
    ),
    "month_day": re.compile(_CHATLOG_HEAD + r"(?P<mo>\d{2})-(?P<d>\d{2})[ \t]" + _CHATLOG_TIME),
    "time_only": re.compile(_CHATLOG_HEAD + _CHATLOG_TIME),
}
# A whole (stripped) line; MemoTrace writes it after a blank line, the first one at the top.
_AI_DIVIDER = re.compile(r"\*{5,}(\d{4})-(\d{2})-(\d{2})\*{5,}")
_AI_SPEAKER = re.compile(r"([^:：\n]{1,32})[:：](.*)", re.S)
_SENTENCE = re.compile(r"[，。！？!?,;；、\t]|\s{2,}|^\d+$|^https?$")


_HEADER_SAMPLE = 3
_UNIT = "\x1f"  # separates sender and text in hashed keys, as in KeyMaker
_TRAILING = frozenset((" ", "\t", "\n"))
# First characters after which a MemoTrace body may be something other than plain text.
_SPECIAL_FIRST = frozenset(("[", " ", "「", "\t", ""))
_HOUR = operator.itemgetter(slice(0, 13))
_SYSTEM_CRC = crc32(_UNIT.encode())
_MINUTE_SECONDS = {
    f"{minute:02d}:{second:02d}": minute * 60 + second
    for minute in range(60)
    for second in range(60)
}
_MINUTE_DELTAS = {stamp: timedelta(seconds=seconds) for stamp, seconds in _MINUTE_SECONDS.items()}
_BEFORE_ALL = -(1 << 62)  # an epoch earlier than any header's


# --- sniffing ----------------------------------------------------------------------------------


def _examples(pattern: re.Pattern[str], head: str) -> tuple[int, list[str], list[re.Match[str]]]:
    matches = list(pattern.finditer("\n\n" + head))
    lines = [m.group(0).strip() for m in matches[:_HEADER_SAMPLE]]
    return len(matches), lines, matches


def _enough(count: int, head: str) -> bool:
    # Two headers, or one in a file so short that it is all in the head.
    return count >= 2 or (count == 1 and len(head) < 4096)


def sniff_memotrace(head: str) -> Sniff:
    count, lines, _ = _examples(_TIME_FIRST, head)
    if not _enough(count, head):
        return reject("no header lines like '2023-01-01 12:00:00 Name' after blank lines")
    fast = len(_MEMOTRACE.findall("\n\n" + head))
    hint = "fast" if fast == count else "general"
    return accept(f"{count} header lines like {lines[0]!r}", score=count * 2, hint=hint)


def sniff_copy(head: str) -> Sniff:
    count, lines, _ = _examples(_NAME_FIRST, head)
    if not _enough(count, head):
        return reject("no header lines like 'Name 2023/09/16 2:51 PM' after blank lines")
    return accept(f"{count} header lines like {lines[0]!r}", score=count)


def sniff_chatlog(head: str) -> Sniff:
    best: tuple[int, str, list[str]] | None = None
    for variant, pattern in _CHATLOG.items():
        count, lines, matches = _examples(pattern, head)
        if not any(m.group("sid") or m.group("chat") for m in matches):
            continue
        if best is None or count > best[0]:
            best = (count, variant, lines)
    if best is None or not _enough(best[0], head):
        return reject("no header lines like 'Name(wxid) 01-02 15:04:05' after blank lines")
    count, variant, lines = best
    return accept(f"{count} header lines like {lines[0]!r}", score=count * 2 + 1, hint=variant)


def sniff_ai(head: str) -> Sniff:
    # MemoTrace opens the file with the first day's divider and writes every divider as a line
    # of its own after a blank line: a divider-like line anywhere else is a message's text.
    dividers: list[tuple[str, ...]] = []
    blank = True
    for line in head.split("\n"):
        stripped = line.strip()
        if not stripped:
            blank = True
            continue
        divider = _AI_DIVIDER.fullmatch(stripped) if blank else None
        if divider:
            dividers.append(divider.groups())
        elif not dividers:
            return reject("the text does not open with a day divider like '*****2023-01-01*****'")
        blank = False
    if not dividers:
        return reject("no day dividers like '*****2023-01-01*****'")
    # Only this layout opens with a divider, so it beats the other text layouts; a JSON or CSV
    # sniff (1000) still wins, though none of them accepts text that starts this way.
    return accept(f"{len(dividers)} day dividers like '****{'-'.join(dividers[0])}****'", 999)


# --- the block scanner ---------------------------------------------------------------------------

Header = tuple[int, str, str | None, dict[str, Any]]
"""(epoch, name, sender_id, raw) of one header line."""


def _scan(
    stream: TextIO,
    pattern: re.Pattern[str],
    read_header: Callable[[re.Match[str]], Header | None],
    ctx: Context,
) -> Iterator[tuple[Header, str]]:
    """(header, body) pairs; body "" means a header with nothing under it."""
    limit = ctx.limits.max_field_chars
    carry = "\n\n"
    pending: Header | None = None
    while True:
        chunk = stream.read(CHUNK_CHARS)
        eof = not chunk
        buf = carry + chunk if chunk else carry
        start = 0
        end_of_data = len(buf)
        for match in pattern.finditer(buf):
            if not eof and match.end() >= end_of_data:
                break
            header = read_header(match)
            if header is None:
                continue
            if pending is not None:
                if header[0] < pending[0]:
                    later = _second_pass(ctx.clock, header[0], pending[0])
                    if later is None:
                        continue
                    header = (later, *header[1:])
                yield pending, _body(buf[start : match.start()])
            pending = header
            start = match.end()
        carry = buf[start:]
        if len(carry) > limit:
            _too_long(limit, pending is None)
        if eof:
            break
    if pending is not None:
        yield pending, _body(carry.rstrip())


def _body(raw_body: str) -> str:
    # Bodies start with the newline that ended the header; none at all marks a bare header.
    return raw_body[1:].rstrip(" \t\n") if raw_body else ""


def _too_long(limit: int, before_first: bool) -> None:
    if before_first:
        raise ParseError(f"no message header in the first {limit:,} characters of the text")
    raise ParseError(
        f"a message is longer than {limit:,} characters; the file is not a chat export"
    )


# --- MemoTrace ------------------------------------------------------------------------------


def parse_memotrace(stream: TextIO, ctx: Context, hint: Any) -> Iterator[ParsedMessage]:
    if hint != "fast":
        return _parse_general(stream, ctx, _TIME_FIRST, _read_time_first, memotrace_body)
    return _parse_memotrace_fast(stream, ctx)


class _MemoTraceState:
    """What reading one MemoTrace TXT file keeps from buffer to buffer.

    The native reader (``_speedups.memotrace_txt``) reads the same attributes and calls the
    same helpers for everything but plain text, so both readers build identical messages.
    """

    __slots__ = (
        "bare",
        "body",
        "clock",
        "deltas",
        "from_epoch",
        "hour_starts",
        "keys",
        "last_epoch",
        "member",
        "message",
        "self_name",
        "senders",
        "system_crc",
    )

    def __init__(self, ctx: Context) -> None:
        self.clock = ctx.clock
        self.keys = ctx.keys
        self.self_name = ctx.self_name
        self.member = ctx.member
        self.message = ParsedMessage
        self.body = memotrace_body
        self.bare = _bare_header
        self.from_epoch = partial(datetime.fromtimestamp, tz=ctx.clock.tz)
        self.deltas = SECOND_DELTAS
        self.system_crc = _SYSTEM_CRC
        self.hour_starts: dict[str, datetime | None] = {}
        self.senders: dict[str, tuple[str, int]] = {}
        self.last_epoch = _BEFORE_ALL
        """Epoch of the last message read, for the step back into a repeated DST hour."""

    def hour(self, stamp: str) -> tuple[int, datetime | None]:
        """(epoch, datetime or None in a DST hour) of the hour "YYYY-MM-DD HH"; ValueError if
        there is no such hour."""
        base = self.clock.hours.get(stamp)
        if base is None:
            base = self.clock.hour_start(stamp)
        starts = self.hour_starts
        if stamp not in starts:
            if len(starts) > 10_000:
                starts.clear()
            starts[stamp] = regular_hour(base, self.clock.tz)
        return base, starts[stamp]

    def sender(self, name: str) -> tuple[str, int]:
        """(display name, CRC of the name and the unit separator) of a header's name."""
        clean = _unescape_name(name.strip())
        known = self.senders[name] = (clean, crc32(f"{clean}{_UNIT}".encode()))
        return known


def _parse_memotrace_fast(stream: TextIO, ctx: Context) -> Iterator[ParsedMessage]:
    # The hot path of the 1M-message benchmark: a buffer at a time, in C where _speedups is
    # built. The last header of a buffer and its body are carried into the next buffer (the
    # body may go on there) and read again.
    state = _MemoTraceState(ctx)
    speedups = native.speedups
    limit = ctx.limits.max_field_chars
    carry = "\n\n"
    while True:
        # Reading at least the carry's length keeps a long body from being rescanned often.
        chunk = stream.read(max(CHUNK_CHARS, len(carry)))
        eof = not chunk
        buffer = carry + chunk if chunk else carry
        read = None if speedups is None else speedups.memotrace_txt(buffer, eof, state)
        if read is None:
            messages, carry, headers = _memotrace_buffer(buffer, eof, state)
        else:
            messages, consumed, headers = read
            carry = buffer[consumed:]
        yield from messages
        if eof:
            return
        if len(carry) > limit:
            _too_long(limit, headers == 0)


def _memotrace_buffer(
    buffer: str, eof: bool, state: _MemoTraceState
) -> tuple[list[ParsedMessage], str, int]:
    """(messages, carry, headers) of one buffer: the Python twin of _speedups.memotrace_txt.

    No strptime: the epoch is the hour's (cached) plus a table lookup of "MM:SS", and the
    datetime the hour's datetime plus a cached timedelta (fromtimestamp only in hours that
    hold a DST change). Keys are made inline, the same as KeyMaker.hashed, continuing a
    per-sender CRC.
    """
    parts = _MEMOTRACE.split(buffer)
    headers = _accepted(parts, state.clock, state.last_epoch)
    count = len(headers[1])
    if not count:
        return [], "" if eof else buffer, 0
    carry = "" if eof else "".join(column.pop() for column in headers)
    _, stamps, _, names, bodies = headers
    hour = state.hour
    senders = state.senders
    self_name = state.self_name
    member = state.member
    message = ParsedMessage
    keys = state.keys
    key_epoch, key_first, key_seen = keys.epoch, keys.first, keys.seen
    raw: dict[str, Any]
    messages = []
    last_hour = ""
    base, start = 0, None
    previous = state.last_epoch
    for stamp, name, raw_body in zip(stamps, names, bodies, strict=True):
        minute_second = stamp[14:19]
        if stamp[:13] != last_hour:
            last_hour = stamp[:13]
            base, start = hour(last_hour)
        epoch = base + _MINUTE_SECONDS[minute_second]
        later = _second_pass(state.clock, epoch, previous) if epoch < previous else None
        if later is None:
            when = start + _MINUTE_DELTAS[minute_second] if start else state.from_epoch(epoch)
        else:
            epoch = later
            when = state.from_epoch(epoch)
        previous = epoch
        if raw_body[-1:] in _TRAILING:
            raw_body = raw_body.rstrip()
        if raw_body:
            body = raw_body[1:]
            if body[:1] not in _SPECIAL_FIRST and MEMOTRACE_REFER not in body:
                kind, text, raw = "text", body, {}
            else:
                kind, text, raw = memotrace_body(body)
            sender, sender_crc = senders.get(name) or state.sender(name)
            is_self = None if self_name is None else sender == self_name
        else:
            kind, text, raw, sender = _bare_header(name)
            sender_crc = _SYSTEM_CRC
            is_self = None
        if member is not None:
            raw["member"] = member
        key = f"h:{epoch}:{crc32(text.encode(), sender_crc)}"
        if epoch != key_epoch:
            key_epoch, key_first, key_seen = epoch, key, None
        else:
            if key_seen is None:
                key_seen = {key_first: 1}
            count = key_seen.get(key, 0)
            key_seen[key] = count + 1
            if count:
                key = f"{key}:{count}"
        messages.append(message(sender, None, when, text, kind, is_self, raw, key))
    keys.epoch, keys.first, keys.seen = key_epoch, key_first, key_seen
    state.last_epoch = previous
    return messages, carry, count


Headers = list[list[str]]
"""[gaps, stamps, spaces, names, bodies]: the parts of a split buffer, one list each."""


def _accepted(parts: list[str], clock: Clock, previous: int) -> Headers:
    """The headers of a split buffer, with body lines that only look like headers merged.

    A header counts only if its time is real and not earlier than the previous header's (or
    is in the second pass of an hour repeated by a DST fall-back, see _second_pass; previous
    is the epoch of the message before the buffer); a rejected one goes back into the
    previous body as it was written (one before the first header is text before the export
    starts, and is dropped).
    """
    step = _MEMOTRACE_GROUPS + 1
    stamps = parts[2::step]
    hours = clock.hours
    real = True
    for hour in set(map(_HOUR, stamps)):
        if hour not in hours:
            try:
                clock.hour_start(hour)
            except ValueError:
                real = False
    if real and stamps == sorted(stamps):
        return [parts[offset::step] for offset in range(1, step + 1)]
    kept: Headers = []
    for index in range(1, len(parts), step):
        header = parts[index : index + step]
        try:
            epoch: int | None = clock.epoch_iso(header[1])
        except ValueError:
            epoch = None
        later = None
        if epoch is not None and epoch < previous:
            later = _second_pass(clock, epoch, previous)
        if kept and (epoch is None or (header[1] < kept[-1][1] and later is None)):
            kept[-1][-1] += "".join(header)
        elif epoch is not None:
            kept.append(header)
            previous = epoch if later is None else later
    return [list(column) for column in zip(*kept, strict=True)] if kept else [[]] * step


def _second_pass(clock: Clock, epoch: int, previous: int) -> int | None:
    """A header's epoch where its time is earlier than the previous header's but falls in an
    hour that a DST fall-back repeats, and its second pass is not earlier; else None.

    Headers come in time order, so after 01:50 EDT a 01:10 is the 01:10 EST an hour later,
    and so are the times after it in that hour.
    """
    later = clock.second_pass(epoch)
    return later if later is not None and later >= previous else None


def _self_flag(ctx: Context, sender: str, kind: str) -> bool | None:
    if ctx.self_name is None or kind in ("system", "recall"):
        return None
    return sender == ctx.self_name


def _bare_header(line: str) -> tuple[str, str, dict[str, Any], str]:
    """A header with no body: MemoTrace writes system notices this way."""
    text = line.strip()
    kind, notice = system_kind(text)
    raw: dict[str, Any] = {"notice": notice} if notice else {}
    return kind, text, raw, ""


def _unescape_name(name: str) -> str:
    # MemoTrace escapes display names for HTML and JavaScript even in its TXT export.
    if "\\" in name:
        name = name.replace("\\'", "'").replace('\\"', '"').replace("\\\\", "\\")
    return html.unescape(name) if "&" in name else name


# --- the general header layouts --------------------------------------------------------------


def _hour24(hour: int, marker: str | None) -> int:
    if not marker:
        return hour
    marker = marker.lower()
    if marker in ("pm", "下午", "晚上") and hour < 12:
        return hour + 12
    if marker in ("am", "凌晨", "早上") and hour == 12:
        return 0
    if marker == "中午" and hour < 11:
        return hour + 12
    return hour


def _local_epoch(ctx: Context, match: re.Match[str], year: int, month: int, day: int) -> int | None:
    group = match.group
    seconds = group("s")
    marker = group("ap1") or group("ap2") if "ap1" in match.re.groupindex else None
    try:
        return ctx.clock.epoch_local(
            year,
            month,
            day,
            _hour24(int(group("h")), marker),
            int(group("mi")),
            int(seconds) if seconds else 0,
        )
    except ValueError:
        return None


def _parse_general(
    stream: TextIO,
    ctx: Context,
    pattern: re.Pattern[str],
    reader: Callable[[Context], Callable[[re.Match[str]], Header | None]],
    classify: Callable[[str], tuple[str, str, dict[str, Any]]],
) -> Iterator[ParsedMessage]:
    for (epoch, name, sender_id, header_raw), body in _scan(stream, pattern, reader(ctx), ctx):
        if body:
            kind, text, raw = classify(body)
            sender = name
        else:
            kind, text, raw, sender = _bare_header(name) if name else ("text", "", {}, "")
            sender_id = None
        is_self = header_raw.pop("_self", None)
        if header_raw:
            raw.update(header_raw)
        if kind not in ("system", "recall") and sender in ("系统消息", "系统"):
            kind, notice = system_kind(text)
            if notice:
                raw["notice"] = notice
        if kind in ("system", "recall") and sender in ("系统消息", "系统"):
            sender, sender_id = "", None
        yield ctx.message(
            sender, sender_id, epoch, text, kind, _flag(ctx, sender, kind, is_self), raw
        )


def _flag(ctx: Context, sender: str, kind: str, is_self: bool | None) -> bool | None:
    if is_self is not None:
        return is_self
    return _self_flag(ctx, sender, kind)


def _read_time_first(ctx: Context) -> Callable[[re.Match[str]], Header | None]:
    def read(match: re.Match[str]) -> Header | None:
        group = match.group
        epoch = _local_epoch(ctx, match, int(group("y")), int(group("mo")), int(group("d")))
        if epoch is None:
            return None
        name = _unescape_name((group("name") or "").strip())
        return epoch, name, None, {}

    return read


def _read_name_first(ctx: Context) -> Callable[[re.Match[str]], Header | None]:
    def read(match: re.Match[str]) -> Header | None:
        group = match.group
        epoch = _local_epoch(ctx, match, int(group("y")), int(group("mo")), int(group("d")))
        if epoch is None:
            return None
        return epoch, group("name").strip(), None, {}

    return read


def parse_copy(stream: TextIO, ctx: Context, hint: Any) -> Iterator[ParsedMessage]:
    yield from _parse_general(stream, ctx, _NAME_FIRST, _read_name_first, common_body)


# --- chatlog -------------------------------------------------------------------------------------


def parse_chatlog(stream: TextIO, ctx: Context, hint: Any) -> Iterator[ParsedMessage]:
    variant = hint if hint in _CHATLOG else "full"
    yield from _parse_general(
        stream, ctx, _CHATLOG[variant], _chatlog_reader(variant), chatlog_body
    )


def _chatlog_reader(variant: str) -> Callable[[Context], Callable[[re.Match[str]], Header | None]]:
    def make(ctx: Context) -> Callable[[re.Match[str]], Header | None]:
        now = datetime.now(ctx.clock.tz)
        state: dict[str, int] = {}

        def read(match: re.Match[str]) -> Header | None:
            group = match.group
            raw: dict[str, Any] = {}
            if variant == "full":
                year, month, day = int(group("y")), int(group("mo")), int(group("d"))
            else:
                raw["year_inferred"] = True
                if variant == "month_day":
                    month, day = int(group("mo")), int(group("d"))
                else:
                    month, day = now.month, now.day
                    raw["date_inferred"] = True
                inferred = _infer_year(state, now, month, day)
                if inferred is None:
                    return None
                year = inferred
            epoch = _local_epoch(ctx, match, year, month, day)
            if epoch is None:
                return None
            if variant != "full":
                state["year"], state["month"] = year, month
            name = group("name").strip()
            sender_id = group("sid")
            if sender_id == "我":
                raw["_self"] = True
                sender_id = None
            elif sender_id is None and name == "我":
                raw["_self"] = True
            chat = group("chat")
            if chat:
                raw["chat"] = chat
            return epoch, name, sender_id or None, raw

        return read

    return make


def _infer_year(state: dict[str, int], now: datetime, month: int, day: int) -> int | None:
    if "year" not in state:
        # The first message is in the past: this year unless that would be later than today.
        return now.year if (month, day) <= (now.month, now.day) else now.year - 1
    year, last_month = state["year"], state["month"]
    if month < last_month:
        if last_month >= 10 and month <= 3:
            return year + 1
        return None
    return year


# --- MemoTrace AI TXT -------------------------------------------------------------------------


def parse_ai(stream: TextIO, ctx: Context, hint: Any) -> Iterator[ParsedMessage]:
    limit = ctx.limits.max_field_chars
    day: tuple[int, int, int] | None = None
    speaker: str | None = None
    lines: list[str] = []
    size = 0

    def flush() -> Iterator[ParsedMessage]:
        text = "".join(lines).strip()
        if text and day is not None and speaker is not None:
            epoch = ctx.clock.epoch_local(*day, 0, 0, 0)
            kind, shown, raw = common_body(text)
            raw["date_only"] = True
            yield ctx.message(speaker, None, epoch, shown, kind, None, raw)

    # readline with a limit: a line without end must not be read whole before it is refused.
    read = stream.readline
    blank = True
    while line := read(limit + 1):
        if len(line) > limit:
            _too_long(limit, False)
        stripped = line.strip()
        divider = _AI_DIVIDER.fullmatch(stripped) if blank else None
        blank = not stripped
        if divider:
            yield from flush()
            lines, size = [], 0
            year, month, date = (int(part) for part in divider.groups())
            try:
                ctx.clock.epoch_local(year, month, date, 0, 0, 0)
            except ValueError:
                day = None
                continue
            day = (year, month, date)
            continue
        turn = _AI_SPEAKER.match(line)
        if turn and day is not None:
            name = turn.group(1).strip()
            if name and name != speaker and not _SENTENCE.search(name):
                yield from flush()
                speaker, lines, size = name, [turn.group(2)], len(line)
                continue
        lines.append(line)
        size += len(line)
        if size > limit:
            _too_long(limit, False)
    yield from flush()


FORMATS = (
    Format(
        "memotrace_ai_txt",
        "txt",
        sniff_ai,
        parse_ai,
        "MemoTrace AI TXT: day dividers and 'Name:' speaker turns",
    ),
    Format(
        "chatlog_txt",
        "txt",
        sniff_chatlog,
        parse_chatlog,
        "chatlog text: 'Name(wxid) [Group(id@chatroom)] MM-DD HH:MM:SS' then the body",
    ),
    Format(
        "memotrace_txt",
        "txt",
        sniff_memotrace,
        parse_memotrace,
        "MemoTrace/WeChatMsg TXT: 'YYYY-MM-DD HH:MM:SS Name', the body, a blank line",
    ),
    Format(
        "wechat_copy_txt",
        "txt",
        sniff_copy,
        parse_copy,
        "text copied from WeChat: 'Name YYYY/MM/DD HH:MM', the body, a blank line",
    ),
)
