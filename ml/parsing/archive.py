"""Zip archives of exports: every chat member parsed in order, media skipped, bombs refused.

Nothing is ever extracted to disk, so member names are only labels; still, an archive with an
absolute or ``..`` name is refused as hostile. Before anything is decompressed the archive is
checked against :class:`Limits`: entry count, the declared uncompressed size of the members
that would be read (zipfile never yields more than that, so it is a hard bound) and each such
member's compression ratio. Members are read in natural order, so PyWxDump's
``wxid_0_5000.csv``, ``wxid_5000_10000.csv``, ... join into one chat. When one folder holds the
same chat in several formats (MemoTrace writes ``Name.html``, ``Name.txt``, ``Name_utf8.csv``),
only the richest is read (CSV, then JSON, HTML, TXT), and only one member of that format
(``Name_utf8.csv`` rather than a ``Name.csv`` beside it).
"""

from __future__ import annotations

import posixpath
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, BinaryIO, cast

import orjson

from ml.parsing.errors import ParseError
from ml.parsing.formats import pywxdump
from ml.parsing.formats.base import Context, Format
from ml.parsing.limits import Limits
from ml.parsing.model import Attempt, ParsedMessage
from ml.parsing.textio import SNIFF_BYTES, Encoding, decode_head, open_text, sniff_encoding

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
MEDIA_EXTENSIONS = frozenset(
    {
        "jpg",
        "jpeg",
        "png",
        "gif",
        "bmp",
        "webp",
        "heic",
        "heif",
        "tif",
        "tiff",
        "ico",
        "svg",
        "mp4",
        "mov",
        "avi",
        "mkv",
        "m4v",
        "3gp",
        "wmv",
        "flv",
        "mp3",
        "wav",
        "amr",
        "silk",
        "slk",
        "aac",
        "m4a",
        "ogg",
        "opus",
        "flac",
        "dat",
        "pdf",
        "doc",
        "docx",
        "xls",
        "xlsx",
        "ppt",
        "pptx",
        "apk",
        "exe",
        "dll",
        "so",
        "woff",
        "woff2",
        "ttf",
        "otf",
        "eot",
        "css",
        "map",
        "db",
        "sqlite",
    }
)
_IGNORED = re.compile(r"(^|/)(__MACOSX/|\._|\.DS_Store$|Thumbs\.db$|desktop\.ini$)")
_FAMILY_RANK = {"csv": 0, "json": 1, "html": 2, "txt": 3}
_STEM_SUFFIX = re.compile(r"(_utf8|-utf8|_chat|_聊天记录|-聊天记录)$")
_RATIO_FLOOR = 64 * 1024
_USERS_MAX = 16 * 1024 * 1024
_SPOOL_MEMORY = 32 * 1024 * 1024

Sniffer = Callable[[bytes, str], tuple[Format, Any, Encoding] | None]
"""Detects the format of one member from its head: (format, hint, encoding) or None."""


def is_zip(head: bytes) -> bool:
    return head.startswith(ZIP_MAGIC)


@dataclass
class Member:
    path: str
    info: zipfile.ZipInfo
    format: Format
    hint: Any
    encoding: Encoding


@dataclass
class Nested:
    path: str
    plan: ArchivePlan


@dataclass
class ArchivePlan:
    archive: zipfile.ZipFile
    entries: list[Member | Nested] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    spool: IO[bytes] | None = None

    def close(self) -> None:
        for entry in self.entries:
            if isinstance(entry, Nested):
                entry.plan.close()
        self.archive.close()
        if self.spool is not None:
            self.spool.close()


@dataclass
class _Budget:
    limits: Limits
    used: int = 0

    def take(self, size: int, what: str) -> None:
        self.used += size
        if self.used > self.limits.max_total_bytes:
            raise ParseError(
                f"the archive expands to more than {self.limits.max_total_bytes:,} bytes "
                f"(at {what}); refusing a possible zip bomb"
            )


def plan_archive(
    source: BinaryIO,
    limits: Limits,
    sniff: Sniffer,
    *,
    depth: int = 1,
    prefix: str = "",
    budget: _Budget | None = None,
) -> ArchivePlan:
    """Open and check an archive, and decide how each member will be read."""
    if depth > limits.max_depth:
        raise ParseError(
            f"archives are nested more than {limits.max_depth} deep (at {prefix.rstrip('/')}); "
            "refusing"
        )
    budget = budget or _Budget(limits)
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise ParseError(f"the zip archive is damaged or truncated ({error})") from None
    plan = ArchivePlan(archive)
    try:
        _fill_plan(plan, source, limits, sniff, depth, prefix, budget)
    except BaseException:
        plan.close()
        raise
    return plan


def _fill_plan(
    plan: ArchivePlan,
    source: BinaryIO,
    limits: Limits,
    sniff: Sniffer,
    depth: int,
    prefix: str,
    budget: _Budget,
) -> None:
    archive = plan.archive
    infos = archive.infolist()
    if len(infos) > limits.max_members:
        raise ParseError(
            f"the archive has {len(infos):,} entries, more than the limit of "
            f"{limits.max_members:,}; refusing"
        )
    readable: list[zipfile.ZipInfo] = []
    for info in infos:
        name = _checked_name(info.filename)
        if info.is_dir() or _IGNORED.search(name):
            continue
        extension = posixpath.splitext(name)[1].lower().lstrip(".")
        if extension in MEDIA_EXTENSIONS:
            continue
        readable.append(info)
    for info in readable:
        if info.file_size > _RATIO_FLOOR and info.file_size > limits.max_ratio * max(
            info.compress_size, 1
        ):
            ratio = info.file_size / max(info.compress_size, 1)
            raise ParseError(
                f"archive member {prefix}{info.filename} expands {ratio:,.0f}x (limit "
                f"{limits.max_ratio:,.0f}x); refusing a possible zip bomb"
            )
        if info.flag_bits & 0x1:
            raise ParseError(
                f"archive member {prefix}{info.filename} is encrypted; zip the export again "
                "without a password"
            )
    budget.take(sum(info.file_size for info in readable), f"{prefix or 'the archive'}")
    chosen: list[tuple[zipfile.ZipInfo, Member | Nested]] = []
    for info in sorted(readable, key=lambda item: _natural(item.filename)):
        path = prefix + _checked_name(info.filename)
        head = _read(archive, info, SNIFF_BYTES)
        if head.startswith(ZIP_MAGIC):
            spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_MEMORY)  # noqa: SIM115
            try:
                with archive.open(info) as inner:
                    while block := inner.read(1 << 20):
                        spool.write(block)
            except (zipfile.BadZipFile, OSError, NotImplementedError, EOFError) as error:
                spool.close()
                raise ParseError(f"archive member {path} cannot be read ({error})") from None
            nested = plan_archive(
                cast(BinaryIO, spool),
                limits,
                sniff,
                depth=depth + 1,
                prefix=path + "/",
                budget=budget,
            )
            nested.spool = spool
            plan.attempts.append(Attempt(path, True, "a zip archive inside the archive"))
            plan.attempts.extend(nested.attempts)
            chosen.append((info, Nested(path, nested)))
            continue
        if posixpath.basename(path).lower() == "users.json" and info.file_size <= _USERS_MAX:
            names = _users(archive, info)
            if names:
                plan.names.update(names)
                plan.attempts.append(
                    Attempt(path, True, f"PyWxDump user list ({len(names)} names)")
                )
                continue
        try:
            found = sniff(head, path)
        except ParseError as error:
            plan.attempts.append(Attempt(path, False, str(error)))
            continue
        if found is None:
            continue
        fmt, hint, encoding = found
        chosen.append((info, Member(path, info, fmt, hint, encoding)))
    for entry in _one_format_per_chat(chosen, plan.attempts):
        plan.entries.append(entry)


def _checked_name(name: str) -> str:
    normal = name.replace("\\", "/")
    parts = normal.split("/")
    if (
        normal.startswith("/")
        or re.match(r"^[A-Za-z]:", normal)
        or ".." in parts
        or "\x00" in normal
    ):
        raise ParseError(
            f"archive entry {name!r} points outside the archive (path traversal); "
            "refusing the archive"
        )
    return normal


def _natural(name: str) -> list[Any]:
    return [
        (0, int(part), "") if part.isdigit() else (1, 0, part.lower())
        for part in re.split(r"(\d+)", name)
        if part
    ]


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, size: int) -> bytes:
    try:
        with archive.open(info) as member:
            return member.read(size)
    except (zipfile.BadZipFile, OSError, NotImplementedError, EOFError, RuntimeError) as error:
        raise ParseError(f"archive member {info.filename} cannot be read ({error})") from None


def _users(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> dict[str, str]:
    try:
        return pywxdump.user_names(orjson.loads(_read(archive, info, info.file_size)))
    except orjson.JSONDecodeError:
        return {}


def _one_format_per_chat(
    chosen: list[tuple[zipfile.ZipInfo, Member | Nested]], attempts: list[Attempt]
) -> Iterator[Member | Nested]:
    """Every entry but the members that repeat a chat read from another member beside them.

    Per chat (folder and name, see `_chat_key`) one member is read: the richest format, then a
    ``_utf8`` name (MemoTrace's own CSV name), then the first in natural order."""
    read: dict[tuple[str, str], tuple[tuple[int, int, int], Member]] = {}
    for order, (_, entry) in enumerate(chosen):
        if isinstance(entry, Member):
            key = _chat_key(entry.path)
            rank = (_FAMILY_RANK.get(entry.format.family, 9), _utf8_last(entry.path), order)
            if key not in read or rank < read[key][0]:
                read[key] = (rank, entry)
    for _, entry in chosen:
        if isinstance(entry, Member):
            (family_rank, _, _), kept = read[_chat_key(entry.path)]
            if kept is not entry:
                if _FAMILY_RANK.get(entry.format.family, 9) > family_rank:
                    reason = "a richer format beside it, which is read instead"
                else:
                    reason = f"{posixpath.basename(kept.path)} beside it, which is read instead"
                attempts.append(
                    Attempt(
                        entry.path, False, f"{entry.format.name}: the same chat is also in {reason}"
                    )
                )
                continue
            attempts.append(Attempt(entry.path, True, f"read as {entry.format.name}"))
        yield entry


def _utf8_last(path: str) -> int:
    """0 for a name ending in utf8 (before the extension), else 1."""
    stem = posixpath.splitext(posixpath.basename(path))[0]
    return 0 if stem.lower().endswith("utf8") else 1


def _chat_key(path: str) -> tuple[str, str]:
    folder, name = posixpath.split(path)
    stem = _STEM_SUFFIX.sub("", posixpath.splitext(name)[0])
    return folder, stem


def iter_archive(plan: ArchivePlan, ctx: Context) -> Iterator[ParsedMessage]:
    """The messages of every chosen member, in order; closes the plan at the end."""
    try:
        ctx.names.update(plan.names)
        for entry in plan.entries:
            if isinstance(entry, Nested):
                yield from iter_archive(entry.plan, ctx)
                continue
            ctx.member = entry.path
            try:
                with (
                    plan.archive.open(entry.info) as member,
                    open_text(cast(BinaryIO, member), entry.encoding) as text,
                ):
                    yield from entry.format.parse(text, ctx, entry.hint)
            except (zipfile.BadZipFile, NotImplementedError, EOFError) as error:
                raise ParseError(f"archive member {entry.path} cannot be read ({error})") from None
    finally:
        ctx.member = None
        plan.close()


def sniff_member(
    head: bytes, choose: Callable[[str], tuple[Format, Any] | None]
) -> tuple[Format, Any, Encoding] | None:
    """Encoding and format of a member head; ParseError for binary or undecodable ones."""
    encoding = sniff_encoding(head)
    found = choose(decode_head(head, encoding))
    if found is None:
        return None
    return found[0], found[1], encoding
