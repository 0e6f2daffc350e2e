"""Stable message keys, so that overlapping exports of one chat can be recognised."""

from __future__ import annotations

from hashlib import sha1
from zlib import crc32

_UNIT = "\x1f"


class KeyMaker:
    """Makes ``id:<server id>`` or ``h:<epoch>:<crc32 of sender, 0x1f, text>`` keys.

    A hashed key names the second the message was sent plus a CRC of who sent what: two
    different messages collide only if they share the second and the CRC (odds about 1 in 4
    billion per pair within one second). Identical messages within one second (a user
    sending "好" twice) get an occurrence number, counted within that second only, so two
    exports that both contain that second agree and memory stays bounded.
    """

    __slots__ = ("epoch", "first", "seen")

    def __init__(self) -> None:
        self.epoch = -1
        self.first = ""
        self.seen: dict[str, int] | None = None

    def hashed(self, sender: str, epoch: int, text: str) -> str:
        key = f"h:{epoch}:{crc32(f'{sender}{_UNIT}{text}'.encode())}"
        if epoch != self.epoch:
            self.epoch = epoch
            self.first = key
            self.seen = None
            return key
        return self.again(key)

    def again(self, key: str) -> str:
        """``key`` made unique among the keys of the current second (its first is counted)."""
        seen = self.seen
        if seen is None:
            seen = self.seen = {self.first: 1}
        count = seen.get(key, 0)
        seen[key] = count + 1
        return f"{key}:{count}" if count else key

    @staticmethod
    def server(message_id: str) -> str:
        if len(message_id) > 61:  # keys stay within 64 characters, whatever the input says
            return "id:" + sha1(message_id.encode(), usedforsecurity=False).hexdigest()
        return "id:" + message_id
