from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ml.training import TrainConfig, TrainConfigError


def test_defaults_are_valid_and_round_trip_through_json() -> None:
    config = TrainConfig(target_modules=["q_proj", "v_proj"], max_steps=50, bf16=False)  # type: ignore[arg-type]

    again = TrainConfig.from_json(config.to_json())

    assert again == config
    assert again.target_modules == ("q_proj", "v_proj")
    assert json.loads(config.to_json())["target_modules"] == ["q_proj", "v_proj"]


def test_learning_rate_defaults_per_method() -> None:
    assert TrainConfig(method="lora").lr == 2e-4
    assert TrainConfig(method="full").lr == 2e-5
    assert TrainConfig(method="full", learning_rate=1e-4).lr == 1e-4


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"method": "qlora"}, "method must be one of lora, full"),
        ({"lora_r": 0}, "lora_r must be greater than zero"),
        ({"lora_dropout": 1.0}, "lora_dropout must be in [0, 1)"),
        ({"target_modules": []}, "target_modules must name at least one module"),
        ({"target_modules": ["q_proj", ""]}, "target_modules must be non-empty module names"),
        ({"epochs": 0}, "epochs must be greater than zero"),
        ({"max_steps": 0}, "max_steps must be greater than zero"),
        ({"max_steps": 1.5}, "max_steps must be an integer, not float"),
        ({"learning_rate": -1e-4}, "learning_rate must be greater than zero"),
        ({"learning_rate": "1e-4"}, "learning_rate must be a number, not str"),
        ({"lr_scheduler": "polynomial"}, "lr_scheduler must be one of linear, cosine, constant"),
        ({"warmup_ratio": 1.5}, "warmup_ratio must be in [0, 1)"),
        ({"batch_size": 0}, "batch_size must be greater than zero"),
        ({"batch_size": True}, "batch_size must be an integer, not a boolean"),
        ({"gradient_accumulation": -2}, "gradient_accumulation must be greater than zero"),
        ({"max_seq_length": 4}, "max_seq_length must be at least 8"),
        ({"eval_every_steps": 0}, "eval_every_steps must be greater than zero"),
        ({"logging_steps": None}, "logging_steps must not be null"),
        ({"bf16": "yes"}, "bf16 must be true or false"),
        ({"gradient_checkpointing": 1}, "gradient_checkpointing must be true or false"),
        ({"device": "tpu"}, "device must be auto, cpu, cuda or cuda:N"),
        ({"learning_rate": float("nan")}, "learning_rate must be greater than zero"),
        ({"lora_r": 10**400}, "lora_r is out of range"),
        ({"epochs": -(10**400)}, "epochs is out of range"),
    ],
)
def test_invalid_options_are_refused_with_a_clear_message(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(TrainConfigError) as raised:
        TrainConfig.from_dict(options)
    assert message in str(raised.value)


def test_unknown_options_and_bad_json_are_refused() -> None:
    with pytest.raises(TrainConfigError, match=r"unknown training option.*lora_rank"):
        TrainConfig.from_dict({"lora_rank": 8})
    with pytest.raises(TrainConfigError, match="not valid JSON"):
        TrainConfig.from_json("{method: lora}")
    with pytest.raises(TrainConfigError, match="must be an object"):
        TrainConfig.from_json("[1, 2]")


def test_constructing_an_invalid_config_directly_fails_too() -> None:
    with pytest.raises(TrainConfigError, match="batch_size"):
        TrainConfig(batch_size=-1)


def test_the_config_loads_without_torch_for_the_api_process() -> None:
    code = (
        "import sys\n"
        "from ml.training import TrainConfig, TrainConfigError, TrainingError, is_complete\n"
        'TrainConfig.from_json(\'{"method": "full"}\')\n'
        "heavy = {'torch', 'transformers', 'peft', 'numpy'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    root = Path(__file__).resolve().parents[3]
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True, timeout=60)


def test_every_public_name_resolves() -> None:
    import ml.training

    for name in ml.training.__all__:
        assert getattr(ml.training, name) is not None
