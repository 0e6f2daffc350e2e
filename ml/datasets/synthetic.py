"""Generated chat histories for benchmarks and tests: deterministic, any length, no files.

A mix of two-person chats (about 70 % of uploads) and group chats of 5 to 30 members, with
bursts of messages from one sender, silences that end sessions, stickers, images and system
lines, some labels, and a little personal data of every kind the scrubber knows.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from ml.datasets.messages import DatasetMessage, MessageKind

SELF_NAME = "张伟"

_SHORT = (
    "嗯嗯",
    "好的",
    "哈哈哈",
    "在吗",
    "ok",
    "收到",
    "好滴",
    "晚安",
    "哈哈哈哈哈",
    "😂",
    "[微笑]",
    "谢谢",
    "没问题",
    "可以",
    "行",
    "在的",
    "是的",
    "啊？",
    "真的假的",
    "666",
)
# Clauses that combine freely: random pairs of messages share few character 3-grams, as in
# real chats, where near-duplicates are rare (forwards, copy-paste) rather than the rule.
_CLAUSES = (
    "今天加班到九点",
    "累死了",
    "明天下午开会",
    "记得带材料",
    "晚上一起吃火锅吧",
    "周末去爬山吗",
    "老板又拖欠工资了",
    "这个月房租交了吗",
    "路上堵车堵了一个小时",
    "快递到了帮我拿一下",
    "楼下新开了一家奶茶店",
    "孩子发烧了要请假",
    "周五之前把报告发我",
    "电影票买好了",
    "七点半开场",
    "明天降温多穿点",
    "银行卡办好了没",
    "体检报告出来了",
    "见面聊聊那个项目",
    "我刚到家",
    "你吃饭了没",
    "在地铁上信号不好",
    "等会儿给你回电话",
    "周日回老家看爸妈",
    "这周末要搬家",
    "能来帮忙吗",
    "新买的手机有点卡",
    "猫又把沙发抓坏了",
    "下个月要出差一周",
    "家里的网又断了",
    "预算表还没做完",
    "客户说方案要重改",
    "面试通过了",
    "下周一入职",
    "物业费涨了不少",
    "中午食堂的菜太咸了",
    "健身房办了年卡",
    "结果一次没去",
    "明天早上八点的高铁",
    "记得定闹钟",
    "我妈让你周末来家里吃饭",
    "这家店排队好久",
    "外卖半天没到",
    "钥匙落在公司了",
    "空调坏了找人修",
    "车子该保养了",
    "雨太大了别出门",
    "早点休息别熬夜",
    "生日礼物选好了吗",
    "年终奖还没发",
    "合同明天签",
    "周报写了吗",
    "会议改到三点了",
    "别忘了带身份证",
    "那本书看完了借我",
    "股票又跌了",
    "小区停水到晚上",
    "宝宝今天会叫妈妈了",
    "医生说要多运动",
    "周六聚餐定在老地方",
)
_SEPARATORS = ("，", "，", "。", "！", "？", " ", "～", "……")
_LONG = (
    "【通知】各位同事，本周五下午三点在三楼会议室召开季度总结会，请提前准备好各自的工作汇报材料，不要迟到。",
    "我觉得这个方案还需要再改一下，预算部分写得不够清楚，而且时间安排太紧了，下周一之前我们再碰一次吧。",
    "工资已经拖了两个月了，问了好几次都说下周发，我们是不是应该一起去劳动仲裁，或者先找律师咨询一下？",
    "刚看了一下，去杭州的高铁票还有，早上八点那班比较合适，到了直接去西湖边吃个饭，下午再去灵隐寺。",
    "这次体检结果出来了，医生说血压有点高，让少吃盐多运动，以后晚饭后我们一起出去走走吧，别老坐着。",
    "房东说下个月开始涨租金，每个月多五百块，我在想要不要干脆换个地方住，离公司近一点也能省点通勤时间。",
)
_PII = (
    "我手机号是{phone}，有事打我",
    "邮箱 {email}，文件发这里",
    "链接 https://example.com/s/{n} 你看下",
    "我微信号：zhang_{n}，加一下",
    "车牌京A{plate}，在楼下等你",
    "卡号 6222021234567890128 转这个",
)
_TOPICS = ("工资纠纷", "工作", "生活", "出行", "健康", "租房", "娱乐")
_SENTIMENTS = ("positive", "neutral", "negative")
_KINDS: tuple[tuple[MessageKind, float], ...] = (
    ("sticker", 0.04),
    ("image", 0.03),
    ("voice", 0.01),
    ("link", 0.01),
    ("system", 0.005),
    ("recall", 0.005),
    ("transfer", 0.003),
    ("red_packet", 0.004),
    ("video", 0.003),
)
_NON_TEXT_TEXT = {
    "sticker": "[动画表情]",
    "image": "[图片]",
    "voice": "[语音]",
    "link": "[链接] 一篇文章",
    "system": "李四加入了群聊",
    "recall": "对方撤回了一条消息",
    "transfer": "[转账] ¥200.00",
    "red_packet": "[红包] 恭喜发财",
    "video": "[视频]",
}


def _sentence(rng: random.Random, clauses: int) -> str:
    text = rng.choice(_CLAUSES)
    for _ in range(clauses - 1):
        text += rng.choice(_SEPARATORS) + rng.choice(_CLAUSES)
    return text


def _text(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.4:
        return rng.choice(_SHORT)
    if roll < 0.85:
        text = _sentence(rng, rng.randint(1, 2))
        if rng.random() < 0.2:
            text += f"，大概{rng.randint(2, 500)}块"
        return text
    if roll < 0.95:
        return _sentence(rng, rng.randint(3, 5))
    if roll < 0.99:
        return rng.choice(_LONG)
    n = rng.randint(1000, 99999)
    return rng.choice(_PII).format(
        phone=f"1{rng.choice('3589')}{rng.randint(0, 999999999):09d}",
        email=f"user{n}@example.com",
        n=n,
        plate=f"{rng.randint(10000, 99999)}",
    )


def _kind(rng: random.Random) -> MessageKind:
    roll = rng.random()
    for kind, share in _KINDS:
        if roll < share:
            return kind
        roll -= share
    return "text"


def generate_messages(
    count: int, *, seed: int = 0, start: datetime | None = None
) -> Iterator[DatasetMessage]:
    """`count` messages ordered by upload, then time, as the database would stream them."""
    rng = random.Random(seed)
    clock = start or datetime(2023, 1, 1, 9, tzinfo=ZoneInfo("Asia/Shanghai"))
    produced = 0
    upload = 0
    while produced < count:
        upload += 1
        upload_id = f"u{upload:05d}"
        group = rng.random() < 0.3
        others = (
            [f"群友{upload}_{i}" for i in range(rng.randint(5, 30))] if group else [f"好友{upload}"]
        )
        size = min(count - produced, rng.randint(2_000, 20_000))
        speaker = rng.choice(others)
        for _ in range(size):
            if rng.random() < 0.03:
                clock += timedelta(hours=rng.uniform(1, 48))
            else:
                clock += timedelta(seconds=rng.expovariate(1 / 40))
            if rng.random() > 0.4:  # 40 % of messages continue the sender's burst
                if group:
                    speaker = SELF_NAME if rng.random() < 0.2 else rng.choice(others)
                else:
                    speaker = others[0] if speaker == SELF_NAME else SELF_NAME
            kind = _kind(rng)
            labels: dict[str, list[str]] = {}
            if kind == "text":
                text = _text(rng)
                if rng.random() < 0.3:
                    labels["topic"] = [rng.choice(_TOPICS)]
                if rng.random() < 0.2:
                    labels["sentiment"] = [rng.choice(_SENTIMENTS)]
            else:
                text = _NON_TEXT_TEXT[kind]
            produced += 1
            yield DatasetMessage(
                id=f"m{produced:09d}",
                upload_id=upload_id,
                sender="" if kind == "system" else speaker,
                timestamp=clock,
                text=text,
                kind=kind,
                is_self=speaker == SELF_NAME,
                labels=labels,
            )
