"""A malformed request is refused on construction, with a message that names the field."""

from __future__ import annotations

from typing import Any

import pytest

from ml.inference import ChatRequest, InvalidRequestError

MESSAGES = [{"role": "user", "content": "hi"}]


def make(**overrides: Any) -> ChatRequest:
    fields: dict[str, Any] = {"base_model": "/models/base", "messages": MESSAGES}
    fields.update(overrides)
    return ChatRequest(**fields)


def test_defaults_and_normalisation() -> None:
    request = make(stop="###")
    assert request.stop == ("###",)
    assert request.messages == ({"role": "user", "content": "hi"},)
    assert (request.temperature, request.top_p, request.max_tokens) == (1.0, 1.0, None)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"messages": []}, "messages"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "user"}]}, "content"),
        ({"messages": [{"content": "hi"}]}, "role"),
        ({"messages": ["hi"]}, "messages"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 2.5}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"stop": ["ok", ""]}, "stop"),
        ({"seed": "7"}, "seed"),
        ({"seed": 2**64}, "seed"),
        ({"adapter_id": "a1"}, "adapter_id"),
    ],
)
def test_invalid_fields_are_refused(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequestError, match=field):
        make(**overrides)
