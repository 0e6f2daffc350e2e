"""Sessions, turns, merging, persona and context: what becomes a prompt and a reply."""

from __future__ import annotations

from collections.abc import Iterator

from ml.datasets import DatasetMessage, DatasetSpec, iter_examples
from tests.ml.datasets.chat import script
from tests.ml.datasets.helpers import build, pairs, spec

CHAT = script(
    "小李: 在吗",
    "我: 在的",
    "小李: 明天开会吗",
    "小李: 几点",
    "我: 三点",
    "我: 会议室见",
)


def test_merged_bursts_make_one_turn_and_one_reply() -> None:
    assert pairs(CHAT) == [
        ("用户: 在吗", "回复: 在的"),
        ("用户: 在吗\n回复: 在的\n用户: 明天开会吗\n几点", "回复: 三点\n会议室见"),
    ]


def test_without_merging_each_persona_message_replies_to_the_latest_user_turn() -> None:
    assert pairs(CHAT, merge_consecutive=False) == [
        ("用户: 在吗", "回复: 在的"),
        ("用户: 在吗\n回复: 在的\n用户: 明天开会吗\n几点", "回复: 三点"),
        ("用户: 在吗\n回复: 在的\n用户: 明天开会吗\n几点", "回复: 会议室见"),
    ]


def test_a_silence_longer_than_the_gap_starts_a_new_session() -> None:
    messages = script("小李: 在吗", "我: 在的", "+31m", "我: 刚才说到哪了", "小李: 开会", "我: 好")
    _, _, stats, _, _ = build(messages, spec())
    assert stats.sessions == 2
    assert pairs(messages) == [("用户: 在吗", "回复: 在的"), ("用户: 开会", "回复: 好")]
    # the reply that opened the second session had nothing to answer
    assert stats.dropped_examples == {"no_prompt": 1}


def test_the_gap_is_configurable_and_inclusive() -> None:
    messages = script("小李: 在吗", "+570s", "我: 在的")  # 10 minutes apart
    assert pairs(messages, session_gap_seconds=600) == [("用户: 在吗", "回复: 在的")]
    assert pairs(messages, session_gap_seconds=599) == []


def test_a_new_upload_starts_a_new_session() -> None:
    messages = script("小李: 在吗", upload_id="a") + script("我: 在的", upload_id="b")
    assert pairs(messages) == []


def test_persona_defaults_to_self_and_can_be_named() -> None:
    messages = script("小李: 在吗", "我: 在的", "小李: 好的")
    assert pairs(messages) == [("用户: 在吗", "回复: 在的")]
    assert pairs(messages, persona=("小李",)) == [("用户: 在的", "回复: 好的")]


def test_several_persona_names_speak_as_one() -> None:
    messages = script("小李: 在吗", "张伟: 在", "张伟的小号: 我也在", "小李: 好")
    assert pairs(messages, persona=("张伟", "张伟的小号")) == [("用户: 在吗", "回复: 在\n我也在")]


def test_is_self_none_is_not_the_persona() -> None:
    messages = script("小李: 在吗", "我: 在的")
    messages[1].is_self = None
    assert pairs(messages) == []


def test_group_turns_name_each_speaker() -> None:
    messages = script("小李: 在吗", "小王: 我也在", "小王: 有事吗", "我: 都在啊", "小李: 好")
    assert pairs(messages) == [("用户: 小李: 在吗\n小王: 我也在\n有事吗", "回复: 都在啊")]


def test_context_keeps_the_last_turns_and_starts_with_the_user() -> None:
    messages = script(
        "小李: 一", "我: 二", "小李: 三", "我: 四", "小李: 五", "我: 六", "小李: 七", "我: 八"
    )
    last = pairs(messages, max_context_turns=2)[-1]
    assert last == ("用户: 五\n回复: 六\n用户: 七", "回复: 八")
    # an odd window would start with the persona's turn: that turn is left out
    last = pairs(messages, max_context_turns=3)[-1]
    assert last == ("用户: 五\n回复: 六\n用户: 七", "回复: 八")
    assert pairs(messages, max_context_turns=0)[-1] == ("用户: 七", "回复: 八")


def test_examples_stream_as_messages_arrive() -> None:
    read = 0

    def messages() -> Iterator[DatasetMessage]:
        nonlocal read
        for message in script(*(["小李: 在吗", "我: 在的"] * 1000)):
            read += 1
            yield message

    examples = iter_examples(messages(), DatasetSpec())
    first = next(examples)
    assert first.record == {"prompt": "用户: 在吗", "completion": "回复: 在的"}
    assert read <= 3


def test_a_rendered_example_knows_its_messages_labels_and_turns() -> None:
    messages = script(
        "小李: 在吗 #topic=工作", "我: 在 #sentiment=positive", "小李: 明天呢", "我: 好"
    )
    spec = DatasetSpec(format="sharegpt", system_prompt="你是我。")
    first, second = iter_examples(messages, spec)
    assert second.message_ids == ("u1-1", "u1-2", "u1-3", "u1-4")
    assert first.message_ids == ("u1-1", "u1-2")
    assert second.labels == {"sentiment": ("positive",), "topic": ("工作",)}
    assert second.turns == (
        ("system", "你是我。"),
        ("user", "在吗"),
        ("assistant", "在"),
        ("user", "明天呢"),
        ("assistant", "好"),
    )
    assert second.tokens == sum(len(content) for _, content in second.turns)  # all Chinese
