"""Building a dataset: messages in, JSONL lines out, as a stream.

The pipeline, in order: message filters (kind, sender, time range, message-scope labels), PII
scrubbing, sessions and turns (`conversation`), then per example: placeholder-only replies,
reply length, example-scope labels, duplicates, the eval split and the format.

Determinism: nothing depends on the process (no salted hashes, no set iteration order in the
output, no clock): the same spec on the same ordered messages gives the same bytes.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, BinaryIO, Final, Literal

import orjson

from ml.datasets.conversation import Conversations, Exchange
from ml.datasets.dedupe import Deduper, DuplicateKind, normalize
from ml.datasets.formats import Turn, render_line
from ml.datasets.labels import LabelTally
from ml.datasets.messages import KIND_PLACEHOLDERS, UNSPOKEN_KINDS, DatasetMessage
from ml.datasets.pii import Scrubber
from ml.datasets.spec import DatasetSpec
from ml.datasets.tokens import approx_tokens

Split = Literal["train", "eval"]

_WRITE_CHUNK: Final = 1 << 16
# Examples are screened one by one, then deduplicated in batches (near-duplicate hashing is
# vectorised over a batch). Batches start small so that a preview reads few messages.
_MAX_BATCH: Final = 128
PROGRESS_EVERY: Final = 10_000


class DatasetInputError(ValueError):
    """A message the builder cannot read (naive timestamp, unknown kind)."""


class RenderedExample:
    """One example as written: its split, its JSON object and line, and what it came from.

    `turns` is the example as (role, content) pairs, "system" first when there is one, with
    placeholders such as <手机号> and [图片] visible: what a preview shows. `record` (the line's
    JSON object), `message_ids` and `labels` (the union over the example's messages) are worked
    out when asked for.
    """

    __slots__ = ("_exchange", "_tally", "_turns", "line", "split", "tokens")

    def __init__(
        self,
        split: Split,
        line: bytes,
        tokens: int,
        exchange: Exchange,
        tally: LabelTally,
        turns: list[Turn],
    ) -> None:
        self.split: Split = split
        self.line = line
        self.tokens = tokens
        self._exchange = exchange
        self._tally = tally
        self._turns = turns

    @property
    def record(self) -> dict[str, Any]:
        record: dict[str, Any] = orjson.loads(self.line)
        return record

    @property
    def turns(self) -> tuple[Turn, ...]:
        return tuple(self._turns)

    @property
    def message_ids(self) -> tuple[str, ...]:
        """The messages the example was made of, in order."""
        exchange = self._exchange
        ids = [i for block in (*exchange.context, exchange.prompt) for i in block.ids]
        ids.extend(exchange.completion_ids)
        return tuple(ids)

    @property
    def labels(self) -> dict[str, tuple[str, ...]]:
        labels = self._tally.map(self._exchange.label_mask)
        return {k: tuple(sorted(v)) for k, v in sorted(labels.items())}

    def __repr__(self) -> str:
        return f"RenderedExample(split={self.split!r}, record={self.record!r})"


@dataclass(slots=True)
class DatasetStats:
    """What a build read, wrote and dropped.

    - dropped_messages counts messages, by reason: empty, unspoken (system and recall
      messages), non_text, sender, time, label;
    - dropped_examples counts persona replies that did not become examples, by reason:
      no_prompt, placeholder_only, too_short, too_long, label, duplicate_exact, duplicate_near;
    - scrubbed counts PII replacements by type in the messages that passed the filters;
    - label_counts (and `labels`, the same nested as key -> value -> count) counts the written
      examples carrying each label, kept by `label_tally`;
    - turns and approx_tokens (see `tokens.approx_tokens`; system prompt included) sum over the
      written examples.
    """

    messages: int = 0
    sessions: int = 0
    train_examples: int = 0
    eval_examples: int = 0
    turns: int = 0
    approx_tokens: int = 0
    scrubbed: dict[str, int] = field(default_factory=dict)
    label_tally: LabelTally = field(default_factory=LabelTally)
    dropped_messages: dict[str, int] = field(default_factory=dict)
    dropped_examples: dict[str, int] = field(default_factory=dict)
    train_sha256: str = ""
    eval_sha256: str = ""
    train_bytes: int = 0
    eval_bytes: int = 0

    @property
    def examples(self) -> int:
        return self.train_examples + self.eval_examples

    @property
    def label_counts(self) -> Counter[tuple[str, str]]:
        return self.label_tally.counts()

    @property
    def labels(self) -> dict[str, dict[str, int]]:
        """Label key -> value -> how many written examples carry it, sorted."""
        nested: dict[str, dict[str, int]] = {}
        for (key, value), count in sorted(self.label_counts.items()):
            nested.setdefault(key, {})[value] = count
        return nested

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with sorted keys in the nested counts."""
        return {
            "messages": self.messages,
            "sessions": self.sessions,
            "examples": self.examples,
            "train_examples": self.train_examples,
            "eval_examples": self.eval_examples,
            "turns": self.turns,
            "approx_tokens": self.approx_tokens,
            "scrubbed": dict(sorted(self.scrubbed.items())),
            "labels": self.labels,
            "dropped_messages": dict(sorted(self.dropped_messages.items())),
            "dropped_examples": dict(sorted(self.dropped_examples.items())),
            "train_sha256": self.train_sha256,
            "eval_sha256": self.eval_sha256,
            "train_bytes": self.train_bytes,
            "eval_bytes": self.eval_bytes,
        }


def _count(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


class _Examples:
    """Turns exchanges into rendered examples, or counts why not."""

    def __init__(self, spec: DatasetSpec, stats: DatasetStats, scrubber: Scrubber | None) -> None:
        self._spec = spec
        self._stats = stats
        self._format = spec.format
        self._system = spec.system_prompt
        self._system_tokens = approx_tokens(spec.system_prompt) if spec.system_prompt else 0
        self._min_length = spec.filters.min_length
        self._max_length = spec.filters.max_length
        self._conditions = [c for c in spec.filters.labels if c.scope == "example"]
        dedupe = spec.dedupe
        self._deduper = (
            Deduper(exact=dedupe.exact, near=dedupe.near, min_chars=dedupe.min_chars)
            if dedupe.exact or dedupe.near
            else None
        )
        # Copied for each example: cheaper than keying a new hash each time.
        self._keyed = hashlib.blake2b(digest_size=16, key=spec.split.seed.to_bytes(8, "little"))
        self._eval_below = int(spec.split.eval_ratio * 2**64)
        self._names: dict[str, str] = {}
        self._scrubber = scrubber

    def _display_name(self, sender: str) -> str:
        """A speaker's name in a group turn, with listed names scrubbed like the text."""
        name = self._names.get(sender)
        if name is None:
            name = sender if self._scrubber is None else self._scrubber.scrub(sender)[0]
            if len(self._names) < 100_000:
                self._names[sender] = name
        return name

    def screen(self, exchange: Exchange) -> bool:
        """The checks that need no other example (placeholders, length, labels).

        An exchange that passes gets its dedupe key (the normalized prompt and reply) and the
        keyed digest of that key (8 bytes for dedupe, 8 for the split).
        """
        dropped = self._stats.dropped_examples
        completion = exchange.completion
        if not exchange.has_text:
            _count(dropped, "placeholder_only")
            return False
        if len(completion) < self._min_length:
            _count(dropped, "too_short")
            return False
        if self._max_length is not None and len(completion) > self._max_length:
            _count(dropped, "too_long")
            return False
        if self._conditions:
            as_map = self._stats.label_tally.map(exchange.label_mask)
            for condition in self._conditions:
                if not condition.matches(as_map):
                    _count(dropped, "label")
                    return False
        key = exchange.key = normalize(exchange.prompt.text(self._display_name), completion)
        hasher = self._keyed.copy()
        hasher.update(key.encode())
        exchange.digest = hasher.digest()
        return True

    def finish(self, batch: list[Exchange]) -> Iterator[RenderedExample]:
        """Duplicates, split and format for screened examples, in order.

        A generator, so that each example is written and freed before the next is made: a
        batch of rendered examples alive at once would wake the cyclic garbage collector.
        """
        if self._deduper is None:
            verdicts: list[DuplicateKind | None] = [None] * len(batch)
        else:
            verdicts = self._deduper.check_many(
                [(e.key, int.from_bytes(e.digest[:8], "little")) for e in batch]
            )
        dropped = self._stats.dropped_examples
        for exchange, verdict in zip(batch, verdicts, strict=True):
            if verdict is None:
                yield self._render(exchange)
            else:
                _count(dropped, verdict)

    def _render(self, exchange: Exchange) -> RenderedExample:
        name = self._display_name
        split: Split = (
            "eval" if int.from_bytes(exchange.digest[8:], "little") < self._eval_below else "train"
        )
        context = exchange.context
        turns: list[Turn] = [b.turn(name) for b in context]
        turns.append(exchange.prompt.turn(name))
        turns.append(("assistant", exchange.completion))
        line = render_line(self._format, self._system, turns)
        tokens = self._system_tokens + approx_tokens(exchange.completion)
        tokens += exchange.prompt.tokens(name) + sum([b.tokens(name) for b in context])

        stats = self._stats
        if split == "train":
            stats.train_examples += 1
        else:
            stats.eval_examples += 1
        stats.turns += len(turns)
        stats.approx_tokens += tokens
        label_mask = exchange.label_mask
        if label_mask:
            stats.label_tally.count(label_mask)

        if self._system:
            turns.insert(0, ("system", self._system))
        return RenderedExample(
            split=split,
            line=line,
            tokens=tokens,
            exchange=exchange,
            tally=stats.label_tally,
            turns=turns,
        )


def _no_precheck(text: str) -> None:  # PII scrubbing is off
    return None


def iter_examples(
    messages: Iterable[DatasetMessage],
    spec: DatasetSpec,
    stats: DatasetStats | None = None,
    progress: Callable[[DatasetStats], None] | None = None,
) -> Generator[RenderedExample, None, None]:
    """The examples of a dataset, in order, as they are found; stop it whenever you like.

    `stats`, if given, is updated as the iteration goes; `progress`, if given, is called with
    it every PROGRESS_EVERY messages read.
    """
    stats = stats if stats is not None else DatasetStats()
    filters = spec.filters
    persona_names = frozenset(spec.persona)
    senders = frozenset(filters.senders)
    excluded = frozenset(filters.exclude_senders)
    since, until = filters.since, filters.until
    message_conditions = [c for c in filters.labels if c.scope == "message"]
    placeholders = filters.non_text == "placeholder"
    scrubber = Scrubber(spec.pii.names) if spec.pii.enabled else None
    scrub = scrubber.scrub_into if scrubber is not None else None
    # One scan rules most lines out, without a call into the scrubber.
    precheck = scrubber.precheck if scrubber is not None else _no_precheck
    scrubbed = stats.scrubbed
    dropped = stats.dropped_messages
    label_mask_of = stats.label_tally.mask
    conversations = Conversations(
        gap=spec.session_gap,
        merge=spec.merge_consecutive,
        max_context_turns=spec.max_context_turns,
    )
    add = conversations.add
    examples = _Examples(spec, stats, scrubber)
    screen = examples.screen
    batch: list[Exchange] = []
    batch_limit = 1

    start = read = stats.messages  # counted locally, stored in stats before each yield
    report_at = start + PROGRESS_EVERY if progress is not None else -1
    try:
        for read, message in enumerate(messages, start + 1):
            if read == report_at and progress is not None:
                stats.messages = read
                progress(stats)
                report_at += PROGRESS_EVERY
            kind = message.kind
            if kind == "text":
                text = message.text.strip()
                if not text:
                    _count(dropped, "empty")
                    continue
                is_text = True
            elif kind in UNSPOKEN_KINDS:
                _count(dropped, "unspoken")
                continue
            elif kind not in KIND_PLACEHOLDERS:
                raise DatasetInputError(f"message {message.id}: unknown kind {kind!r}")
            elif placeholders:
                text = KIND_PLACEHOLDERS[kind]
                is_text = False
            else:
                _count(dropped, "non_text")
                continue

            sender = message.sender
            persona = sender in persona_names if persona_names else message.is_self is True
            if (excluded and sender in excluded) or (
                senders and not persona and sender not in senders
            ):
                _count(dropped, "sender")
                continue
            timestamp = message.timestamp
            if timestamp.tzinfo is None:
                raise DatasetInputError(f"message {message.id}: timestamp has no timezone")
            if (since is not None and timestamp < since) or (
                until is not None and timestamp >= until
            ):
                _count(dropped, "time")
                continue
            labels = message.labels
            if message_conditions and not all(c.matches(labels) for c in message_conditions):
                _count(dropped, "label")
                continue
            label_mask = label_mask_of(labels) if labels else 0
            if scrub is not None and is_text and precheck(text) is not None:
                text = scrub(text, scrubbed)

            exchange = add(
                message.upload_id, timestamp, sender, persona, text, is_text, label_mask, message.id
            )
            if exchange is not None and screen(exchange):
                batch.append(exchange)
                if len(batch) >= batch_limit:
                    stats.messages = read
                    yield from examples.finish(batch)
                    batch = []
                    batch_limit = min(2 * batch_limit, _MAX_BATCH)

        exchange = conversations.end_session()
        if exchange is not None and screen(exchange):
            batch.append(exchange)
        stats.messages = read
        yield from examples.finish(batch)
    finally:
        stats.messages = read
        stats.sessions = conversations.sessions
        if conversations.no_prompt:
            stats.dropped_examples["no_prompt"] = conversations.no_prompt


def preview(
    messages: Iterable[DatasetMessage], spec: DatasetSpec, first: int
) -> list[RenderedExample]:
    """The first `first` examples the spec makes, reading only as many messages as it needs."""
    if first < 0:
        raise ValueError("first must be >= 0")
    examples = iter_examples(messages, spec)
    try:
        return list(islice(examples, first))
    finally:
        examples.close()


class _Sink:
    """One output stream: buffered writes, a running sha256 and a byte count."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._pending: list[bytes] = []
        self._size = 0
        self.sha256 = hashlib.sha256()
        self.written = 0

    def write(self, line: bytes) -> None:
        self._pending.append(line)
        self._size += len(line)
        if self._size >= _WRITE_CHUNK:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            chunk = b"".join(self._pending)
            self._pending.clear()
            self._size = 0
            self.sha256.update(chunk)
            self._out.write(chunk)
            self.written += len(chunk)


def build_dataset(
    messages: Iterable[DatasetMessage],
    spec: DatasetSpec,
    train_out: BinaryIO,
    eval_out: BinaryIO,
    progress: Callable[[DatasetStats], None] | None = None,
) -> DatasetStats:
    """Writes the dataset as JSONL (UTF-8) to the two streams, as it goes; returns its stats.

    `progress`, if given, is called with the running stats every PROGRESS_EVERY messages read
    and once at the end; raising from it stops the build.
    """
    stats = DatasetStats()
    train, evaluation = _Sink(train_out), _Sink(eval_out)
    for example in iter_examples(messages, spec, stats, progress):
        (train if example.split == "train" else evaluation).write(example.line)
    train.flush()
    evaluation.flush()
    stats.train_sha256 = train.sha256.hexdigest()
    stats.eval_sha256 = evaluation.sha256.hexdigest()
    stats.train_bytes = train.written
    stats.eval_bytes = evaluation.written
    if progress is not None:
        progress(stats)
    return stats
