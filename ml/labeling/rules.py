"""Labeling rules: the file format, its validation, and `RuleSet`, which labels messages.

Format (YAML or JSON, format version 1; JSON Schema in `rules.schema.json` beside this module)::

    version: 1
    ignore_case: true             # optional (default true): letter case never matters
    negation:                     # optional; these are the defaults
      cues: [不, 没, 没有, 别, 未, ...]
      window: 3                   # at most this many characters between cue and match
    fallback:                     # optional: value of a single-valued key no rule decided
      sentiment: {value: neutral, score: 0.5}
    rules:
      - id: topic.wage.dispute    # unique; no spaces or commas
        key: topic                # topic | sentiment | intent
        value: 工资纠纷
        weight: 2.0               # optional (default 1), > 0
        keywords: [欠薪, 拖欠, 讨薪]               # literal substrings
        patterns: ['(工资|薪水).{0,6}没发']         # Python regular expressions
        emoji: ['[强]', '👍']                      # WeChat emoji codes or Unicode emoji
        negation: ignore          # optional: flip | cancel | ignore (defaults below)
        description: free text    # optional

A JSON file holds the same document. A rule needs at least one keyword, pattern or emoji.
Sentiment values are positive, neutral or negative; intent and topic values are free strings
(the default rules use consult, request, complain and inform for intent, and Chinese topic
names).

Matching. All keywords, emoji and negation cues of a rule set go into one Aho-Corasick automaton,
so a message is scanned once whatever the number of rules; all regular expressions are joined
into one alternation that is searched once, and only a message in which it finds something is
searched rule by rule (so that overlapping pattern matches of different rules are all found).
Keywords, emoji and cues are compared with the text in lower case (str.lower, even where a letter
lowers to two characters, as İ does) unless ignore_case is false, and without the emoji variation
selector VS16 (U+FE0F) on either side, so ❤ and ❤️ match each other; patterns see the text as is.
A rule fires when any of its keywords, patterns or emoji occurs; it adds its weight once per
message, however often it occurs.

Overlaps. Every occurrence is found, overlapping ones included. For topic all of them count (a
message can be about both 加班 and 加班费). For sentiment and intent an occurrence that lies inside
a longer occurrence for the same key is dropped: the longer phrase is the more specific one
(好的 is an acknowledgement, not the praise 好).

Negation. A keyword or pattern match is negated when a negation cue ends at most `window`
characters before the match starts, with no punctuation or whitespace in between (the cue must
stand in the same clause). A cue that lies inside another matched keyword is part of that word,
not a negation (很不错谢谢, 没问题谢谢), unless that word overlaps the match itself: 不满意
holds both 不满 and a negated 满意. Emoji are never negated. What a negated match does depends
on the rule's `negation` mode:

- `flip` (default for sentiment): the match counts for the opposite sentiment; positive and
  negative swap (不满意 → negative, 不难 → positive), a negated neutral match counts for nothing.
- `cancel` (default for intent): the match counts for nothing (我不是抱怨 is no complaint).
- `ignore` (default for topic): negation does not matter (没发工资 is still about wages).

Scores. Each value's evidence E is the sum of the weights of the rules that fired for it.
Topic is multi-label: every topic with evidence is a hit, score 1 - exp(-E) (weight 1 → 0.63,
weight 2 → 0.86). Sentiment and intent yield at most one hit: the value with the most evidence
wins (ties: the larger single weight, then the rule that comes first in the file), with score
(1 - exp(-E)) × E / (evidence of all values of that key), so that disagreement lowers confidence.
When no rule decides a single-valued key the file's `fallback` value, if any, is given with its
score and the rule id "fallback:<key>". The default rules fall back to sentiment neutral and
intent inform at 0.5: a workplace message without any cue is in the great majority a neutral
statement, and counts per value (charts, filters) should cover every message. At 0.5 these
guesses stay below the default threshold (0.6) at which rule labels become training data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Final, Literal, cast

import yaml

from ml.labeling.hits import KEYS, Key, LabelHit
from ml.labeling.matcher import Matcher

NegationMode = Literal["flip", "cancel", "ignore"]

DEFAULT_NEGATION_CUES: Final[tuple[str, ...]] = (
    "不",
    "没",
    "没有",
    "别",
    "未",
    "无",
    "非",
    "勿",
    "莫",
    "甭",
    "不是",
    "不要",
    "不用",
    "并不",
    "从不",
    "从未",
    "毫无",
)
DEFAULT_NEGATION_WINDOW: Final = 3
DEFAULT_NEGATION_MODE: Final[dict[Key, NegationMode]] = {
    "topic": "ignore",
    "sentiment": "flip",
    "intent": "cancel",
}
_WECHAT_CODE = re.compile(r"\[[^\[\]\s]{1,12}\]")
_ERRORS_SHOWN: Final = 5
_ERROR_CHARS: Final = 300  # jsonschema quotes the offending value, which may be huge


class RulesError(ValueError):
    """A rules file that cannot be used; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule as the file states it, with defaults filled in (`negation` is already the
    mode that applies, whatever the key's default)."""

    id: str
    key: Key
    value: str
    weight: float = 1.0
    keywords: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    emoji: tuple[str, ...] = ()
    negation: NegationMode = "ignore"
    description: str = ""


@dataclass(frozen=True, slots=True)
class Fallback:
    """The value, and its score, of a single-valued key that no rule decided."""

    value: str
    score: float = 0.5


@dataclass(frozen=True, slots=True)
class NegationSettings:
    """Negation cues, and the most characters allowed between a cue and what it negates."""

    cues: tuple[str, ...] = DEFAULT_NEGATION_CUES
    window: int = DEFAULT_NEGATION_WINDOW


class RuleSet:
    """A validated set of rules, compiled for matching. Build it with `load` or `default`."""

    def __init__(
        self,
        rules: Sequence[Rule],
        *,
        negation: NegationSettings = NegationSettings(),
        fallback: Mapping[Key, Fallback] | None = None,
        ignore_case: bool = True,
    ) -> None:
        self.rules: Final = tuple(rules)
        self.negation: Final = negation
        self.fallback: Final[Mapping[Key, Fallback]] = dict(fallback or {})
        self.ignore_case: Final = ignore_case
        self._matcher = Matcher(
            self.rules, negation.cues, negation.window, self.fallback, ignore_case=ignore_case
        )

    @classmethod
    def load(cls, text: str | bytes) -> RuleSet:
        """Parse a YAML or JSON rules file, validate it, and compile it. Raises `RulesError`."""
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise RulesError(f"rules file is not UTF-8 text (byte {exc.start})") from None
        text = text.removeprefix("\ufeff")
        if not text.strip():
            raise RulesError("rules file is empty")
        document = _parse(text)
        return cls.from_dict(document, _lines=_line_map(text))

    @classmethod
    def default(cls) -> RuleSet:
        """weft's default rules for Chinese workplace chat (`default_rules.yaml`)."""
        return _default_rules()

    @classmethod
    def from_dict(
        cls, document: object, *, _lines: Mapping[tuple[str | int, ...], int] | None = None
    ) -> RuleSet:
        """Validate an already parsed rules document (the shape of the file) and compile it."""
        errors = _validate(document, _lines or {})
        if errors:
            more = len(errors) - _ERRORS_SHOWN
            shown = "\n".join(f"- {e}" for e in errors[:_ERRORS_SHOWN])
            tail = f"\n(and {more} more)" if more > 0 else ""
            raise RulesError(f"invalid rules file:\n{shown}{tail}")
        doc = cast(dict[str, Any], document)
        negation = doc.get("negation", {})
        return cls(
            rules=tuple(_rule(r) for r in doc["rules"]),
            negation=NegationSettings(
                cues=tuple(negation.get("cues", DEFAULT_NEGATION_CUES)),
                window=negation.get("window", DEFAULT_NEGATION_WINDOW),
            ),
            fallback={
                k: Fallback(value=f["value"], score=float(f.get("score", 0.5)))
                for k, f in doc.get("fallback", {}).items()
            },
            ignore_case=doc.get("ignore_case", True),
        )

    def to_dict(self) -> dict[str, Any]:
        """The rules as a document that `from_dict` accepts, every default written out."""
        return {
            "version": 1,
            "ignore_case": self.ignore_case,
            "negation": {"cues": list(self.negation.cues), "window": self.negation.window},
            "fallback": {k: {"value": f.value, "score": f.score} for k, f in self.fallback.items()},
            "rules": [
                {
                    "id": r.id,
                    "key": r.key,
                    "value": r.value,
                    "weight": r.weight,
                    "keywords": list(r.keywords),
                    "patterns": list(r.patterns),
                    "emoji": list(r.emoji),
                    "negation": r.negation,
                    **({"description": r.description} if r.description else {}),
                }
                for r in self.rules
            ],
        }

    def __len__(self) -> int:
        return len(self.rules)

    def values(self) -> dict[Key, tuple[str, ...]]:
        """Every value these rules can give, per key, in the order the file first names them."""
        found: dict[Key, dict[str, None]] = {key: {} for key in KEYS}
        for rule in self.rules:
            found[rule.key][rule.value] = None
            if rule.negation == "flip" and rule.value in ("positive", "negative"):
                found[rule.key]["negative" if rule.value == "positive" else "positive"] = None
        for key, fallback in self.fallback.items():
            found[key][fallback.value] = None
        return {key: tuple(v) for key, v in found.items() if v}

    def label(self, text: str) -> list[LabelHit]:
        """Labels for one message: topics (strongest first), then sentiment, then intent."""
        return self._matcher.label(text)

    def label_many(self, texts: Iterable[str]) -> Iterator[list[LabelHit]]:
        """Labels for each message, lazily, in order; memory does not grow with the input."""
        label = self._matcher.label
        for text in texts:
            yield label(text)


@cache
def _default_rules() -> RuleSet:
    text = resources.files("ml.labeling").joinpath("default_rules.yaml").read_text("utf-8")
    return RuleSet.load(text)


def load_schema() -> dict[str, Any]:
    """The JSON Schema of the rules format."""
    text = resources.files("ml.labeling").joinpath("rules.schema.json").read_text("utf-8")
    return cast(dict[str, Any], json.loads(text))


def _parse(text: str) -> object:
    if text.lstrip().startswith(("{", "[")):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise RulesError(
                f"rules file is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
            ) from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise RulesError(f"rules file is not valid YAML: {exc.problem}{where}") from None
    except yaml.YAMLError as exc:
        raise RulesError(f"rules file is not valid YAML: {exc}") from None


def _line_map(text: str) -> dict[tuple[str | int, ...], int]:
    """Line (1-based) of each value in the document, by path; empty when it cannot be composed."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    lines: dict[tuple[str | int, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str | int, ...]) -> None:
        lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                walk(value_node, (*path, str(key_node.value)))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, (*path, index))

    if root is not None:
        walk(root, ())
    return lines


def _where(
    path: Sequence[str | int], document: object, lines: Mapping[tuple[str | int, ...], int]
) -> str:
    """A readable location such as: rules[3].patterns[0] (rule "wage", line 12)."""
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    notes = []
    if len(path) >= 2 and path[0] == "rules" and isinstance(path[1], int):
        rule_id = _rule_id(document, path[1])
        if rule_id is not None:
            notes.append(f'rule "{rule_id}"')
    for end in range(len(path), -1, -1):
        line = lines.get(tuple(path[:end]))
        if line is not None:
            notes.append(f"line {line}")
            break
    return (text or "top level") + (f" ({', '.join(notes)})" if notes else "")


def _rule_id(document: object, index: int) -> str | None:
    if isinstance(document, dict):
        rules = document.get("rules")
        if isinstance(rules, list) and index < len(rules) and isinstance(rules[index], dict):
            rule_id = rules[index].get("id")
            return rule_id if isinstance(rule_id, str) else None
    return None


def _validate(document: object, lines: Mapping[tuple[str | int, ...], int]) -> list[str]:
    """Every problem in the document, as readable lines; schema first, then what it cannot say."""
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped,unused-ignore]

    validator = Draft202012Validator(load_schema())
    schema_errors = sorted(
        validator.iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path]
    )
    messages = []
    for error in schema_errors:
        path = list(error.absolute_path)
        hint = ""
        if error.validator == "type" and error.validator_value == "string":
            hint = " (quote it in YAML)"
        text = error.message
        if len(text) > _ERROR_CHARS:
            text = text[: _ERROR_CHARS - 3] + "..."
        messages.append(f"{_where(path, document, lines)}: {text}{hint}")
    if messages:
        return messages
    doc = cast(dict[str, Any], document)
    seen: dict[str, int] = {}
    for index, rule in enumerate(doc["rules"]):
        here = ("rules", index)
        rule_id = rule["id"]
        if rule_id in seen:
            messages.append(
                f"{_where(here, doc, lines)}: duplicate id (also rules[{seen[rule_id]}])"
            )
        seen.setdefault(rule_id, index)
        if not (rule.get("keywords") or rule.get("patterns") or rule.get("emoji")):
            messages.append(
                f"{_where(here, doc, lines)}: a rule needs at least one keyword, pattern or emoji"
            )
        if rule.get("negation") == "flip" and rule["key"] != "sentiment":
            messages.append(
                f"{_where((*here, 'negation'), doc, lines)}: negation 'flip' applies to"
                f" sentiment only; use 'cancel' or 'ignore' for {rule['key']}"
            )
        flags = re.IGNORECASE if doc.get("ignore_case", True) else 0
        for j, pattern in enumerate(rule.get("patterns", ())):
            problem = _regex_problem(pattern, flags)
            if problem:
                messages.append(f"{_where((*here, 'patterns', j), doc, lines)}: {problem}")
        for j, emoji in enumerate(rule.get("emoji", ())):
            if not _is_emoji(emoji):
                messages.append(
                    f"{_where((*here, 'emoji', j), doc, lines)}: {emoji!r} is neither a WeChat"
                    " emoji code like [微笑] nor Unicode emoji; put words under keywords"
                )
    return messages


def _regex_problem(pattern: str, flags: int) -> str | None:
    try:
        compiled = re.compile(pattern, flags)
    except re.error as exc:
        return f"invalid regular expression {pattern!r}: {exc}"
    if compiled.search("") is not None:
        return f"regular expression {pattern!r} matches the empty string, so every message"
    return None


def _is_emoji(text: str) -> bool:
    # Unicode emoji are symbols: no letters or digits (skin tones, ZWJ and VS16 are not alnum).
    return _WECHAT_CODE.fullmatch(text) is not None or not any(c.isalnum() for c in text)


def _rule(raw: Mapping[str, Any]) -> Rule:
    key = cast(Key, raw["key"])
    return Rule(
        id=raw["id"],
        key=key,
        value=raw["value"],
        weight=float(raw.get("weight", 1.0)),
        keywords=tuple(raw.get("keywords", ())),
        patterns=tuple(raw.get("patterns", ())),
        emoji=tuple(raw.get("emoji", ())),
        negation=raw.get("negation", DEFAULT_NEGATION_MODE[key]),
        description=raw.get("description", ""),
    )


__all__ = [
    "KEYS",
    "Fallback",
    "LabelHit",
    "NegationMode",
    "NegationSettings",
    "Rule",
    "RuleSet",
    "RulesError",
    "load_schema",
]
