"""Whole builds: determinism, duplicates, the eval split, stats, previews, progress."""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson

from ml.datasets import (
    DatasetMessage,
    DatasetSpec,
    DatasetStats,
    DedupeOptions,
    Filters,
    PiiOptions,
    SplitOptions,
    build_dataset,
    preview,
)
from ml.datasets.dedupe import Deduper, normalize
from ml.datasets.synthetic import SELF_NAME, generate_messages
from tests.ml.datasets.chat import script
from tests.ml.datasets.helpers import build, pairs, spec

ROOT = Path(__file__).resolve().parents[3]
SPEC = DatasetSpec(
    format="sharegpt",
    persona=(SELF_NAME,),
    system_prompt="你是张伟。",
    filters=Filters(non_text="placeholder"),
    split=SplitOptions(eval_ratio=0.1, seed=7),
)

BUILD_IN_A_CHILD = """
import hashlib, io, sys
from ml.datasets import DatasetSpec, build_dataset
from ml.datasets.synthetic import generate_messages
spec = DatasetSpec.from_json(sys.argv[1])
train, evaluation = io.BytesIO(), io.BytesIO()
build_dataset(generate_messages(20_000, seed=5), spec, train, evaluation)
print(*(hashlib.sha256(out.getvalue()).hexdigest() for out in (train, evaluation)))
"""


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_same_spec_same_messages_same_bytes() -> None:
    first = build(generate_messages(20_000, seed=5), SPEC)
    second = build(generate_messages(20_000, seed=5), DatasetSpec.from_json(SPEC.to_json()))
    assert first[3] == second[3] and first[4] == second[4]
    assert first[2].to_dict() == second[2].to_dict()
    assert first[2].train_sha256 == sha(first[3]) and first[2].eval_sha256 == sha(first[4])
    assert first[2].train_bytes == len(first[3])


def test_same_bytes_in_processes_with_different_hash_seeds() -> None:
    expected = build(generate_messages(20_000, seed=5), SPEC)
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", BUILD_IN_A_CHILD, SPEC.to_json()],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        digests.add(out.stdout.strip())
    assert digests == {f"{sha(expected[3])} {sha(expected[4])}"}


def test_eval_split_is_deterministic_and_near_the_ratio() -> None:
    messages = list(generate_messages(30_000, seed=1))
    one = build(messages, SPEC)
    train, evaluation, stats = one[0], one[1], one[2]
    assert stats.eval_examples == len(evaluation) and stats.train_examples == len(train)
    share = stats.eval_examples / stats.examples
    assert 0.07 < share < 0.13
    # another seed moves examples between the splits, keeping the ratio
    other = build(
        messages, DatasetSpec.from_dict({**SPEC.to_dict(), "split": {"eval_ratio": 0.1, "seed": 8}})
    )
    assert other[1] != evaluation
    assert len(other[0]) + len(other[1]) == stats.examples
    # no eval set at all
    none = build(messages, DatasetSpec.from_dict({**SPEC.to_dict(), "split": {"eval_ratio": 0}}))
    assert none[1] == [] and none[4] == b""


def test_an_example_lands_in_the_same_split_whatever_surrounds_it() -> None:
    chat = ["小李: 周末去爬山吗", "我: 好啊，几点出发"]
    alone = build(script(*chat), spec(split=SplitOptions(eval_ratio=0.5, seed=3)))
    surrounded = build(
        script("小李: 在吗", "我: 在", "+2h", *chat),
        spec(split=SplitOptions(eval_ratio=0.5, seed=3)),
    )
    record = {"prompt": "用户: 周末去爬山吗", "completion": "回复: 好啊，几点出发"}
    where_alone = "train" if record in alone[0] else "eval"
    where_surrounded = "train" if record in surrounded[0] else "eval"
    assert record in alone[0] + alone[1] and where_alone == where_surrounded


def test_exact_duplicates_ignore_case_punctuation_and_repeats() -> None:
    messages = script(
        "小李: 在吗", "我: 在", "+1h",
        "小李: 在吗？", "我: 在！", "+1h",
        "小李: 哈哈哈哈", "我: OK", "+1h",
        "小李: 哈哈", "我: ok.", "+1h",
        "小李: 在吗", "我: 不在",
    )  # fmt: skip
    result = pairs(messages, dedupe=DedupeOptions(exact=True, near=False))
    assert result == [
        ("用户: 在吗", "回复: 在"),
        ("用户: 哈哈哈哈", "回复: OK"),
        ("用户: 在吗", "回复: 不在"),
    ]
    _, _, stats, _, _ = build(messages, spec(dedupe=DedupeOptions(exact=True, near=False)))
    assert stats.dropped_examples == {"duplicate_exact": 2}


def test_near_duplicates_of_long_texts_are_dropped_and_different_ones_kept() -> None:
    notice = (
        "【通知】各位同事，本周五下午三点在三楼会议室召开季度总结会，"
        "请提前准备好各自的工作汇报材料，不要迟到。"
    )
    other = "房东说下个月开始涨租金，每个月多五百块，我在想要不要干脆换个地方住。"
    messages = script(
        "小李: 通知一下", f"我: {notice}", "+1h",
        "小李: 通知一下", f"我: {notice.replace('三点', '四点')}", "+1h",
        "小李: 通知一下", f"我: {notice.replace('季度', '年度')}", "+1h",
        "小李: 通知一下", f"我: {other}",
    )  # fmt: skip
    kept = pairs(messages, dedupe=DedupeOptions())
    assert [c for _, c in kept] == [f"回复: {notice}", f"回复: {other}"]
    _, _, stats, _, _ = build(messages, spec(dedupe=DedupeOptions()))
    assert stats.dropped_examples == {"duplicate_near": 2}


def test_near_duplicate_detection_on_a_corpus() -> None:
    base = [
        "今天老板又拖欠工资了，我们要不要一起去劳动仲裁，或者先找律师咨询一下？",
        "刚看了一下，去杭州的高铁票还有，早上八点那班比较合适，到了直接去西湖边吃饭。",
        "这次体检结果出来了，医生说血压有点高，让少吃盐多运动，以后晚饭后出去走走。",
        "我觉得这个方案还需要再改一下，预算部分写得不够清楚，而且时间安排太紧了。",
    ]
    deduper = Deduper(exact=True, near=True, min_chars=24)
    for text in base:
        key = normalize(text)
        assert deduper.check(key, hash(key)) is None
    edits = [t[:10] + "呢" + t[10:] for t in base] + [t.replace("，", "。", 1) + "哈" for t in base]
    caught = 0
    for text in edits:
        key = normalize(text)
        caught += deduper.check(key, hash(key)) == "duplicate_near"
    assert caught >= 6  # LSH: about 0.96 of copies at Jaccard 0.8 are caught
    # short texts never take part
    assert Deduper(min_chars=24).check("好的", 1) is None


def test_stats_count_what_was_written() -> None:
    messages = script(
        "小李: 工资什么时候发 #topic=工资纠纷",
        "我: 下周吧 #topic=工资纠纷 #sentiment=neutral",
        "小李: 电话13812345678 #topic=工作",
        "我: 好的",
        "小李: <image>",
    )
    _, _, stats, _, _ = build(messages, spec(format="sharegpt", system_prompt="你是我"))
    assert stats.messages == 5
    assert stats.sessions == 1
    assert stats.examples == 2 and stats.train_examples == 2 and stats.eval_examples == 0
    assert stats.turns == 2 + 4
    assert stats.labels == {"topic": {"工资纠纷": 2, "工作": 1}, "sentiment": {"neutral": 2}}
    assert stats.scrubbed == {"phone": 1}
    assert stats.dropped_messages == {"non_text": 1}
    # approximate tokens: one per Chinese character, one per 4 ASCII characters, system included
    system, first = 3, len("工资什么时候发") + len("下周吧")
    second = first + len("电话") + len("<手机号>") - 2 + 1 + len("好的")
    assert stats.approx_tokens == 2 * system + first + second
    as_dict = stats.to_dict()
    assert as_dict["examples"] == 2 and list(as_dict["labels"]) == ["sentiment", "topic"]
    assert orjson.loads(orjson.dumps(as_dict)) == as_dict  # ready for a JSON column


def test_preview_shows_placeholders_and_reads_only_what_it_needs() -> None:
    read = 0

    def messages() -> Iterator[DatasetMessage]:
        nonlocal read
        for message in generate_messages(50_000, seed=2):
            read += 1
            yield message

    dataset_spec = DatasetSpec(
        persona=(SELF_NAME,),
        filters=Filters(non_text="placeholder"),
        pii=PiiOptions(names=(SELF_NAME,)),
    )
    examples = preview(messages(), dataset_spec, first=5)
    assert len(examples) == 5
    assert read < 500
    for example in examples:
        assert example.split in ("train", "eval")
        assert example.line.endswith(b"\n")
        assert example.turns[-1][0] == "assistant"
        assert example.message_ids and all(i.startswith("m") for i in example.message_ids)
        assert example.tokens > 0
    shown = preview(generate_messages(50_000, seed=2), dataset_spec, 2000)
    contents = "\n".join(content for example in shown for _, content in example.turns)
    assert "<手机号>" in contents and "<邮箱>" in contents and "[图片]" in contents
    assert re.search(r"1[3-9]\d{9}|@example\.com", contents) is None
    labelled = next(example for example in shown if example.labels)
    assert all(isinstance(values, tuple) for values in labelled.labels.values())
    assert preview(generate_messages(10), dataset_spec, 0) == []


def test_progress_is_reported_and_can_stop_a_build() -> None:
    seen: list[int] = []

    def progress(stats: DatasetStats) -> None:
        seen.append(stats.messages)

    build_dataset(generate_messages(25_000), DatasetSpec(), io.BytesIO(), io.BytesIO(), progress)
    assert seen == [10_000, 20_000, 25_000]

    class Cancelled(Exception):
        pass

    def cancel(stats: DatasetStats) -> None:
        raise Cancelled

    train = io.BytesIO()
    try:
        build_dataset(generate_messages(25_000), DatasetSpec(), train, io.BytesIO(), cancel)
    except Cancelled:
        pass
    else:
        raise AssertionError("the build went on")


def test_generated_messages_are_ordered_and_repeatable() -> None:
    messages = list(generate_messages(30_000, seed=9))
    assert len(messages) == 30_000
    assert messages == list(generate_messages(30_000, seed=9))
    keys = [(m.upload_id, m.timestamp) for m in messages]
    assert keys == sorted(keys)
    assert len({m.upload_id for m in messages}) > 1
    assert any(m.kind != "text" for m in messages) and any(m.labels for m in messages)
