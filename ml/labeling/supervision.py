"""Training examples, and weak supervision: confident rule labels, overruled by human ones.

Per message and key:

- If a human labeled the key, the human labels are the truth for that key: for sentiment and
  intent the human value, for topic exactly the set of human topics (rule topics are dropped).
- Otherwise rule hits (source "rule") with score >= `min_score` are used. For topic, a message
  on which the rules found no topic at all counts as having none (a negative for every topic);
  one whose rule topics all scored below `min_score` is left unknown for topic.
- Model hits are ignored: a classifier must not learn from its own guesses.

`TrainingExample.human` records which keys a human labeled; training weighs those more (see
`train_classifier`'s `human_weight`). On weft's labeled set, heads trained on about 64 human
labels plus the rule labels of the remaining messages beat the same heads on the human labels
alone by 0.12 topic and 0.03 intent macro-F1 (tests/bench/bench_label.py). Rule labels alone
are a poor teacher at the default threshold: the fallback guesses stay out, so the heads see
almost no neutral or inform examples. Train with some human labels; without any, a threshold
of 0.5 lets the fallbacks in and the heads at best copy the rules.

A key without a label is unknown for that example and that head skips it; an example with no
known key is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ml.labeling.hits import Key, LabelHit

# Above the default rules' fallback guesses (0.5): only labels that some rule decided train.
DEFAULT_MIN_SCORE = 0.6


@dataclass(frozen=True, slots=True)
class TrainingExample:
    """A text with what is known about it; None means unknown, an empty topic set means none."""

    text: str
    sentiment: str | None = None
    intent: str | None = None
    topics: frozenset[str] | None = None
    # The keys whose label a human gave: training counts them more than rule labels.
    human: frozenset[Key] = frozenset()

    def known(self, key: Key) -> bool:
        return getattr(self, "topics" if key == "topic" else key) is not None


def example_from_hits(
    text: str, hits: Iterable[LabelHit], *, min_score: float = DEFAULT_MIN_SCORE
) -> TrainingExample | None:
    """One training example from a message's labels of any source (see the module docstring)."""
    human: dict[Key, list[str]] = {}
    rule: dict[Key, list[LabelHit]] = {}
    for hit in hits:
        if hit.source == "human":
            human.setdefault(hit.key, []).append(hit.value)
        elif hit.source == "rule":
            rule.setdefault(hit.key, []).append(hit)

    def single(key: Key) -> str | None:
        if key in human:
            return human[key][0]
        confident = [h for h in rule.get(key, ()) if h.score >= min_score]
        return max(confident, key=lambda h: h.score).value if confident else None

    if "topic" in human:
        topics: frozenset[str] | None = frozenset(human["topic"])
    elif "topic" not in rule:
        topics = frozenset()
    else:
        confident_topics = frozenset(h.value for h in rule["topic"] if h.score >= min_score)
        topics = confident_topics or None
    example = TrainingExample(text, single("sentiment"), single("intent"), topics, frozenset(human))
    if example.sentiment is None and example.intent is None and example.topics is None:
        return None
    return example


def weak_examples(
    labeled: Iterable[tuple[str, Iterable[LabelHit]]], *, min_score: float = DEFAULT_MIN_SCORE
) -> Iterator[TrainingExample]:
    """`example_from_hits` over (text, hits) pairs, lazily; messages with nothing known drop out.

    With rules alone: `weak_examples(zip(texts, rules.label_many(texts)))`.
    """
    for text, hits in labeled:
        example = example_from_hits(text, hits, min_score=min_score)
        if example is not None:
            yield example
