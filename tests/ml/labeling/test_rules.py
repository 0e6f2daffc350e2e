"""Rules: the file format, validation errors, and what labeling a message yields."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from ml.labeling import LabelHit, RulesError, RuleSet
from ml.labeling.rules import load_schema


def rules(body: str, *, header: str = "") -> RuleSet:
    """A rule set from a YAML `rules:` list (indented as in a file), with an optional header."""
    return RuleSet.load(f"version: 1\n{textwrap.dedent(header)}rules:\n{textwrap.dedent(body)}")


def by_key(hits: list[LabelHit]) -> dict[str, list[tuple[str, float, str]]]:
    out: dict[str, list[tuple[str, float, str]]] = {}
    for hit in hits:
        out.setdefault(hit.key, []).append((hit.value, hit.score, hit.rule))
    return out


def values(hits: list[LabelHit], key: str) -> list[str]:
    return [h.value for h in hits if h.key == key]


WAGES = """\
- id: wage
  key: topic
  value: 工资纠纷
  weight: 2
  keywords: [欠薪, 拖欠, 讨薪, 劳动仲裁]
- id: wage.mention
  key: topic
  value: 工资纠纷
  weight: 0.5
  keywords: [工资]
- id: overtime
  key: topic
  value: 加班
  keywords: [加班]
"""


# ---------------------------------------------------------------- keywords and scores


def test_keyword_gives_topic_with_rule_id_and_score() -> None:
    hits = rules(WAGES).label("老板又拖欠了三个月")

    assert hits == [LabelHit("topic", "工资纠纷", 0.8647, "wage", "rule")]


def test_rules_for_the_same_value_add_up_strongest_first() -> None:
    (hit,) = rules(WAGES).label("拖欠工资")

    assert hit.value == "工资纠纷"
    assert hit.rule == "wage,wage.mention"
    assert hit.rule_ids == ("wage", "wage.mention")
    assert hit.score == pytest.approx(0.918, abs=1e-3)  # 1 - exp(-2.5)


def test_a_rule_counts_once_however_often_it_matches() -> None:
    once = rules(WAGES).label("拖欠")
    many = rules(WAGES).label("拖欠拖欠拖欠，欠薪，讨薪")

    assert once == many


def test_topic_is_multi_label_strongest_first() -> None:
    hits = rules(WAGES).label("天天加班还拖欠加班费")

    assert values(hits, "topic") == ["工资纠纷", "加班"]


def test_no_match_and_no_fallback_gives_nothing() -> None:
    assert rules(WAGES).label("今天天气不错") == []
    assert rules(WAGES).label("") == []


def test_label_many_streams_in_order() -> None:
    rule_set = rules(WAGES)
    texts = iter(["拖欠", "你好", "加班"])

    results = rule_set.label_many(texts)

    assert next(results)[0].value == "工资纠纷"
    assert next(results) == []
    assert next(results)[0].value == "加班"


def test_letter_case_is_ignored_by_default_and_can_be_kept() -> None:
    body = """\
    - id: it
      key: topic
      value: IT故障
      keywords: [Bug, VPN]
    """
    assert values(rules(body).label("这个BUG又来了"), "topic") == ["IT故障"]
    strict = rules(body, header="ignore_case: false\n")
    assert strict.label("这个BUG又来了") == []
    assert values(strict.label("这个Bug又来了"), "topic") == ["IT故障"]


def test_a_letter_that_lowers_to_two_characters_does_not_turn_case_back_on() -> None:
    body = """\
    - id: ok
      key: intent
      value: inform
      keywords: [ok]
    - id: trip
      key: topic
      value: 出差
      keywords: [İstanbul]
    - id: pos
      key: sentiment
      value: positive
      keywords: [满意]
    """
    rule_set = rules(body)

    # İ lowers to i and a combining dot: the lower-case text is one character longer.
    hits = rule_set.label("OK İstanbul")
    assert [(h.key, h.value) for h in hits] == [("topic", "出差"), ("intent", "inform")]
    # Positions after it still line up with the text (cue, clause break, match).
    assert values(rule_set.label("İİ 不满意"), "sentiment") == ["negative"]
    assert values(rule_set.label("İİ 不，满意"), "sentiment") == ["positive"]


# ---------------------------------------------------------------- single-valued keys

SENTIMENT = """\
- id: pos
  key: sentiment
  value: positive
  weight: 1.5
  keywords: [谢谢, 满意, 开心, 不错]
- id: neg
  key: sentiment
  value: negative
  weight: 1.5
  keywords: [生气, 不满, 烦]
- id: neutral
  key: sentiment
  value: neutral
  weight: 0.7
  keywords: [好的, 麻烦]
"""


def test_single_valued_key_yields_one_winner_scored_by_its_share() -> None:
    hits = rules(SENTIMENT).label("谢谢，不过我有点生气，好的")

    (hit,) = hits
    assert hit.value in {"positive", "negative"}
    # 1.5 against 1.5 + 1.5 + 0.7: confidence (1 - e^-1.5) times a share of 1.5/3.7
    assert hit.score == pytest.approx(0.7769 * 1.5 / 3.7, abs=1e-3)


def test_ties_go_to_the_rule_that_comes_first_in_the_file() -> None:
    (hit,) = rules(SENTIMENT).label("谢谢你，但我很生气")

    assert hit.value == "positive"
    assert hit.rule == "pos"


def test_fallback_applies_only_when_no_rule_decides() -> None:
    header = """\
    fallback:
      sentiment: {value: neutral, score: 0.5}
      intent: {value: inform, score: 0.4}
    """
    rule_set = rules(SENTIMENT, header=header)

    assert rule_set.label("明天见") == [
        LabelHit("sentiment", "neutral", 0.5, "fallback:sentiment"),
        LabelHit("intent", "inform", 0.4, "fallback:intent"),
    ]
    assert by_key(rule_set.label("谢谢"))["sentiment"][0][2] == "pos"


# ---------------------------------------------------------------- negation


def test_negation_flips_sentiment() -> None:
    rule_set = rules(SENTIMENT)

    assert values(rule_set.label("我很开心"), "sentiment") == ["positive"]
    assert values(rule_set.label("我不开心"), "sentiment") == ["negative"]
    assert values(rule_set.label("别生气了"), "sentiment") == ["positive"]
    (hit,) = rule_set.label("我一点都不开心")  # 不 ends right before 开心
    assert (hit.value, hit.rule) == ("negative", "pos")  # the rule whose negation decided


def test_negation_needs_the_cue_within_the_window_and_the_same_clause() -> None:
    rule_set = rules(SENTIMENT, header="negation: {cues: [不, 没有], window: 2}\n")

    assert values(rule_set.label("不是很开心"), "sentiment") == ["negative"]  # 2 chars between
    assert values(rule_set.label("不是特别很开心"), "sentiment") == ["positive"]  # 4: too far
    assert values(rule_set.label("不，我很开心"), "sentiment") == ["positive"]  # another clause
    assert values(rule_set.label("不 开心"), "sentiment") == ["positive"]  # whitespace breaks


def test_a_cue_inside_another_word_is_not_a_negation() -> None:
    rule_set = rules(SENTIMENT)

    # 不 of 不错 stands right before 谢谢, but belongs to 不错.
    assert values(rule_set.label("很不错谢谢"), "sentiment") == ["positive"]
    # ... unless that word overlaps the match: 不满意 holds 不满 and a negated 满意.
    (hit,) = rule_set.label("我对结果不满意")
    assert hit.value == "negative"
    assert set(hit.rule_ids) == {"pos", "neg"}


def test_negation_cancels_intent_by_default() -> None:
    body = """\
    - id: complain
      key: intent
      value: complain
      keywords: [抱怨]
    """
    rule_set = rules(body)

    assert values(rule_set.label("我要抱怨一下"), "intent") == ["complain"]
    assert rule_set.label("我不是抱怨") == []
    # One plain occurrence is enough even when another is negated.
    assert values(rule_set.label("不是抱怨，好吧就是抱怨"), "intent") == ["complain"]


def test_negation_is_ignored_for_topic_by_default_and_modes_can_be_set_per_rule() -> None:
    body = """\
    - id: wage
      key: topic
      value: 工资纠纷
      keywords: [拖欠]
    - id: strict
      key: topic
      value: 严格
      negation: cancel
      keywords: [仲裁]
    """
    rule_set = rules(body)

    assert values(rule_set.label("公司没有拖欠"), "topic") == ["工资纠纷"]
    assert rule_set.label("不用仲裁") == []


def test_flipping_neutral_yields_nothing() -> None:
    body = """\
    - id: ack
      key: sentiment
      value: neutral
      keywords: [收到]
    """
    assert rules(body).label("没收到") == []


def test_negation_applies_to_patterns_but_never_to_emoji() -> None:
    body = """\
    - id: pos
      key: sentiment
      value: positive
      patterns: ['满意+']
      emoji: ['[强]']
    """
    rule_set = rules(body)

    assert values(rule_set.label("不满意"), "sentiment") == ["negative"]
    assert values(rule_set.label("不[强]"), "sentiment") == ["positive"]


# ---------------------------------------------------------------- emoji


EMOJI = """\
- id: pos.emoji
  key: sentiment
  value: positive
  emoji: ['[微笑]', '[强]', '[抱拳]', '[OK]', '👍', '❤️']
- id: neg.emoji
  key: sentiment
  value: negative
  emoji: ['[发怒]', '😡']
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("收到[抱拳]", "positive"),
        ("好[强][强]", "positive"),
        ("[ok]", "positive"),  # codes ignore case like keywords
        ("👍🏻", "positive"),  # a skin tone after the emoji
        ("爱你❤", "positive"),  # without VS16
        ("爱你❤️", "positive"),  # with VS16
        ("[发怒]", "negative"),
        ("😡😡", "negative"),
    ],
)
def test_wechat_codes_and_unicode_emoji(text: str, expected: str) -> None:
    assert values(rules(EMOJI).label(text), "sentiment") == [expected]


def test_an_unknown_wechat_code_matches_nothing() -> None:
    assert rules(EMOJI).label("[微笑脸]") == []


def test_vs16_is_ignored_in_the_text_as_in_the_rules() -> None:
    eye = "\U0001f441\ufe0f\u200d\U0001f5e8\ufe0f"  # 👁️‍🗨️: VS16 on both halves of a ZWJ pair
    body = f"""\
    - id: eye
      key: topic
      value: 围观
      emoji: ['{eye}']
    - id: pos
      key: sentiment
      value: positive
      keywords: [满意]
    """
    rule_set = rules(body)

    assert values(rule_set.label(f"看 {eye}"), "topic") == ["围观"]
    assert values(rule_set.label(f"看 {eye.replace(chr(0xFE0F), '')}"), "topic") == ["围观"]
    # Positions after a VS16 still line up with the text (cue, clause break, match).
    hits = rule_set.label(f"{eye}{eye}不满意")
    assert [(h.key, h.value) for h in hits] == [("topic", "围观"), ("sentiment", "negative")]
    assert values(rule_set.label(f"{eye}不，满意"), "sentiment") == ["positive"]


# ---------------------------------------------------------------- overlaps and patterns


def test_overlapping_keywords_of_one_single_valued_key_keep_the_longest() -> None:
    body = """\
    - id: ack
      key: sentiment
      value: neutral
      keywords: [好的]
    - id: praise
      key: sentiment
      value: positive
      keywords: [好]
    """
    rule_set = rules(body)

    assert by_key(rule_set.label("好的"))["sentiment"] == [("neutral", 0.6321, "ack")]
    assert values(rule_set.label("很好"), "sentiment") == ["positive"]
    # 好 standing alone is not inside 好的: both count, the tie halves the confidence.
    assert by_key(rule_set.label("好的，好"))["sentiment"] == [("neutral", 0.3161, "ack")]


def test_overlapping_keywords_all_count_for_topic() -> None:
    body = """\
    - id: overtime
      key: topic
      value: 加班
      keywords: [加班]
    - id: overtime.pay
      key: topic
      value: 工资纠纷
      keywords: [加班费]
    """
    assert sorted(values(rules(body).label("加班费呢"), "topic")) == ["加班", "工资纠纷"]


def test_patterns_match_including_overlaps_between_rules() -> None:
    body = """\
    - id: owed
      key: topic
      value: 欠款
      patterns: ['欠.{0,3}工资']
    - id: unpaid
      key: topic
      value: 未发
      patterns: ['工资.{0,4}没发']
    """
    hits = rules(body).label("欠了工资还没发")

    assert sorted(values(hits, "topic")) == ["未发", "欠款"]


@pytest.mark.parametrize(
    "second",
    [r"(哈)\1", r"(?P<x>呵)(?P=x)", r"(?i)hh", r"(?P<g>哈)哈"],
)
def test_patterns_that_cannot_share_one_alternation_still_match(second: str) -> None:
    body = f"""\
    - id: a
      key: topic
      value: A
      patterns: ['(?P<g>工资)(没|未)发']
    - id: b
      key: topic
      value: B
      patterns: ['{second}']
    """
    rule_set = rules(body)

    assert values(rule_set.label("工资没发"), "topic") == ["A"]
    assert values(rule_set.label("哈哈呵呵HH工资"), "topic") == ["B"]
    assert rule_set.label("哈呵h") == []


def test_one_keyword_in_several_rules_feeds_them_all() -> None:
    body = """\
    - id: a
      key: topic
      value: 工资纠纷
      keywords: [拖欠]
    - id: b
      key: intent
      value: complain
      keywords: [拖欠]
    """
    hits = rules(body).label("又拖欠")

    assert [(h.key, h.value) for h in hits] == [("topic", "工资纠纷"), ("intent", "complain")]


@pytest.mark.parametrize("unit", ["谢谢", "不满意，好的谢谢", "不是抱怨，工资拖欠了"])
def test_a_long_message_gives_what_a_short_one_does(unit: str) -> None:
    # 50,000 characters, tens of thousands of overlapping matches and negation cues: work that
    # grows with the square of that would take minutes here.
    default = RuleSet.default()

    assert default.label(unit * (50_000 // len(unit))) == default.label(unit * 3)


def test_a_long_message_is_scored_once_per_rule() -> None:
    hits = RuleSet.default().label("不满意，好的谢谢" * 6_250)

    assert by_key(hits) == {
        "sentiment": [("negative", 0.5482, "sentiment.positive.words,sentiment.negative.words")],
        "intent": [("inform", 0.5507, "intent.inform.done")],
    }


# ---------------------------------------------------------------- files


def test_json_and_yaml_files_give_the_same_rules() -> None:
    yaml_rules = rules(WAGES)
    json_rules = RuleSet.load(json.dumps(yaml_rules.to_dict(), ensure_ascii=False))

    assert json_rules.to_dict() == yaml_rules.to_dict()
    assert json_rules.label("拖欠工资") == yaml_rules.label("拖欠工资")


def test_bytes_with_a_bom_are_accepted() -> None:
    text = "version: 1\nrules:\n" + textwrap.indent(WAGES, "")
    rule_set = RuleSet.load(("\ufeff" + text).encode("utf-8"))

    assert len(rule_set) == 3


def test_a_custom_rules_file_with_all_features(tmp_path: object) -> None:
    text = """\
    # a user's own rules
    version: 1
    ignore_case: true
    negation:
      cues: [不, 没]
      window: 1
    fallback:
      sentiment: {value: neutral}
    rules:
      - id: 报销
        key: topic
        value: 报销
        weight: 1.2
        description: expense claims
        keywords: [报销, 发票]
        patterns: ['\\d+元']
      - id: urgent
        key: intent
        value: request
        keywords: [尽快, 赶紧]
        emoji: ['🙏']
    """
    rule_set = RuleSet.load(textwrap.dedent(text))

    hits = rule_set.label("发票200元，尽快报销🙏")
    assert by_key(hits) == {
        "topic": [("报销", 0.6988, "报销")],
        "sentiment": [("neutral", 0.5, "fallback:sentiment")],
        "intent": [("request", 0.6321, "urgent")],
    }


def test_default_rules_label_wage_disputes_thanks_and_intents() -> None:
    default = RuleSet.default()

    wage = default.label("老板又拖欠工资了，三个月没发[发怒]")
    assert values(wage, "topic") == ["工资纠纷"]
    assert values(wage, "sentiment") == ["negative"]
    assert values(wage, "intent") == ["complain"]
    thanks = default.label("谢谢你的帮助[微笑]")
    assert values(thanks, "sentiment") == ["positive"]
    assert values(default.label("请问年假怎么算？"), "intent") == ["consult"]
    assert values(default.label("麻烦帮我看一下这个bug"), "intent") == ["request"]
    assert values(default.label("麻烦帮我看一下这个bug"), "sentiment") != ["negative"]
    assert values(default.label("我们去劳动仲裁吧"), "topic") == ["工资纠纷"]
    plain = default.label("明天下午三点开会")
    assert values(plain, "topic") == ["会议"]
    assert by_key(plain)["sentiment"] == [("neutral", 0.5, "fallback:sentiment")]
    assert RuleSet.default() is default  # built once


def test_values_lists_what_the_rules_can_give() -> None:
    header = "fallback:\n  sentiment: {value: neutral}\n"

    assert rules(WAGES + SENTIMENT, header=header).values() == {
        "topic": ("工资纠纷", "加班"),
        "sentiment": ("positive", "negative", "neutral"),
    }
    assert RuleSet.default().values()["intent"] == ("consult", "request", "complain", "inform")


def test_importing_the_rules_stays_light() -> None:
    code = (
        "import sys, ml.labeling.rules, ml.labeling; "
        "heavy = ('numpy', 'torch', 'transformers', 'jsonschema'); "
        "heavy = [m for m in heavy if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert out.stdout.strip() == ""


def test_the_shipped_schema_is_a_valid_json_schema() -> None:
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped,unused-ignore]

    Draft202012Validator.check_schema(load_schema())
    Draft202012Validator(load_schema()).validate(RuleSet.default().to_dict())


# ---------------------------------------------------------------- invalid files


def error_of(text: str | bytes) -> str:
    with pytest.raises(RulesError) as info:
        RuleSet.load(text)
    return str(info.value)


def test_bad_yaml_names_the_line() -> None:
    message = error_of("version: 1\nrules:\n  - id: x\n    key: [topic\n")

    assert "not valid YAML" in message
    assert "line 5" in message or "line 4" in message


def test_bad_json_names_line_and_column() -> None:
    message = error_of('{"version": 1,\n "rules": [}\n')

    assert "not valid JSON" in message
    assert "line 2" in message


@pytest.mark.parametrize("text", ["", "   \n", b"", "# only a comment\n"])
def test_an_empty_file_is_refused(text: str | bytes) -> None:
    assert "empty" in error_of(text) or "top level" in error_of(text)


def test_non_utf8_bytes_are_refused() -> None:
    assert "not UTF-8" in error_of("version: 1\nrules: []\n# 工资".encode("gb18030"))


def test_schema_violation_names_rule_field_and_line() -> None:
    text = """\
    version: 1
    rules:
      - id: ok
        key: topic
        value: 工资纠纷
        keywords: [工资]
      - id: wage.bad
        key: topic
        value: 工资纠纷
        weight: -1
        keywords: [欠薪]
    """
    message = error_of(textwrap.dedent(text))

    assert 'rules[1].weight (rule "wage.bad", line 10)' in message
    assert "-1" in message


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("{id: a, key: mood, value: x, keywords: [k]}", "rules[0].key"),
        ("{id: a, key: sentiment, value: happy, keywords: [k]}", "rules[0].value"),
        ("{id: 'a b', key: topic, value: x, keywords: [k]}", "rules[0].id"),
        ("{id: a, key: topic, value: x, keywords: [k], colour: red}", "colour"),
        ("{id: a, key: topic, keywords: [k]}", "'value' is a required property"),
        ("{id: a, key: topic, value: x, keywords: [12333]}", "quote it"),
    ],
)
def test_schema_violations(rule: str, expected: str) -> None:
    assert expected in error_of(f"version: 1\nrules:\n  - {rule}\n")


def test_a_fallback_sentiment_must_be_a_sentiment() -> None:
    text = "version: 1\nfallback:\n  sentiment: {value: happy}\nrules: []\n"

    assert "fallback.sentiment.value (line 3)" in error_of(text)


def test_bad_regex_names_the_rule_and_the_problem() -> None:
    text = "version: 1\nrules:\n  - {id: wage.re, key: topic, value: x, patterns: ['(工资']}\n"

    message = error_of(text)

    assert 'rules[0].patterns[0] (rule "wage.re", line 3)' in message
    assert "invalid regular expression" in message
    assert "missing )" in message


def test_a_regex_that_matches_everything_is_refused() -> None:
    text = "version: 1\nrules:\n  - {id: a, key: topic, value: x, patterns: ['.*']}\n"

    assert "matches the empty string" in error_of(text)


@pytest.mark.parametrize(
    ("rules_yaml", "expected"),
    [
        (
            "  - {id: a, key: topic, value: x, keywords: [k]}\n"
            "  - {id: a, key: topic, value: y, keywords: [j]}\n",
            "duplicate id",
        ),
        ("  - {id: a, key: topic, value: x}\n", "at least one keyword, pattern or emoji"),
        (
            "  - {id: a, key: topic, value: x, negation: flip, keywords: [k]}\n",
            "'flip' applies to sentiment only",
        ),
        ("  - {id: a, key: topic, value: x, emoji: [微笑]}\n", "neither a WeChat emoji code"),
    ],
)
def test_checks_beyond_the_schema(rules_yaml: str, expected: str) -> None:
    assert expected in error_of(f"version: 1\nrules:\n{rules_yaml}")


def test_several_errors_are_listed_together() -> None:
    bad = "".join(f"  - {{id: r{i}, key: topic, value: x, patterns: ['(']}}\n" for i in range(8))
    message = error_of(f"version: 1\nrules:\n{bad}")

    assert message.count("invalid regular expression") == 5
    assert "(and 3 more)" in message


def test_huge_offending_values_are_not_quoted_in_full() -> None:
    message = error_of(json.dumps([{"id": f"rule{i}"} for i in range(2000)]))

    assert "top level" in message
    assert len(message) < 600


def test_from_dict_validates_too() -> None:
    with pytest.raises(RulesError, match="version"):
        RuleSet.from_dict({"rules": []})
