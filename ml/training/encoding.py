"""Chat turns → token ids with a target mask: loss falls on the assistant's replies only.

With a chat template, each conversation is rendered prefix by prefix: the text up to an
assistant turn *with the generation prompt* (exactly what an inference server feeds the model)
is context, the rest of that turn (reply, end-of-turn token) is target. Each piece is tokenized
on its own, so the context tokens at training time are the tokens the model sees at inference.
A template whose renderings are not prefixes of each other (some drop old reasoning) trains on
the last reply only. Without a template the turns are written one per line, as ml.inference
prompts such a model: the newline before a reply, the reply and the final eos are targets.

Sequences longer than `max_seq_length` are cut at the end; when that would leave no target
token, the start is cut instead (the reply and its nearest context stay). Examples left with no
target are skipped and counted.
"""

from __future__ import annotations

import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ml.training.errors import TrainingError
from ml.training.formats import Chat, DatasetFormat, dataset_format, read_conversations

# A piece of an example: text to tokenize, or one token id; and whether it is a target.
Segment = tuple[str | int, bool]
_CHUNK = 512  # conversations tokenized per batch call


@dataclass(frozen=True)
class EncodedExample:
    """One example: token ids and, per token, whether the loss falls on it."""

    ids: list[int]
    targets: list[bool]
    truncated: bool


@dataclass
class DatasetStats:
    """What encoding a dataset file found; goes into metrics and the model card."""

    format: DatasetFormat | None = None
    examples: int = 0
    skipped: int = 0
    truncated: int = 0
    tokens: int = 0
    target_tokens: int = 0
    max_length: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EncodedDataset:
    """Token ids of every example, flat (int32), with a target flag per token and offsets.

    About five bytes per token: a dataset of 100 million tokens takes about 500 MB.
    """

    tokens: npt.NDArray[np.int32]
    targets: npt.NDArray[np.bool_]
    offsets: npt.NDArray[np.int64]
    stats: DatasetStats

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> npt.NDArray[np.int64]:
        return np.diff(self.offsets)

    def example(self, index: int) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.bool_]]:
        start, end = self.offsets[index], self.offsets[index + 1]
        return self.tokens[start:end], self.targets[start:end]


class ChatEncoder:
    """Turns chats into (token ids, target flags) with one tokenizer, as training and
    inference both need them."""

    def __init__(self, tokenizer: Any, max_seq_length: int) -> None:
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        self.uses_template = bool(getattr(tokenizer, "chat_template", None))
        eos = tokenizer.eos_token_id
        if eos is None and not self.uses_template:
            raise TrainingError(
                "the tokenizer has neither a chat template nor an eos token: "
                "a reply's end cannot be marked"
            )
        self.eos_id: int | None = eos
        # What the tokenizer puts in front of plain text by itself (bos for Llama, nothing for
        # Qwen): template-less examples start with it, as a plain prompt at inference does.
        self.special_prefix: list[int] = list(tokenizer("")["input_ids"])

    def prompt_ids(self, chat: Chat) -> list[int]:
        """Token ids that make the model write the next assistant turn (for generation)."""
        if self.uses_template:
            return self._tokenize([self._render(chat, generation_prompt=True)])[0]
        text = "\n".join(message["content"] for message in chat)
        return self.special_prefix + self._tokenize([text])[0]

    def encode(self, chat: Chat) -> EncodedExample | None:
        """One conversation's ids and target flags, truncated; None when no target is left."""
        return next(self.encode_many([chat]))

    def encode_many(self, chats: Sequence[Chat]) -> Iterator[EncodedExample | None]:
        """Encode several conversations with one tokenizer call (much faster than one each)."""
        all_segments = [self.segments(chat) for chat in chats]
        texts = [piece for segs in all_segments for piece, _ in segs if isinstance(piece, str)]
        tokenized = iter(self._tokenize(texts))
        for segs in all_segments:
            yield self._truncate(*self._assemble(segs, tokenized))

    def segments(self, chat: Chat) -> list[Segment]:
        """The conversation as pieces to tokenize (or token ids), each context or target."""
        if not self.uses_template:
            return self._plain_segments(chat)
        return self._template_segments(chat) or self._last_reply_segments(chat)

    def _template_segments(self, chat: Chat) -> list[Segment] | None:
        segments: list[Segment] = []
        done = ""
        for i, message in enumerate(chat):
            if message["role"] != "assistant":
                continue
            try:
                before = self._render(chat[:i], generation_prompt=True)
            except TrainingError:
                if i:
                    return None
                before = ""  # templates may refuse an empty conversation
            after = self._render(chat[: i + 1], generation_prompt=False)
            if not (before.startswith(done) and after.startswith(before)):
                return None
            segments += [(before[len(done) :], False), (after[len(before) :], True)]
            done = after
        return segments

    def _last_reply_segments(self, chat: Chat) -> list[Segment]:
        before = self._render(chat[:-1], generation_prompt=True)
        after = self._render(chat, generation_prompt=False)
        if after.startswith(before):
            return [(before, False), (after[len(before) :], True)]
        reply: list[Segment] = [(chat[-1]["content"], True)]
        if self.eos_id is not None:
            reply.append((self.eos_id, True))
        return [(before, False), *reply]

    def _plain_segments(self, chat: Chat) -> list[Segment]:
        # As ml.inference renders a chat for a model without a template: the turns' texts one
        # per line. The model writes the newline that opens its reply, and eos at the end.
        segments: list[Segment] = [(token, False) for token in self.special_prefix]
        for i, message in enumerate(chat):
            text = message["content"] if i == 0 else "\n" + message["content"]
            segments.append((text, message["role"] == "assistant"))
        if chat and chat[-1]["role"] == "assistant":
            assert self.eos_id is not None  # checked in __init__
            segments.append((self.eos_id, True))
        return segments

    def _render(self, chat: Chat, *, generation_prompt: bool) -> str:
        try:
            text = self.tokenizer.apply_chat_template(
                chat, tokenize=False, add_generation_prompt=generation_prompt
            )
        except Exception as exc:  # jinja raises its own errors, e.g. "roles must alternate"
            raise TrainingError(
                f"the chat template cannot render this conversation: {exc}"
            ) from None
        return str(text)

    def _tokenize(self, texts: list[str]) -> list[list[int]]:
        if not texts:
            return []
        out = self.tokenizer(texts, add_special_tokens=False, return_attention_mask=False)
        return list(out["input_ids"])

    @staticmethod
    def _assemble(
        segments: list[Segment], tokenized: Iterator[list[int]]
    ) -> tuple[list[int], list[bool]]:
        ids: list[int] = []
        flags: list[bool] = []
        for piece, target in segments:
            part = next(tokenized) if isinstance(piece, str) else [piece]
            ids.extend(part)
            flags.extend([target] * len(part))
        return ids, flags

    def _truncate(self, ids: list[int], flags: list[bool]) -> EncodedExample | None:
        limit = self.max_seq_length
        truncated = len(ids) > limit
        if truncated:
            if any(flags[1:limit]):
                ids, flags = ids[:limit], flags[:limit]
            else:
                ids, flags = ids[-limit:], flags[-limit:]
        # A target at position 0 has no context to be predicted from: it does not count.
        if not any(flags[1:]):
            return None
        return EncodedExample(ids, flags, truncated)


def encode_dataset(path: str | Path, encoder: ChatEncoder) -> EncodedDataset:
    """Read and tokenize a JSONL dataset file, streaming it in chunks."""
    stats = DatasetStats(format=dataset_format(path))
    tokens = array.array("i")
    targets = array.array("b")
    offsets = array.array("q", [0])
    for chunk in _chunks(read_conversations(path), _CHUNK):
        for example in encoder.encode_many(chunk):
            if example is None:
                stats.skipped += 1
                continue
            tokens.extend(example.ids)
            targets.extend(example.targets)
            offsets.append(len(tokens))
            stats.examples += 1
            stats.truncated += example.truncated
            stats.target_tokens += sum(example.targets[1:])
            stats.max_length = max(stats.max_length, len(example.ids))
    stats.tokens = len(tokens)
    return EncodedDataset(
        tokens=np.frombuffer(tokens, dtype=np.int32),
        targets=np.frombuffer(targets, dtype=np.int8).astype(np.bool_),
        offsets=np.frombuffer(offsets, dtype=np.int64),
        stats=stats,
    )


def _chunks(items: Iterable[Chat], size: int) -> Iterator[list[Chat]]:
    chunk: list[Chat] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
