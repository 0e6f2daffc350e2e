"""Labeling through the API: rules, human labels and their precedence, stats, a classifier."""

from __future__ import annotations

from typing import Any

from tests.support.live import Client
from tests.support.uploads import upload_and_parse, wait_for_job

CHAT = "\n".join(
    f"2024-03-0{1 + n // 4} 1{n % 4}:00:00 {sender}\n{text}\n"
    for n, (sender, text) in enumerate(
        [
            ("张三", "老板拖欠工资三个月了，太过分了"),
            ("我", "谢谢你的提醒[微笑]"),
            ("张三", "工资什么时候发？"),
            ("我", "明天下午三点开会"),
            ("张三", "我们去劳动仲裁吧，讨薪"),
            ("我", "好的👍"),
            ("张三", "不是工资的问题"),
            ("我", "请帮我把报告发过来"),
        ]
    )
).encode()

LABEL = """mutation($upload: ID!, $rules: String, $useModel: Boolean!, $classifier: ID) {
  labelMessages(uploadId: $upload, rules: $rules, useModel: $useModel, classifierId: $classifier) {
    __typename ... on LabelMessagesSuccess { job { id } } ... on UserError { message field code }
  }
}"""
MESSAGES = """query($upload: ID!, $label: [LabelFilter!]) {
  messages(uploadId: $upload, first: 100, label: $label) {
    totalCount
    edges { node { id text labels { key value source rule effective score } } }
  }
}"""


async def label(user: Client, upload_id: str, **variables: Any) -> dict[str, Any]:
    data = await user.query(LABEL, {"upload": upload_id, "useModel": False, **variables})
    return data["labelMessages"]  # type: ignore[no-any-return]


async def messages(
    user: Client, upload_id: str, label: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    data = await user.query(MESSAGES, {"upload": upload_id, "label": label})
    return [edge["node"] for edge in data["messages"]["edges"]]


async def test_default_rules_label_wage_disputes_and_sentiment(user: Client) -> None:
    upload_id = await upload_and_parse(user, CHAT)
    started = await label(user, upload_id)
    assert started["__typename"] == "LabelMessagesSuccess", started
    assert (await wait_for_job(user, started["job"]["id"]))["status"] == "SUCCEEDED"
    found = await messages(user, upload_id)
    by_text = {m["text"]: {(lb["key"], lb["value"]) for lb in m["labels"]} for m in found}
    assert ("topic", "工资纠纷") in by_text["老板拖欠工资三个月了，太过分了"]
    assert ("sentiment", "positive") in by_text["谢谢你的提醒[微笑]"]
    assert ("sentiment", "negative") in by_text["老板拖欠工资三个月了，太过分了"]
    every = [lb for m in found for lb in m["labels"]]
    assert all(lb["source"] == "RULE" and lb["rule"] for lb in every)
    wage = await messages(user, upload_id, [{"key": "topic", "value": "工资纠纷"}])
    assert "老板拖欠工资三个月了，太过分了" in {m["text"] for m in wage}
    not_wage = await messages(
        user, upload_id, [{"key": "topic", "value": "工资纠纷", "negate": True}]
    )
    assert len(wage) + len(not_wage) == 8

    # Running again replaces rule labels; it never duplicates them.
    again = await label(user, upload_id)
    await wait_for_job(user, again["job"]["id"])
    assert sum(len(m["labels"]) for m in await messages(user, upload_id)) == len(every)


async def test_custom_and_invalid_rules(user: Client) -> None:
    upload_id = await upload_and_parse(user, CHAT)
    rules = """
version: 1
rules:
  - id: meeting
    key: topic
    value: 会议
    keywords: [开会]
"""
    started = await label(user, upload_id, rules=rules)
    assert started["__typename"] == "LabelMessagesSuccess", started
    await wait_for_job(user, started["job"]["id"])
    topics = {
        m["text"]: [lb["value"] for lb in m["labels"] if lb["key"] == "topic"]
        for m in await messages(user, upload_id)
    }
    assert topics["明天下午三点开会"] == ["会议"]
    assert topics["老板拖欠工资三个月了，太过分了"] == []

    invalid = await label(
        user, upload_id, rules="rules:\n  - id: x\n    key: topic\n    regex: '(['\n"
    )
    assert invalid["__typename"] == "InvalidInputError"
    assert invalid["field"] == "rules"
    assert invalid["message"].startswith("invalid rules:")
    not_yaml = await label(user, upload_id, rules="{{{")
    assert not_yaml["__typename"] == "InvalidInputError"


async def test_human_label_wins_and_keeps_history(user: Client) -> None:
    upload_id = await upload_and_parse(user, CHAT)
    await wait_for_job(user, (await label(user, upload_id))["job"]["id"])
    target = next(m for m in await messages(user, upload_id) if m["text"].startswith("老板拖欠"))
    set_label = """mutation($id: ID!, $key: String!, $value: String!) {
      setLabel(messageId: $id, key: $key, value: $value) {
        __typename ... on SetLabelSuccess { label { source value } } ... on UserError { field code }
      }
    }"""
    result = await user.query(
        set_label, {"id": target["id"], "key": "sentiment", "value": "neutral"}
    )
    assert result["setLabel"]["__typename"] == "SetLabelSuccess"
    result = await user.query(
        set_label, {"id": target["id"], "key": "sentiment", "value": "positive"}
    )
    assert result["setLabel"]["label"] == {"source": "HUMAN", "value": "positive"}
    bad = await user.query(set_label, {"id": target["id"], "key": "sentiment", "value": "ecstatic"})
    assert bad["setLabel"] == {
        "__typename": "InvalidInputError",
        "field": "value",
        "code": "INVALID_INPUT",
    }

    node = next(m for m in await messages(user, upload_id) if m["id"] == target["id"])
    sentiment = [lb for lb in node["labels"] if lb["key"] == "sentiment"]
    assert {(lb["source"], lb["value"], lb["effective"]) for lb in sentiment} == {
        ("HUMAN", "positive", True),
        ("RULE", "negative", False),
    }
    history = await user.query(
        "query($id: ID!) { message(id: $id) { labelHistory { value source supersededAt } } }",
        {"id": target["id"]},
    )
    human = [lb for lb in history["message"]["labelHistory"] if lb["source"] == "HUMAN"]
    assert [(lb["value"], lb["supersededAt"] is None) for lb in human] == [
        ("neutral", False),
        ("positive", True),
    ]
    positive = await messages(user, upload_id, [{"key": "sentiment", "value": "positive"}])
    assert target["id"] in {m["id"] for m in positive}
    negative = await messages(user, upload_id, [{"key": "sentiment", "value": "negative"}])
    assert target["id"] not in {m["id"] for m in negative}

    # Relabeling by rules never touches human labels.
    await wait_for_job(user, (await label(user, upload_id))["job"]["id"])
    node = next(m for m in await messages(user, upload_id) if m["id"] == target["id"])
    assert ("HUMAN", "positive") in {(lb["source"], lb["value"]) for lb in node["labels"]}

    removed = await user.query(
        """mutation($id: ID!) {
             removeLabel(messageId: $id, key: "sentiment") {
               __typename ... on RemoveLabelSuccess { removed }
             }
           }""",
        {"id": target["id"]},
    )
    assert removed["removeLabel"]["removed"] == 1
    node = next(m for m in await messages(user, upload_id) if m["id"] == target["id"])
    assert {
        (lb["source"], lb["effective"]) for lb in node["labels"] if lb["key"] == "sentiment"
    } == {("RULE", True)}


async def test_bulk_labels_all_or_nothing(user: Client, other_user: Client) -> None:
    upload_id = await upload_and_parse(user, CHAT)
    ids = [m["id"] for m in await messages(user, upload_id)]
    bulk = """mutation($labels: [LabelInput!]!) {
      setLabels(labels: $labels) {
        __typename ... on SetLabelsSuccess { labels { id } } ... on UserError { field code }
      }
    }"""
    good = [{"messageId": i, "key": "topic", "value": "测试"} for i in ids[:5]]
    result = await user.query(bulk, {"labels": good})
    assert len(result["setLabels"]["labels"]) == 5
    mixed = [*good, {"messageId": ids[6], "key": "intent", "value": "nonsense"}]
    mixed[0] = {"messageId": ids[5], "key": "topic", "value": "新的"}
    refused = await user.query(bulk, {"labels": mixed})
    assert refused["setLabels"]["__typename"] == "InvalidInputError"
    assert not [
        lb for m in await messages(user, upload_id) if m["id"] == ids[5] for lb in m["labels"]
    ]
    theirs = await other_user.query(bulk, {"labels": good})
    assert theirs["setLabels"]["__typename"] == "NotFoundError"


async def test_label_stats(user: Client) -> None:
    upload_id = await upload_and_parse(user, CHAT)
    await wait_for_job(user, (await label(user, upload_id))["job"]["id"])
    data = await user.query(
        """query($u: ID!) { labelStats(uploadId: $u) {
             totalMessages labeledMessages
             byValue { key value count } bySender { sender key value count }
             byDay { day key value count }
           } }""",
        {"u": upload_id},
    )
    stats = data["labelStats"]
    assert stats["totalMessages"] == 8
    assert stats["labeledMessages"] >= 4
    wage = next(c for c in stats["byValue"] if c["value"] == "工资纠纷")
    assert wage["count"] >= 2
    assert {c["sender"] for c in stats["bySender"] if c["value"] == "工资纠纷"} == {"张三"}
    days = {c["day"] for c in stats["byDay"]}
    assert days <= {"2024-03-01", "2024-03-02"}


async def test_train_a_classifier_and_label_with_it(user: Client) -> None:
    upload_id = await upload_and_parse(user, CHAT * 1)
    await wait_for_job(user, (await label(user, upload_id))["job"]["id"])
    trained = await user.query(
        """mutation($u: [ID!]) {
           trainLabeler(name: "我的分类器", uploadIds: $u, encoder: "hashing") {
             __typename ... on TrainLabelerSuccess { classifier { id status } job { id } }
             ... on UserError { message }
           } }""",
        {"u": [upload_id]},
    )
    result = trained["trainLabeler"]
    assert result["__typename"] == "TrainLabelerSuccess", result
    final = await wait_for_job(user, result["job"]["id"])
    assert final["status"] == "SUCCEEDED", final
    classifiers = await user.query("{ classifiers { id status metrics } }")
    assert classifiers["classifiers"][0]["status"] == "READY"
    started = await label(user, upload_id, useModel=True, classifier=result["classifier"]["id"])
    assert (await wait_for_job(user, started["job"]["id"]))["status"] == "SUCCEEDED"
    sources = {lb["source"] for m in await messages(user, upload_id) for lb in m["labels"]}
    assert sources == {"RULE", "MODEL"}
