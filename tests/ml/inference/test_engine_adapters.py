"""Several adapters on one base, switched per request, the least recently used evicted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ml.inference import Engine
from tests.ml.inference.support import Reference, TinyModels, request, run


def answer(engine: Engine, base: Path, adapter: Path | None = None, **options: Any) -> str:
    return run(engine, request(base, adapter=adapter, max_tokens=25, **options)).text


def resident(engine: Engine) -> list[tuple[str, list[str]]]:
    """(base path, [adapter ids]) per loaded base, most recently used first."""
    loaded: Any = engine.loaded()
    return [
        (base["path"], [adapter["id"] for adapter in base["adapters"]]) for base in loaded["bases"]
    ]


def test_interleaved_adapters_answer_differently_and_as_alone(
    tiny: TinyModels, reference: Reference
) -> None:
    expected = {
        adapter: reference.greedy(tiny.base, adapter=adapter, max_new_tokens=25)[0]
        for adapter in (tiny.adapter_a, tiny.adapter_b, None)
    }
    assert len(set(expected.values())) == 3, "the adapters must change the answer"

    engine = Engine(device="cpu", max_adapters=2)
    order = [tiny.adapter_a, tiny.adapter_b, None, tiny.adapter_b, tiny.adapter_a, None]
    for adapter in order:
        assert answer(engine, tiny.base, adapter) == expected[adapter]
    # Both adapters share one resident base.
    assert resident(engine) == [
        (str(tiny.base), [str(tiny.adapter_a), str(tiny.adapter_b)]),
    ]


def test_sampling_with_a_seed_is_reproducible_per_adapter(tiny: TinyModels) -> None:
    engine = Engine(device="cpu")
    a1 = answer(engine, tiny.base, tiny.adapter_a, temperature=0.9, seed=5)
    b1 = answer(engine, tiny.base, tiny.adapter_b, temperature=0.9, seed=5)
    a2 = answer(engine, tiny.base, tiny.adapter_a, temperature=0.9, seed=5)
    assert a1 == a2
    assert a1 != b1


def test_adapter_id_names_the_cache_entry(tiny: TinyModels, reference: Reference) -> None:
    engine = Engine(device="cpu")
    chat = request(tiny.base, adapter=tiny.adapter_a, adapter_id="model-42", max_tokens=25)
    expected_a, _ = reference.greedy(tiny.base, adapter=tiny.adapter_a, max_new_tokens=25)
    assert run(engine, chat).text == expected_a
    assert resident(engine) == [(str(tiny.base), ["model-42"])]
    # The same id from another directory (a new version downloaded): reloaded, not reused.
    chat = request(tiny.base, adapter=tiny.adapter_b, adapter_id="model-42", max_tokens=25)
    expected_b, _ = reference.greedy(tiny.base, adapter=tiny.adapter_b, max_new_tokens=25)
    assert run(engine, chat).text == expected_b
    loaded: Any = engine.loaded()
    assert loaded["bases"][0]["adapters"] == [{"id": "model-42", "path": str(tiny.adapter_b)}]


def test_least_recently_used_adapter_is_evicted(tiny: TinyModels, reference: Reference) -> None:
    engine = Engine(device="cpu", max_adapters=2)
    answer(engine, tiny.base, tiny.adapter_a)
    answer(engine, tiny.base, tiny.adapter_b)
    answer(engine, tiny.base, tiny.adapter_a)  # b is now the least recently used
    answer(engine, tiny.base, tiny.adapter_c)
    assert resident(engine) == [(str(tiny.base), [str(tiny.adapter_c), str(tiny.adapter_a)])]

    # Evicted or not, every adapter still answers as it does alone.
    for adapter in (tiny.adapter_b, tiny.adapter_c, tiny.adapter_a, None):
        expected, _ = reference.greedy(tiny.base, adapter=adapter, max_new_tokens=25)
        assert answer(engine, tiny.base, adapter) == expected
    assert resident(engine) == [(str(tiny.base), [str(tiny.adapter_a), str(tiny.adapter_c)])]


def test_least_recently_used_base_is_evicted_with_its_adapters(
    tiny: TinyModels, reference: Reference
) -> None:
    engine = Engine(device="cpu", max_bases=1)
    answer(engine, tiny.base, tiny.adapter_a)
    other = answer(engine, tiny.other_base)
    assert resident(engine) == [(str(tiny.other_base), [])]
    assert other == reference.greedy(tiny.other_base, max_new_tokens=25)[0]
    expected, _ = reference.greedy(tiny.base, adapter=tiny.adapter_a, max_new_tokens=25)
    assert answer(engine, tiny.base, tiny.adapter_a) == expected
    assert resident(engine) == [(str(tiny.base), [str(tiny.adapter_a)])]


def test_adapter_limit_counts_over_all_bases(tiny: TinyModels, reference: Reference) -> None:
    # The other base has the same architecture, so the base's adapters load onto it too.
    engine = Engine(device="cpu", max_bases=2, max_adapters=1)
    answer(engine, tiny.base, tiny.adapter_a)
    answer(engine, tiny.other_base, tiny.adapter_b)
    assert resident(engine) == [
        (str(tiny.other_base), [str(tiny.adapter_b)]),
        (str(tiny.base), []),
    ]
    # The base that lost its only adapter is the plain base again.
    assert answer(engine, tiny.base) == reference.greedy(tiny.base, max_new_tokens=25)[0]


def test_loaded_reports_device_limits_and_dtype(tiny: TinyModels) -> None:
    engine = Engine(device="cpu", max_bases=2, max_adapters=3)
    assert engine.loaded() == {"device": "cpu", "max_bases": 2, "max_adapters": 3, "bases": []}
    engine.load(tiny.base, tiny.adapter_a, adapter_id="a")
    assert engine.loaded()["bases"] == [
        {
            "path": str(tiny.base),
            "dtype": "float32",
            "adapters": [{"id": "a", "path": str(tiny.adapter_a)}],
        }
    ]
    engine.unload_all()
    assert engine.loaded()["bases"] == []


def test_a_deleted_models_adapter_or_base_is_unloaded(
    tiny: TinyModels, reference: Reference
) -> None:
    engine = Engine(device="cpu", max_bases=2, max_adapters=3)
    answer(engine, tiny.base, tiny.adapter_a)
    answer(engine, tiny.base, tiny.adapter_b)
    answer(engine, tiny.other_base)
    engine.unload(tiny.adapter_a)
    assert resident(engine) == [(str(tiny.other_base), []), (str(tiny.base), [str(tiny.adapter_b)])]
    engine.unload(tiny.other_base)
    engine.unload(tiny.adapter_c)  # never loaded: nothing happens
    assert resident(engine) == [(str(tiny.base), [str(tiny.adapter_b)])]
    expected, _ = reference.greedy(tiny.base, adapter=tiny.adapter_b, max_new_tokens=25)
    assert answer(engine, tiny.base, tiny.adapter_b) == expected
