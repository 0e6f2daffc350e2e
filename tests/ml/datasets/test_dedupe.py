"""The pieces of duplicate detection: normalization, MinHash band keys, the compact key set."""

from __future__ import annotations

import random
import re

import numpy as np

from ml.datasets.dedupe import (
    BANDS,
    NUM_PERM,
    Deduper,
    KeySet,
    MinHasher,
    _BandIndex,
    normalize,
)


def test_normalize_folds_case_punctuation_width_and_repeats() -> None:
    assert normalize("哈哈哈哈哈！！") == normalize("哈哈") == "哈"
    assert normalize("好的好的。") == normalize("好的") == "好的"
    assert normalize("ＯＫ，１２３") == normalize("ok 123") == "ok123"
    assert normalize("在吗", "在") != normalize("在", "吗在")
    assert normalize("a\x00b", "c") == normalize("ab", "c")


def _plain_normalize(*parts: str) -> str:
    """`normalize` spelled out step by step, without its shortcuts."""
    text = "\x00".join(p.replace("\x00", "") for p in parts) if len(parts) > 1 else parts[0]
    text = re.sub(r"[^\w\x00]+", "", text.lower())
    text = text.translate({c: c - 0xFEE0 for c in range(0xFF10, 0xFF5B)})
    if len(text) <= 32:
        text = re.sub(r"(.)\1+|(..)\2+", lambda m: m.group(1) or m.group(2), text)
    return text


def test_normalize_matches_its_plain_statement() -> None:
    # Full-width, case (final sigma included), NULs, repeats of one and two characters.
    pieces = [
        *["哈", "哈哈", "好的", "嗯嗯嗯", "ab", "ok", "a", "A", "AΣ", "Σ", "ς", "İ", "ß"],
        *["ＡＢ１", "ＯＫ", "ｚ", "２", "Ⅻ", "٣", "，", "！", "😂", "𠀀", "_", "\x00", "\n", " "],
    ]
    rng = random.Random(3)
    for _ in range(3000):
        parts = [
            "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
            for _ in range(rng.randint(1, 3))
        ]
        assert normalize(*parts) == _plain_normalize(*parts), parts


def test_band_keys_are_the_same_alone_or_in_a_batch() -> None:
    hasher = MinHasher()
    rng = random.Random(4)
    alphabet = "今天老板又拖欠工资了我们要不要一起去劳动仲裁abc123𠀀𠀁"  # two astral characters
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(3, 80))) for _ in range(50)]
    keys, signatures = hasher.hash(texts)
    assert keys.shape == (len(texts), BANDS) and signatures.shape == (len(texts), NUM_PERM)
    for i, text in enumerate(texts):
        alone_keys, alone_signatures = hasher.hash([text])
        assert alone_keys.tolist() == [keys[i].tolist()]
        assert alone_signatures.tolist() == [signatures[i].tolist()]
    assert hasher.hash(["abc"])[0].tolist() != hasher.hash(["abd"])[0].tolist()


def test_key_set_merges_batches_and_still_answers() -> None:
    keys = KeySet(buffer=16)
    rng = random.Random(5)
    stored = [rng.getrandbits(64) for _ in range(1000)]
    for start in range(0, len(stored), 7):
        keys.add(stored[start : start + 7] * 2)  # a repeat within one call is stored once
    keys.add(stored[:5])  # keys already there are harmless
    keys.add(rng.getrandbits(64) for _ in range(2000))  # forces a merge
    assert len(keys) == len(stored) + 2000
    assert len(keys._main) > 900  # most of them merged into the sorted array
    assert len(keys._recent) == 0 and len(set(keys._main.tolist())) == len(keys._main)
    absent = [rng.getrandbits(64) for _ in range(1000)]
    assert keys.contains(stored) == [True] * len(stored)
    assert keys.contains(stored, np.array(stored, dtype=np.uint64)) == [True] * len(stored)
    assert keys.contains(absent) == [False] * len(absent)
    assert stored[0] in keys and (2**64 - 1) not in keys and 0 not in keys


def test_checking_in_batches_decides_like_checking_one_by_one() -> None:
    rng = random.Random(6)
    alphabet = "今天老板又拖欠工资了我们要不要一起去劳动仲裁明后天开会吃饭"
    clauses = ["".join(rng.choice(alphabet) for _ in range(12)) for _ in range(8)]
    texts: list[str] = []
    for _ in range(600):
        if texts and rng.random() < 0.4:  # an edited copy of an earlier text
            chars = list(rng.choice(texts))
            for _ in range(rng.randint(0, 6)):
                chars[rng.randrange(len(chars))] = rng.choice(alphabet)
            texts.append("".join(chars))
        else:  # clauses in common with many others
            texts.append("".join(rng.choice(clauses) for _ in range(rng.randint(2, 4))))
    items = [(normalize(t), hash(normalize(t))) for t in texts]
    one_by_one = Deduper()
    expected = [one_by_one.check(text, digest) for text, digest in items]
    for seed in range(3):
        batched, got, start = Deduper(), [], 0
        sizes = random.Random(seed)
        while start < len(items):
            size = sizes.randint(1, 130)
            got += batched.check_many(items[start : start + size])
            start += size
        assert got == expected
    assert {"duplicate_exact", "duplicate_near", None} == set(expected)


def test_partial_overlaps_with_many_kept_texts_do_not_add_up_to_a_duplicate() -> None:
    # Each kept text shares one half with the new one: similar to each, a copy of none.
    rng = random.Random(8)
    alphabet = "今天老板又拖欠工资了我们要不要一起去劳动仲裁明后天开会吃饭周末爬山看电影"
    halves = ["".join(rng.choice(alphabet) for _ in range(30)) for _ in range(40)]
    deduper = Deduper()
    for i in range(0, 40, 2):
        for other in range(40):
            if other not in (i, i + 1):
                text = normalize(halves[i] + halves[other])
                deduper.check(text, hash(text))
    fresh = [normalize(halves[i] + halves[i + 1]) for i in range(0, 40, 2)]
    assert [deduper.check(text, hash(text)) for text in fresh] == [None] * len(fresh)
    # while a real near copy still is one
    copy = normalize(halves[0] + halves[5])[:-1] + "天"
    assert deduper.check(copy, hash(copy)) == "duplicate_near"


def test_band_index_points_each_key_to_its_first_text_across_merges() -> None:
    index = _BandIndex(buffer=16)
    rng = random.Random(9)
    expected: dict[int, int] = {}
    for number in range(300):
        new = {rng.getrandbits(32) for _ in range(rng.randint(1, 9))} - expected.keys()
        keys = np.array(sorted(new, reverse=True), dtype=np.uint32)  # any order
        index.add(keys, np.full(len(keys), number, dtype=np.uint32))
        expected.update(dict.fromkeys(new, number))
        wanted = [*rng.sample(sorted(expected), min(20, len(expected))), rng.getrandbits(32)]
        got = index.lookup(np.array(wanted, dtype=np.uint32)).tolist()
        assert got == [expected.get(k, -1) for k in wanted]
    assert len(index._keys) > len(index._new_keys)  # most of them merged into the large level
