"""Streaming through big JSON documents and JavaScript literals, one element at a time.

A chat export in JSON is one array (or an object holding one) of possibly millions of
messages, sometimes on a single line. :class:`JsonReader` keeps a bounded text buffer and
decodes one element at a time with the C-accelerated ``json`` scanner, so memory stays
flat. :func:`js_value` reads JavaScript object literals (unquoted keys, single-quoted
strings, comments, trailing commas) without executing anything.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, TextIO

from ml.parsing.errors import ParseError
from ml.parsing.textio import CHUNK_CHARS

_WHITESPACE = re.compile(r"[ \t\n\r\ufeff]*")
_DECODER = json.JSONDecoder()


class Incomplete(Exception):
    """The buffer ends inside the value being read."""


class JsonReader:
    """A text stream seen as a sliding buffer with a read position."""

    def __init__(self, stream: TextIO, limit: int, what: str = "JSON") -> None:
        self._stream = stream
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.offset = 0  # characters dropped from the front of buf
        self.limit = limit
        self.what = what

    def fill(self) -> bool:
        """Read more text; False at the end of the stream."""
        if self.eof:
            return False
        chunk = self._stream.read(CHUNK_CHARS)
        if not chunk:
            self.eof = True
            return False
        if self.pos > CHUNK_CHARS:
            self.offset += self.pos
            self.buf = self.buf[self.pos :]
            self.pos = 0
        self.buf += chunk
        return True

    def peek(self) -> str:
        """The next non-whitespace character ("" at the end), not consumed."""
        while True:
            self.pos = _WHITESPACE.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.fill():
                return ""

    def expect(self, char: str) -> None:
        found = self.peek()
        if found != char:
            self.fail(f"expected {char!r} but found {found!r}" if found else f"expected {char!r}")
        self.pos += 1

    def find(self, pattern: re.Pattern[str], window: int) -> re.Match[str] | None:
        """Advance to just after the first match of ``pattern`` within ``window`` characters."""
        scanned = 0
        while True:
            match = pattern.search(self.buf, self.pos)
            if match is not None and (match.end() < len(self.buf) or self.eof):
                self.pos = match.end()
                return match
            if scanned > window or not self.fill():
                return None
            scanned = self.offset + len(self.buf)
            # Keep a short tail in case the marker straddles two chunks.
            self.pos = max(self.pos, len(self.buf) - CHUNK_CHARS - 256)

    def value(self, limit: int | None = None) -> Any:
        """Decode the JSON value at the read position."""
        limit = limit or self.limit
        self.peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as error:
                cut_short = error.msg.startswith("Unterminated") or error.pos >= len(self.buf) - 1
                if cut_short and self._grow(limit):
                    continue
                if cut_short and self.eof:
                    self.fail(f"it ends in the middle of a value ({error.msg}); it is truncated")
                self.fail(f"{error.msg} at character {self.offset + error.pos:,}")
            if end >= len(self.buf) and self._grow(limit):
                continue  # a number may go on in the next chunk
            self._check_size(end, limit)
            self.pos = end
            return value

    def js(self, limit: int | None = None) -> Any:
        """Decode the JavaScript literal at the read position."""
        limit = limit or self.limit
        self.peek()
        while True:
            try:
                value, end = js_value(self.buf, self.pos, self.eof)
            except Incomplete:
                if self._grow(limit):
                    continue
                self.fail("it ends in the middle of a value; it is truncated")
            except ValueError as error:
                self.fail(str(error))
            self._check_size(end, limit)
            self.pos = end
            return value

    def items(self, js: bool = False) -> Iterator[Any]:
        """The elements of the array at the read position, one by one."""
        self.expect("[")
        count = 0
        while True:
            char = self.peek_code(js)
            if char == "]":
                self.pos += 1
                return
            if not char:
                self.fail(
                    f"the list ends after {count:,} elements without its closing ']'; "
                    "the file is truncated"
                )
            yield self.js() if js else self.value()
            count += 1
            char = self.peek_code(js)
            if char == ",":
                self.pos += 1
            elif char != "]":
                if not char:
                    self.fail(
                        f"the list ends after {count:,} elements without its closing "
                        "']'; the file is truncated"
                    )
                self.fail(f"expected ',' or ']' after element {count:,} but found {char!r}")

    def fields(self) -> Iterator[str]:
        """Keys of the object at the read position; read each value before asking for the next."""
        self.expect("{")
        while True:
            char = self.peek()
            if char == "}":
                self.pos += 1
                return
            if char != '"':
                self.fail(f"expected a key but found {char!r}" if char else "it is truncated")
            key = self.value()
            self.expect(":")
            yield str(key)
            char = self.peek()
            if char == ",":
                self.pos += 1
            elif char != "}":
                self.fail(f"expected ',' or '}}' after {key!r}" if char else "it is truncated")

    def peek_code(self, js: bool) -> str:
        """Like :meth:`peek`, skipping JavaScript comments too where ``js``."""
        while True:
            char = self.peek()
            if not js or char != "/":
                return char
            while self.pos + 1 >= len(self.buf) and self.fill():
                pass
            following = self.buf[self.pos + 1 : self.pos + 2]
            if following == "/":
                end = self._find_or_fill("\n", self.pos + 2)
                self.pos = end + 1 if end >= 0 else len(self.buf)
            elif following == "*":
                end = self._find_or_fill("*/", self.pos + 2)
                if end < 0:
                    self.fail("a comment is never closed; the file is truncated")
                self.pos = end + 2
            else:
                return char

    def _find_or_fill(self, text: str, start: int) -> int:
        while True:
            found = self.buf.find(text, start)
            if found >= 0 or not self.fill():
                return found

    def _check_size(self, end: int, limit: int) -> None:
        if end - self.pos > limit:
            self.fail(f"one element is longer than {limit:,} characters")

    def _grow(self, limit: int) -> bool:
        if len(self.buf) - self.pos > limit:
            self.fail(f"one element is longer than {limit:,} characters")
        return self.fill()

    def fail(self, reason: str) -> Any:
        raise ParseError(f"cannot read the {self.what}: {reason}")


# --- JavaScript literals --------------------------------------------------------------------

_JS_TOKEN = re.compile(
    r"""(?:\s+|//[^\n]*\n|/\*.*?\*/)*(?:
      (?P<p>[{}\[\]:,])
    | (?P<s>'[^'\\]*(?:\\.[^'\\]*)*'|"[^"\\]*(?:\\.[^"\\]*)*"|`[^`\\]*(?:\\.[^`\\]*)*`)
    | (?P<n>-?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?))
    | (?P<i>[A-Za-z_$][\w$]*)
    )""",
    re.S | re.X,
)
_JS_WORDS: dict[str, Any] = {
    "true": True,
    "false": False,
    "null": None,
    "undefined": None,
    "NaN": None,
    "Infinity": None,
}
_JS_ESCAPE = re.compile(r"\\(u\{[0-9a-fA-F]+\}|u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|\r\n|.)", re.S)
_JS_SIMPLE = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}


def _unescape_js(body: str, at: int) -> str:
    """The text of a string literal whose body (quotes removed) starts at character ``at``."""
    if "\\" not in body:
        return body

    def replace(match: re.Match[str]) -> str:
        code = match.group(1)
        if code == "u":
            shown = body[match.start() : match.start() + 6]
            raise ValueError(f"invalid \\u escape {shown!r} at character {at + match.start():,}")
        if code[0] == "u":
            number = int(code[2:-1] if code[1] == "{" else code[1:], 16)
            return chr(number) if number <= 0x10FFFF else "\ufffd"
        if code[0] == "x" and len(code) == 3:
            return chr(int(code[1:], 16))
        if code in ("\n", "\r\n", "\r", "\u2028", "\u2029"):
            return ""
        return _JS_SIMPLE.get(code, code)

    text = _JS_ESCAPE.sub(replace, body)
    # Join surrogate pairs written as two \u escapes.
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def js_value(buf: str, pos: int, eof: bool, depth: int = 0) -> tuple[Any, int]:
    """(value, end) of the JavaScript literal at ``pos``; Incomplete if ``buf`` ends first."""
    if depth > 64:
        raise ValueError("the literal nests deeper than 64 levels")
    token = _JS_TOKEN.match(buf, pos)
    if token is None:
        if not eof:
            raise Incomplete
        raise ValueError(f"unexpected {buf[pos : pos + 20]!r} at character {pos:,}")
    if token.end() >= len(buf) and not eof:
        raise Incomplete  # the token may go on
    kind = token.lastgroup
    end = token.end()
    if kind == "s":
        return _unescape_js(token.group("s")[1:-1], token.start("s") + 1), end
    if kind == "n":
        number = token.group("n")
        if number.lstrip("-")[:2] in ("0x", "0X"):
            return int(number, 16), end
        return (float(number) if any(c in number for c in ".eE") else int(number)), end
    if kind == "i":
        word = token.group("i")
        return _JS_WORDS.get(word, word), end
    punct = token.group("p")
    if punct == "{":
        return _js_object(buf, end, eof, depth)
    if punct == "[":
        return _js_array(buf, end, eof, depth)
    raise ValueError(f"unexpected {punct!r} at character {token.start('p'):,}")


def _js_punct(buf: str, pos: int, eof: bool) -> tuple[str, int]:
    token = _JS_TOKEN.match(buf, pos)
    if token is None or (token.end() >= len(buf) and not eof):
        if not eof:
            raise Incomplete
        raise ValueError(f"unexpected end at character {pos:,}")
    return (token.group("p") or ""), token.end()


def _js_object(buf: str, pos: int, eof: bool, depth: int) -> tuple[dict[str, Any], int]:
    result: dict[str, Any] = {}
    while True:
        token = _JS_TOKEN.match(buf, pos)
        if token is None or (token.end() >= len(buf) and not eof):
            if not eof:
                raise Incomplete
            raise ValueError(f"an object is never closed (character {pos:,})")
        if token.group("p") == "}":
            return result, token.end()
        if token.group("p") is not None:
            raise ValueError(f"expected a key at character {token.start('p'):,}")
        if token.lastgroup == "s":
            key = _unescape_js(token.group("s")[1:-1], token.start("s") + 1)
        else:
            key = token.group(token.lastgroup or "i")
        colon, pos = _js_punct(buf, token.end(), eof)
        if colon != ":":
            raise ValueError(f"expected ':' after key {key!r} at character {pos:,}")
        result[key], pos = js_value(buf, pos, eof, depth + 1)
        separator, pos = _js_punct(buf, pos, eof)
        if separator == "}":
            return result, pos
        if separator != ",":
            raise ValueError(f"expected ',' or '}}' after {key!r} at character {pos:,}")


def _js_array(buf: str, pos: int, eof: bool, depth: int) -> tuple[list[Any], int]:
    result: list[Any] = []
    while True:
        token = _JS_TOKEN.match(buf, pos)
        if token is None or (token.end() >= len(buf) and not eof):
            if not eof:
                raise Incomplete
            raise ValueError(f"an array is never closed (character {pos:,})")
        if token.group("p") == "]":
            return result, token.end()
        value, pos = js_value(buf, pos, eof, depth + 1)
        result.append(value)
        separator, pos = _js_punct(buf, pos, eof)
        if separator == "]":
            return result, pos
        if separator != ",":
            raise ValueError(f"expected ',' or ']' in an array at character {pos:,}")
