"""The next-token choice: greedy, temperature and nucleus (top_p) sampling."""

from __future__ import annotations

import torch

from ml.inference.sampling import Sampler

CPU = torch.device("cpu")
# Probabilities 0.5, 0.3, 0.15, 0.05 over tokens 2, 0, 3, 1.
LOGITS = torch.tensor([[0.3, 0.05, 0.5, 0.15]]).log()


def draws(sampler: Sampler, n: int = 400) -> set[int]:
    return {int(sampler(LOGITS)) for _ in range(n)}


def test_temperature_zero_is_argmax() -> None:
    assert draws(Sampler(temperature=0, top_p=0.5, seed=None, device=CPU), 5) == {2}


def test_top_p_keeps_the_smallest_set_reaching_it() -> None:
    assert draws(Sampler(temperature=1, top_p=0.45, seed=0, device=CPU)) == {2}
    assert draws(Sampler(temperature=1, top_p=0.6, seed=0, device=CPU)) == {2, 0}
    assert draws(Sampler(temperature=1, top_p=0.9, seed=0, device=CPU)) == {2, 0, 3}
    assert draws(Sampler(temperature=1, top_p=1.0, seed=0, device=CPU)) == {2, 0, 3, 1}


def test_low_temperature_sharpens_the_distribution() -> None:
    sampler = Sampler(temperature=0.05, top_p=1.0, seed=0, device=CPU)
    assert draws(sampler) == {2}


def test_same_seed_same_draws() -> None:
    def sequence(seed: int) -> list[int]:
        sampler = Sampler(temperature=1.0, top_p=0.95, seed=seed, device=CPU)
        return [int(sampler(LOGITS)) for _ in range(50)]

    assert sequence(1) == sequence(1)
    assert sequence(1) != sequence(2)
