"""Every export format in the fixture corpus parses to the messages a user sees in it."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from ml.parsing import KINDS, detect
from tests.ml.parsing.helpers import FIXTURES, parse_bytes, parse_fixture, summary

ME = "小明"


def test_memotrace_txt() -> None:
    messages = parse_fixture("memotrace.txt", self_name=ME)
    assert summary(messages) == [
        ("张三", "2023-12-31T23:59:58+08:00", "text", "新年快乐！[微笑]", False),
        (ME, "2023-12-31T23:59:59+08:00", "text", "同乐🎉🎉\n明年见", True),
        ("张三", "2024-01-01T00:00:00+08:00", "image", "[图片]", False),
        (ME, "2024-01-01T00:00:05+08:00", "text", "我们约在\n2024-01-02 10:00:00 见面吧", True),
        ("", "2024-01-01T00:01:00+08:00", "recall", "你撤回了一条消息", None),
        ("张三", "2024-01-01T00:02:00+08:00", "text", "好的", False),
        (ME, "2024-01-01T00:03:00+08:00", "link", "[链接] 周末去哪儿", True),
        ("张三", "2024-01-01T00:04:00+08:00", "voice", "[语音]", False),
        ("张三", "2024-01-01T00:05:00+08:00", "sticker", "[表情]", False),
        ("", "2024-01-01T00:06:00+08:00", "system", '"张三" 拍了拍 "小明"', None),
        (
            ME,
            "2024-01-01T00:07:00+08:00",
            "text",
            "第一段\n\n2023-05-05 10:00:00 这一行时间更早，不是消息头",
            True,
        ),
        ("Tom's & Jerry", "2024-01-01T00:08:00+08:00", "file", "[文件]", False),
    ]
    assert messages[5].raw["quote"] == {"sender": ME, "text": "我们约在"}
    assert messages[6].raw == {
        "title": "周末去哪儿",
        "description": "十个好去处",
        "url": "https://example.com/a",
        "app": "公众号",
    }
    assert messages[9].raw["notice"] == "pat"


def test_memotrace_txt_without_self_name_leaves_is_self_unknown() -> None:
    assert {m.is_self for m in parse_fixture("memotrace.txt")} == {None}


def test_memotrace_names_are_stripped_on_either_reader() -> None:
    # Dashed dates take the fast reader, slashed ones the general one: the same names.
    text = "2023-01-01 10:00:00  张三 \nhi\n\n2023-01-01 10:00:01 O&amp;Brien\t\nho\n"
    for data in (text, text.replace("-", "/")):
        assert [m.sender for m in parse_bytes(data.encode(), self_name="张三")] == [
            "张三",
            "O&Brien",
        ]
    assert parse_bytes(text.encode(), self_name="张三")[0].is_self


def test_memotrace_slash_dates_without_seconds() -> None:
    assert summary(parse_fixture("memotrace_slash.txt")) == [
        ("张三", "2024-01-05T09:03:00+08:00", "text", "早", None),
        ("小明", "2024-01-05T21:15:00+08:00", "text", "晚上好", None),
        ("张三", "2024-01-06T00:00:00+08:00", "text", "午夜了\n还不睡", None),
    ]


def test_text_copied_from_wechat() -> None:
    messages = parse_fixture("wechat_copy.txt", self_name="男朋友")
    assert summary(messages) == [
        ("女朋友", "2023-09-16T14:51:00+08:00", "text", "天气有点凉", False),
        (
            "男朋友",
            "2023-09-16T14:51:00+08:00",
            "text",
            "珍簟凉风著，瑶琴寄恨生。嵇君懒书札，底物慰秋情。",
            True,
        ),
        ("女朋友", "2023-09-16T15:06:00+08:00", "text", "忙什么呢", False),
        (
            "男朋友",
            "2023-09-16T15:06:00+08:00",
            "text",
            "今天只干成了一件像样的事\n那就是想你",
            True,
        ),
        ("女朋友", "2023-09-16T15:06:00+08:00", "sticker", "[表情]", False),
        ("男朋友", "2023-09-17T00:10:00+08:00", "text", "在想你呀", True),
    ]
    assert messages[-1].raw["quote"] == {"sender": "女朋友", "text": "忙什么呢"}


def test_chatlog_text() -> None:
    messages = parse_fixture("chatlog.txt")
    assert summary(messages) == [
        ("张三", "2023-12-31T23:59:59+08:00", "text", "新年快乐", None),
        ("李四", "2024-01-01T00:00:01+08:00", "image", "[图片]", None),
        ("小明", "2024-01-01T00:00:05+08:00", "text", "同乐", True),
        ("李四", "2024-01-01T00:00:30+08:00", "link", "[链接] 周末去哪儿", None),
        ("李四", "2024-01-01T00:00:40+08:00", "transfer", "[转账] 发送 ¥20.00", None),
        ("", "2024-01-01T00:01:00+08:00", "recall", '"李四"撤回了一条消息', None),
    ]
    assert [m.sender_id for m in messages] == [
        "wxid_zhang",
        "wxid_li",
        None,
        "wxid_li",
        "wxid_li",
        None,
    ]
    assert messages[0].raw["chat"] == "周末群(123@chatroom)"
    assert messages[1].raw["url"] == "http://127.0.0.1:5030/image/abc123"
    assert messages[2].raw["quote"] == {"sender": "张三", "text": "新年快乐"}
    assert messages[4].raw["memo"] == "饭钱"


def test_chatlog_text_without_year_infers_it() -> None:
    messages = parse_fixture("chatlog_month_day.txt")
    now = datetime.now(messages[0].timestamp.tzinfo)
    expected_year = now.year if (now.month, now.day) >= (1, 2) else now.year - 1
    assert [m.timestamp.year for m in messages] == [expected_year, expected_year]
    assert [(m.timestamp.month, m.timestamp.day, m.timestamp.hour) for m in messages] == [
        (1, 2, 8),
        (1, 2, 8),
    ]
    assert all(m.raw["year_inferred"] for m in messages)
    assert [m.is_self for m in messages] == [None, True]


def test_memotrace_ai_txt_keeps_speaker_turns() -> None:
    assert summary(parse_fixture("memotrace_ai.txt")) == [
        ("张三", "2024-01-01T00:00:00+08:00", "text", "新年快乐 在吗", None),
        ("小明", "2024-01-01T00:00:00+08:00", "text", "在的", None),
        ("张三", "2024-01-01T00:00:00+08:00", "text", "出来玩\n明天", None),
        ("张三", "2024-01-02T00:00:00+08:00", "text", "还记得吗", None),
        ("小明", "2024-01-02T00:00:00+08:00", "text", "记得", None),
    ]


def test_memotrace_html_reads_the_literal_without_running_it() -> None:
    messages = parse_fixture("memotrace.html")
    assert summary(messages) == [
        ("张三", "2024-01-01T00:00:00+08:00", "text", "你好[微笑]", False),
        (
            "小明",
            "2024-01-01T00:01:00+08:00",
            "text",
            "<script>alert('x')</script> & 第一行\n第二行",
            True,
        ),
        ("张三", "2024-01-01T00:01:10+08:00", "image", "[图片]", False),
        ("", "2024-01-01T00:01:20+08:00", "recall", "你撤回了一条消息", None),
        ("张三", "2024-01-01T00:01:30+08:00", "text", "好呀", False),
        ("小明", "2024-01-01T00:01:40+08:00", "link", "[链接] 好文章", True),
        ("小明", "2024-01-01T00:01:50+08:00", "transfer", "[转账] ¥20.00 饭钱", True),
        # MemoTrace writes no is_send for calls.
        ("张三", "2024-01-01T00:02:00+08:00", "call", "[通话] 通话时长 01:02", None),
        ("张三", "2024-01-01T00:02:10+08:00", "voice", "[语音]", False),
        ("张三", "2024-01-01T00:02:20+08:00", "file", "[文件] 报告.pdf", False),
    ]
    assert messages[4].raw["quote"] == {"sender": "小明", "text": "明天吃饭吗"}
    assert messages[5].raw["url"] == "https://example.com/x"
    assert messages[8].raw["transcription"] == "我到了"


def test_pywxdump_data_js_uses_its_user_list() -> None:
    messages = parse_fixture("pywxdump_data.js")
    assert summary(messages) == [
        ("老张", "2024-01-01T10:00:00+08:00", "text", "在吗", False),
        ("小明", "2024-01-01T10:00:05+08:00", "text", "在的\n怎么了", True),
        ("老张", "2024-01-01T10:00:10+08:00", "image", "[图片]", False),
        ("", "2024-01-01T10:00:20+08:00", "recall", '"老张" 撤回了一条消息', None),
    ]
    assert messages[0].key == "id:7437267147299592543"
    assert messages[0].sender_id == "wxid_zhang"


def test_pywxdump_json() -> None:
    messages = parse_fixture("pywxdump.json")
    assert summary(messages) == [
        ("我", "2024-02-01T09:00:00+08:00", "text", "大家好", True),
        ("wxid_li", "2024-02-01T09:00:10+08:00", "voice", "[语音]", False),
        ("wxid_li", "2024-02-01T09:00:20+08:00", "text", "好的", False),
        ("", "2024-02-01T09:00:30+08:00", "system", '"李四" 拍了拍 "小明"', None),
        ("wxid_li", "2024-02-01T09:00:40+08:00", "other", "[聊天记录] 群聊的聊天记录", False),
    ]
    assert messages[1].raw["transcription"] == "你好啊"
    assert messages[2].raw["quote"] == {
        "sender": "小明",
        "text": "大家好",
        "time": "2024-02-01 09:00:00",
    }
    assert messages[3].raw["notice"] == "pat"
    assert messages[0].raw["chat_id"] == "123@chatroom"


def test_pywxdump_csv() -> None:
    messages = parse_fixture("pywxdump.csv")
    assert summary(messages) == [
        ("wxid_zhang", "2024-03-01T18:00:00+08:00", "text", '晚上吃什么, "火锅"还是烧烤', False),
        ("我", "2024-03-01T18:00:30+08:00", "text", "火锅！\n上次那家", True),
        ("wxid_zhang", "2024-03-01T18:01:00+08:00", "link", "[链接] 海底捞新店", False),
        ("我", "2024-03-01T18:02:00+08:00", "transfer", "[转账] ￥100.00 AA", True),
        ("wxid_zhang", "2024-03-01T18:03:00+08:00", "call", "[通话] 通话时长 00:42", False),
        (
            "wxid_zhang",
            "2024-03-01T18:04:00+08:00",
            "location",
            "[位置] 北京市 海底捞(王府井店)",
            False,
        ),
        ("", "2024-03-01T18:05:00+08:00", "recall", '"张三" 撤回了一条消息', None),
        ("wxid_zhang", "2024-03-01T18:06:00+08:00", "sticker", "[表情]", False),
    ]
    assert [m.key for m in messages][:2] == ["id:811", "id:812"]
    assert messages[2].raw["url"] == "https://example.com/hdl"
    assert messages[2].raw["description"] == "开业打折"


def test_memotrace_csv_maps_wechat_types() -> None:
    messages = parse_fixture("memotrace.csv")
    assert summary(messages) == [
        ("老张", "2024-01-01T07:59:59+08:00", "text", "早点睡吧,晚安\n明天见", False),
        ("小明", "2024-01-01T08:00:00+08:00", "image", "[图片]", True),
        ("老张", "2024-01-01T08:00:10+08:00", "voice", "[语音]", False),
        ("老张", "2024-01-01T08:00:20+08:00", "video", "[视频]", False),
        ("小明", "2024-01-01T08:00:30+08:00", "sticker", "[表情]", True),
        ("老张", "2024-01-01T08:00:40+08:00", "location", "[位置] 北京市东城区", False),
        ("", "2024-01-01T08:00:50+08:00", "recall", '"老张" 撤回了一条消息', None),
        ("", "2024-01-01T08:01:00+08:00", "system", "你已添加了老张，现在可以开始聊天了。", None),
        ("老张", "2024-01-01T08:01:10+08:00", "text", "收到", False),
        ("小明", "2024-01-01T08:01:20+08:00", "file", "[文件] 报告.pdf", True),
        ("小明", "2024-01-01T08:01:30+08:00", "transfer", "[转账] ￥20.00 饭钱", True),
        ("老张", "2024-01-01T08:01:40+08:00", "red_packet", "[红包]", False),
        ("老张", "2024-01-01T08:01:50+08:00", "call", "[通话] 通话时长 00:12", False),
        ("", "2024-01-01T08:02:00+08:00", "recall", '"老张" 撤回了一条消息', None),
        ("", "2024-01-01T08:02:10+08:00", "system", '"老张" 拍了拍我', None),
    ]
    assert messages[1].raw["md5"] == "d41d8cd98f00b204e9800998ecf8427e"
    assert messages[2].raw["duration_ms"] == "3200"
    assert messages[4].raw["url"] == "http://emoji.qpic.cn/wx_emoji/x/0?a=1&b=2"
    assert messages[5].raw["poiname"] == "故宫博物院"
    assert messages[8].raw["quote"]["text"] == "明天见"
    assert messages[8].raw["quote"]["sender"] == "小明"
    assert (messages[9].raw["type"], messages[9].raw["subtype"]) == (49, 6)
    assert messages[0].sender_id == "wxid_zhang"
    assert messages[0].raw["chat_id"] == "7"


def test_chatlog_csv_infers_self_in_a_one_to_one_chat() -> None:
    messages = parse_fixture("chatlog.csv")
    assert summary(messages) == [
        ("张三", "2024-04-01T12:00:00+08:00", "text", "中午吃啥", False),
        ("小明", "2024-04-01T12:00:10+08:00", "text", "面条\n或者米饭", True),
        ("张三", "2024-04-01T12:00:20+08:00", "file", "[文件] 菜单.pdf", False),
        ("", "2024-04-01T12:00:30+08:00", "recall", "你撤回了一条消息", None),
        ("张三", "2024-04-01T12:00:40+08:00", "call", "[通话]", False),
    ]


def test_chatlog_json() -> None:
    messages = parse_fixture("chatlog.json")
    assert summary(messages) == [
        ("张三", "2024-01-01T12:00:00+08:00", "text", "周末爬山？", False),
        ("小明", "2024-01-01T12:00:10+08:00", "image", "[图片]", True),
        ("李四", "2024-01-01T12:00:20+08:00", "text", "我也去", False),
        ("", "2024-01-01T12:00:30+08:00", "system", '"李四"邀请"王五"加入了群聊', None),
        ("李四", "2024-01-01T12:00:40+08:00", "transfer", "[转账] 发送 ¥50.00", False),
        ("李四", "2024-01-01T12:00:50+08:00", "link", "[链接] 登山攻略", False),
    ]
    assert messages[0].key == "id:1704081600000"
    assert messages[1].raw["md5"] == "ee55"
    assert messages[2].raw["quote"] == {"sender": "张三", "text": "周末爬山？"}
    assert messages[3].raw["notice"] == "join"
    assert messages[4].raw["memo"] == "车费"


def test_echotrace_json_unpacks_wechat4_types() -> None:
    messages = parse_fixture("echotrace.json")
    assert summary(messages) == [
        ("老张", "2024-01-01T16:00:00+08:00", "text", "下午好", False),
        ("小明", "2024-01-01T16:00:10+08:00", "text", "好呀", True),
        ("老张", "2024-01-01T16:00:20+08:00", "voice", "[语音]", False),
        ("老张", "2024-01-01T16:00:30+08:00", "red_packet", "[红包]", False),
        ("", "2024-01-01T16:00:40+08:00", "system", "[拍一拍]", None),
        ("小明", "2024-01-01T16:00:50+08:00", "sticker", "[表情]", True),
    ]
    assert (messages[1].raw["type"], messages[1].raw["subtype"]) == (49, 57)
    assert messages[4].raw["notice"] == "pat"
    assert messages[0].raw["chat_id"] == "wxid_zhang"


@pytest.mark.parametrize("name", ["chatlab.json", "chatlab.jsonl"])
def test_chatlab(name: str) -> None:
    messages = parse_fixture(name)
    assert summary(messages) == [
        ("群主-张三", "2023-12-20T00:00:00+08:00", "text", "大家好！欢迎加入技术交流群~", True),
        ("李四", "2023-12-20T00:00:10+08:00", "text", "收到！", False),
        ("李四", "2023-12-20T00:00:20+08:00", "image", "[图片]", False),
        ("", "2023-12-20T00:00:30+08:00", "recall", "李四撤回了一条消息", None),
    ]
    assert [m.key for m in messages] == ["id:msg_001", "id:msg_002", "id:msg_003", "id:msg_004"]
    assert messages[1].raw["reply_to"] == "msg_001"


EXPECTED_FORMATS = {
    "memotrace.txt": "memotrace_txt",
    "memotrace_slash.txt": "memotrace_txt",
    "wechat_copy.txt": "wechat_copy_txt",
    "chatlog.txt": "chatlog_txt",
    "chatlog_month_day.txt": "chatlog_txt",
    "memotrace_ai.txt": "memotrace_ai_txt",
    "memotrace.html": "memotrace_html",
    "pywxdump_data.js": "pywxdump_html",
    "pywxdump.json": "pywxdump_json",
    "pywxdump.csv": "pywxdump_csv",
    "memotrace.csv": "memotrace_csv",
    "chatlog.csv": "chatlog_csv",
    "chatlog.json": "chatlog_json",
    "echotrace.json": "echotrace_json",
    "chatlab.json": "chatlab_json",
    "chatlab.jsonl": "chatlab_jsonl",
}


@pytest.mark.parametrize(("name", "expected"), sorted(EXPECTED_FORMATS.items()))
def test_detected_from_content_not_name(
    name: str, expected: str, tmp_path: pytest.TempPathFactory
) -> None:
    renamed = tmp_path / "upload.bin"  # type: ignore[operator]
    renamed.write_bytes((FIXTURES / name).read_bytes())
    with renamed.open("rb") as source:
        assert detect(source) == expected


def test_corpus_covers_every_fixture() -> None:
    assert sorted(EXPECTED_FORMATS) == sorted(path.name for path in FIXTURES.iterdir())


@pytest.mark.parametrize("name", sorted(EXPECTED_FORMATS))
def test_messages_are_well_formed(name: str) -> None:
    for message in parse_fixture(name):
        assert message.kind in KINDS
        assert message.timestamp.tzinfo is not None
        assert isinstance(message.text, str)
        json.dumps(message.raw)
        assert message.key.startswith(("id:", "h:"))
