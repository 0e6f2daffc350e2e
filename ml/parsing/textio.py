"""Bytes to text: encoding detected from content, newlines normalised, strict decoding."""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from ml.parsing.errors import ParseError

SNIFF_BYTES = 256 * 1024
CHUNK_CHARS = 1 << 16

# Signatures of binary files people upload by mistake, to say what the file is instead.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (
        b"SQLite format 3\x00",
        "an SQLite database (perhaps WeChat's MSG.db): export it to "
        "TXT, CSV, HTML or JSON with an exporter first",
    ),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive (only zip archives are read)"),
    (b"7z\xbc\xaf\x27\x1c", "a 7z archive (only zip archives are read)"),
    (b"Rar!\x1a\x07", "a RAR archive (only zip archives are read)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Office document (save it as CSV first)"),
    (b"#!SILK", "a WeChat voice file"),
    (b"\x02#!SILK", "a WeChat voice file"),
    (b"RIFF", "a RIFF media file"),
    (b"MZ", "a Windows program"),
    (b"\x7fELF", "an executable"),
)


@dataclass(frozen=True, slots=True)
class Encoding:
    codec: str
    label: str


def sniff_encoding(head: bytes) -> Encoding:
    """The encoding of a file from its first bytes; ParseError if it is not text."""
    if not head:
        raise ParseError("the file is empty")
    if head.startswith(codecs.BOM_UTF8):
        return _checked(head, Encoding("utf-8-sig", "UTF-8 with BOM"))
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _checked(head, Encoding("utf-16", "UTF-16 with BOM"))
    utf16 = _utf16_without_bom(head)
    if utf16 is not None:
        return _checked(head, utf16)
    for signature, what in _SIGNATURES:
        if head.startswith(signature):
            raise ParseError(f"this is {what}, not a chat export")
    if b"\x00" in head:
        raise ParseError("this is a binary file (it contains NUL bytes), not a text chat export")
    utf8 = codecs.getincrementaldecoder("utf-8")()
    try:
        text = utf8.decode(head, final=False)
    except UnicodeDecodeError as error:
        try:
            text = codecs.getincrementaldecoder("gb18030")().decode(head, final=False)
        except UnicodeDecodeError:
            raise ParseError(
                f"the file is not text in a supported encoding: byte 0x{head[error.start]:02x} "
                f"at offset {error.start} is invalid UTF-8, and it is not GB18030/GBK or UTF-16 "
                "either"
            ) from None
        _refuse_control_characters(text)
        return Encoding("gb18030", "GB18030/GBK")
    _refuse_control_characters(text)
    return Encoding("utf-8", "UTF-8")


def _checked(head: bytes, encoding: Encoding) -> Encoding:
    try:
        text = codecs.getincrementaldecoder(encoding.codec)().decode(head, final=False)
    except UnicodeDecodeError as error:
        raise ParseError(
            f"the file starts like {encoding.label} but byte {error.start} does not decode"
        ) from None
    _refuse_control_characters(text)
    return encoding


def _utf16_without_bom(head: bytes) -> Encoding | None:
    # Chat exports are full of ASCII digits and newlines, which UTF-16 pads with a NUL byte.
    sample = head[:8192]
    pairs = len(sample) // 2
    if pairs < 8:
        return None
    even = sample[0 : pairs * 2 : 2].count(0)
    odd = sample[1 : pairs * 2 : 2].count(0)
    if odd >= pairs * 0.1 and even <= odd * 0.05:
        return Encoding("utf-16-le", "UTF-16 LE")
    if even >= pairs * 0.1 and odd <= even * 0.05:
        return Encoding("utf-16-be", "UTF-16 BE")
    return None


def _refuse_control_characters(text: str) -> None:
    controls = sum(1 for char in text[:65536] if char < " " and char not in "\t\n\r\f\v\x1b")
    if controls > max(8, len(text[:65536]) // 100):
        raise ParseError("this is a binary file (full of control characters), not a chat export")


def read_head(source: BinaryIO, size: int = SNIFF_BYTES) -> bytes:
    source.seek(0)
    head = source.read(size)
    source.seek(0)
    return head


def decode_head(head: bytes, encoding: Encoding) -> str:
    """The head as text with newlines normalised like :func:`open_text` does."""
    text = codecs.getincrementaldecoder(encoding.codec)(errors="replace").decode(head, final=False)
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")


def decode_error(error: UnicodeDecodeError, encoding: Encoding) -> ParseError:
    if error.reason in ("unexpected end of data", "truncated data"):
        return ParseError("the file ends in the middle of a character; it is truncated")
    return ParseError(
        f"the file stops being valid {encoding.label} partway through ({error.reason}); "
        "it may be corrupted or mix encodings"
    )


@contextmanager
def open_text(source: BinaryIO, encoding: Encoding) -> Iterator[io.TextIOWrapper]:
    """The source as text (universal newlines, strict decoding) without closing the source."""
    source.seek(0)
    wrapper = io.TextIOWrapper(source, encoding=encoding.codec, errors="strict", newline=None)
    try:
        yield wrapper
    except UnicodeDecodeError as error:
        raise decode_error(error, encoding) from None
    finally:
        if not source.closed:
            wrapper.detach()
