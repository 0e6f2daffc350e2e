"""The engine on a CUDA device (skipped where there is none)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

from ml.inference import Engine
from tests.ml.inference.support import Reference, TinyModels, request, run

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def cuda_greedy(reference: Reference, base: Path, adapter: Path | None) -> str:
    """`generate` on the GPU: the same kernels as the engine's, so the same argmax."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model: Any = AutoModelForCausalLM.from_pretrained(base, device_map="cuda")
    if adapter is not None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
            model = PeftModel.from_pretrained(model, adapter)
    model.eval()
    prompt = torch.tensor([reference.prompt(base)], device="cuda")
    with torch.inference_mode():
        output = model.generate(
            input_ids=prompt,
            attention_mask=torch.ones_like(prompt),
            do_sample=False,
            max_new_tokens=40,
        )
    ids = [int(t) for t in output[0, prompt.shape[1] :]]
    return str(reference.tokenizer(base).decode(ids, skip_special_tokens=True))


def test_greedy_with_adapters_on_cuda_equals_generate(
    tiny: TinyModels, reference: Reference
) -> None:
    engine = Engine(device="cuda", max_adapters=2)
    assert engine.device.type == "cuda"
    for adapter in (tiny.adapter_a, None, tiny.adapter_b, tiny.adapter_a):
        expected = cuda_greedy(reference, tiny.base, adapter)
        assert run(engine, request(tiny.base, adapter=adapter)).text == expected


def test_half_precision_and_seeded_sampling_on_cuda(tiny: TinyModels) -> None:
    engine = Engine(device="cuda", dtype=torch.bfloat16)
    chat = request(tiny.base, adapter=tiny.adapter_a, temperature=0.8, top_p=0.9, seed=3)
    first, second = run(engine, chat), run(engine, chat)
    assert first.final.finish_reason == "length"
    assert first.text == second.text
    loaded: Any = engine.loaded()
    assert loaded["bases"][0]["dtype"] == "bfloat16"
