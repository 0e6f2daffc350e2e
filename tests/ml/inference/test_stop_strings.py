"""Stop sequences are found in streamed text however the text is cut into pieces."""

from __future__ import annotations

import random

import pytest

from ml.inference.stop_strings import StopStringMatcher


def stream(pieces: list[str], stops: list[str]) -> tuple[str, bool]:
    matcher = StopStringMatcher(stops)
    out = []
    for piece in pieces:
        emitted, stopped = matcher.feed(piece)
        out.append(emitted)
        if stopped:
            return "".join(out), True
    out.append(matcher.flush())
    return "".join(out), False


def test_no_stops_passes_everything_through_at_once() -> None:
    matcher = StopStringMatcher([])
    assert matcher.feed("abc") == ("abc", False)
    assert matcher.flush() == ""


def test_stop_inside_one_piece_cuts_before_it() -> None:
    assert stream(["hello world"], ["o w"]) == ("hell", True)


def test_stop_split_across_pieces_is_found_and_never_emitted() -> None:
    matcher = StopStringMatcher(["<END>"])
    assert matcher.feed("abc<E") == ("abc", False)
    assert matcher.feed("N") == ("", False)
    assert matcher.feed("D>tail") == ("", True)


def test_held_prefix_is_released_when_the_stop_does_not_follow() -> None:
    matcher = StopStringMatcher(["<END>"])
    assert matcher.feed("a<EN") == ("a", False)
    assert matcher.feed("Xb") == ("<ENXb", False)
    assert matcher.flush() == ""


def test_unfinished_stop_prefix_is_flushed_at_the_end() -> None:
    assert stream(["abc", "<EN"], ["<END>"]) == ("abc<EN", False)


def test_earliest_of_several_stops_wins() -> None:
    assert stream(["xx", "yy bb", " aa"], ["aa", "bb"]) == ("xxyy ", True)
    assert stream(["one two"], ["two", "ne t"]) == ("o", True)


def test_chinese_stop_sequence() -> None:
    assert stream(["你好，", "最近", "工作怎么样"], ["近工"]) == ("你好，最", True)


@pytest.mark.parametrize("seed", range(20))
def test_any_split_gives_the_text_cut_before_the_first_stop(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = "ab\n你"
    text = "".join(rng.choice(alphabet) for _ in range(60))
    stops = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 4))) for _ in range(2)]
    cuts = sorted(rng.sample(range(1, len(text)), 15))
    pieces = [text[i:j] for i, j in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    positions = [text.find(stop) for stop in stops if stop in text]
    expected = (text[: min(positions)], True) if positions else (text, False)
    assert stream(pieces, stops) == expected


def test_empty_stop_is_rejected() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        StopStringMatcher([""])
