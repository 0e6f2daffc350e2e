"""Detection and the public entry points: parse, detect, diagnose."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from ml.parsing import archive
from ml.parsing.clock import Clock, resolve_tz
from ml.parsing.errors import ParseError
from ml.parsing.formats import csvfmt, html, jsonfmt, txt
from ml.parsing.formats.base import Context, Format, Sniff
from ml.parsing.limits import Limits
from ml.parsing.model import Attempt, ParsedMessage
from ml.parsing.textio import (
    Encoding,
    decode_error,
    decode_head,
    open_text,
    read_head,
    sniff_encoding,
)

# Order matters only to break ties between equally sure sniffers.
ALL_FORMATS: tuple[Format, ...] = jsonfmt.FORMATS + html.FORMATS + csvfmt.FORMATS + txt.FORMATS
FAMILIES = ("txt", "html", "csv", "json", "zip")
FORMATS: tuple[str, ...] = ("auto", *FAMILIES, *(fmt.name for fmt in ALL_FORMATS))
"""Names accepted by ``format=``: auto, a family, or one exact format."""


@dataclass
class _Plan:
    label: str
    run: Callable[[Context], Iterator[ParsedMessage]]
    close: Callable[[], None] = lambda: None


def parse(
    source: BinaryIO,
    *,
    format: str = "auto",
    tz: str = "Asia/Shanghai",
    self_name: str | None = None,
    limits: Limits | None = None,
) -> Iterator[ParsedMessage]:
    """The messages of an export, in file order, streamed.

    ``source`` is a seekable binary file. Detection happens now (so an unreadable file raises
    :class:`ParseError` before any message); reading happens as the iterator is consumed and
    may still raise :class:`ParseError` midway. A file that yields no message at all raises
    too. ``self_name`` marks messages of that sender as ``is_self`` where the format has no
    self flag of its own.

    Reading: the first 256 KiB are read for detection, then the source is read again from the
    start, sequentially, so a byte counter on the source measures progress. Zip archives are
    read through ``zipfile`` (their directory sits at the end). The source is not closed.
    """
    ctx = Context(Clock(resolve_tz(tz)), self_name or None, limits or Limits())
    return _safely(_plan, source, format, ctx.limits, None).run(ctx)


def detect(source: BinaryIO, *, format: str = "auto", limits: Limits | None = None) -> str:
    """The exact format name :func:`parse` would read the source as ("zip" for archives)."""
    plan = _safely(_plan, source, format, limits or Limits(), None)
    plan.close()
    return plan.label.split(" ")[0]


def diagnose(source: BinaryIO, *, limits: Limits | None = None) -> list[Attempt]:
    """Every format tried on the source, accepted or not, with the reason."""
    attempts: list[Attempt] = []
    try:
        plan = _safely(_plan, source, "auto", limits or Limits(), attempts)
    except ParseError as error:
        attempts.append(Attempt("auto", False, str(error)))
        return attempts
    plan.close()
    attempts.append(Attempt("auto", True, f"would be read as {plan.label}"))
    return attempts


def _safely(
    plan: Callable[[BinaryIO, str, Limits, list[Attempt] | None], _Plan],
    source: BinaryIO,
    requested: str,
    limits: Limits,
    attempts: list[Attempt] | None,
) -> _Plan:
    """Detection with any unexpected failure turned into a ParseError."""
    try:
        return plan(source, requested, limits, attempts)
    except ParseError:
        raise
    except RecursionError:
        raise ParseError("the file nests structures too deeply") from None
    except Exception as error:
        raise ParseError(f"cannot read this file: {type(error).__name__}: {error}") from error


def _check_format(requested: str) -> None:
    if requested not in FORMATS:
        raise ParseError(f"unknown format {requested!r}; use one of: {', '.join(FORMATS)}")


def _plan(
    source: BinaryIO, requested: str, limits: Limits, attempts: list[Attempt] | None
) -> _Plan:
    _check_format(requested)
    try:
        head = read_head(source)
    except (OSError, ValueError) as error:
        raise ParseError(f"the file cannot be read ({error})") from None
    if archive.is_zip(head):
        if attempts is not None:
            attempts.append(Attempt("zip", True, "starts with the zip signature"))
        if requested not in ("auto", "zip"):
            raise ParseError(f"this is a zip archive, not a {requested} export")
        return _zip_plan(source, limits, attempts)
    if attempts is not None:
        attempts.append(Attempt("zip", False, "no zip signature (PK\\x03\\x04)"))
    if requested == "zip":
        raise ParseError("this is not a zip archive (it lacks the PK signature)")
    encoding = _encoding(head, attempts)
    text = decode_head(head, encoding)
    tried: list[Attempt] = []
    found = _choose(text, requested, tried, "")
    if attempts is not None:
        attempts.extend(tried)
    if found is None:
        raise ParseError(_unknown(text, requested, tried))
    fmt, hint = found

    def run(ctx: Context) -> Iterator[ParsedMessage]:
        with open_text(source, encoding) as stream:
            yield from _guarded(fmt.parse(stream, ctx, hint), fmt.name, encoding)

    return _Plan(f"{fmt.name} ({encoding.label})", run)


def _encoding(head: bytes, attempts: list[Attempt] | None) -> Encoding:
    try:
        encoding = sniff_encoding(head)
    except ParseError as error:
        if attempts is not None:
            attempts.append(Attempt("text", False, str(error)))
        raise
    if attempts is not None:
        attempts.append(Attempt("text", True, f"decodes as {encoding.label}"))
    return encoding


def _choose(
    text: str, requested: str, attempts: list[Attempt] | None, prefix: str
) -> tuple[Format, Any] | None:
    if not text.strip():
        if attempts is not None:
            attempts.append(Attempt(prefix + "text", False, "only whitespace"))
        return None
    best: tuple[Format, Sniff] | None = None
    for fmt in ALL_FORMATS:
        if requested not in ("auto", fmt.family, fmt.name):
            continue
        try:
            sniffed = fmt.sniff(text)
        except (ValueError, RecursionError) as error:
            sniffed = Sniff(False, f"sniffing failed: {error}")
        if attempts is not None:
            attempts.append(Attempt(prefix + fmt.name, sniffed.accepted, sniffed.reason))
        if sniffed.accepted and (best is None or sniffed.score > best[1].score):
            best = (fmt, sniffed)
    return None if best is None else (best[0], best[1].hint)


def _unknown(text: str, requested: str, tried: list[Attempt]) -> str:
    if not text.strip():
        return "the file contains only whitespace"
    reasons = [f"{attempt.format} ({attempt.reason})" for attempt in tried]
    what = "a known export format" if requested == "auto" else f"a {requested} export"
    return f"this is not {what}; tried: " + "; ".join(reasons)


def _zip_plan(source: BinaryIO, limits: Limits, attempts: list[Attempt] | None) -> _Plan:
    def sniff(head: bytes, path: str) -> tuple[Format, Any, Encoding] | None:
        try:
            return archive.sniff_member(
                head, lambda text: _choose(text, "auto", attempts, f"{path}: ")
            )
        except ParseError as error:
            if attempts is not None:
                attempts.append(Attempt(path, False, str(error)))
            return None

    plan = archive.plan_archive(source, limits, sniff)
    if attempts is not None:
        attempts.extend(plan.attempts)
    if not plan.entries:
        plan.close()
        raise ParseError(
            "the zip archive holds no recognizable chat export (media and other files are "
            "skipped); put a TXT, CSV, HTML or JSON export in it"
        )
    return _Plan("zip", lambda ctx: _guarded(archive.iter_archive(plan, ctx), "zip"), plan.close)


def _guarded(
    messages: Iterator[ParsedMessage], what: str, encoding: Encoding | None = None
) -> Iterator[ParsedMessage]:
    """Lets only ParseError out, and refuses an export without a single message."""
    try:
        first = next(messages, None)
        if first is None:
            raise ParseError(f"no messages found in this {what} export")
        yield first
        yield from messages
    except ParseError:
        raise
    except UnicodeDecodeError as error:
        if encoding is not None:
            raise decode_error(error, encoding) from None
        raise ParseError(
            f"the file stops being valid text partway through ({error.reason})"
        ) from None
    except csv.Error as error:
        raise ParseError(f"the CSV is malformed ({error})") from None
    except RecursionError:
        raise ParseError("the file nests structures too deeply") from None
    except MemoryError:
        raise ParseError("the file needs more memory than is available") from None
    except Exception as error:
        raise ParseError(f"cannot read this {what}: {type(error).__name__}: {error}") from error
