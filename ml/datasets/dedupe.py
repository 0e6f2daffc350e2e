"""Exact and near-duplicate detection over a stream of examples, in small memory.

Both work on the normalized text of an example (`normalize`: lower case; letters, digits and
underscores only; full-width letters and digits folded to ASCII; in texts of up to 32
characters, a unit of one or two characters repeated back to back kept once, so that
哈哈哈哈 / 哈哈, 好的好的 / 好的 and 嗯嗯嗯 / 嗯 are the same).

Exact: a 64-bit keyed digest of the normalized text, remembered in a `KeySet` (8 bytes each
once past a bounded buffer).

Near: MinHash over the character 3-grams, with locality-sensitive hashing. SimHash was tried
first and rejected: on chat-length text one inserted character moves a 64-bit SimHash by about
ten bits, so any threshold that catches such edits also matches unrelated messages. Here each
text gets 40 min-hashes; they are cut into 10 bands of 4, and each band's values hash to one
key. A kept text's band keys point to it. A new text's candidates are the kept texts it shares
a band key with (for a pair of Jaccard similarity J that happens with probability
1 - (1 - J**4)**10: 0.99 at J = 0.8, 0.94 at 0.7, 0.48 at 0.5), and it is a near copy when the
estimated similarity with a candidate (the share of equal min-hashes, give or take 0.07) is at
least 0.7 (NEAR_MIN_MATCHES of 40). Verifying candidates matters: counting band hits without
it makes false matches grow with the number of texts kept. Only texts of at least
`min_chars` normalized characters take part; each kept one costs 40 bytes (its min-hashes cut
to 8 bits) and up to 10 entries of a band key -> text number table (8 bytes each; the C
`NearIndex` keeps its hash table 3/8 to 3/4 full, `NearIndexPy` sorted arrays).

Everything is computed from the text alone (no per-process hash seed), so a build is
byte-for-byte repeatable.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Final, Literal

from ml.datasets.native import speedups

if TYPE_CHECKING:
    import numpy
    import numpy.typing as npt

DuplicateKind = Literal["duplicate_exact", "duplicate_near"]

NUM_PERM: Final = 40
BANDS: Final = 10  # of NUM_PERM // BANDS = 4 rows, folded into one key
NEAR_MIN_MATCHES: Final = 28  # equal min-hashes of 40: estimated Jaccard similarity >= 0.7
_MASK64: Final = (1 << 64) - 1
REPEAT_FOLD_MAX: Final = 32

# Letters and digits stay (and NUL, which `normalize` puts between parts). Spelled to start
# with a character class, which lets the regex engine scan for it instead of trying a match
# at every position (`[^\w\x00]+` would be the same pattern, slower).
_NOISE: Final = re.compile(r"[^\w\x00][^\w\x00]*")
_REPEAT: Final = re.compile(r"(.)\1+|(..)\2+")
# Two plain searches find most texts have no repeat at all, much faster than one sub.
_REPEAT_1: Final = re.compile(r"(.)\1")
_REPEAT_2: Final = re.compile(r"(..)\1")
_FULL_WIDTH: Final = re.compile("[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]")
_FOLD_FULL_WIDTH: Final = {c: c - 0xFEE0 for c in range(0xFF10, 0xFF5B)}


def normalize_py(*parts: str) -> str:
    """The text as duplicate detection sees it (see the module docstring).

    Several parts (a prompt and its reply) are normalized together, NUL-separated, so that
    ("ab", "c") and ("a", "bc") stay different. `normalize` is this function, or its C twin
    (ml/datasets/_speedups.c, about ten times faster) where that is built.
    """
    if len(parts) == 1:
        text = parts[0]
    else:
        text = "\x00".join(parts)
        if text.count("\x00") >= len(parts):  # a part has NULs of its own: drop them
            text = "\x00".join([p.replace("\x00", "") for p in parts])
    text = _NOISE.sub("", text.lower())
    if _FULL_WIDTH.search(text) is not None:
        text = text.translate(_FOLD_FULL_WIDTH)
    # Repeats matter in short texts (哈哈 / 哈哈哈哈); longer ones are near-duplicate territory.
    if len(text) > REPEAT_FOLD_MAX or (
        _REPEAT_1.search(text) is None and _REPEAT_2.search(text) is None
    ):
        return text
    return _REPEAT.sub(_unit, text)


def _unit(m: re.Match[str]) -> str:
    return m.group(1) or m.group(2)


normalize: Callable[..., str] = speedups.normalize if speedups is not None else normalize_py


class MinHasher:
    """Band keys of the MinHash signature of a text's character 3-grams (numpy, vectorised).

    The text is read as UTF-16 code units, so a 3-gram is 48 bits of a 64-bit word read at
    every 2-byte offset of the encoded text: no per-gram work in Python. Each 3-gram is hashed
    to 32 bits by multiply-shift; the 40 hash functions are x -> a * x + b mod 2**32 with fixed
    odd a, each a permutation of the 32-bit values. Each band's four minima are folded into one
    32-bit key. All constants are fixed, so keys are the same in every process.

    Keys and signatures are kept short because every candidate is verified: a band key shared
    by chance only costs one comparison, and two different minima cut to 8 bits agree once in
    256 tries, which moves a similarity estimate by well under its own noise (about 0.07).
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

    def hash(
        self, texts: Sequence[str]
    ) -> tuple[npt.NDArray[numpy.uint32], npt.NDArray[numpy.uint8]]:
        """Band keys (texts x BANDS, 32 bits) and 8-bit signatures (texts x NUM_PERM).

        Every text needs at least three characters.

        The texts are hashed together, so numpy's per-call cost is paid once per batch: the
        3-grams of the concatenation are hashed, those that straddle two texts dropped, and
        each text's minima taken over its own segment (`reduceat`).
        """
        np = self._np
        raw = "".join(texts).encode("utf-16-le")
        lengths = [len(t) for t in texts]
        if len(raw) != 2 * sum(lengths):  # characters beyond the BMP take two code units
            lengths = [len(t.encode("utf-16-le")) // 2 for t in texts]
        units = np.array(lengths, dtype=np.int64)
        ends = np.cumsum(units)
        words = np.ndarray(
            (int(ends[-1]) - 2,), dtype=np.uint64, buffer=raw + b"\0\0", strides=(2,)
        )
        grams = ((words & self._gram_mask) * self._gram_mul >> self._shift).astype(np.uint32)
        if len(texts) > 1:
            keep = np.ones(len(grams), dtype=bool)
            keep[ends[:-1] - 2] = False  # the two 3-grams that start in one text and end in
            keep[ends[:-1] - 1] = False  # the next
            grams = grams[keep]
        starts = np.zeros(len(texts), dtype=np.int64)
        np.cumsum(units[:-1] - 2, out=starts[1:])
        hashed = np.multiply(self._a, grams[None, :])
        np.add(hashed, self._b, out=hashed)
        minima = np.minimum.reduceat(hashed, starts, axis=1)
        signatures = np.ascontiguousarray(minima.T)
        bands = signatures.view(np.uint64).reshape(len(texts), BANDS, -1)
        folded = bands[:, :, 0] * self._band_mul ^ bands[:, :, 1] ^ self._band_salt
        keys: npt.NDArray[numpy.uint32] = (folded >> self._shift).astype(np.uint32)
        short: npt.NDArray[numpy.uint8] = signatures.astype(np.uint8)
        return keys, short


class KeySet:
    """A growing set of 64-bit keys in about 8 bytes each, queried in batches.

    Keys live in a sorted numpy array, the newest in a Python set in front of it. When the set
    reaches 1/32 of the array (and at least `buffer` keys) it is merged into the array: the set
    stays small, and as the array grows geometrically each key is copied a bounded number of
    times (about 32) however many keys there are.
    """

    def __init__(self, buffer: int = 1 << 14) -> None:
        import numpy as np

        self._np = np
        self._buffer = buffer
        self._recent: set[int] = set()
        self._main: npt.NDArray[numpy.uint64] = np.empty(0, dtype=np.uint64)

    def __len__(self) -> int:
        return len(self._main) + len(self._recent)

    def __contains__(self, key: int) -> bool:
        return self.contains([key])[0]

    def contains(
        self, keys: Sequence[int], array: npt.NDArray[numpy.uint64] | None = None
    ) -> list[bool]:
        """Whether each key (0 <= key < 2**64) is in the set; `array`: the keys as uint64."""
        np = self._np
        main = self._main
        found: list[bool]
        if len(main):
            wanted = array if array is not None else np.array(keys, dtype=np.uint64)
            # Sorted needles let searchsorted narrow each search from the last one: far fewer
            # cache misses in a large array.
            order = np.argsort(wanted)
            ranked = wanted[order]
            at = np.searchsorted(main, ranked)
            np.minimum(at, len(main) - 1, out=at)
            hits = np.empty(len(ranked), dtype=bool)
            hits[order] = main[at] == ranked
            found = hits.tolist()
        else:
            found = [False] * len(keys)
        recent = self._recent
        if recent:
            common = recent.intersection(keys)
            if common:
                found = [hit or key in common for key, hit in zip(keys, found, strict=True)]
        return found

    def add(self, keys: Iterable[int]) -> None:
        """Adds keys (0 <= key < 2**64); `len` may count a key added twice until a merge."""
        recent = self._recent
        recent.update(keys)
        main = self._main
        if len(recent) >= max(self._buffer, len(main) // 32):
            np = self._np
            new = np.fromiter(recent, dtype=np.uint64, count=len(recent))
            new.sort()
            at = np.searchsorted(main, new)
            if len(main):  # keep the array free of repeats, should a stored key come again
                fresh = main[np.minimum(at, len(main) - 1)] != new
                new, at = new[fresh], at[fresh]
            self._main = np.insert(main, at, new)
            self._recent = set()


class _BandIndex:
    """Band key -> number of the first kept text with that key, 8 bytes a key.

    Two levels of sorted numpy arrays (keys, and the text numbers beside them): each batch's
    new keys go into the small one, which is merged into the large one when it reaches 1/32 of
    it, so that each key is copied a bounded number of times however many there are (as in
    `KeySet`). A batch looks its keys up with a binary search in each.
    """

    def __init__(self, buffer: int = 1 << 14) -> None:
        import numpy as np

        self._np = np
        self._buffer = buffer
        empty: npt.NDArray[numpy.uint32] = np.empty(0, dtype=np.uint32)
        self._keys, self._texts = empty, empty
        self._new_keys, self._new_texts = empty, empty

    def lookup(self, keys: npt.NDArray[numpy.uint32]) -> npt.NDArray[numpy.int64]:
        """The text number each key points to, or -1."""
        np = self._np
        texts: npt.NDArray[numpy.int64] = np.full(len(keys), -1, dtype=np.int64)
        if not len(self._keys) and not len(self._new_keys):
            return texts
        # Sorted needles let searchsorted narrow each search from the last one: far fewer
        # cache misses in a large array.
        order = keys.argsort()
        ranked = keys[order]
        for stored, numbers in ((self._keys, self._texts), (self._new_keys, self._new_texts)):
            if len(stored):
                at = stored.searchsorted(ranked)
                np.minimum(at, len(stored) - 1, out=at)
                hit = stored[at] == ranked
                texts[order[hit]] = numbers[at[hit]]
        return texts

    def add(self, keys: npt.NDArray[numpy.uint32], texts: npt.NDArray[numpy.uint32]) -> None:
        """Points new keys (distinct, none in the index yet) to text numbers."""
        np = self._np
        order = keys.argsort()
        keys, texts = keys[order], texts[order]
        at = self._new_keys.searchsorted(keys)
        self._new_keys = np.insert(self._new_keys, at, keys)
        self._new_texts = np.insert(self._new_texts, at, texts)
        if len(self._new_keys) >= max(self._buffer, len(self._keys) // 32):
            at = self._keys.searchsorted(self._new_keys)
            self._keys = np.insert(self._keys, at, self._new_keys)
            self._texts = np.insert(self._texts, at, self._new_texts)
            self._new_keys = self._new_texts = np.empty(0, dtype=np.uint32)


class _Signatures:
    """The 8-bit MinHash signatures of kept texts, by text number (40 bytes each)."""

    def __init__(self) -> None:
        import numpy as np

        self._np = np
        self.rows: npt.NDArray[numpy.uint8] = np.zeros((1024, NUM_PERM), dtype=np.uint8)
        self.count = 0

    def extend(self, signatures: npt.NDArray[numpy.uint8]) -> int:
        """Stores signatures; returns the text number of the first."""
        first, end = self.count, self.count + len(signatures)
        if end > len(self.rows):
            # Grown in place where the allocator can (no view of `rows` is ever kept).
            self.rows.resize((max(end, len(self.rows) * 3 // 2), NUM_PERM), refcheck=False)
        self.rows[first:end] = signatures
        self.count = end
        return first


class NearIndexPy:
    """Near-duplicate detection over kept texts, with numpy: the reference for `NearIndex`.

    `near_rows` hashes a batch of texts together, then decides them in order, as if one by
    one; the C twin (ml/datasets/_speedups.c) checks them one by one and gives the same
    verdicts, several times faster.
    """

    def __init__(self) -> None:
        import numpy as np

        self._np = np
        self._minhash = MinHasher()
        self._bands = _BandIndex()
        self._signatures = _Signatures()

    @property
    def kept(self) -> int:
        return self._signatures.count

    def near_rows(self, texts: list[str]) -> list[int]:
        """Which texts (by position, decided in order) are near copies of kept ones.

        The others are kept. Every text needs at least three characters.
        """
        np = self._np
        keys, signatures = self._minhash.hash(texts)
        rows = len(texts)
        flat = keys.ravel()
        pointed = self._bands.lookup(flat)
        store = self._signatures
        # Best match of each text with the kept texts its band keys point to, all at once.
        best = np.zeros(rows, dtype=np.int64)
        at = np.flatnonzero(pointed >= 0)
        if len(at):
            owners = at // BANDS
            matches = (store.rows[pointed[at]] == signatures[owners]).sum(axis=1)
            np.maximum.at(best, owners, matches)
        near = (best >= NEAR_MIN_MATCHES).tolist()
        # A band key that is in no kept text yet but occurs twice in this batch will, in order,
        # point to the first kept text of the batch that has it: those few are decided one by
        # one, as if checked singly.
        ranked = np.sort(flat[pointed < 0])
        repeated = ranked[1:][ranked[1:] == ranked[:-1]]
        shared = set(repeated.tolist())
        listed: list[int] = flat.tolist() if shared else []
        sharing: list[bool] = np.isin(keys, repeated).any(axis=1).tolist() if shared else []
        owner: dict[int, int] = {}  # shared key -> first kept row of this batch with it
        kept: list[int] = []
        for row in range(rows):
            if near[row]:
                continue
            if shared and sharing[row]:
                row_keys = listed[row * BANDS : (row + 1) * BANDS]
                previous = sorted({owner[key] for key in row_keys if key in owner})
                if previous and (
                    (signatures[previous] == signatures[row]).sum(axis=1).max() >= NEAR_MIN_MATCHES
                ):
                    near[row] = True
                    continue
                for key in row_keys:
                    if key in shared:
                        owner.setdefault(key, row)
            kept.append(row)
        if kept:
            first_number = store.extend(signatures[kept])
            # The kept texts' band keys that point nowhere yet, text by text; a key that comes
            # more than once points to the first text that has it.
            cells = (np.array(kept)[:, None] * BANDS + np.arange(BANDS)).ravel()
            numbers = np.arange(first_number, first_number + len(kept)).repeat(BANDS)
            new = pointed[cells] < 0
            fresh, first = np.unique(flat[cells[new]], return_index=True)
            self._bands.add(fresh, numbers[new][first].astype(np.uint32))
        return [row for row in range(rows) if near[row]]


def near_index() -> NearIndexPy:
    """An empty near-duplicate index: the C one where it is built, else `NearIndexPy`."""
    index: NearIndexPy = speedups.NearIndex() if speedups is not None else NearIndexPy()
    return index


class Deduper:
    """Remembers kept examples and says whether new ones repeat one of them."""

    def __init__(self, *, exact: bool = True, near: bool = True, min_chars: int = 24) -> None:
        self._min_chars = max(min_chars, 3)
        self._seen = KeySet() if exact else None
        self._near = near_index() if near else None

    def check(self, normalized: str, digest: int) -> DuplicateKind | None:
        """Whether one example repeats an earlier one; remembers it if it does not."""
        return self.check_many([(normalized, digest)])[0]

    def check_many(self, items: Sequence[tuple[str, int]]) -> list[DuplicateKind | None]:
        """`check` for each (normalized text, 64-bit digest) in order, as if one by one.

        `normalized` is an example's text after `normalize`; `digest` a 64-bit hash of it.
        """
        verdicts: list[DuplicateKind | None] = [None] * len(items)
        if self._seen is not None and items:
            digests = [digest & _MASK64 for _, digest in items]
            stored = self._seen.contains(digests)
            batch: set[int] = set()
            for i, digest in enumerate(digests):
                if stored[i] or digest in batch:
                    verdicts[i] = "duplicate_exact"
                else:
                    batch.add(digest)
            self._seen.add(batch)
        if self._near is None:
            return verdicts
        todo = [
            i
            for i, (text, _) in enumerate(items)
            if verdicts[i] is None and len(text) >= self._min_chars
        ]
        if todo:
            for row in self._near.near_rows([items[i][0] for i in todo]):
                verdicts[todo[row]] = "duplicate_near"
        return verdicts
