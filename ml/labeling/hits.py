"""The label keys, their value vocabularies, and `LabelHit`, the one result type of rules and model.

Value strings: the closed vocabularies (sentiment, intent) use short English codes, so that the API,
filters and charts can rely on them; `DISPLAY_NAMES` gives their Chinese names for display. Topic is
an open vocabulary written by whoever writes the rules (the default rules use Chinese topic names
such as 工资纠纷).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Key = Literal["topic", "sentiment", "intent"]
Source = Literal["rule", "model", "human"]

KEYS: Final[tuple[Key, ...]] = ("topic", "sentiment", "intent")
# Sentiment and intent yield at most one value per message; topic is multi-label.
SINGLE_VALUED_KEYS: Final[frozenset[Key]] = frozenset({"sentiment", "intent"})

SENTIMENT_VALUES: Final[tuple[str, ...]] = ("positive", "neutral", "negative")
# `inform` (告知) covers statements, notices and answers: most workplace messages are neither a
# question, a request nor a complaint, and a classifier needs a class for them.
INTENT_VALUES: Final[tuple[str, ...]] = ("consult", "request", "complain", "inform")

DISPLAY_NAMES: Final[dict[str, str]] = {
    "topic": "话题",
    "sentiment": "情感",
    "intent": "意图",
    "positive": "积极",
    "neutral": "中性",
    "negative": "消极",
    "consult": "咨询",
    "request": "请求",
    "complain": "抱怨",
    "inform": "告知",
}


@dataclass(frozen=True, slots=True)
class LabelHit:
    """One label for one message.

    `score` is a confidence in 0..1. `rule` names what decided the label: one rule id, several
    ids joined by "," (strongest first) when several rules agreed, "fallback:<key>" for a rules
    file's fallback value, or "model:<name>" for a classifier.
    """

    key: Key
    value: str
    score: float
    rule: str
    source: Source = "rule"

    @property
    def rule_ids(self) -> tuple[str, ...]:
        """The ids in `rule`, split."""
        return tuple(self.rule.split(","))
