"""From a stream of kept messages to exchanges: a reply of the persona and what led to it.

Messages are cut into sessions (a new upload, or a silence longer than the gap), and inside a
session into blocks: a block is a maximal run of messages from one side, the persona or the
others. Chat-format datasets need user and assistant turns to alternate, so a block is one
turn: in a group chat, consecutive messages of several other people become one user turn with
each speaker's name in front of their lines.

An exchange is made for each reply of the persona that has a user turn before it in the same
session: with merging on, the reply is the persona's whole block; with merging off, each persona
message is a reply of its own to the latest user turn. Only the current session's last few blocks
are kept: memory does not grow with the number of messages.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from ml.datasets.tokens import approx_tokens

Labels = Mapping[str, Sequence[str]]


class Block:
    """One side's consecutive messages in a session: one turn of a conversation."""

    __slots__ = ("_labels", "_text", "_tokens", "has_text", "ids", "labels", "persona", "runs")

    def __init__(self, persona: bool) -> None:
        self.persona = persona
        self.runs: list[tuple[str, list[str]]] = []  # (sender, texts) per run of one sender
        self.labels: list[Labels] = []
        self.ids: list[str] = []
        self.has_text = False  # anything besides placeholders such as [图片]
        self._text: str | None = None
        self._tokens = -1
        self._labels: frozenset[tuple[str, str]] | None = None

    def add(self, sender: str, text: str, is_text: bool, labels: Labels, message_id: str) -> None:
        runs = self.runs
        if runs and runs[-1][0] == sender:
            runs[-1][1].append(text)
        else:
            runs.append((sender, [text]))
        if labels:
            self.labels.append(labels)
            self._labels = None
        self.ids.append(message_id)
        if is_text:
            self.has_text = True
        self._text = None
        self._tokens = -1

    def text(self, display_name: Callable[[str], str]) -> str:
        """The turn's content: lines joined by newlines, speakers named if there are several."""
        if self._text is None:
            runs = self.runs
            if len(runs) == 1:
                self._text = "\n".join(runs[0][1])
            elif self.persona or len({sender for sender, _ in runs}) == 1:
                self._text = "\n".join([t for _, texts in runs for t in texts])
            else:
                self._text = "\n".join(
                    [f"{display_name(sender)}: " + "\n".join(texts) for sender, texts in runs]
                )
        return self._text

    def tokens(self, display_name: Callable[[str], str]) -> int:
        """`approx_tokens` of the turn's text, remembered: a turn serves several examples."""
        if self._tokens < 0:
            self._tokens = approx_tokens(self.text(display_name))
        return self._tokens

    def label_pairs(self) -> frozenset[tuple[str, str]]:
        """Every (key, value) label any message of the turn has."""
        if self._labels is None:
            self._labels = label_pairs(self.labels)
        return self._labels


def label_pairs(sources: Sequence[Labels]) -> frozenset[tuple[str, str]]:
    return frozenset(
        [(key, value) for labels in sources for key, values in labels.items() for value in values]
    )


class Exchange:
    """A persona reply and the turns before it (context, then the prompt turn)."""

    __slots__ = (
        "completion",
        "completion_ids",
        "completion_labels",
        "context",
        "has_text",
        "prompt",
    )

    def __init__(
        self,
        context: list[Block],
        prompt: Block,
        completion: str,
        has_text: bool,
        completion_labels: list[Labels],
        completion_ids: list[str],
    ) -> None:
        self.context = context  # alternating turns, starting with a user turn
        self.prompt = prompt
        self.completion = completion
        self.has_text = has_text
        self.completion_labels = completion_labels
        self.completion_ids = completion_ids


class Conversations:
    """Feeds on kept messages in order; hands back an exchange whenever a reply is complete."""

    def __init__(self, *, gap: timedelta, merge: bool, max_context_turns: int) -> None:
        self._gap = gap
        self._merge = merge
        self._closed: deque[Block] = deque(maxlen=max_context_turns + 1)
        self._open: Block | None = None
        self._upload: str | None = None
        self._last: datetime | None = None
        self.sessions = 0
        self.no_prompt = 0  # replies with no user turn before them in their session

    def add(
        self,
        upload_id: str,
        timestamp: datetime,
        sender: str,
        persona: bool,
        text: str,
        is_text: bool,
        labels: Labels,
        message_id: str,
    ) -> Exchange | None:
        exchange = None
        last = self._last
        if upload_id != self._upload or last is None or timestamp - last > self._gap:
            exchange = self.end_session()
            self._upload = upload_id
            self.sessions += 1
        self._last = timestamp
        block = self._open
        if block is not None and block.persona == persona:
            block.add(sender, text, is_text, labels, message_id)
            if persona and not self._merge:
                return self._exchange(text, is_text, [labels] if labels else [], [message_id])
            return exchange
        if block is not None:
            if block.persona:
                exchange = self._close_reply(block)
            self._closed.append(block)
        block = self._open = Block(persona)
        block.add(sender, text, is_text, labels, message_id)
        if persona and not self._merge:
            reply = self._exchange(text, is_text, [labels] if labels else [], [message_id])
            return exchange if reply is None else reply  # one of them is None
        return exchange

    def end_session(self) -> Exchange | None:
        """Closes the current session (also call it at the end of the stream)."""
        block = self._open
        exchange = None
        if block is not None and block.persona:
            exchange = self._close_reply(block)
        self._open = None
        self._closed.clear()
        self._last = None
        return exchange

    def _close_reply(self, block: Block) -> Exchange | None:
        if not self._merge:
            return None  # each of its messages was a reply already
        # A persona turn never names its speakers: its text is the reply as it will appear in
        # later examples' context (and it is remembered for them).
        return self._exchange(block.text(str), block.has_text, block.labels, block.ids)

    def _exchange(
        self, completion: str, has_text: bool, labels: list[Labels], ids: list[str]
    ) -> Exchange | None:
        closed = self._closed
        if not closed:
            self.no_prompt += 1
            return None
        context = list(closed)
        prompt = context.pop()
        if context and context[0].persona:
            del context[0]  # a conversation starts with the user's turn
        return Exchange(context, prompt, completion, has_text, labels, ids)
