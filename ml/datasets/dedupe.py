"""Exact and near-duplicate detection over a stream of examples, in small memory.

Both work on the normalized text of an example (`normalize`: lower case, letters, digits and
underscores only, full-width letters and digits folded to ASCII, and a unit of one or two characters
repeated back to back kept once, so that 哈哈哈哈 / 哈哈, 好的好的 / 好的 and 嗯嗯嗯 / 嗯 are the
same).

Exact: a 64-bit keyed digest of the normalized text, kept in a set (about 70 bytes each).

Near: MinHash over the character 3-grams, with locality-sensitive hashing. SimHash was tried
first and rejected: on chat-length text one inserted character moves a 64-bit SimHash by about
ten bits, so any threshold that catches such edits also matches unrelated messages. Here 40
min-hashes are cut into 10 bands of 4; each band's values hash to one key, and a text is a near
copy of an earlier one when at least 2 of its 10 band keys were seen before. For two texts whose
3-gram sets have Jaccard similarity J, that happens with probability about 0.96 at J = 0.8,
0.73 at J = 0.7, 0.13 at J = 0.5 and 0.003 at J = 0.3. Only texts of at least `min_chars`
normalized characters take part; each costs 10 ints in a set (about 700 bytes).

Everything is computed from the text alone (no per-process hash seed), so a build is
byte-for-byte repeatable.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    pass

DuplicateKind = Literal["duplicate_exact", "duplicate_near"]

NUM_PERM: Final = 40
BANDS: Final = 10  # of NUM_PERM // BANDS = 4 rows, folded into one key
NEAR_MIN_BANDS: Final = 2

# Letters and digits stay (and NUL, which `normalize` puts between parts).
_NOISE: Final = re.compile(r"[^\w\x00]+")
_REPEAT: Final = re.compile(r"(.)\1+|(..)\2+")
# Two plain searches find most texts have no repeat at all, much faster than one sub.
_REPEAT_1: Final = re.compile(r"(.)\1")
_REPEAT_2: Final = re.compile(r"(..)\1")
_FULL_WIDTH: Final = re.compile("[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]")
_FOLD_FULL_WIDTH: Final = {c: c - 0xFEE0 for c in range(0xFF10, 0xFF5B)}


def normalize(*parts: str) -> str:
    """The text as duplicate detection sees it (see the module docstring).

    Several parts (a prompt and its reply) are normalized together, NUL-separated, so that
    ("ab", "c") and ("a", "bc") stay different.
    """
    text = "\x00".join([p.replace("\x00", "") for p in parts]) if len(parts) > 1 else parts[0]
    text = _NOISE.sub("", text.lower())
    if _FULL_WIDTH.search(text) is not None:
        text = text.translate(_FOLD_FULL_WIDTH)
    if _REPEAT_1.search(text) is None and _REPEAT_2.search(text) is None:
        return text
    return _REPEAT.sub(_unit, text)


def _unit(m: re.Match[str]) -> str:
    return m.group(1) or m.group(2)


class MinHasher:
    """Band keys of the MinHash signature of a text's character 3-grams (numpy, vectorised).

    The text is read as UTF-16 code units, so a 3-gram is 48 bits of a 64-bit word read at
    every 2-byte offset of the encoded text: no per-gram work in Python. Each 3-gram is hashed
    to 32 bits by multiply-shift; the 40 hash functions are x -> a * x + b mod 2**32 with fixed
    odd a, each a permutation of the 32-bit values. Each band's four minima are folded into one
    64-bit key. All constants are fixed, so keys are the same in every process.
    """

    def __init__(self) -> None:
        import numpy as np

        self._np = np
        u32, u64 = np.uint32, np.uint64
        self._gram_mask = u64((1 << 48) - 1)
        self._gram_mul = u64(0x9E3779B97F4A7C15)
        self._shift = u64(32)
        perm = np.arange(1, NUM_PERM + 1, dtype=u32)
        # One row per hash function: the 3-grams run along the contiguous axis.
        self._a = (perm * u32(0x9E3779B1) | u32(1))[:, None]
        self._b = (perm * u32(0x85EBCA6B) ^ u32(0xC2B2AE35))[:, None]
        band = np.arange(1, BANDS + 1, dtype=u64)
        self._band_mul = band * u64(0xC2B2AE3D27D4EB4F) | u64(1)
        self._band_salt = band * u64(0x165667B19E3779F9)

    def band_keys(self, texts: Sequence[str]) -> list[list[int]]:
        """One key per band for each text; every text needs at least three characters.

        The texts are hashed together, NUL-separated, so numpy's per-call cost is paid once per
        batch; each text's minima are taken over its own 3-grams only (`reduceat` over
        segments that alternate between a text's 3-grams and the 3-grams that straddle a gap).
        """
        np = self._np
        parts = [t.encode("utf-16-le") for t in texts]
        units = np.fromiter((len(p) // 2 for p in parts), dtype=np.int64, count=len(parts))
        starts = np.zeros(len(parts), dtype=np.int64)
        np.cumsum(units[:-1] + 2, out=starts[1:])
        raw = b"\0\0\0\0".join(parts) + b"\0\0\0\0\0\0"
        count = int(starts[-1] + units[-1] - 2)
        words = np.ndarray((count,), dtype=np.uint64, buffer=raw, strides=(2,))
        grams = ((words & self._gram_mask) * self._gram_mul >> self._shift).astype(np.uint32)
        hashed = np.multiply(self._a, grams[None, :])
        np.add(hashed, self._b, out=hashed)
        bounds = np.empty(2 * len(parts) - 1, dtype=np.int64)
        bounds[0::2] = starts
        bounds[1::2] = (starts + units - 2)[:-1]
        minima = np.minimum.reduceat(hashed, bounds, axis=1)[:, 0::2]
        signatures = np.ascontiguousarray(minima.T).view(np.uint64).reshape(len(parts), BANDS, -1)
        keys = signatures[:, :, 0] * self._band_mul ^ signatures[:, :, 1] ^ self._band_salt
        result: list[list[int]] = keys.tolist()
        return result


class Deduper:
    """Remembers kept examples and says whether new ones repeat one of them."""

    def __init__(self, *, exact: bool = True, near: bool = True, min_chars: int = 24) -> None:
        self._exact = exact
        self._min_chars = max(min_chars, 3)
        self._seen: set[int] = set()
        self._bands: set[int] = set()
        self._minhash = MinHasher() if near else None

    def check(self, normalized: str, digest: int) -> DuplicateKind | None:
        """Whether one example repeats an earlier one; remembers it if it does not."""
        return self.check_many([(normalized, digest)])[0]

    def check_many(self, items: Sequence[tuple[str, int]]) -> list[DuplicateKind | None]:
        """`check` for each (normalized text, 64-bit digest) in order, as if one by one.

        `normalized` is an example's text after `normalize`; `digest` a 64-bit hash of it.
        """
        verdicts: list[DuplicateKind | None] = [None] * len(items)
        if self._exact:
            seen = self._seen
            for i, (_, digest) in enumerate(items):
                if digest in seen:
                    verdicts[i] = "duplicate_exact"
                else:
                    seen.add(digest)
        if self._minhash is None:
            return verdicts
        todo = [
            i
            for i, (text, _) in enumerate(items)
            if verdicts[i] is None and len(text) >= self._min_chars
        ]
        if not todo:
            return verdicts
        bands = self._bands
        all_keys = self._minhash.band_keys([items[i][0] for i in todo])
        for i, keys in zip(todo, all_keys, strict=True):
            if len(bands.intersection(keys)) >= NEAR_MIN_BANDS:
                verdicts[i] = "duplicate_near"
            else:
                bands.update(keys)
        return verdicts
