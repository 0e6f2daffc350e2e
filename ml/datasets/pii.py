"""Personal data in chat text: scrubbing for datasets, masking for streamed model output.

Each kind of personal data becomes a typed placeholder in angle brackets, in Chinese, so that a
reviewer reading a Chinese dataset (or a chat user) sees what was there:

    phone      <手机号>    mainland mobile, with or without +86 / 0086 and 3-4-4 separators
    id_card    <身份证号>  18-digit resident ID, birth date and GB 11643 check digit valid
    bank_card  <银行卡号>  16-19 digits starting 3-6 (UnionPay, Visa, Mastercard...), Luhn valid
    email      <邮箱>
    wechat_id  <微信号>    wxid_..., and an id after 微信(号/号码/账号/ID), vx, wx, WeChat (ID)...
                           (the keyword stays)
    url        <网址>      http(s):// or www. addresses
    plate      <车牌号>    licence plates, 7 characters or 8 for new-energy vehicles
    name       <姓名>      names the caller lists

Numbers are only replaced when their shape and checksum say so, so prices (¥3500, 3500元,
1,234.50), dates (2024-01-15, 20240115), times, amounts and order numbers that fail the checksum
survive. Digits count in any script (１３８, ١٣٨, 𝟏𝟑𝟖: people spell numbers so to get past
filters). A number glued to a digit, a letter or a decimal point ("3.1415926535", "SN13812345678")
is part of something else; a comma only joins it to its neighbour as a thousands separator (a
run of 1-3 digits, a comma, exactly 3 digits), so "13812345678,13987654321" is two phones. The
one exception to the letter rule: a mobile number right after a contact word (tel, phone,
mobile, mob, cell, vx, wx, qq, weixin, wechat, in any case, itself not glued to a letter or
digit), as in 加vx13812345678 or Tel13812345678, is a phone, and the word stays; only a phone
is taken there, never an ID or a card number. A lone v counts only where no ASCII character
comes before it (加v13812345678, or at the start): after a space it is more likely a version.

Known limits, which shape and checksum cannot tell apart:
- an 11-digit number starting 13-19 is always taken for a phone number, and so are three
  numbers that happen to line up as one ("价格 150 2000 3000" is shaped like 150-2000-3000);
- about one in ten 16-19 digit order numbers starting with 3-6 passes Luhn and is taken for a
  card;
- a code made of a contact word and a mobile-shaped number (a part number TEL13812345678) is
  taken for a phone.

One compiled pattern with a named group per kind finds candidates; a small Python check per
candidate validates checksums. Text in which nothing can start a pattern (most Chinese chat
lines) is returned after one or two quick scans, without running the full pattern.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from datetime import date
from functools import lru_cache
from typing import Final

PII_TYPES: Final[tuple[str, ...]] = (
    "phone",
    "id_card",
    "bank_card",
    "email",
    "wechat_id",
    "url",
    "plate",
    "name",
)

PLACEHOLDERS: Final[dict[str, str]] = {
    "phone": "<手机号>",
    "id_card": "<身份证号>",
    "bank_card": "<银行卡号>",
    "email": "<邮箱>",
    "wechat_id": "<微信号>",
    "url": "<网址>",
    "plate": "<车牌号>",
    "name": "<姓名>",
}

_PROVINCES: Final = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_PLATE_LETTER: Final = "A-HJ-NP-Za-hj-np-z"  # plates never use I or O
# 微信号, 微信号码, 微信账号, 微信ID(zhangsan), "WeChat ID"; after a space, an "id" that goes on
# (wechat idiot1) is not one.
_WECHAT_SUFFIX: Final = r"(?:号码?|账号|(?i:id)|[ \t](?i:id)(?![A-Za-z0-9_]))?"
_WECHAT_CJK: Final = rf"(?:微信|威信|薇信|[Vv]信){_WECHAT_SUFFIX}"
_WECHAT_ASCII: Final = rf"(?<![A-Za-z0-9_])(?i:vx|wx|weixin|wechat){_WECHAT_SUFFIX}"
_WECHAT_SEP: Final = r"[ \t]{0,3}(?:[:：=]|是|为)?[ \t]{0,3}"

_URL: Final = (
    r"(?P<url>(?i:https?://|www\.)[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*[A-Za-z0-9/_\-~#=&%+])"
)
_EMAIL: Final = (
    r"(?P<email>(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*"
    r"\.[A-Za-z]{2,24}(?![A-Za-z0-9\-]))"
)
_WXID: Final = r"(?P<wxid>(?<![A-Za-z0-9_\-])(?i:wxid_)[A-Za-z0-9_\-]{4,40}(?![A-Za-z0-9_\-]))"
_WECHAT: Final = (
    rf"(?P<wechat>(?P<wxkw>{_WECHAT_CJK}|{_WECHAT_ASCII})(?P<wxsep>{_WECHAT_SEP})"
    r"(?P<wxval>[A-Za-z][A-Za-z0-9_\-]{5,19})(?![A-Za-z0-9_\-]|[@.][A-Za-z0-9]))"
)
_PLATE: Final = (
    rf"(?P<plate>[{_PROVINCES}][{_PLATE_LETTER}][·•\- ]?"
    rf"(?:[{_PLATE_LETTER}0-9]{{5,6}}|[{_PLATE_LETTER}0-9]{{4}}[挂学警港澳])(?![A-Za-z0-9]))"
)
# Words after which a mobile number may follow without a space (加vx13812345678, Tel138...),
# grouped by length: a look-behind has one width. A lone v is WeChat in 加v138..., but more
# likely a version after a space or a dot ("release v13812345678"): it counts after no ASCII.
_CONTACT_WORDS: Final = ("vx|wx|qq", "tel|mob", "cell", "phone", "mobile|weixin|wechat")
_AFTER_CONTACT_WORD: Final = "|".join(
    [r"(?<=(?<![\x00-\x7f])[Vv])", *(rf"(?<=(?<![A-Za-z0-9_])(?i:{w}))" for w in _CONTACT_WORDS)]
)
# A comma between a run of 1-3 digits and exactly 3 digits is a thousands separator.
_AFTER_THOUSANDS_COMMA: Final = r"(?:(?<=(?<!\d)\d,)|(?<=(?<!\d)\d\d,)|(?<=(?<!\d)\d\d\d,))"
# Digits glued to letters, to a decimal point or to a thousands separator are part of something
# else (a code, a price); see the module docstring. `\d` is any script's digit: see _digits.
_NUM: Final = (
    rf"(?P<num>(?=[+\d])(?:(?<![\dA-Za-z_])|(?<=[A-Za-z])(?:{_AFTER_CONTACT_WORD}))(?<!\d\.)"
    rf"(?!{_AFTER_THOUSANDS_COMMA}\d{{3}}(?!\d))"
    r"(?:(?:\+86|0086)[ -]?1[3-9]\d[ -]?\d{4}[ -]?\d{4}"
    # The last group of a 17-19 digit card, unless a thousands group: "6222 ... 1234 100,000".
    r"|\d{4}(?:[ -]\d{4}){3}(?P<numtail>[ -]\d{1,3}(?!,\d{3}(?!\d)))?"
    r"|1[3-9]\d[ -]?\d{4}[ -]?\d{4}"
    r"|\d{6}[ -]\d{8}[ -]\d{3}[\dXx]"
    r"|\d{11,19}[Xx]?)"
    r"(?![\dA-Za-z_])(?!\.\d))"
)
# Every pattern starts with one of these characters (names add their own first characters):
# one scan for them (a character class is the fastest search there is) rules out most lines.
_TRIGGER_CHARS: Final = rf"\dA-Za-z_.%+\-{_PROVINCES}微威薇"
# ...and a finer look rules out ordinary Chinese words (新开, 微笑) before the full pattern.
_STARTS: Final = rf"[\dA-Za-z_.%+\-]|[{_PROVINCES}][{_PLATE_LETTER}]|[微威薇]信"

_ID_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK: Final = "10X98765432"
_NOT_DIGIT: Final = re.compile(r"[^0-9Xx]")
_WECHAT_EXPLICIT_SEP: Final = re.compile(r"[:：=是为]")

# How much already-emitted text a StreamMasker keeps to answer the patterns' look-behinds (the
# longest: a character before "mobile" or "wechat" before a number, 7).
_LOOKBEHIND_CONTEXT: Final = 8
# The longest number pattern with separators ("6222 0202 0000 1234 567" is 23).
_MAX_GROUPED_NUMBER: Final = 32
_PLATE_TAIL: Final = re.compile(rf"[{_PROVINCES}](?:[{_PLATE_LETTER}][·•\- ]?)?\Z")
_WECHAT_TAIL: Final = re.compile(
    r"(?:(?:微信|威信|薇信|[Vv]信)(?:号码?|账号?|[ \t]?(?i:id?))?"
    r"|(?<![A-Za-z0-9_])(?i:vx|wx|weixin|wechat)(?:号码?|账号?|[ \t]?(?i:id?))?)"
    rf"{_WECHAT_SEP}\Z"
)
_KEYWORD_PREFIXES: Final = frozenset({"微", "威", "薇"})


class ScrubberError(ValueError):
    """A name list the scrubber cannot use."""


def valid_id_card(number: str) -> bool:
    """An 18-character resident ID number: plausible area, real birth date, GB 11643 check digit."""
    if len(number) != 18 or not number[:17].isascii() or not number[:17].isdigit():
        return False
    if number[0] not in "12345678":
        return False
    year, month, day = int(number[6:10]), int(number[10:12]), int(number[12:14])
    if not 1900 <= year <= 2100:
        return False
    try:
        date(year, month, day)
    except ValueError:
        return False
    total = sum((ord(c) - 48) * w for c, w in zip(number, _ID_WEIGHTS, strict=False))
    return _ID_CHECK[total % 11] == number[17].upper()


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check used by payment card numbers."""
    total = 0
    for i, c in enumerate(reversed(digits)):
        n = ord(c) - 48
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _is_mobile(digits: str) -> bool:
    return len(digits) == 11 and digits[0] == "1" and digits[1] in "3456789"


def _digits(raw: str) -> str:
    """The digits of a number the pattern found, as ASCII, and its X if it has one.

    `\\d` matches a decimal digit of any script (exactly the characters `str.isdecimal` accepts),
    so every one of them is mapped to its value here; NFKC would leave Arabic-Indic digits alone.
    """
    if raw.isascii():
        return _NOT_DIGIT.sub("", raw)
    return "".join(
        str(unicodedata.decimal(c)) if c.isdecimal() else c
        for c in raw
        if c.isdecimal() or c in "Xx"
    )


def _classify_number(raw: str) -> str | None:
    digits = _digits(raw)
    has_x = digits[-1] in "Xx"
    n = len(digits)
    if not has_x and (
        _is_mobile(digits)
        or (n == 13 and digits.startswith("86") and _is_mobile(digits[2:]))
        or (n == 15 and digits.startswith("0086") and _is_mobile(digits[4:]))
    ):
        return "phone"
    if n == 18 and valid_id_card(digits):
        return "id_card"
    if not has_x and 16 <= n <= 19 and digits[0] in "3456" and luhn_valid(digits):
        return "bank_card"
    return None


def _valid_plate(body: str) -> bool:
    tail = body[2:].lstrip("·•- ")
    digits = sum(c in "0123456789" for c in tail)
    if len(tail) == 6:  # new energy: a letter then 4-5 digits, or 5 digits then a letter
        return (tail[0].isalpha() and tail[2:].isdigit()) or (
            tail[:5].isdigit() and tail[5].isalpha()
        )
    # At most two letters in a regular plate's serial; words such as 新ABCDE are not plates.
    return digits >= 3 or (tail[-1] in "挂学警港澳" and digits >= 2)


def _is_ascii_word_char(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c == "_")


@lru_cache(maxsize=64)
def _compile(
    names: tuple[str, ...],
) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    alternatives = [_URL, _EMAIL, _WXID, _WECHAT, _PLATE]
    trigger = _TRIGGER_CHARS
    starts = _STARTS
    if names:
        parts = []
        for name in names:
            escaped = re.escape(name)
            if _is_ascii_word_char(name[0]):
                escaped = r"(?<![A-Za-z0-9])" + escaped
            if _is_ascii_word_char(name[-1]):
                escaped += r"(?![A-Za-z0-9])"
            parts.append(escaped)
        alternatives.append(rf"(?P<name>(?i:{'|'.join(parts)}))")
        firsts = "".join(
            re.escape(c) for c in sorted({c for n in names for c in (n[0].lower(), n[0].upper())})
        )
        trigger += firsts
        starts += f"|[{firsts}]"
    alternatives.append(_NUM)
    return re.compile("|".join(alternatives)), re.compile(f"[{trigger}]"), re.compile(starts)


class Scrubber:
    """Replaces personal data in text with typed placeholders (see the module docstring).

    Listed names match case-insensitively; a name in Latin letters only matches as a whole word,
    a Chinese name matches anywhere (Chinese has no word boundaries: 张三 also hits 张三丰).
    """

    def __init__(self, names: Sequence[str] = ()) -> None:
        cleaned = []
        for name in names:
            if not isinstance(name, str):
                raise ScrubberError(f"names must be strings, got {type(name).__name__}")
            name = name.strip()
            if len(name) < 2:
                raise ScrubberError(f"name {name!r} is too short: it would scrub ordinary text")
            cleaned.append(name)
        # Longest first, so that 张三丰 wins over 张三.
        self.names: tuple[str, ...] = tuple(sorted(set(cleaned), key=lambda s: (-len(s), s)))
        self._pattern, self._trigger, self._starts = _compile(self.names)
        # Finds nothing in a text that `scrub` would return unchanged without a closer look
        # (most chat lines): a hot loop can skip calling `scrub_into` for those. Finding
        # something does not mean the text holds personal data.
        self.precheck: Callable[[str], re.Match[str] | None] = self._trigger.search
        prefixes = {name.lower()[:k] for name in self.names for k in range(1, len(name) + 1)}
        self._danger_suffixes = frozenset(prefixes | _KEYWORD_PREFIXES)
        self._longest_suffix = max((len(p) for p in self._danger_suffixes), default=0)

    def scrub(self, text: str) -> tuple[str, Counter[str]]:
        """The text with personal data replaced, and how many of each type were replaced."""
        counts: Counter[str] = Counter()
        return self.scrub_into(text, counts), counts

    def scrub_into(self, text: str, counts: MutableMapping[str, int]) -> str:
        """Like `scrub`, adding the counts to `counts` (cheaper on a hot path)."""
        first = self._trigger.search(text)
        if first is not None:
            first = self._starts.search(text, first.start())
        if first is None or self._pattern.search(text, first.start()) is None:
            return text  # the common case, without a generator
        out: list[str] = []
        last = 0
        for start, end, kind, replacement in self.hits(text, first.start()):
            out.append(text[last:start])
            out.append(replacement)
            counts[kind] = counts.get(kind, 0) + 1
            last = end
        if not out:
            return text
        out.append(text[last:])
        return "".join(out)

    def hits(self, text: str, pos: int = 0) -> Iterator[tuple[int, int, str, str]]:
        """(start, end, type, replacement) for each piece of personal data, left to right."""
        search = self._pattern.search
        m = search(text, pos)
        while m is not None:
            start = m.start()
            hit = self._classify(m)
            if hit is None:
                # Not valid after all (a checksum failed): whatever starts inside it still counts.
                m = search(text, start + 1)
                continue
            end, kind, replacement = hit
            yield start, end, kind, replacement
            m = search(text, end)

    def _classify(self, m: re.Match[str]) -> tuple[int, str, str] | None:
        """Where the hit ends (a number may end before the match), its type and replacement."""
        group = m.lastgroup
        end = m.end()
        if group == "num":
            start = m.start()
            kind = _classify_number(m.group())
            tail = m.start("numtail")
            if kind is None and tail >= 0:
                # "6222 0202 0000 1235 100元": the tail was the next number, not the card's end.
                kind = _classify_number(m.string[start:tail])
                end = tail
            before = m.string[start - 1] if start else ""
            if kind is None or (kind != "phone" and before.isascii() and before.isalpha()):
                return None  # only a phone may follow a contact word
            return end, kind, PLACEHOLDERS[kind]
        if group == "wechat":
            keyword, sep, value = m.group("wxkw", "wxsep", "wxval")
            explicit = keyword[-1] in "号码dD" or _WECHAT_EXPLICIT_SEP.search(sep) is not None
            if not explicit:
                # 微信 zhangsan88 is an id; "wechat support" or 微信Pay is not.
                if keyword.isascii() and not sep:
                    return None
                if not any(c.isdigit() or c in "_-" for c in value):
                    return None
            return end, "wechat_id", f"{keyword}{sep}{PLACEHOLDERS['wechat_id']}"
        if group == "plate":
            return (end, "plate", PLACEHOLDERS["plate"]) if _valid_plate(m.group()) else None
        if group == "wxid":
            return end, "wechat_id", PLACEHOLDERS["wechat_id"]
        assert group is not None
        return end, group, PLACEHOLDERS[group]

    def hold_start(self, text: str) -> int:
        """Where a tail of `text` begins that more text could still turn into (part of) a match.

        Everything a pattern can still grow into is ASCII (addresses, ids, digits, plate
        serials) or one of a few known prefixes: keywords before a WeChat id, a province
        character before a plate serial, separators inside grouped numbers, listed names.
        """
        n = len(text)
        s = _run_start(text, n)
        # Digit groups separated by single spaces: "138 1234 5678", "6222 0202 ...".
        while (
            s >= 2
            and text[s - 1] == " "
            and text[s - 2].isdecimal()
            and n - s < _MAX_GROUPED_NUMBER
        ):
            s = _run_start(text, s - 1)
        m = _PLATE_TAIL.search(text, max(0, s - 3), s) or _WECHAT_TAIL.search(
            text, max(0, s - 16), s
        )
        if m is not None:
            s = m.start()
        for k in range(min(self._longest_suffix, n), 0, -1):
            if text[n - k :].lower() in self._danger_suffixes:
                return min(s, n - k)
        return s


def _run_start(text: str, end: int) -> int:
    """Start of the run of ASCII non-space characters and digits that ends at `end`."""
    i = end
    while i > 0:
        c = text[i - 1]
        if "!" <= c <= "~" or c.isdecimal():
            i -= 1
        else:
            break
    return i


class StreamMasker:
    """Masks personal data in text that arrives in pieces (a model's streamed tokens).

    `feed` returns what can be shown now; it holds back only a tail that could still become
    (part of) a match: usually nothing, or the last ASCII word, number or name prefix. `flush`
    returns the rest at the end. The result equals `Scrubber.scrub` on the whole text, however
    the text was cut. A run of ASCII without spaces (a URL, a long number) is held until it ends.
    """

    def __init__(self, scrubber: Scrubber | None = None) -> None:
        self._scrubber = scrubber if scrubber is not None else Scrubber()
        self._pending = ""
        self._context = ""
        self.masked: Counter[str] = Counter()

    @property
    def pending(self) -> str:
        """The text held back so far."""
        return self._pending

    def feed(self, delta: str) -> str:
        if not delta:
            return ""
        return self._emit(self._pending + delta, final=False)

    def flush(self) -> str:
        out = self._emit(self._pending, final=True)
        self._context = ""
        return out

    def _emit(self, pending: str, *, final: bool) -> str:
        context = self._context
        text = context + pending
        base = len(context)
        end = len(text)
        hold = end if final else base + self._scrubber.hold_start(pending)
        out: list[str] = []
        last = base
        for start, stop, kind, replacement in self._scrubber.hits(text, base):
            if start >= hold:
                break
            if not final and (stop > hold or stop == end):
                hold = start  # it might still grow, or straddles the held tail
                break
            out.append(text[last:start])
            out.append(replacement)
            self.masked[kind] += 1
            last = stop
        out.append(text[last:hold])
        self._pending = text[hold:]
        self._context = text[max(0, hold - _LOOKBEHIND_CONTEXT) : hold]
        return "".join(out)
