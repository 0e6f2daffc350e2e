"""The compiled form of a rule set: one Aho-Corasick automaton, one regex prefilter, scoring.

The semantics (overlaps, negation, scores) are documented in `ml.labeling.rules`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Final, NamedTuple

import ahocorasick  # type: ignore[import-untyped,import-not-found,unused-ignore]

from ml.labeling.hits import KEYS, SINGLE_VALUED_KEYS, Key, LabelHit

if TYPE_CHECKING:
    from ml.labeling.rules import Fallback, Rule

# A negation cue must stand in the same clause as the match it negates.
_CLAUSE_BREAKS: Final = frozenset(" \t\r\n,.;:!?，。；：！？、…~～()（）[]【】「」『』\"'“”‘’")
_FLIPPED: Final = {"positive": "negative", "negative": "positive"}
_VARIATION_SELECTOR: Final = "\ufe0f"

_UNJOINABLE: Final = re.compile(r"\\[1-9]|\(\?P=|\(\?\(|\(\?[aiLmsux]+\)")

_PLAIN: Final = 1
_NEGATED: Final = 2
_FAR: Final = 1 << 62


class _Target(NamedTuple):
    rule: int
    negatable: bool


class _Entry(NamedTuple):
    """What the automaton reports for one literal: its length, cue or not, the rules it feeds."""

    length: int
    is_cue: bool
    targets: tuple[_Target, ...]


class _Compiled(NamedTuple):
    key: Key
    value: str
    weight: float
    mode: str
    rule_id: str
    order: int


class Matcher:
    """Labels messages for one rule set; stateless between messages, so safe to share."""

    def __init__(
        self,
        rules: Sequence[Rule],
        cues: Sequence[str],
        window: int,
        fallback: Mapping[Key, Fallback],
        *,
        ignore_case: bool,
    ) -> None:
        self._ignore_case = ignore_case
        self._window = window
        self._rules = tuple(
            _Compiled(r.key, r.value, r.weight, r.negation, r.id, i) for i, r in enumerate(rules)
        )
        self._single_key = tuple(r.key if r.key in SINGLE_VALUED_KEYS else "" for r in rules)
        # The bits of a rule that decide what it gives: once it has them, more matches of it
        # change nothing.
        self._needed = tuple(
            _PLAIN | _NEGATED if r.negation == "flip" and r.value in _FLIPPED else _PLAIN
            for r in rules
        )

        def fold(word: str) -> str:
            # Emoji arrive with and without VS16 (❤ / ❤️): text and rules are matched on the
            # bare code points (see `_fold`).
            word = word.replace(_VARIATION_SELECTOR, "")
            return word.lower() if ignore_case else word

        literals: dict[str, list[_Target]] = {}
        for index, rule in enumerate(rules):
            negatable = rule.negation != "ignore"
            for word in rule.keywords:
                literals.setdefault(fold(word), []).append(_Target(index, negatable))
            for emoji in rule.emoji:
                literals.setdefault(fold(emoji), []).append(_Target(index, False))
        literals.pop("", None)  # nothing but VS16: it can never match
        cue_set = {fold(c) for c in cues} - {""}

        self._automaton = ahocorasick.Automaton()
        for word in literals.keys() | cue_set:
            targets = tuple(dict.fromkeys(literals.get(word, ())))
            self._automaton.add_word(word, _Entry(len(word), word in cue_set, targets))
        self._empty = not literals and not cue_set
        if not self._empty:
            self._automaton.make_automaton()

        flags = re.IGNORECASE if ignore_case else 0
        self._patterns = tuple(
            (index, re.compile(p, flags), rule.negation != "ignore")
            for index, rule in enumerate(rules)
            for p in rule.patterns
        )
        # One search over the alternation of all patterns tells whether any can match at all.
        # If a pattern would change meaning inside it (a backreference, whose group number
        # shifts; inline global flags), every message is searched pattern by pattern instead.
        joinable = [p.pattern for _, p, _ in self._patterns if not _UNJOINABLE.search(p.pattern)]
        self._any_pattern: re.Pattern[str] | None = None
        self._always_search = bool(self._patterns) and len(joinable) < len(self._patterns)
        if joinable and not self._always_search:
            try:
                self._any_pattern = re.compile("|".join(f"(?:{p})" for p in joinable), flags)
            except re.error:  # e.g. one group name used in two patterns
                self._always_search = True
        self._fallback = tuple(
            LabelHit(key, f.value, f.score, f"fallback:{key}")
            for key in KEYS
            if (f := fallback.get(key)) is not None
        )

    def label(self, text: str) -> list[LabelHit]:
        # (start, end, rule, negatable) for every keyword, emoji and pattern occurrence, as
        # positions in `text`
        found: list[tuple[int, int, int, bool]] = []
        cues: list[tuple[int, int]] = []
        if not self._empty:
            folded: str = text.lower() if self._ignore_case else text
            origin = None
            if len(folded) != len(text) or _VARIATION_SELECTOR in text:
                folded, origin = self._fold(text)
            for last, (length, is_cue, targets) in self._automaton.iter(folded):
                start, end = last + 1 - length, last + 1
                if origin is not None:
                    start, end = origin[start], origin[last] + 1
                if is_cue:
                    cues.append((start, end))
                for rule_index, negatable in targets:
                    found.append((start, end, rule_index, negatable))
        if self._always_search or (
            self._any_pattern is not None and self._any_pattern.search(text) is not None
        ):
            for index, pattern, negatable in self._patterns:
                for m in pattern.finditer(text):
                    found.append((m.start(), m.end(), index, negatable))
        if not found:
            return list(self._fallback)
        return self._score(text, found, cues)

    def _fold(self, text: str) -> tuple[str, list[int]]:
        """The text the automaton scans (lower case, without VS16) where its positions differ
        from those of `text`, and the position in `text` of each of its characters."""
        origin = [i for i, c in enumerate(text) if c != _VARIATION_SELECTOR]
        bare = text.replace(_VARIATION_SELECTOR, "")
        folded = bare.lower() if self._ignore_case else bare
        if len(folded) != len(bare):
            # A few letters lower to two characters (İ → i̇). Apart from the final sigma, which
            # keeps the length, str.lower() lowers each character on its own.
            origin = [i for c, i in zip(bare, origin, strict=True) for _ in c.lower()]
        return folded, origin

    def _score(
        self, text: str, found: list[tuple[int, int, int, bool]], cues: list[tuple[int, int]]
    ) -> list[LabelHit]:
        rules = self._rules
        if len(found) > 1:
            found = self._drop_contained(found)
        negated: Callable[[int], bool] | None = None  # built when first needed
        needed = self._needed
        # rule -> _PLAIN | _NEGATED bits
        fired: dict[int, int] = {}
        for start, _, rule_index, negatable in found:
            bits = fired.get(rule_index, 0)
            if bits & needed[rule_index] == needed[rule_index]:
                continue  # a rule counts once: further occurrences change nothing
            bit = _PLAIN
            if negatable and cues:
                if negated is None:
                    negated = self._negation(text, found, cues)
                if negated(start):
                    bit = _NEGATED
            fired[rule_index] = bits | bit

        # key -> value -> the rules that speak for it, in file order
        evidence: dict[Key, dict[str, list[_Compiled]]] = {}
        for rule_index in sorted(fired):
            bits = fired[rule_index]
            rule = rules[rule_index]
            if rule.mode == "ignore" or bits & _PLAIN:
                evidence.setdefault(rule.key, {}).setdefault(rule.value, []).append(rule)
            if bits & _NEGATED and rule.mode == "flip" and rule.value in _FLIPPED:
                flipped = _FLIPPED[rule.value]
                evidence.setdefault(rule.key, {}).setdefault(flipped, []).append(rule)

        hits: list[LabelHit] = []
        for key in KEYS:
            by_value = evidence.get(key)
            if not by_value:
                hits.extend(h for h in self._fallback if h.key == key)
            elif key in SINGLE_VALUED_KEYS:
                hits.append(_single(key, by_value))
            else:
                hits.extend(_multi(key, by_value))
        return hits

    def _drop_contained(
        self, found: list[tuple[int, int, int, bool]]
    ) -> list[tuple[int, int, int, bool]]:
        """Drop sentiment/intent occurrences inside a longer occurrence for the same key."""
        single_key = self._single_key
        # Sorted by (key, start, -end), a span comes after every span of its key that holds
        # it and is longer: one sweep, keeping the furthest end seen, finds them.
        spans = [
            (key, start, -end, index)
            for index, (start, end, rule, _) in enumerate(found)
            if (key := single_key[rule])
        ]
        if len(spans) < 2:
            return found
        spans.sort()
        dropped: set[int] = set()
        current = ""
        reach = -1  # the furthest end of the spans before the current group of equal ones
        last = (-1, 1)  # (start, -end) of the current group
        for key, start, minus_end, index in spans:
            if key != current:
                current, reach, last = key, -1, (-1, 1)
            if (start, minus_end) != last:
                reach = max(reach, -last[1])
                last = (start, minus_end)
            if reach >= -minus_end:
                dropped.add(index)
        if not dropped:
            return found
        return [occurrence for i, occurrence in enumerate(found) if i not in dropped]

    def _negation(
        self, text: str, found: list[tuple[int, int, int, bool]], cues: list[tuple[int, int]]
    ) -> Callable[[int], bool]:
        """A test of whether a match starting at a given position is negated, given the cues
        and what else matched."""
        window = self._window
        # A cue inside another matched word is part of that word (很不错谢谢, 没问题谢谢),
        # unless that word overlaps the match: then both are readings of the same characters
        # (不满意 holds 不满 and a negated 满意). Only a word that ends between the cue and the
        # match can tell, so keep, per end, the earliest start of a word ending there.
        word_start: dict[int, int] = {}
        for start, end, _, _ in found:
            if word_start.get(end, start) >= start:
                word_start[end] = start
        # cue end -> for each cue ending there, the end of the first word that holds it
        held_until: dict[int, list[int]] = {}
        for cue_start, cue_end in cues:
            held = next(
                (
                    e
                    for e in range(cue_end, cue_end + window + 1)
                    if word_start.get(e, cue_start + 1) <= cue_start
                ),
                _FAR,
            )
            held_until.setdefault(cue_end, []).append(held)

        def negated(start: int) -> bool:
            for cue_end in range(start, max(start - window, 0) - 1, -1):
                # A cue must stand in the same clause as the match it negates.
                if cue_end < start and text[cue_end] in _CLAUSE_BREAKS:
                    return False
                held = held_until.get(cue_end)
                if held is not None and any(end > start for end in held):
                    return True
            return False

        return negated


def _confidence(evidence: float) -> float:
    return 1.0 - math.exp(-evidence)


def _rule_field(rules: list[_Compiled]) -> str:
    if len(rules) == 1:
        return rules[0].rule_id
    # `rules` is in file order and sorted() is stable: strongest first, ties in file order.
    return ",".join(r.rule_id for r in sorted(rules, key=lambda r: -r.weight))


def _multi(key: Key, by_value: dict[str, list[_Compiled]]) -> list[LabelHit]:
    totals = [
        (sum(r.weight for r in rules), rules[0].order, value) for value, rules in by_value.items()
    ]
    totals.sort(key=lambda t: (-t[0], t[1]))
    return [
        LabelHit(key, value, round(_confidence(total), 4), _rule_field(by_value[value]))
        for total, _, value in totals
    ]


def _single(key: Key, by_value: dict[str, list[_Compiled]]) -> LabelHit:
    best: tuple[float, float, int] | None = None
    winner = ""
    everything = 0.0
    for value, rules in by_value.items():
        total = sum(r.weight for r in rules)
        everything += total
        rank = (-total, -max(r.weight for r in rules), rules[0].order)
        if best is None or rank < best:
            best, winner = rank, value
    assert best is not None
    total = -best[0]
    score = _confidence(total) * total / everything
    return LabelHit(key, winner, round(score, 4), _rule_field(by_value[winner]))
