"""Using what `train` wrote: load it for generation, or merge a LoRA adapter into its base."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ml.training.artifacts import is_complete
from ml.training.errors import TrainingError
from ml.training.modeling import check_base_model, peft_warnings_silenced

ADAPTER_CONFIG = "adapter_config.json"


def is_adapter(model_dir: str | Path) -> bool:
    return (Path(model_dir) / ADAPTER_CONFIG).is_file()


def adapter_base(adapter_dir: str | Path) -> str:
    """The base model an adapter was trained on, as recorded in its adapter_config.json."""
    try:
        config = json.loads((Path(adapter_dir) / ADAPTER_CONFIG).read_text(encoding="utf-8"))
        return str(config["base_model_name_or_path"])
    except (OSError, ValueError, KeyError) as exc:
        raise TrainingError(f"{adapter_dir} is not a readable LoRA adapter: {exc}") from None


def load_trained(
    model_dir: str | Path,
    *,
    base_model: str | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
) -> tuple[Any, Any]:
    """(model, tokenizer) ready for `generate`, from a finished training folder.

    An adapter is put on `base_model` (default: the base recorded in the adapter); full
    weights load as they are. Raises `TrainingError` for a folder without the COMPLETE marker.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _require_complete(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if is_adapter(model_dir):
        model = _base_with_adapter(base_model or adapter_base(model_dir), model_dir, dtype)
    else:
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype or "auto")
    return model.to(device).eval(), tokenizer


def merge_adapter(
    base_model: str,
    adapter_dir: str | Path,
    out_dir: str | Path,
    *,
    dtype: torch.dtype | None = None,
) -> Path:
    """Fold a LoRA adapter into its base (peft's merge_and_unload) and save the merged model
    and the adapter's tokenizer to `out_dir`, in the base's dtype unless `dtype` is given."""
    from transformers import AutoTokenizer

    _require_complete(adapter_dir)
    if not is_adapter(adapter_dir):
        raise TrainingError(
            f"{adapter_dir} holds full weights, not a LoRA adapter: nothing to merge"
        )
    model = _base_with_adapter(base_model, adapter_dir, dtype)
    merged = model.merge_and_unload()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out)
    AutoTokenizer.from_pretrained(adapter_dir).save_pretrained(out)
    return out


def _base_with_adapter(base_model: str, adapter_dir: str | Path, dtype: torch.dtype | None) -> Any:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    check_base_model(base_model)
    try:
        base = AutoModelForCausalLM.from_pretrained(base_model, dtype=dtype or "auto")
    except Exception as exc:
        raise TrainingError(f"cannot load base model {base_model}: {exc}") from None
    with peft_warnings_silenced():
        return PeftModel.from_pretrained(base, str(adapter_dir))


def _require_complete(model_dir: str | Path) -> None:
    if not is_complete(model_dir):
        raise TrainingError(
            f"{model_dir} is not a finished training run (no COMPLETE marker): "
            "it was cancelled or crashed part way"
        )
