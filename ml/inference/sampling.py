"""Choose the next token from the model's logits: greedy, or temperature + nucleus sampling."""

from __future__ import annotations

import torch


class Sampler:
    """Picks one token per step from logits of shape (1, vocab).

    Temperature 0 is greedy (argmax, as `generate(do_sample=False)`). Otherwise the logits are
    divided by the temperature and, when top_p < 1, cut to the smallest set of most likely tokens
    whose probabilities sum to at least top_p. Each sampler has its own random generator, seeded
    from `seed` when given, so concurrent engines never share random state.
    """

    __slots__ = ("_generator", "_temperature", "_top_p")

    def __init__(
        self, *, temperature: float, top_p: float, seed: int | None, device: torch.device
    ) -> None:
        self._temperature = temperature
        self._top_p = top_p
        self._generator: torch.Generator | None = None
        if temperature > 0:
            self._generator = torch.Generator(device=device)
            if seed is None:
                self._generator.seed()
            else:
                self._generator.manual_seed(seed)

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        """Return the chosen token ids, shape (1,)."""
        if self._generator is None:
            return logits.argmax(dim=-1)
        probs = torch.softmax(logits.float() / self._temperature, dim=-1)
        if self._top_p >= 1:
            return torch.multinomial(probs, 1, generator=self._generator).view(1)
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        # Drop a token when the more likely ones before it already reach top_p; the first
        # token always stays.
        outside = sorted_probs.cumsum(dim=-1) - sorted_probs >= self._top_p
        sorted_probs = sorted_probs.masked_fill(outside, 0.0)
        choice = torch.multinomial(sorted_probs, 1, generator=self._generator)
        return order.gather(-1, choice).view(1)
