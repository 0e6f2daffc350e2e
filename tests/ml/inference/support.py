"""Tiny local models, reference answers and stream helpers for the inference tests."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ml.inference import ChatRequest, Chunk, Engine, Message
from ml.tiny import make_tiny_model

PROMPT: list[Message] = [{"role": "user", "content": "你好，最近工作怎么样？"}]


@dataclass(frozen=True)
class TinyModels:
    base: Path
    other_base: Path
    adapter_a: Path
    adapter_b: Path
    adapter_c: Path


def make_lively_model(directory: Path, seed: int) -> Path:
    """A tiny model whose greedy output varies from token to token.

    At the usual init scale a random model repeats one token forever; weights drawn wider make
    it wander through the vocabulary, Chinese characters split into byte tokens included.
    """
    from transformers import AutoModelForCausalLM

    make_tiny_model(directory, seed=seed)
    model = AutoModelForCausalLM.from_pretrained(directory)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "norm" not in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    model.save_pretrained(directory)
    return directory


def make_adapter(base: Path, directory: Path, seed: int) -> Path:
    """A LoRA adapter with random non-zero B matrices, so that it changes the base's answers."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "o_proj", "up_proj"])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(base), config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
    model.save_pretrained(str(directory))
    return directory


class Reference:
    """Answers computed with plain transformers / peft `generate`, to compare the engine with."""

    def __init__(self) -> None:
        self._models: dict[tuple[Path, Path | None], Any] = {}
        self._tokenizers: dict[Path, Any] = {}

    def greedy(
        self,
        base: Path,
        messages: Sequence[Message] = PROMPT,
        *,
        adapter: Path | None = None,
        max_new_tokens: int = 40,
    ) -> tuple[str, list[int]]:
        """The decoded text and the generated token ids (end-of-sequence included)."""
        prompt = self.prompt(base, messages)
        return self.generate(base, prompt, adapter=adapter, max_new_tokens=max_new_tokens)

    def prompt(self, base: Path, messages: Sequence[Message] = PROMPT) -> list[int]:
        tokenizer = self.tokenizer(base)
        text = tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, tokenize=False
        )
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    def generate(
        self, base: Path, prompt: list[int], *, adapter: Path | None = None, max_new_tokens: int
    ) -> tuple[str, list[int]]:
        model = self._model(base, adapter)
        input_ids = torch.tensor([prompt])
        with torch.inference_mode():
            output = model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                do_sample=False,
                max_new_tokens=max_new_tokens,
            )
        ids = [int(t) for t in output[0, len(prompt) :]]
        return self.tokenizer(base).decode(ids, skip_special_tokens=True), ids

    def tokenizer(self, base: Path) -> Any:
        from transformers import AutoTokenizer

        if base not in self._tokenizers:
            self._tokenizers[base] = AutoTokenizer.from_pretrained(base)
        return self._tokenizers[base]

    def _model(self, base: Path, adapter: Path | None) -> Any:
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        key = (base, adapter)
        if key not in self._models:
            model: Any = AutoModelForCausalLM.from_pretrained(base)
            model.eval()
            if adapter is not None:
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
                    model = PeftModel.from_pretrained(model, adapter)
                    model.eval()
            self._models[key] = model
        return self._models[key]


@dataclass(frozen=True)
class Streamed:
    """What one request streamed; `run` has checked the chunk protocol."""

    chunks: list[Chunk]

    @property
    def text(self) -> str:
        return "".join(chunk.delta for chunk in self.chunks)

    @property
    def final(self) -> Chunk:
        return self.chunks[-1]

    @property
    def deltas(self) -> list[str]:
        return [chunk.delta for chunk in self.chunks[:-1]]


def request(
    base: Path,
    messages: list[Message] | None = None,
    *,
    adapter: Path | None = None,
    **options: Any,
) -> ChatRequest:
    options.setdefault("temperature", 0)
    options.setdefault("max_tokens", 40)
    return ChatRequest(base_model=base, messages=messages or PROMPT, adapter=adapter, **options)


def run(engine: Engine, chat: ChatRequest, cancelled: Callable[[], bool] | None = None) -> Streamed:
    """Collect a stream, checking that text chunks are non-empty and exactly the last is final."""
    chunks = list(engine.generate(chat, cancelled=cancelled or (lambda: False)))
    assert chunks, "a stream always ends with a final chunk"
    assert chunks[-1].done
    assert all(not chunk.done and chunk.delta for chunk in chunks[:-1])
    assert chunks[-1].delta == ""
    return Streamed(chunks)
