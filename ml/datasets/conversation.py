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
from collections.abc import Callable
from datetime import datetime, timedelta

from ml.datasets.tokens import approx_tokens


class Block:
    """One side's consecutive messages in a session: one turn of a conversation.

    Made with its first message. Lean on purpose (a few lists, no object per message): a build
    keeps thousands of these alive between garbage collections.
    """

    __slots__ = (
        "_text",
        "_tokens",
        "_turn",
        "has_text",
        "ids",
        "label_mask",
        "persona",
        "senders",
        "texts",
    )

    def __init__(
        self,
        persona: bool,
        sender: str,
        text: str,
        is_text: bool,
        label_mask: int,
        message_id: str,
    ) -> None:
        self.persona = persona
        self.texts = [text]
        # One sender's name while there is only one; a name per message once there are more.
        self.senders: str | list[str] = sender
        # The labels of its messages, one bit per (key, value) pair: see build.LabelTally.
        self.label_mask = label_mask
        self.ids = [message_id]
        self.has_text = is_text  # anything besides placeholders such as [图片]
        self._text: str | None = None
        self._tokens = -1
        self._turn: tuple[str, str] | None = None

    def add(self, sender: str, text: str, is_text: bool, label_mask: int, message_id: str) -> None:
        senders = self.senders
        if isinstance(senders, list):
            senders.append(sender)
        elif sender != senders:
            self.senders = [senders] * len(self.texts) + [sender]
        self.texts.append(text)
        self.label_mask |= label_mask
        self.ids.append(message_id)
        if is_text:
            self.has_text = True
        self._text = None
        self._tokens = -1
        self._turn = None

    def text(self, display_name: Callable[[str], str]) -> str:
        """The turn's content: lines joined by newlines, speakers named if there are several."""
        if self._text is None:
            senders = self.senders
            if self.persona or isinstance(senders, str):
                self._text = "\n".join(self.texts)
            else:
                runs: list[str] = []
                current, lines = senders[0], [self.texts[0]]
                for sender, text in zip(senders[1:], self.texts[1:], strict=True):
                    if sender == current:
                        lines.append(text)
                    else:
                        runs.append(f"{display_name(current)}: " + "\n".join(lines))
                        current, lines = sender, [text]
                runs.append(f"{display_name(current)}: " + "\n".join(lines))
                self._text = "\n".join(runs)
        return self._text

    def turn(self, display_name: Callable[[str], str]) -> tuple[str, str]:
        """(role, content) of the turn, role "assistant" for the persona, else "user"."""
        if self._turn is None:
            self._turn = ("assistant" if self.persona else "user", self.text(display_name))
        return self._turn

    def tokens(self, display_name: Callable[[str], str]) -> int:
        """`approx_tokens` of the turn's text, remembered: a turn serves several examples."""
        if self._tokens < 0:
            self._tokens = approx_tokens(self.text(display_name))
        return self._tokens


class Exchange:
    """A persona reply and the turns before it (context, then the prompt turn)."""

    __slots__ = (
        "completion",
        "completion_ids",
        "completion_mask",
        "context",
        "digest",
        "has_text",
        "key",
        "prompt",
    )

    def __init__(
        self,
        context: list[Block],
        prompt: Block,
        completion: str,
        has_text: bool,
        completion_mask: int,
        completion_ids: list[str],
    ) -> None:
        self.context = context  # alternating turns, starting with a user turn
        self.prompt = prompt
        self.completion = completion
        self.has_text = has_text
        self.completion_mask = completion_mask  # the labels of the reply's messages
        self.completion_ids = completion_ids
        # Filled in by the dataset builder as it screens the exchange.
        self.key = ""
        self.digest = b""

    @property
    def label_mask(self) -> int:
        """The labels of all the example's messages, one bit per (key, value) pair."""
        mask = self.completion_mask | self.prompt.label_mask
        for block in self.context:
            mask |= block.label_mask
        return mask


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
        label_mask: int,
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
            block.add(sender, text, is_text, label_mask, message_id)
            if persona and not self._merge:
                return self._exchange(text, is_text, label_mask, [message_id])
            return exchange
        if block is not None:
            if block.persona:
                exchange = self._close_reply(block)
            self._closed.append(block)
        block = self._open = Block(persona, sender, text, is_text, label_mask, message_id)
        if persona and not self._merge:
            reply = self._exchange(text, is_text, label_mask, [message_id])
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
        return self._exchange(block.text(str), block.has_text, block.label_mask, block.ids)

    def _exchange(
        self,
        completion: str,
        has_text: bool,
        label_mask: int,
        ids: list[str],
    ) -> Exchange | None:
        closed = self._closed
        if not closed:
            self.no_prompt += 1
            return None
        context = list(closed)
        prompt = context.pop()
        if context and context[0].persona:
            del context[0]  # a conversation starts with the user's turn
        return Exchange(context, prompt, completion, has_text, label_mask, ids)
