"""The dataset builder's C helpers (ml/datasets/_speedups.c) against their Python twins.

The Python functions are the reference (`dedupe.normalize_py`, `dedupe.NearIndexPy`,
`formats.render_line_py`, which is orjson on `render`'s object); the C ones must give the same
str, verdicts or bytes, or hand the case back to Python.
"""

from __future__ import annotations

import io
import random

import orjson
import pytest

from ml.datasets import DatasetSpec, build, build_dataset, dedupe, preview
from ml.datasets.dedupe import MinHasher, NearIndexPy, normalize_py
from ml.datasets.formats import Turn, render_line, render_line_py
from ml.datasets.synthetic import SELF_NAME, generate_messages

try:
    from ml.datasets import _speedups  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - reported by test_the_native_helpers_are_built
    _speedups = None

needs_native = pytest.mark.skipif(_speedups is None, reason="the native helpers are not built")

# Case folding with context (Σ, İ), full-width letters, digits of other scripts, NULs, non-BMP
# characters, repeats, punctuation and whitespace that normalize drops.
_ALPHABET = [
    *"哈好的啊嗯aAbBzZ_ 019２３ＡＢｃ＿：［！，。.\n\t\x00ΣσςİIıẞß😂𝐀ǅ٣⅕Ⅻ\u0301",
    *("ab", "哈哈", "ΣΑ", "好的"),
]


def test_the_native_helpers_are_built() -> None:
    # `pip install -e .` (scripts/setup.sh) compiles them; without them builds are slower.
    assert _speedups is not None, "ml/datasets/_speedups.c is not built: run scripts/setup.sh"


def _random_text(rng: random.Random) -> str:
    length = rng.randint(0, rng.choice([3, 12, 40]))
    return "".join(rng.choice(_ALPHABET) for _ in range(length))


@needs_native
def test_normalize_matches_python_on_every_code_point() -> None:
    different = []
    for code in range(0x110000):
        char = chr(code)
        for parts in ((char,), (char * 3,), ("A" + char, char + "Σ")):
            if _speedups.normalize(*parts) != normalize_py(*parts):
                different.append((hex(code), parts))
    assert different == []


@needs_native
def test_normalize_matches_python_on_generated_text() -> None:
    rng = random.Random(3)
    for _ in range(50_000):
        parts = tuple(_random_text(rng) for _ in range(rng.choice([1, 2, 2, 3])))
        assert _speedups.normalize(*parts) == normalize_py(*parts), parts


@needs_native
def test_normalize_refuses_what_python_refuses() -> None:
    with pytest.raises(TypeError):
        _speedups.normalize()
    with pytest.raises(TypeError):
        _speedups.normalize("a", 1)


def _turns(rng: random.Random, pairs: int) -> list[Turn]:
    turns: list[Turn] = []
    for _ in range(pairs):
        turns.append(("user", _random_text(rng) + rng.choice(['"', "\\", "\x01", "\x1f", ""])))
        turns.append(("assistant", _random_text(rng)))
    return turns


@needs_native
@pytest.mark.parametrize("format", ["prompt_completion", "sharegpt", "alpaca"])
def test_render_line_writes_orjsons_bytes(format: str) -> None:
    rng = random.Random(format)
    for case in range(3000):
        system = "" if format == "prompt_completion" or case % 2 else _random_text(rng)
        turns = _turns(rng, rng.randint(1, 6))
        line = _speedups.render_line(format, system, turns)
        assert line == render_line_py(format, system, turns), (system, turns)
        assert render_line(format, system, turns) == line


@needs_native
def test_render_line_leaves_odd_cases_to_python() -> None:
    surrogate: list[Turn] = [("user", "在吗"), ("assistant", "\ud800")]
    assert _speedups.render_line("sharegpt", "", surrogate) is None
    with pytest.raises(orjson.JSONEncodeError):
        render_line("sharegpt", "", surrogate)  # the same error as without the C helper
    assert _speedups.render_line("alpaca", "", [("assistant", "在的")]) is None
    with pytest.raises(IndexError):
        render_line("alpaca", "", [("assistant", "在的")])
    assert _speedups.render_line("yaml", "", [("user", "a"), ("assistant", "b")]) is None
    assert _speedups.render_line("sharegpt", "", [["user", "a"]]) is None  # not a tuple


def _build(spec: DatasetSpec, seed: int) -> tuple[bytes, bytes, dict[str, object], list[object]]:
    train, evaluation = io.BytesIO(), io.BytesIO()
    stats = build_dataset(generate_messages(6000, seed=seed), spec, train, evaluation)
    shown = preview(generate_messages(2000, seed=seed), spec, 20)
    view = [(e.split, e.record, e.line, e.turns, e.labels, e.message_ids) for e in shown]
    return train.getvalue(), evaluation.getvalue(), stats.to_dict(), view


@needs_native
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"format": "sharegpt", "system_prompt": "你是张伟", "merge_consecutive": False},
        {"format": "alpaca", "max_context_turns": 8, "dedupe": {"near": True, "min_chars": 6}},
    ],
)
def test_builds_are_the_same_without_the_native_helpers(
    options: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = DatasetSpec.from_dict({"persona": [SELF_NAME], **options})
    native_build = _build(spec, seed=len(options))
    with monkeypatch.context() as patch:
        patch.setattr(build, "normalize", normalize_py)
        patch.setattr(build, "render_line", render_line_py)
        patch.setattr(dedupe, "near_index", NearIndexPy)
        python_build = _build(spec, seed=len(options))
    assert native_build == python_build
    assert native_build[2]["examples"]


def _texts_with_near_copies(rng: random.Random, count: int) -> list[str]:
    """Texts of 3 to 80 characters, about a third of them edited copies of earlier ones."""
    texts: list[str] = []
    for _ in range(count):
        if texts and rng.random() < 0.35:
            text = list(rng.choice(texts))
            for _ in range(rng.randint(0, 3)):  # a few characters changed, added or removed
                at = rng.randrange(len(text))
                edit = rng.random()
                if edit < 0.4:
                    text[at] = rng.choice(_ALPHABET)
                elif edit < 0.7:
                    text.insert(at, rng.choice(_ALPHABET))
                elif len(text) > 3:
                    del text[at]
            texts.append("".join(text))
        else:
            texts.append("".join(rng.choice(_ALPHABET) for _ in range(rng.randint(3, 80))))
    return texts


@needs_native
def test_minhash_is_the_numpy_minhashers_to_the_bit() -> None:
    rng = random.Random(5)
    hasher = MinHasher()
    for _ in range(200):
        texts = _texts_with_near_copies(rng, rng.randint(1, 40))
        keys, signatures = hasher.hash(texts)
        assert _speedups.minhash(texts) == (keys.tobytes(), signatures.tobytes())
    with pytest.raises(ValueError, match="three characters"):
        _speedups.minhash(["ab"])


@needs_native
@pytest.mark.parametrize("batch", [1, 7, 128])
def test_near_index_gives_numpys_verdicts(batch: int) -> None:
    rng = random.Random(batch)
    texts = _texts_with_near_copies(rng, 4000)
    verdicts = []
    for index in (_speedups.NearIndex(), NearIndexPy()):
        rows = []
        for start in range(0, len(texts), batch):
            rows.extend(start + row for row in index.near_rows(texts[start : start + batch]))
        verdicts.append((rows, index.kept))
    assert verdicts[0] == verdicts[1]
    assert 300 < len(verdicts[0][0]) < 2000  # near copies were found, and not everything
