"""Dataset helpers shared by the training tests."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

# A set small enough for a tiny model to memorize in a few dozen steps.
PAIRS = [
    ("你好", "你好呀，今天过得怎么样？"),
    ("工资什么时候发", "下周一发工资"),
    ("明天开会吗", "明天下午三点开会"),
    ("谢谢", "不客气[微笑]"),
]


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    path.write_text(
        "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8"
    )
    return path


def pair_rows(fmt: str = "prompt_completion") -> Iterator[dict[str, Any]]:
    """PAIRS as records of one dataset format."""
    for prompt, completion in PAIRS:
        if fmt == "prompt_completion":
            yield {"prompt": prompt, "completion": completion}
        elif fmt == "sharegpt":
            yield {
                "messages": [
                    {"role": "user", "content": prompt},
                    {"role": "assistant", "content": completion},
                ]
            }
        else:
            yield {"instruction": prompt, "input": "", "output": completion, "history": []}


def greedy_replies(model: Any, tokenizer: Any, prompts: Iterable[str]) -> list[str]:
    """The model's greedy reply to each prompt as a one-turn chat."""
    import torch

    replies = []
    for prompt in prompts:
        inputs = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}],
            add_generation_prompt=True,
            return_tensors="pt",
            return_dict=True,
        )
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=24, do_sample=False)
        new = out[0, inputs["input_ids"].shape[1] :]
        replies.append(tokenizer.decode(new, skip_special_tokens=True))
    return replies
