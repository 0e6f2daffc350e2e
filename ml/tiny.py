"""Tiny random-init causal language models, built locally so that demos and tests never download.

The tokenizer is a byte-level BPE trained on the given text, with ChatML special tokens and a
ChatML chat template, so the model behaves like a (very small, untrained) Qwen or Llama.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

Architecture = Literal["qwen2", "llama"]

DEFAULT_TEXTS = [
    "你好，最近工作怎么样？",
    "还行，就是老板又拖欠工资了。",
    "工资什么时候发？我们去劳动仲裁吧。",
    "谢谢你的帮助[微笑]",
    "明天下午三点开会，记得带材料。",
    "Hello, how are you today?",
    "I am fine, thank you. See you tomorrow!",
]


def train_tokenizer(texts: Iterable[str], vocab_size: int = 512) -> object:
    """Train a byte-level BPE tokenizer and wrap it as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(texts), trainer=trainer)
    fast = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tokenizer,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    )
    fast.chat_template = CHATML_TEMPLATE
    return fast


def make_tiny_model(
    directory: str | Path,
    texts: Iterable[str] | None = None,
    *,
    architecture: Architecture = "qwen2",
    hidden_size: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    intermediate_size: int = 128,
    vocab_size: int = 512,
    seed: int = 0,
) -> Path:
    """Build a random-init causal LM and its tokenizer in `directory` (save_pretrained layout)."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(texts if texts is not None else DEFAULT_TEXTS, vocab_size)
    vocab = len(tokenizer)  # type: ignore[arg-type]
    common = {
        "vocab_size": vocab,
        "hidden_size": hidden_size,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "intermediate_size": intermediate_size,
        "max_position_embeddings": 2048,
        "tie_word_embeddings": True,
        "eos_token_id": tokenizer.convert_tokens_to_ids("<|im_end|>"),  # type: ignore[attr-defined]
        "pad_token_id": tokenizer.convert_tokens_to_ids("<|endoftext|>"),  # type: ignore[attr-defined]
        "bos_token_id": None,
    }
    config = Qwen2Config(**common) if architecture == "qwen2" else LlamaConfig(**common)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)  # type: ignore[no-untyped-call]
    model.generation_config.eos_token_id = common["eos_token_id"]
    model.generation_config.pad_token_id = common["pad_token_id"]
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)  # type: ignore[attr-defined]
    return out
