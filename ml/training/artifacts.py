"""What a finished run leaves beside the weights: metrics JSON, model card, COMPLETE marker.

The marker is written last, after the weights, tokenizer, metrics and card: a folder without it
is a run that was cancelled or crashed part way and must never be registered or uploaded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

COMPLETE_MARKER = "COMPLETE"
METRICS_FILE = "metrics.json"
MODEL_CARD = "README.md"
_CURVE_ROWS = 25  # rows of the loss table in the model card


def is_complete(output_dir: str | Path) -> bool:
    """True only for a folder that a training run finished writing."""
    return (Path(output_dir) / COMPLETE_MARKER).is_file()


def clear_marker(output_dir: str | Path) -> None:
    """Forget an earlier run's completion before writing into the same folder again."""
    (Path(output_dir) / COMPLETE_MARKER).unlink(missing_ok=True)


def mark_complete(output_dir: str | Path) -> None:
    """Flush every file to disk, then write the marker listing them (a crash or power cut
    must not leave a marker in front of weights that never reached the disk)."""
    out = Path(output_dir)
    files = sorted(p for p in out.iterdir() if p.is_file() and p.name != COMPLETE_MARKER)
    for path in files:
        with path.open("rb") as handle:
            os.fsync(handle.fileno())
    listing = json.dumps({"files": [p.name for p in files]}, indent=2) + "\n"
    _write_durably(out / COMPLETE_MARKER, listing)


def write_metrics(output_dir: str | Path, report: Mapping[str, Any]) -> None:
    text = json.dumps(report, ensure_ascii=False, indent=2, default=str) + "\n"
    _write_durably(Path(output_dir) / METRICS_FILE, text)


def write_model_card(output_dir: str | Path, report: Mapping[str, Any]) -> None:
    _write_durably(Path(output_dir) / MODEL_CARD, render_model_card(report))


def render_model_card(report: Mapping[str, Any]) -> str:
    """A Hugging Face style README: YAML header, then base, dataset, config, results, curve."""
    base = str(report["base_model"])
    method = str(report["method"])
    config: Mapping[str, Any] = report["config"]
    metrics: Mapping[str, Any] = report["metrics"]
    dataset: Mapping[str, Any] = report["dataset"]
    lines = [
        "---",
        f"base_model: {json.dumps(base, ensure_ascii=False)}",
        f"library_name: {'peft' if method == 'lora' else 'transformers'}",
        "pipeline_tag: text-generation",
        "tags:",
        "- weft",
        f"- {method}",
        "---",
        "",
        f"# {'LoRA adapter' if method == 'lora' else 'Fine-tuned model'} for `{base}`",
        "",
        (
            f"Trained by weft with {'LoRA' if method == 'lora' else 'full fine-tuning'} on "
            f"{dataset['train']['examples']} examples for {metrics.get('steps')} steps "
            f"({_fmt(metrics.get('epochs'))} epochs)."
        ),
        "",
        "## Dataset",
        "",
        *_table(
            [
                *((str(k), v) for k, v in (dataset.get("info") or {}).items()),
                *((f"train {k}", v) for k, v in dataset["train"].items()),
                *((f"eval {k}", v) for k, v in (dataset.get("eval") or {}).items()),
            ]
        ),
        "",
        "## Training configuration",
        "",
        *_table(list(config.items())),
        "",
        "## Results",
        "",
        *_table(list(metrics.items())),
        "",
    ]
    curve: Sequence[Mapping[str, Any]] = report.get("curve") or []
    if curve:
        keep = _sample(list(curve), _CURVE_ROWS)
        lines += [
            "## Training curve",
            "",
            "| step | epoch | loss | learning rate |",
            "| --- | --- | --- | --- |",
            *(
                f"| {p['step']} | {_fmt(p['epoch'])} | {_fmt(p['loss'])} "
                f"| {_fmt(p['learning_rate'])} |"
                for p in keep
            ),
            "",
        ]
    evals: Sequence[Mapping[str, Any]] = report.get("eval_curve") or []
    if evals:
        lines += [
            "| step | eval loss | perplexity |",
            "| --- | --- | --- |",
            *(f"| {p['step']} | {_fmt(p['eval_loss'])} | {_fmt(p['perplexity'])} |" for p in evals),
            "",
        ]
    lines += ["## Use", "", "```python", *_usage(base, method), "```", ""]
    return "\n".join(lines)


def _usage(base: str, method: str) -> list[str]:
    if method != "lora":
        return [
            "from transformers import AutoModelForCausalLM, AutoTokenizer",
            'model = AutoModelForCausalLM.from_pretrained("path/to/this/folder")',
            'tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")',
        ]
    return [
        "from peft import PeftModel",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        f"base = AutoModelForCausalLM.from_pretrained({json.dumps(base, ensure_ascii=False)})",
        'model = PeftModel.from_pretrained(base, "path/to/this/folder")',
        'tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")',
    ]


def _table(rows: list[tuple[str, Any]]) -> list[str]:
    if not rows:
        return ["(none)"]
    return ["| | |", "| --- | --- |", *(f"| {_cell(k)} | {_cell(_fmt(v))} |" for k, v in rows)]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return "" if value is None else str(value)


def _sample(points: list[Any], limit: int) -> list[Any]:
    if len(points) <= limit:
        return points
    step = (len(points) - 1) / (limit - 1)
    return [points[round(i * step)] for i in range(limit)]


def _write_durably(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
