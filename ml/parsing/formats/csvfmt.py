"""CSV exports, recognised by their header row.

- ``memotrace_csv``: localId, TalkerId, Type, SubType, IsSender, CreateTime (epoch seconds),
  Status, StrContent (text, or WeChat's XML for other types), StrTime, Remark, NickName,
  Sender (wxid).
- ``pywxdump_csv``: id, MsgSvrID, type_name, is_sender, talker, room_name, msg, src,
  CreateTime; PyWxDump writes 5,000 rows per file (a zip of them joins into one chat).
- ``chatlog_csv``: [MessageID,] Time, SenderName, Sender, TalkerName, Talker, Content (chatlog's
  plain-text rendering of each message). It has no self flag: in a one-to-one chat the sender
  who is not the talker is you; in a group it stays unknown unless ``self_name`` is given.
- ``memotrace_zh_csv``: newer MemoTrace's 消息ID, 类型, 发送人, 时间, 内容.

Commas, tabs (Excel's "Unicode text") and semicolons are accepted as separators.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import datetime
from functools import partial
from typing import Any, TextIO
from zlib import crc32

from ml.parsing import native
from ml.parsing.bodies import chatlog_body
from ml.parsing.clock import SECOND_DELTAS, parse_time_text, plain_epoch, regular_hour
from ml.parsing.errors import ParseError
from ml.parsing.formats import pywxdump
from ml.parsing.formats.base import Context, Format, Sniff, accept, reject
from ml.parsing.kinds import PLACEHOLDER, classify_placeholder, describe_xml, kind_of, system_kind
from ml.parsing.model import ParsedMessage
from ml.parsing.textio import CHUNK_CHARS

_UNIT = "\x1f"  # separates sender and text in hashed keys, as in KeyMaker
_WIDE = "record with more than"  # csv.Error of a record over max_csv_fields (as the C reader)
_CSV_MODULE_LIMIT = 2**31 - 1  # csv.field_size_limit: the largest a C long holds everywhere

Header = tuple[str, list[str]]
"""(delimiter, normalised column names)."""


def _normalise(name: str) -> str:
    return name.strip().lstrip("\ufeff").strip().lower().replace("_", "").replace(" ", "")


def read_header(head: str) -> Header | None:
    line = head.split("\n", 1)[0]
    if not line.strip():
        return None
    best: Header | None = None
    for delimiter in (",", "\t", ";"):
        try:
            columns = next(csv.reader(io.StringIO(line), delimiter=delimiter))
        except (csv.Error, StopIteration):
            continue
        if len(columns) > 2 and (best is None or len(columns) > len(best[1])):
            best = (delimiter, [_normalise(column) for column in columns])
    return best


def _sniffer(name: str, required: tuple[str, ...], example: str) -> Any:
    wanted = [_normalise(column) for column in required]

    def sniff(head: str) -> Sniff:
        header = read_header(head)
        if header is None:
            return reject("the first line is not a CSV header")
        missing = [
            column for column, key in zip(required, wanted, strict=True) if key not in header[1]
        ]
        if missing:
            return reject(f"the header lacks {', '.join(missing)} (expected {example})")
        return accept(f"header row with {', '.join(required)}", hint=header)

    sniff.__name__ = f"sniff_{name}"
    return sniff


def _rows(stream: TextIO, ctx: Context, header: Header) -> Iterator[list[str]]:
    # The csv module's field limit is one value for the whole process, shared by parses in
    # other threads: it is only ever set to this one large value, and _lines enforces this
    # parse's max_field_chars.
    csv.field_size_limit(_CSV_MODULE_LIMIT)
    rows = [0]  # records returned, for _lines to know where each one starts
    reader = csv.reader(_lines(stream, header[0], ctx, rows), delimiter=header[0])
    width = len(header[1])
    try:
        next(reader, None)
        rows[0] = 1
        for row in reader:
            rows[0] += 1
            if len(row) < width:
                if not row or row == [""]:
                    continue
                row += [""] * (width - len(row))
            yield row
    except csv.Error as error:
        raise _csv_error(error, reader.line_num, ctx) from None


def _csv_error(error: csv.Error, line: int, ctx: Context) -> ParseError:
    if "field larger than field limit" in str(error):
        return ParseError(
            f"a CSV field on line {line:,} is longer than {ctx.limits.max_field_chars:,} "
            "characters; the file is not a chat export or is damaged"
        )
    if str(error).startswith(_WIDE):
        return ParseError(
            f"the CSV record on line {line:,} has more than {ctx.limits.max_csv_fields:,} "
            "fields; the file is not a chat export or is damaged"
        )
    return ParseError(f"the CSV is malformed on line {line:,}: {error}")


def _lines(stream: TextIO, delimiter: str, ctx: Context, rows: list[int]) -> Iterator[str]:
    """The lines of a CSV stream for csv.reader, read in bounded pieces and checked.

    csv.reader builds a whole record before it returns it, and iterating a stream reads a
    whole line: a record of a million fields, or a line without end, would fill memory before
    anything could refuse it. Here a line is read a piece at a time, and a record that could
    break a limit (as many delimiters as max_csv_fields, as many characters as
    max_field_chars, or a line as long as a piece) is cut into fields as csv.reader cuts them,
    to fail where and as the C reader does (_Fields); so is one of many lines, rather than keep
    them all. A record left whole has no field over max_field_chars. ``rows[0]`` counts the
    records csv.reader has returned (it reads the lines of one record and no further).
    """
    read = stream.readline
    piece = CHUNK_CHARS
    max_fields = ctx.limits.max_csv_fields
    max_chars = ctx.limits.max_field_chars
    line = 0
    row = -1
    record: list[str] = []  # the current record's lines, until it is cut into fields here
    delimiters = chars = 0
    fields: _Fields | None = None
    while text := read(piece):
        line += 1
        if rows[0] != row:
            row = rows[0]
            record.clear()
            delimiters = chars = 0
            fields = None
        if fields is None:
            delimiters += text.count(delimiter)
            chars += len(text)
            if (
                len(text) < piece
                and delimiters < max_fields
                and chars <= max_chars
                and len(record) < _KEPT_LINES
            ):
                record.append(text)
                yield text
                continue
            start = line - len(record)
            fields = _Fields(delimiter, ctx, start)
            for number, earlier in enumerate(record, start):
                fields.feed(earlier, number)
            record.clear()
        fields.feed(text, line)
        if len(text) == piece and text[-1] != "\n":
            pieces = [text]
            while text[-1] != "\n" and (text := read(piece)):
                fields.feed(text, line)
                pieces.append(text)
            text = "".join(pieces)
        yield text


_START, _FIELD, _QUOTED, _QUOTE = range(4)
_KEPT_LINES = 64  # lines of a record kept to be cut into fields later; a longer one is cut now


class _Fields:
    """One record cut into fields as csv.reader cuts them (excel dialect, not strict), fed a
    line or a piece of one at a time, with the checks the C reader makes as it reads: a field
    over max_field_chars, a delimiter after max_csv_fields fields."""

    __slots__ = ("count", "ctx", "length", "mode", "start", "stops")

    def __init__(self, delimiter: str, ctx: Context, start: int) -> None:
        self.stops = re.compile(f"[{re.escape(delimiter)}\n]")
        self.ctx = ctx
        self.start = start
        self.mode = _START
        self.count = 0
        self.length = 0

    def feed(self, text: str, line: int) -> None:
        limit = self.ctx.limits.max_field_chars
        at, end = 0, len(text)
        while at < end:
            mode = self.mode
            if mode == _QUOTED:
                quote = text.find('"', at)
                self.length += (end if quote < 0 else quote) - at
                if self.length > limit:
                    raise self._too_long(line)
                if quote < 0:
                    return
                self.mode = _QUOTE
                at = quote + 1
                continue
            if text[at] == '"' and mode != _FIELD:
                # At the start: a quoted field. After a quote inside one: an escaped quote.
                self.mode = _QUOTED
                if mode == _QUOTE:
                    self.length += 1
                    if self.length > limit:
                        raise self._too_long(line)
                at += 1
                continue
            # Unquoted, or what follows a quoted field's closing quote: up to a delimiter.
            stop = self.stops.search(text, at)
            self.length += (end if stop is None else stop.start()) - at
            if self.length > limit:
                raise self._too_long(line)
            if stop is None:
                self.mode = _FIELD
                return
            at = stop.end()
            self.mode, self.length = _START, 0
            if text[stop.start()] == "\n":
                self.count = 0
                continue
            self.count += 1
            if self.count >= self.ctx.limits.max_csv_fields:
                raise _csv_error(csv.Error(f"{_WIDE} {self.count} fields"), self.start, self.ctx)

    def _too_long(self, line: int) -> ParseError:
        return _csv_error(csv.Error("field larger than field limit"), line, self.ctx)


def _index(header: Header, *names: str) -> int | None:
    for name in names:
        key = _normalise(name)
        if key in header[1]:
            return header[1].index(key)
    return None


# --- MemoTrace ------------------------------------------------------------------------------


class _MemoTraceState:
    """What the native reader (``_speedups.memotrace_csv``) reads and updates: the columns,
    where the reading is (header row skipped? lines read), and the helpers it calls for the
    rare rows: a CreateTime that is not plain digits, a message type other than text. The
    Python reader uses the same state and helpers."""

    __slots__ = (
        "clock",
        "csv_error",
        "delimiter",
        "deltas",
        "from_epoch",
        "header",
        "hour_starts",
        "i_content",
        "i_local",
        "i_nick",
        "i_remark",
        "i_self",
        "i_strtime",
        "i_sub",
        "i_talker",
        "i_time",
        "i_type",
        "i_wxid",
        "keys",
        "limit",
        "line",
        "max_fields",
        "member",
        "message",
        "self_name",
        "width",
    )

    def __init__(self, ctx: Context, header: Header) -> None:
        column = header[1].index
        self.i_type, self.i_self = column("type"), column("issender")
        self.i_time, self.i_content = column("createtime"), column("strcontent")
        self.i_sub = _index(header, "subtype")
        self.i_local = _index(header, "localid")
        self.i_talker = _index(header, "talkerid")
        self.i_strtime = _index(header, "strtime")
        self.i_remark = _index(header, "remark")
        self.i_nick = _index(header, "nickname")
        self.i_wxid = _index(header, "sender")
        self.delimiter = header[0]
        self.width = len(header[1])
        self.limit = ctx.limits.max_field_chars
        self.max_fields = ctx.limits.max_csv_fields
        self.header = True
        self.line = 0
        self.clock = ctx.clock
        self.keys = ctx.keys
        self.self_name = ctx.self_name
        self.member = ctx.member
        self.message = ParsedMessage
        self.from_epoch = partial(datetime.fromtimestamp, tz=ctx.clock.tz)
        self.deltas = SECOND_DELTAS
        self.csv_error = csv.Error
        self.hour_starts: dict[int, datetime | None] = {}

    def hour(self, hour: int) -> datetime | None:
        """The datetime at the start of an hour (epoch // 3600), None if it holds a DST change."""
        starts = self.hour_starts
        if hour not in starts:
            if len(starts) > 10_000:
                starts.clear()
            starts[hour] = regular_hour(hour * 3600, self.clock.tz)
        return starts[hour]

    def epoch_of(self, created: str, strtime: str | None) -> int:
        """Epoch of a CreateTime (seconds or milliseconds, or a written time; StrTime where
        CreateTime is none of these). The C reader reads plain digits itself."""
        epoch = plain_epoch(created)
        if epoch is not None:
            return epoch
        found = parse_time_text(self.clock, created)
        if found is None and strtime is not None:
            found = parse_time_text(self.clock, strtime)
        if found is None:
            raise ParseError(f"a MemoTrace CSV row has no valid time: {created!r}")
        return int(found)

    @staticmethod
    def describe(type_code: str, sub_code: str, content: str) -> tuple[str, str, dict[str, Any]]:
        msg_type = int(type_code) if type_code.isdigit() else 0
        return describe_xml(msg_type, int(sub_code) if sub_code.isdigit() else 0, content)


def parse_memotrace(stream: TextIO, ctx: Context, hint: Any) -> Iterator[ParsedMessage]:
    if native.speedups is None:
        return _parse_memotrace_rows(stream, ctx, hint)
    return _parse_memotrace_native(stream, ctx, hint)


def _parse_memotrace_native(
    stream: TextIO, ctx: Context, header: Header
) -> Iterator[ParsedMessage]:
    # The hot path of the CSV benchmark: csv.reader alone takes twice as long as a bare scan
    # of the file, so the C reader tokenizes (exactly as csv.reader does) and builds the
    # messages. A record cut by the end of a buffer is read again with the next one.
    read = native.speedups.memotrace_csv  # type: ignore[union-attr]
    state = _MemoTraceState(ctx, header)
    carry = ""
    while True:
        # Reading at least the carry's length keeps a long record from being rescanned often.
        chunk = stream.read(max(CHUNK_CHARS, len(carry)))
        eof = not chunk
        buffer = carry + chunk if carry else chunk
        try:
            messages, consumed = read(buffer, eof, state)
        except csv.Error as error:
            raise _csv_error(error, state.line, ctx) from None
        yield from messages
        if eof:
            return
        carry = buffer[consumed:]


def _parse_memotrace_rows(stream: TextIO, ctx: Context, hint: Any) -> Iterator[ParsedMessage]:
    # The Python twin of _speedups.memotrace_csv, with the same state and helpers:
    # datetimes step from a cached hour (no fromtimestamp per row), keys continue a
    # per-sender CRC (the same keys as KeyMaker.hashed).
    header: Header = hint
    state = _MemoTraceState(ctx, header)
    i_type, i_self, i_time, i_content = state.i_type, state.i_self, state.i_time, state.i_content
    i_sub, i_local, i_talker, i_strtime = (
        state.i_sub,
        state.i_local,
        state.i_talker,
        state.i_strtime,
    )
    i_remark, i_nick, i_wxid = state.i_remark, state.i_nick, state.i_wxid
    keys = ctx.keys
    self_name = ctx.self_name
    member = ctx.member
    message = ParsedMessage
    deltas = SECOND_DELTAS
    crcs: dict[str, int] = {}
    # The epoch of the previous row's CreateTime, reused while it repeats; only plain digits
    # are remembered, since any other CreateTime may have fallen back to the row's StrTime.
    last_time: str | None = None
    epoch = 0
    when = state.from_epoch(0)
    for row in _rows(stream, ctx, header):
        created = row[i_time]
        if created != last_time:
            epoch = state.epoch_of(created, row[i_strtime] if i_strtime is not None else None)
            hour = epoch // 3600
            start = state.hour(hour)
            when = start + deltas[epoch - hour * 3600] if start else state.from_epoch(epoch)
            last_time = created if plain_epoch(created) is not None else None
        wxid = row[i_wxid] if i_wxid is not None else ""
        sender = (
            (row[i_remark] if i_remark is not None else "")
            or (row[i_nick] if i_nick is not None else "")
            or wxid
        )
        raw: dict[str, Any]
        if row[i_type] == "1":
            kind, text = "text", row[i_content]
            raw = {}
        else:
            sub_code = row[i_sub] if i_sub is not None else "0"
            kind, text, raw = state.describe(row[i_type], sub_code, row[i_content])
        if i_local is not None:
            raw["local_id"] = row[i_local]
        if i_talker is not None:
            raw["chat_id"] = row[i_talker]
        if member is not None:
            raw["member"] = member
        if kind == "system" or kind == "recall":
            sender, wxid, is_self = "", "", None
        else:
            flag = row[i_self]
            is_self = (
                flag == "1"
                if flag in ("0", "1")
                else (None if self_name is None else sender == self_name)
            )
        sender_crc = crcs.get(sender)
        if sender_crc is None:
            sender_crc = crcs[sender] = crc32(f"{sender}{_UNIT}".encode())
        key = f"h:{epoch}:{crc32(text.encode(), sender_crc)}"
        if epoch != keys.epoch:
            keys.epoch, keys.first, keys.seen = epoch, key, None
        else:
            key = keys.again(key)
        yield message(sender, wxid or None, when, text, kind, is_self, raw, key)


# --- PyWxDump ------------------------------------------------------------------------------


def parse_pywxdump(stream: TextIO, ctx: Context, hint: Any) -> Iterator[ParsedMessage]:
    header: Header = hint
    columns = header[1]
    # PyWxDump's keys, whatever case the file writes them in.
    keys = {
        _normalise(name): name
        for name in (
            "id",
            "MsgSvrID",
            "type_name",
            "is_sender",
            "talker",
            "room_name",
            "msg",
            "src",
            "CreateTime",
        )
    }
    names = [keys.get(column, column) for column in columns]
    for row in _rows(stream, ctx, header):
        message = pywxdump.row_message(dict(zip(names, row, strict=False)), ctx)
        if message is None:
            raise ParseError("a PyWxDump CSV row has no valid CreateTime")
        yield message


# --- chatlog -------------------------------------------------------------------------------


def parse_chatlog(stream: TextIO, ctx: Context, hint: Any) -> Iterator[ParsedMessage]:
    header: Header = hint
    column = header[1].index
    i_time, i_name, i_sender = column("time"), column("sendername"), column("sender")
    i_talker, i_content = column("talker"), column("content")
    i_talker_name = _index(header, "talkername")
    i_id = _index(header, "messageid", "seq")
    clock = ctx.clock
    for row in _rows(stream, ctx, header):
        stamp = row[i_time]
        try:
            epoch: float | None = clock.epoch_iso(stamp) if len(stamp) == 19 else None
        except ValueError:
            epoch = None
        if epoch is None:
            epoch = parse_time_text(clock, stamp)
            if epoch is None:
                raise ParseError(f"a chatlog CSV row has no valid Time: {stamp!r}")
        sender_id = row[i_sender]
        talker = row[i_talker]
        kind, text, raw = chatlog_body(row[i_content])
        raw["chat_id"] = talker
        if i_talker_name is not None and row[i_talker_name]:
            raw["chat_name"] = row[i_talker_name]
        server_id = row[i_id] if i_id is not None and row[i_id] not in ("", "0") else None
        if sender_id == "系统消息" or kind in ("system", "recall"):
            if kind not in ("system", "recall"):
                kind, notice = system_kind(text)
                if notice:
                    raw["notice"] = notice
            yield ctx.message("", None, epoch, text, kind, None, raw, server_id)
            continue
        sender = row[i_name] or sender_id
        is_self: bool | None = None
        if talker and not talker.endswith("@chatroom") and sender_id:
            is_self = sender_id != talker
        yield ctx.message(sender, sender_id or None, epoch, text, kind, is_self, raw, server_id)


# --- MemoTrace (newer, Chinese headers) -------------------------------------------------------

_LABELS = (
    ("撤回", "recall"),
    ("通话", "call"),
    ("图片", "image"),
    ("语音", "voice"),
    ("视频", "video"),
    ("表情", "sticker"),
    ("位置", "location"),
    ("文件", "file"),
    ("转账", "transfer"),
    ("红包", "red_packet"),
    ("链接", "link"),
    ("分享", "link"),
    ("音乐", "link"),
    ("小程序", "link"),
    ("系统", "system"),
    ("拍一拍", "system"),
    ("聊天记录", "other"),
    ("名片", "other"),
)


def _label_kind(label: str) -> str:
    label = label.strip()
    if label.isdigit():
        return kind_of(int(label), 0)
    for word, kind in _LABELS:
        if word in label:
            return kind
    return "text"


def parse_memotrace_zh(stream: TextIO, ctx: Context, hint: Any) -> Iterator[ParsedMessage]:
    header: Header = hint
    column = header[1].index
    i_id, i_type, i_sender = column("消息id"), column("类型"), column("发送人")
    i_time, i_content = column("时间"), column("内容")
    for row in _rows(stream, ctx, header):
        epoch = parse_time_text(ctx.clock, row[i_time])
        if epoch is None:
            raise ParseError(f"a MemoTrace CSV row has no valid 时间: {row[i_time]!r}")
        kind = _label_kind(row[i_type])
        content = row[i_content]
        raw: dict[str, Any] = {"type_label": row[i_type], "local_id": row[i_id]}
        if kind == "text":
            placeholder = classify_placeholder(content)
            text = content
            if placeholder is not None:
                kind, text, extra = placeholder
                raw.update(extra)
        elif kind in ("system", "recall"):
            text = content
            found, notice = system_kind(content)
            kind = "recall" if "撤回" in row[i_type] else found
            if notice:
                raw["notice"] = notice
            yield ctx.message("", None, epoch, text, kind, None, raw)
            continue
        else:
            text = content or PLACEHOLDER.get(kind, "[消息]")
        yield ctx.message(row[i_sender], None, epoch, text, kind, None, raw)


FORMATS = (
    Format(
        "memotrace_csv",
        "csv",
        _sniffer(
            "memotrace_csv",
            ("Type", "IsSender", "CreateTime", "StrContent"),
            "localId,TalkerId,Type,SubType,IsSender,CreateTime,...,StrContent",
        ),
        parse_memotrace,
        "MemoTrace/WeChatMsg CSV: localId,TalkerId,Type,SubType,IsSender,CreateTime,...",
    ),
    Format(
        "pywxdump_csv",
        "csv",
        _sniffer(
            "pywxdump_csv",
            ("type_name", "is_sender", "talker", "msg", "CreateTime"),
            "id,MsgSvrID,type_name,is_sender,talker,room_name,msg,src,CreateTime",
        ),
        parse_pywxdump,
        "PyWxDump CSV: id,MsgSvrID,type_name,is_sender,talker,room_name,msg,src,CreateTime",
    ),
    Format(
        "chatlog_csv",
        "csv",
        _sniffer(
            "chatlog_csv",
            ("Time", "SenderName", "Sender", "Talker", "Content"),
            "Time,SenderName,Sender,TalkerName,Talker,Content",
        ),
        parse_chatlog,
        "chatlog CSV: Time,SenderName,Sender,TalkerName,Talker,Content",
    ),
    Format(
        "memotrace_zh_csv",
        "csv",
        _sniffer(
            "memotrace_zh_csv",
            ("消息ID", "类型", "发送人", "时间", "内容"),
            "消息ID,类型,发送人,时间,内容",
        ),
        parse_memotrace_zh,
        "MemoTrace CSV with Chinese headers: 消息ID,类型,发送人,时间,内容",
    ),
)
