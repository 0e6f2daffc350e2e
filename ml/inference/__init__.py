"""Chat inference on local base models and LoRA adapters, streamed token by token.

Example::

    engine = Engine(max_adapters=8)
    request = ChatRequest(
        base_model="/cache/qwen",
        adapter="/cache/ad1",
        adapter_id="ad1",
        messages=[{"role": "user", "content": "你好"}],
        temperature=0,
    )
    for chunk in engine.generate(request, cancelled=lambda: False):
        ...  # chunk.delta; the last chunk: done, finish_reason, usage, error
"""

from ml.inference.chunk import Chunk, ChunkDict, FinishReason, Usage, UsageDict
from ml.inference.engine import Engine
from ml.inference.errors import (
    AdapterNotFoundError,
    InferenceError,
    InvalidRequestError,
    ModelLoadError,
    ModelNotFoundError,
    PromptTooLongError,
)
from ml.inference.request import ChatRequest, Message

__all__ = [
    "AdapterNotFoundError",
    "ChatRequest",
    "Chunk",
    "ChunkDict",
    "Engine",
    "FinishReason",
    "InferenceError",
    "InvalidRequestError",
    "Message",
    "ModelLoadError",
    "ModelNotFoundError",
    "PromptTooLongError",
    "Usage",
    "UsageDict",
]
