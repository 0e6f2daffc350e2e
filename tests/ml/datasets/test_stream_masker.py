from __future__ import annotations

import random

import pytest

from ml.datasets import Scrubber, StreamMasker

SCRUBBER = Scrubber(names=("王小明", "Tom Lee"))

TEXTS = [
    "我的手机号是13812345678，有事打我。",
    "打+86 138 1234 5678或者138-1234-5678都行",
    "身份证11010519491231002X，卡号6222 0212 3456 7890 128。",
    "邮箱 abc.def+x@qq.com 或者 https://example.com/a?b=1&c=2 都可以",
    "加我微信：zhang_san88，或者 vx: Abc_12345，wxid_a1b2c3d4e5f6 也行",
    "车牌京A·12345，还有沪AD12345和粤B-1234学，新车 川a 1b2c3",
    "王小明说Tom Lee明天来，tom lee不来",
    "价格¥3500，日期2024-01-15，订单2024011512345678，时间12:30，3.14159265358",
    "Hello, this is plain English text with no personal data at all.",
    "今天天气不错，我们去公园散步吧，顺便买点水果。",
    "电话13812345678",
    "13812345678",
    "微信号zhangsan",
    "新疆很美，京剧也好看，微信上聊",
]


def run(masker: StreamMasker, pieces: list[str]) -> str:
    return "".join(masker.feed(p) for p in pieces) + masker.flush()


@pytest.mark.parametrize("text", TEXTS)
def test_every_two_piece_split_masks_like_the_whole(text: str) -> None:
    expected = SCRUBBER.scrub(text)[0]
    for cut in range(len(text) + 1):
        assert run(StreamMasker(SCRUBBER), [text[:cut], text[cut:]]) == expected, cut


@pytest.mark.parametrize("text", TEXTS)
def test_character_by_character_masks_like_the_whole(text: str) -> None:
    assert run(StreamMasker(SCRUBBER), list(text)) == SCRUBBER.scrub(text)[0]


def test_random_token_streams_mask_like_the_whole() -> None:
    rng = random.Random(3)
    for _ in range(300):
        text = "".join(rng.sample(TEXTS, 3))
        pieces, i = [], 0
        while i < len(text):
            step = rng.randint(1, 6)
            pieces.append(text[i : i + step])
            i += step
        masker = StreamMasker(SCRUBBER)
        assert run(masker, pieces) == SCRUBBER.scrub(text)[0]
        assert masker.masked == SCRUBBER.scrub(text)[1]


def test_plain_chinese_streams_without_delay() -> None:
    masker = StreamMasker(SCRUBBER)
    text = "今天天气不错，我们去公园散步吧，顺便买点水果。"
    shown = ""
    for char in text:
        shown += masker.feed(char)
        assert len(masker.pending) == 0, (shown, masker.pending)
    assert shown == text
    assert masker.flush() == ""


def test_only_a_short_tail_is_held() -> None:
    masker = StreamMasker(SCRUBBER)
    assert masker.feed("我的电话是138") == "我的电话是"
    assert masker.pending == "138"
    assert masker.feed("1234") == ""
    assert masker.feed("5678，") == "<手机号>，"
    # A province character may start a plate, 微 a WeChat keyword, 王 a listed name.
    assert masker.feed("回北京") == "回北"
    assert masker.feed("了") == "京了"
    assert masker.feed("用微") == "用"
    assert masker.feed("信") == ""
    assert masker.feed("聊") == "微信聊"
    assert masker.feed("找王") == "找"
    assert masker.feed("小红") == "王小红"
    # An English word is held until it ends: it could be the start of an address.
    assert masker.feed("see") == ""
    assert masker.feed(" you") == "see "
    assert masker.flush() == "you"


def test_flush_masks_what_was_held() -> None:
    masker = StreamMasker(SCRUBBER)
    assert masker.feed("联系我13812345678") == "联系我"
    assert masker.flush() == "<手机号>"
    assert masker.masked == {"phone": 1}


def test_empty_feeds_are_harmless() -> None:
    masker = StreamMasker()
    assert masker.feed("") == ""
    assert masker.flush() == ""
