"""Which base models and LoRA adapters are in memory, loading on demand and evicting the LRU."""

from __future__ import annotations

import gc
import inspect
import itertools
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ml.inference.errors import AdapterNotFoundError, ModelLoadError, ModelNotFoundError


@dataclass(frozen=True, slots=True)
class ForwardSignature:
    """The keyword arguments a model's forward takes for incremental decoding."""

    cache_kwarg: str
    takes_logits_to_keep: bool

    @classmethod
    def of(cls, model: Any) -> ForwardSignature:
        parameters = inspect.signature(model.forward).parameters
        # transformers 5 renamed past_key_values to cache; models not yet migrated keep the old one.
        return cls(
            cache_kwarg="cache" if "cache" in parameters else "past_key_values",
            takes_logits_to_keep="logits_to_keep" in parameters,
        )


@dataclass(slots=True)
class ResidentAdapter:
    adapter_id: str
    path: Path
    name: str  # the name peft knows it by: ids may hold characters a module name cannot
    last_used: int


@dataclass(slots=True)
class ResidentBase:
    """A loaded base model, its tokenizer and the adapters loaded onto it.

    Once it carries an adapter, `model` is a peft `PeftModel` whose LoRA layers sit inside the
    base's own modules; `forward_model` is that inner model, called directly to skip PeftModel's
    per-call dispatch.
    """

    path: Path
    model: Any
    tokenizer: Any
    eos_token_ids: frozenset[int]
    context_window: int | None
    forward: ForwardSignature
    last_used: int
    adapters: dict[str, ResidentAdapter] = field(default_factory=dict)
    # Adapter layers' on/off state as last set by `activate`; None: unknown, set it next time.
    adapters_enabled: bool | None = None

    @property
    def forward_model(self) -> Any:
        return self.model.get_base_model() if self.adapters else self.model

    def activate(self, adapter_name: str | None) -> None:
        """Route the next forward passes through one adapter, or through the bare base."""
        if not self.adapters:
            return
        if adapter_name is None:
            if self.adapters_enabled is not False:
                self.model.base_model.disable_adapter_layers()
                self.adapters_enabled = False
            return
        if self.adapters_enabled is not True:
            self.model.base_model.enable_adapter_layers()
            self.adapters_enabled = True
        if self.model.active_adapter != adapter_name:
            self.model.set_adapter(adapter_name, inference_mode=True)


class ModelResidency:
    """Keeps at most `max_bases` base models and `max_adapters` adapters (over all bases) loaded.

    Not thread-safe for loading: the engine runs one request at a time. `snapshot` may be called
    from any thread.
    """

    def __init__(
        self, *, device: torch.device, dtype: str | torch.dtype, max_bases: int, max_adapters: int
    ) -> None:
        if max_bases < 1 or max_adapters < 1:
            raise ValueError("max_bases and max_adapters must be at least 1")
        self.device = device
        self._dtype = dtype
        self._max_bases = max_bases
        self._max_adapters = max_adapters
        self._bases: dict[Path, ResidentBase] = {}
        self._clock = itertools.count(1)
        self._adapter_names = (f"adapter_{n}" for n in itertools.count(1))
        self._state_lock = threading.Lock()  # guards the dicts against a concurrent snapshot

    def acquire(
        self, base_dir: str | Path, adapter_dir: str | Path | None, adapter_id: str | None
    ) -> tuple[ResidentBase, str | None]:
        """Return the base (loading it if needed) and the peft name of the requested adapter."""
        base = self._base(Path(base_dir).resolve())
        if adapter_dir is None:
            return base, None
        path = Path(adapter_dir).resolve()
        adapter = self._adapter(base, adapter_id or str(path), path)
        return base, adapter.name

    def snapshot(self) -> dict[str, object]:
        """What is loaded, most recently used first."""
        with self._state_lock:
            bases = sorted(self._bases.values(), key=lambda b: b.last_used, reverse=True)
            return {
                "device": str(self.device),
                "max_bases": self._max_bases,
                "max_adapters": self._max_adapters,
                "bases": [
                    {
                        "path": str(base.path),
                        "dtype": str(base.model.dtype).removeprefix("torch."),
                        "adapters": [
                            {"id": adapter.adapter_id, "path": str(adapter.path)}
                            for adapter in sorted(
                                base.adapters.values(), key=lambda a: a.last_used, reverse=True
                            )
                        ],
                    }
                    for base in bases
                ],
            }

    def forget(self, path: str | Path) -> None:
        """Unload whatever was loaded from `path`: an adapter, or a base with its adapters."""
        path = Path(path).resolve()
        for base in list(self._bases.values()):
            for adapter in list(base.adapters.values()):
                if adapter.path == path:
                    self._evict_adapter(base, adapter)
        if path in self._bases:
            self._evict_base(path)

    def clear(self) -> None:
        """Unload everything."""
        for path in list(self._bases):
            self._evict_base(path)

    def _base(self, path: Path) -> ResidentBase:
        base = self._bases.get(path)
        if base is None:
            if not (path / "config.json").is_file():  # checked before evicting anything for it
                raise ModelNotFoundError(f"no model in {path}: config.json is missing")
            while len(self._bases) >= self._max_bases:
                self._evict_base(min(self._bases.values(), key=lambda b: b.last_used).path)
            base = self._load_base(path)
            with self._state_lock:
                self._bases[path] = base
        base.last_used = next(self._clock)
        return base

    def _adapter(self, base: ResidentBase, adapter_id: str, path: Path) -> ResidentAdapter:
        adapter = base.adapters.get(adapter_id)
        if adapter is None or adapter.path != path:
            if not (path / "adapter_config.json").is_file():
                raise AdapterNotFoundError(
                    f"no PEFT adapter in {path}: adapter_config.json is missing"
                )
            if adapter is not None:
                self._evict_adapter(base, adapter)  # same id, new files: a re-downloaded version
            while sum(len(b.adapters) for b in self._bases.values()) >= self._max_adapters:
                owner, oldest = min(
                    ((b, a) for b in self._bases.values() for a in b.adapters.values()),
                    key=lambda pair: pair[1].last_used,
                )
                self._evict_adapter(owner, oldest)
            adapter = ResidentAdapter(adapter_id, path, next(self._adapter_names), 0)
            self._load_adapter(base, adapter)
            with self._state_lock:
                base.adapters[adapter_id] = adapter
        adapter.last_used = next(self._clock)
        return adapter

    def _load_base(self, path: Path) -> ResidentBase:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            model: Any = AutoModelForCausalLM.from_pretrained(
                path, dtype=self._dtype, device_map=str(self.device), local_files_only=True
            )
        except Exception as exc:
            raise ModelLoadError(f"cannot load the model in {path}: {exc}") from exc
        model.eval()
        return ResidentBase(
            path=path,
            model=model,
            tokenizer=tokenizer,
            eos_token_ids=_eos_token_ids(model, tokenizer),
            context_window=getattr(model.config, "max_position_embeddings", None),
            forward=ForwardSignature.of(model),
            last_used=0,
        )

    def _load_adapter(self, base: ResidentBase, adapter: ResidentAdapter) -> None:
        from peft import PeftModel

        try:
            with _peft_deprecations_silenced():
                if base.adapters:
                    base.model.load_adapter(
                        adapter.path,
                        adapter_name=adapter.name,
                        is_trainable=False,
                        autocast_adapter_dtype=False,  # keep the base's dtype: fp32 LoRA is slower
                    )
                else:
                    base.model = PeftModel.from_pretrained(
                        base.model,
                        adapter.path,
                        adapter_name=adapter.name,
                        is_trainable=False,
                        autocast_adapter_dtype=False,
                    )
        except Exception as exc:
            # A half-loaded adapter may be wired into the base's layers: reload the base later.
            self._evict_base(base.path)
            raise ModelLoadError(
                f"cannot load adapter {adapter.adapter_id!r} from {adapter.path}: {exc}"
            ) from exc
        base.adapters_enabled = None  # new adapter layers may start enabled

    def _evict_adapter(self, base: ResidentBase, adapter: ResidentAdapter) -> None:
        with self._state_lock:
            del base.adapters[adapter.adapter_id]
        if base.adapters:
            base.model.delete_adapter(adapter.name)
        else:
            # Deleting the last adapter leaves empty LoRA wrappers behind; unload restores the
            # plain base.
            base.model = base.model.unload()
            base.adapters_enabled = None
        # No gc.collect here (it costs ~0.1-0.5 s): LoRA weights are freed by reference counting,
        # and the allocator reuses their memory for the next adapter.

    def _evict_base(self, path: Path) -> None:
        with self._state_lock:
            base = self._bases.pop(path, None)
        if base is not None:
            base.adapters.clear()
            base.model = None
            del base
            _release_memory(self.device)


@contextmanager
def _peft_deprecations_silenced() -> Iterator[None]:
    """peft 0.21 reads a property that transformers 5 deprecated: nothing for us to change."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
        yield


def _eos_token_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    configured = model.generation_config.eos_token_id
    ids: set[int] = set()
    if isinstance(configured, int):
        ids.add(configured)
    elif configured is not None:
        ids.update(int(token_id) for token_id in configured)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return frozenset(ids)


def _release_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
