"""The inference engine: resident models in, streamed chat completions out."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import torch

from ml.inference.chunk import Chunk, FinishReason, Usage
from ml.inference.detokenizer import IncrementalDetokenizer
from ml.inference.errors import InferenceError, PromptTooLongError
from ml.inference.prompt import prompt_token_ids
from ml.inference.request import ChatRequest
from ml.inference.residency import ModelResidency, ResidentBase
from ml.inference.sampling import Sampler
from ml.inference.stop_strings import StopStringMatcher

_log = logging.getLogger(__name__)


def _never() -> bool:
    return False


class _Progress:
    """What a generation has done so far, for the final chunk (also after an error)."""

    __slots__ = ("completion_tokens", "finish_reason", "prompt_tokens")

    def __init__(self) -> None:
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.finish_reason: FinishReason = "length"


class Engine:
    """Generates chat completions from locally stored base models and LoRA adapters.

    Several adapters stay loaded on one base (peft multi-adapter) and are switched per request;
    a request without an adapter runs on the bare base with adapter layers disabled. Beyond
    `max_bases` base models or `max_adapters` adapters (counted over all bases) the least
    recently used is unloaded; unloading a base unloads its adapters.

    One request runs at a time: `generate` may be called from any thread, and a second call
    waits until the first stream is exhausted or closed. Do not start a second stream from the
    thread that is still iterating the first (it would wait forever).
    """

    def __init__(
        self,
        device: str | None = None,
        max_bases: int = 1,
        max_adapters: int = 8,
        *,
        dtype: str | torch.dtype | None = None,
    ) -> None:
        """`device` defaults to CUDA when available. `dtype` defaults to the checkpoint's own
        ("auto") on a GPU and to float32 on a CPU, where half precision is mostly slower."""
        resolved = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if dtype is None:
            dtype = "auto" if resolved.type == "cuda" else torch.float32
        self._models = ModelResidency(
            device=resolved, dtype=dtype, max_bases=max_bases, max_adapters=max_adapters
        )
        self._lock = threading.Lock()

    @property
    def device(self) -> torch.device:
        return self._models.device

    def load(
        self,
        base_model: str | Path,
        adapter: str | Path | None = None,
        adapter_id: str | None = None,
    ) -> None:
        """Load a base (and adapter) ahead of the first request. Raises InferenceError."""
        with self._lock:
            self._models.acquire(base_model, adapter, adapter_id)

    def loaded(self) -> dict[str, object]:
        """What is resident: {device, max_bases, max_adapters, bases: [{path, dtype, adapters:
        [{id, path}]}]}, most recently used first."""
        return self._models.snapshot()

    def unload(self, path: str | Path) -> None:
        """Unload the base or adapter loaded from `path`, if any (a deleted model)."""
        with self._lock:
            self._models.forget(path)

    def unload_all(self) -> None:
        with self._lock:
            self._models.clear()

    def generate(
        self, request: ChatRequest, *, cancelled: Callable[[], bool] = _never
    ) -> Generator[Chunk, None, None]:
        """Stream the completion of `request`: text chunks, then one final chunk.

        Never raises for a failed request: any error ends the stream with finish "error" and a
        message (an InferenceError's own; for anything unexpected, its type and message, also
        logged with the traceback), and the engine stays usable. `cancelled` is polled before
        every token; once it returns true the stream ends with finish "cancelled". Closing the
        stream early (`.close()`, when the client went away) stops generating at once and frees
        the engine for the next request.
        """
        with self._lock:
            progress = _Progress()
            try:
                for delta in self._stream(request, cancelled, progress):
                    yield Chunk(delta)
            except Exception as exc:
                if isinstance(exc, InferenceError):
                    message = str(exc)
                else:
                    _log.exception("generation failed")
                    message = f"{type(exc).__name__}: {exc}"
                yield Chunk(
                    "",
                    done=True,
                    finish_reason="error",
                    usage=Usage(progress.prompt_tokens, progress.completion_tokens),
                    error=message,
                )
                return
            yield Chunk(
                "",
                done=True,
                finish_reason=progress.finish_reason,
                usage=Usage(progress.prompt_tokens, progress.completion_tokens),
            )

    def _stream(
        self, request: ChatRequest, cancelled: Callable[[], bool], progress: _Progress
    ) -> Iterator[str]:
        base, adapter_name = self._models.acquire(
            request.base_model, request.adapter, request.adapter_id
        )
        prompt = prompt_token_ids(base.tokenizer, request.messages)
        progress.prompt_tokens = len(prompt)
        budget = self._completion_budget(base, request, len(prompt))
        base.activate(adapter_name)

        sampler = Sampler(
            temperature=request.temperature,
            top_p=request.top_p,
            seed=request.seed,
            device=self.device,
        )
        detokenizer = IncrementalDetokenizer(base.tokenizer)
        stops = StopStringMatcher(request.stop)
        step = _Stepper(base, sampler)
        input_ids = torch.tensor([prompt], device=self.device)

        while progress.completion_tokens < budget:
            if cancelled():
                progress.finish_reason = "cancelled"
                return  # nobody is listening: held-back text is not worth a chunk
            input_ids = step(input_ids)
            token_id = int(input_ids)  # waits for the device: the text is needed now
            progress.completion_tokens += 1
            if token_id in base.eos_token_ids:
                progress.finish_reason = "stop"
                break
            text = detokenizer.push(token_id)
            if text:
                emitted, stopped = stops.feed(text)
                if emitted:
                    yield emitted
                if stopped:
                    progress.finish_reason = "stop"
                    return

        emitted, stopped = stops.feed(detokenizer.flush())
        if emitted:
            yield emitted
        if stopped:
            progress.finish_reason = "stop"
            return
        if held := stops.flush():
            yield held

    @staticmethod
    def _completion_budget(base: ResidentBase, request: ChatRequest, prompt_tokens: int) -> int:
        room = None if base.context_window is None else base.context_window - prompt_tokens
        if room is not None and room < 1:
            raise PromptTooLongError(
                f"the prompt is {prompt_tokens} tokens; the model's context window is "
                f"{base.context_window}"
            )
        limits = [n for n in (request.max_tokens, room) if n is not None]
        # A model that declares no context window and a request without max_tokens: the
        # caller's cancelled() or an end-of-sequence token is what ends it.
        return min(limits) if limits else sys.maxsize


class _Stepper:
    """One decoding step: feed the new tokens, keep the KV cache, pick the next token."""

    __slots__ = ("_forward", "_kwargs", "_sampler")

    def __init__(self, base: ResidentBase, sampler: Sampler) -> None:
        from transformers import DynamicCache

        model = base.forward_model
        self._forward = model.__call__
        self._sampler = sampler
        self._kwargs: dict[str, object] = {
            base.forward.cache_kwarg: DynamicCache(config=model.config),
            "use_cache": True,
        }
        if base.forward.takes_logits_to_keep:
            self._kwargs["logits_to_keep"] = 1  # the prompt's other logits are never read

    def __call__(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Return the next token as a (1, 1) tensor on the model's device."""
        # Entered per step, not around the whole stream: the stream is a generator that its
        # consumer may resume from different threads, and grad mode is per thread.
        with torch.inference_mode():
            logits = self._forward(input_ids=input_ids, **self._kwargs).logits[:, -1, :]
            return self._sampler(logits).view(1, 1)
