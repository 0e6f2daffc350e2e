"""Weak supervision: confident rule labels become training examples, human labels win."""

from __future__ import annotations

from ml.labeling import LabelHit, RuleSet
from ml.labeling.supervision import TrainingExample, example_from_hits, weak_examples


def rule(key: str, value: str, score: float) -> LabelHit:
    return LabelHit(key, value, score, f"r.{value}")  # type: ignore[arg-type]


def human(key: str, value: str) -> LabelHit:
    return LabelHit(key, value, 1.0, "human:u1", "human")  # type: ignore[arg-type]


def test_confident_rule_labels_become_the_example() -> None:
    hits = [
        rule("topic", "工资纠纷", 0.9),
        rule("topic", "加班", 0.7),
        rule("sentiment", "negative", 0.8),
        rule("intent", "complain", 0.6),
    ]

    example = example_from_hits("又拖欠加班费", hits)

    assert example == TrainingExample(
        "又拖欠加班费", "negative", "complain", frozenset({"工资纠纷", "加班"})
    )


def test_rule_labels_below_the_threshold_are_unknown() -> None:
    hits = [rule("topic", "工资纠纷", 0.3), rule("sentiment", "negative", 0.4)]

    example = example_from_hits("工资", [*hits, rule("intent", "consult", 0.55)], min_score=0.5)

    assert example == TrainingExample("工资", None, "consult", None)
    assert example is not None and not example.known("topic") and example.known("intent")


def test_only_the_confident_topics_are_kept() -> None:
    hits = [rule("topic", "工资纠纷", 0.9), rule("topic", "加班", 0.2)]

    example = example_from_hits("x", hits)

    assert example is not None and example.topics == frozenset({"工资纠纷"})


def test_no_rule_topic_at_all_means_no_topic() -> None:
    example = example_from_hits("明天见", [rule("sentiment", "neutral", 0.5)])

    assert example is not None and example.topics == frozenset()
    assert example.known("topic")


def test_human_labels_win_per_key() -> None:
    hits = [
        rule("topic", "工资纠纷", 0.95),
        rule("sentiment", "negative", 0.9),
        rule("intent", "complain", 0.9),
        human("sentiment", "neutral"),
        human("topic", "劳动关系"),
        human("topic", "社保福利"),
    ]

    example = example_from_hits("msg", hits)

    # Human topics replace the rule topics entirely; intent stays with the rules.
    topics = frozenset({"劳动关系", "社保福利"})
    human_keys = frozenset({"sentiment", "topic"})
    assert example == TrainingExample("msg", "neutral", "complain", topics, human_keys)  # type: ignore[arg-type]


def test_human_labels_count_whatever_the_threshold() -> None:
    example = example_from_hits("msg", [human("intent", "request")], min_score=0.99)

    assert example is not None and example.intent == "request"
    assert example.human == {"intent"}


def test_model_labels_are_never_training_data() -> None:
    model = LabelHit("sentiment", "positive", 0.99, "model:x", "model")

    example = example_from_hits("msg", [model])

    assert example == TrainingExample("msg", None, None, frozenset())


def test_nothing_known_gives_no_example() -> None:
    hits = [rule("topic", "x", 0.1), rule("sentiment", "neutral", 0.1)]

    assert example_from_hits("msg", hits) is None


def test_weak_examples_from_the_default_rules() -> None:
    texts = ["老板又拖欠工资了，三个月没发[发怒]", "谢谢你的帮助[微笑]", "嗯"]
    rules = RuleSet.default()

    examples = list(weak_examples(zip(texts, rules.label_many(texts), strict=True)))

    assert examples[0] == TrainingExample(texts[0], "negative", "complain", frozenset({"工资纠纷"}))
    assert examples[1].sentiment == "positive"
    # The fallback guesses (0.5) stay below the default threshold; no rule topic means none.
    assert examples[2] == TrainingExample("嗯", None, None, frozenset())
    labeled = zip(texts, rules.label_many(texts), strict=True)
    loose = list(weak_examples(labeled, min_score=0.5))
    assert loose[2] == TrainingExample("嗯", "neutral", "inform", frozenset())
