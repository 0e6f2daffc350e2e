from __future__ import annotations

import numpy as np

from ml.training.batching import epoch_order


def padded_tokens(lengths: np.ndarray, batches: list[np.ndarray]) -> int:
    return sum(int(lengths[b].max()) * len(b) for b in batches)


def test_an_epoch_visits_every_example_once_in_a_seeded_order() -> None:
    lengths = np.random.default_rng(0).integers(5, 300, size=1000)
    for group in (False, True):
        first = epoch_order(lengths, 8, seed=1, epoch=0, group_by_length=group)
        again = epoch_order(lengths, 8, seed=1, epoch=0, group_by_length=group)
        later = epoch_order(lengths, 8, seed=1, epoch=1, group_by_length=group)

        assert sorted(np.concatenate(first).tolist()) == list(range(1000))
        assert all(len(b) <= 8 for b in first)
        assert [b.tolist() for b in first] == [b.tolist() for b in again]
        assert [b.tolist() for b in first] != [b.tolist() for b in later]


def test_grouping_by_length_cuts_padding_and_puts_the_longest_batch_first() -> None:
    lengths = np.random.default_rng(0).integers(5, 300, size=2000)
    grouped = epoch_order(lengths, 16, seed=0, epoch=0, group_by_length=True)
    shuffled = epoch_order(lengths, 16, seed=0, epoch=0, group_by_length=False)

    real = int(lengths.sum())
    assert real / padded_tokens(lengths, grouped) > 0.95
    assert real / padded_tokens(lengths, shuffled) < 0.7
    assert lengths[grouped[0]].max() == lengths.max()
