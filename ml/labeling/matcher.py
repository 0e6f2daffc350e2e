"""The compiled form of a rule set: one Aho-Corasick automaton, one regex prefilter, scoring.

The semantics (overlaps, negation, scores) are documented in `ml.labeling.rules`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
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
        fold = str.lower if ignore_case else str

        literals: dict[str, list[_Target]] = {}
        for index, rule in enumerate(rules):
            negatable = rule.negation != "ignore"
            for word in rule.keywords:
                literals.setdefault(fold(word), []).append(_Target(index, negatable))
            for emoji in rule.emoji:
                # Emoji arrive with and without VS16 (❤ / ❤️): match on the bare code points.
                bare = emoji.replace(_VARIATION_SELECTOR, "") or emoji
                literals.setdefault(fold(bare), []).append(_Target(index, False))
        cue_set = {fold(c) for c in cues}

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
        # (start, end, rule, negatable) for every keyword, emoji and pattern occurrence
        found: list[tuple[int, int, int, bool]] = []
        cues: list[tuple[int, int]] = []
        folded = text
        if self._ignore_case:
            folded = text.lower()
            if len(folded) != len(text):  # a rare letter whose lower case is longer: keep offsets
                folded = text
        if not self._empty:
            for last, (length, is_cue, targets) in self._automaton.iter(folded):
                end = last + 1
                start = end - length
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
        return self._score(folded, found, cues)

    def _score(
        self, text: str, found: list[tuple[int, int, int, bool]], cues: list[tuple[int, int]]
    ) -> list[LabelHit]:
        rules = self._rules
        if len(found) > 1:
            found = self._drop_contained(found)
        # rule -> _PLAIN | _NEGATED bits
        fired: dict[int, int] = {}
        for start, end, rule_index, negatable in found:
            bit = _PLAIN
            if negatable and cues and self._negated(text, start, end, cues, found):
                bit = _NEGATED
            fired[rule_index] = fired.get(rule_index, 0) | bit

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
        rules = self._rules
        if sum(rules[r].key in SINGLE_VALUED_KEYS for _, _, r, _ in found) < 2:
            return found
        kept = []
        for occurrence in found:
            start, end, rule, _ = occurrence
            key = rules[rule].key
            if key in SINGLE_VALUED_KEYS and any(
                s <= start and end <= e and e - s > end - start and rules[r].key == key
                for s, e, r, _ in found
            ):
                continue
            kept.append(occurrence)
        return kept

    def _negated(
        self,
        text: str,
        start: int,
        end: int,
        cues: list[tuple[int, int]],
        found: list[tuple[int, int, int, bool]],
    ) -> bool:
        for cue_start, cue_end in cues:
            if cue_end > start or start - cue_end > self._window:
                continue
            if any(c in _CLAUSE_BREAKS for c in text[cue_end:start]):
                continue
            # A cue inside another matched word is part of that word (很不错谢谢, 没问题谢谢),
            # unless that word overlaps this match: then both are readings of the same
            # characters (不满意 holds 不满 and a negated 满意).
            if any(
                s <= cue_start and cue_end <= e and (e <= start or end <= s) for s, e, _, _ in found
            ):
                continue
            return True
        return False


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
