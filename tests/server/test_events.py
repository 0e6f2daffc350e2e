"""The event bus, in process and on Redis: subscribe first, then publish, nothing lost."""

import asyncio
import uuid

from server.events import job_channel
from server.resources import Resources


async def test_subscriber_gets_events_in_order(resources: Resources) -> None:
    channel = job_channel(uuid.uuid4().hex)
    async with resources.events.subscribe(channel) as events:
        for n in range(5):
            await resources.events.publish(channel, {"n": n, "text": "进度 ✓"})
        received = [await events.next(timeout=5) for _ in range(5)]
    assert [event["n"] for event in received if event] == [0, 1, 2, 3, 4]
    assert received[0] is not None and received[0]["text"] == "进度 ✓"


async def test_channels_are_separate(resources: Resources) -> None:
    mine, other = job_channel(uuid.uuid4().hex), job_channel(uuid.uuid4().hex)
    async with resources.events.subscribe(mine) as events:
        await resources.events.publish(other, {"n": 1})
        assert await events.next(timeout=0.3) is None


async def test_two_subscribers_both_receive(resources: Resources) -> None:
    channel = job_channel(uuid.uuid4().hex)
    async with resources.events.subscribe(channel) as a, resources.events.subscribe(channel) as b:
        await resources.events.publish(channel, {"n": 7})
        first, second = await asyncio.gather(a.next(timeout=5), b.next(timeout=5))
    assert first == second == {"n": 7}
