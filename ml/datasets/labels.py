"""Labels as bits of an int, and how many written examples carry each label."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from typing import Final

LabelPair = tuple[str, str]  # (key, value), e.g. ("topic", "工资纠纷")


class LabelTally:
    """Gives each (key, value) label a bit, and counts written examples by label.

    A message's labels become one int (its mask) as it is read, so that a turn's or an
    example's labels are the OR of its messages' masks: no set per example. Written examples
    are counted by mask, one dict update each; the counts are spread over the pairs when read,
    or when there are many distinct masks (memory stays bounded).
    """

    SPREAD_AT: Final = 4096

    def __init__(self) -> None:
        self._bits: dict[LabelPair, int] = {}
        self._pairs: list[LabelPair] = []
        self._by_mask: dict[int, int] = {}
        self._counts: Counter[LabelPair] = Counter()

    def mask(self, labels: Mapping[str, Collection[str]]) -> int:
        """The mask of one message's labels (key -> values)."""
        mask = 0
        bits = self._bits
        for key, values in labels.items():
            for value in values:
                bit = bits.get((key, value))
                if bit is None:
                    bit = bits[key, value] = 1 << len(self._pairs)
                    self._pairs.append((key, value))
                mask |= bit
        return mask

    def pairs(self, mask: int) -> list[LabelPair]:
        """The (key, value) labels in a mask, in the order they were first seen."""
        pairs = []
        while mask:
            low = mask & -mask
            pairs.append(self._pairs[low.bit_length() - 1])
            mask ^= low
        return pairs

    def map(self, mask: int) -> dict[str, set[str]]:
        """The labels in a mask as key -> values."""
        labels: dict[str, set[str]] = {}
        for key, value in self.pairs(mask):
            labels.setdefault(key, set()).add(value)
        return labels

    def count(self, mask: int) -> None:
        """Counts one written example carrying the labels in `mask`."""
        by_mask = self._by_mask
        by_mask[mask] = by_mask.get(mask, 0) + 1
        if len(by_mask) >= self.SPREAD_AT:
            self._spread()

    def counts(self) -> Counter[LabelPair]:
        """How many counted examples carry each (key, value) label."""
        self._spread()
        return self._counts

    def _spread(self) -> None:
        counts = self._counts
        for mask, examples in self._by_mask.items():
            for pair in self.pairs(mask):
                counts[pair] += examples
        self._by_mask.clear()
