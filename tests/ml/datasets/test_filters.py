"""Each filter of a spec, and how what it drops is counted."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from ml.datasets import DatasetInputError, Filters, LabelCondition, PiiOptions
from tests.ml.datasets.chat import BASE, script
from tests.ml.datasets.helpers import build, pairs, spec


def test_example_scope_label_conditions_use_every_message_of_the_example() -> None:
    messages = script(
        "小李: 工资什么时候发 #topic=工资纠纷",
        "我: 下周吧",
        "小李: 好吧",
        "我: 别急",
        "+1h",
        "小李: 吃饭了吗 #topic=生活",
        "我: 吃了 #sentiment=positive",
    )
    wage = Filters(labels=(LabelCondition("topic", "eq", ("工资纠纷",)),))
    assert pairs(messages, filters=wage) == [
        ("用户: 工资什么时候发", "回复: 下周吧"),
        ("用户: 工资什么时候发\n回复: 下周吧\n用户: 好吧", "回复: 别急"),
    ]
    # a label in the context counts too; with no context it does not
    assert pairs(messages, filters=wage, max_context_turns=0) == [
        ("用户: 工资什么时候发", "回复: 下周吧")
    ]
    _, _, stats, _, _ = build(messages, spec(filters=wage))
    assert stats.dropped_examples == {"label": 1}


@pytest.mark.parametrize(
    ("condition", "replies"),
    [
        (LabelCondition("sentiment", "ne", ("negative",)), ["回复: 好的", "回复: 吃了"]),
        (LabelCondition("sentiment", "eq", ("negative",)), ["回复: 烦死了"]),
        (LabelCondition("topic", "in", ("工作", "生活")), ["回复: 好的", "回复: 吃了"]),
        (LabelCondition("topic", "not_in", ("工作",)), ["回复: 烦死了", "回复: 吃了"]),
    ],
)
def test_label_operators(condition: LabelCondition, replies: list[str]) -> None:
    messages = script(
        "小李: 开会 #topic=工作",
        "我: 好的",
        "+1h",
        "小李: 又加班",
        "我: 烦死了 #sentiment=negative",
        "+1h",
        "小李: 吃饭了吗 #topic=生活",
        "我: 吃了",
    )
    result = pairs(messages, filters=Filters(labels=(condition,)))
    assert [completion for _, completion in result] == replies


def test_message_scope_conditions_drop_single_messages_before_turns_are_made() -> None:
    messages = script(
        "小李: 在吗", "小李: 你个骗子 #sentiment=negative", "我: 在 #sentiment=positive"
    )
    condition = LabelCondition("sentiment", "ne", ("negative",), scope="message")
    assert pairs(messages, filters=Filters(labels=(condition,))) == [("用户: 在吗", "回复: 在")]
    _, _, stats, _, _ = build(messages, spec(filters=Filters(labels=(condition,))))
    assert stats.dropped_messages == {"label": 1}


def test_senders_filter_keeps_the_persona_and_the_named_senders() -> None:
    messages = script("小李: 在吗", "小王: 我也在", "我: 都在啊")
    assert pairs(messages, filters=Filters(senders=("小王",))) == [("用户: 我也在", "回复: 都在啊")]
    assert pairs(messages, filters=Filters(exclude_senders=("小李",))) == [
        ("用户: 我也在", "回复: 都在啊")
    ]
    _, _, stats, _, _ = build(messages, spec(filters=Filters(senders=("小王",))))
    assert stats.dropped_messages == {"sender": 1}


def test_time_range_is_half_open() -> None:
    messages = script("小李: 一", "我: 二", "+1h", "小李: 三", "我: 四")
    since = BASE + timedelta(minutes=30)
    assert pairs(messages, filters=Filters(since=since)) == [("用户: 三", "回复: 四")]
    until = messages[2].timestamp
    assert pairs(messages, filters=Filters(until=until)) == [("用户: 一", "回复: 二")]
    _, _, stats, _, _ = build(messages, spec(filters=Filters(until=until)))
    assert stats.dropped_messages == {"time": 2}


def test_non_text_messages_are_dropped_or_kept_as_placeholders() -> None:
    messages = script(
        "小李: <image>", "小李: 好看吗", "我: <sticker>", "我: 好看", "小李: <system>"
    )
    assert pairs(messages) == [("用户: 好看吗", "回复: 好看")]
    kept = pairs(messages, filters=Filters(non_text="placeholder"))
    assert kept == [("用户: [图片]\n好看吗", "回复: [表情]\n好看")]
    _, _, stats, _, _ = build(messages, spec())
    assert stats.dropped_messages == {"non_text": 2, "unspoken": 1}


def test_a_reply_of_placeholders_only_is_not_an_example() -> None:
    messages = script("小李: 看这个", "我: <sticker>", "小李: 哈哈", "我: 哈哈")
    assert pairs(messages, filters=Filters(non_text="placeholder")) == [
        ("用户: 看这个\n回复: [表情]\n用户: 哈哈", "回复: 哈哈")
    ]
    _, _, stats, _, _ = build(messages, spec(filters=Filters(non_text="placeholder")))
    assert stats.dropped_examples == {"placeholder_only": 1}


def test_reply_length_bounds() -> None:
    messages = script("小李: 在吗", "我: 嗯", "小李: 明天呢", "我: 明天下午三点在公司开会")
    assert pairs(messages, filters=Filters(min_length=2), max_context_turns=0) == [
        ("用户: 明天呢", "回复: 明天下午三点在公司开会")
    ]
    assert pairs(messages, filters=Filters(max_length=5), max_context_turns=0) == [
        ("用户: 在吗", "回复: 嗯")
    ]
    _, _, stats, _, _ = build(messages, spec(filters=Filters(min_length=2, max_length=5)))
    assert stats.dropped_examples == {"too_short": 1, "too_long": 1}


def test_empty_messages_are_dropped() -> None:
    messages = script("小李: 在吗", "我: 在", "小李: ok")
    messages[2].text = "   "
    _, _, stats, _, _ = build(messages, spec())
    assert stats.dropped_messages == {"empty": 1}


def test_pii_is_scrubbed_in_the_dataset_and_counted() -> None:
    messages = script(
        "王小明: 我电话13812345678", "我: 好的，我的邮箱是 a@b.com", "王小明: 收到，王小明记下了"
    )
    result = pairs(messages, pii=PiiOptions(names=("王小明",)))
    assert result == [("用户: 我电话<手机号>", "回复: 好的，我的邮箱是 <邮箱>")]
    _, _, stats, _, _ = build(messages, spec(pii=PiiOptions(names=("王小明",))))
    assert stats.scrubbed == {"phone": 1, "email": 1, "name": 1}
    # off means off
    assert pairs(messages, pii=PiiOptions(enabled=False))[0][0] == "用户: 我电话13812345678"


def test_listed_names_are_scrubbed_in_group_speaker_names_too() -> None:
    messages = script("王小明: 在吗", "小李: 在", "我: 都在")
    result = pairs(messages, pii=PiiOptions(names=("王小明",)))
    assert result == [("用户: <姓名>: 在吗\n小李: 在", "回复: 都在")]


def test_bad_messages_raise_a_clear_error() -> None:
    messages = script("小李: 在吗")
    messages[0].timestamp = datetime(2024, 1, 1)
    with pytest.raises(DatasetInputError, match="timezone"):
        build(messages, spec())
    messages = script("小李: 在吗")
    messages[0].kind = "hologram"  # type: ignore[assignment]
    with pytest.raises(DatasetInputError, match="unknown kind 'hologram'"):
        build(messages, spec())
