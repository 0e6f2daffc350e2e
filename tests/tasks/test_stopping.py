"""How jobs end when they do not run to the end: cancelled by the user, stopped by their time
limit, or given up after tries that never finished. The rows say so, and nothing is left half
written (messages, dataset files, scratch folders) or blocked (threads)."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from arq.constants import result_key_prefix
from arq.jobs import serialize_result
from sqlalchemy import func, select, update

from server.db.models import Dataset, Job, Message, Model, Upload
from server.db.types import new_id
from server.queue import queue_name
from server.resources import Resources
from server.services.datasets import FeedStopped, MessageFeed
from server.services.models import artifact_key
from server.settings import Settings
from tasks.artifacts import upload_folder
from tasks.registry import JOBS
from tasks.worker import create_worker, sweep
from tests.conftest import TEST_SECRET
from tests.support.exports import memotrace_txt
from tests.support.jobs import follow, job_row, run_job, unqueued_job
from tests.support.live import Client
from tests.support.training import dataset_for
from tests.support.uploads import upload_and_parse, upload_chat, wait_for_job
from tests.tasks.test_jobs import stored_upload

BIG = 100_000  # messages: a few seconds of parsing

UPLOAD = """query($id: ID!) {
  upload(id: $id) { status error messageCount }
  messages(uploadId: $id, first: 1) { totalCount }
}"""
CANCEL = "mutation($id: ID!) { cancelJob(id: $id) { __typename } }"


async def eventually(check: Any, seconds: float = 30.0) -> Any:
    """Poll `check()` until it returns something true; that value."""
    deadline = time.monotonic() + seconds
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.2)


async def stored_adapter(resources: Resources, user_id: str, base: Path, folder: Path) -> str:
    """A ready LoRA model of `base` (an untrained adapter) in storage; its id."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    def make() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # peft asks a deprecated property
            model = get_peft_model(
                AutoModelForCausalLM.from_pretrained(base),
                LoraConfig(r=4, target_modules=["q_proj"]),
            )
        model.save_pretrained(str(folder / "adapter"))
        AutoTokenizer.from_pretrained(base).save_pretrained(folder / "adapter")
        (folder / "adapter" / "COMPLETE").write_text("{}")

    await asyncio.to_thread(make)
    model_id = new_id()
    key = artifact_key(user_id, model_id)
    await upload_folder(resources.storage, key, folder / "adapter", folder / "scratch")
    async with resources.sessionmaker() as session:
        session.add(
            Model(
                id=model_id,
                user_id=user_id,
                name="adapter",
                base_model=str(base),
                method="lora",
                config={},
                status="ready",
                object_key=key,
            )
        )
        await session.commit()
    return model_id


async def message_rows(resources: Resources, upload_id: str) -> int:
    async with resources.sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).select_from(Message).where(Message.upload_id == upload_id)
        )
    return int(count or 0)


def threads_in(function_name: str) -> list[str]:
    """The threads whose stack is inside a function of this name."""
    found = []
    frames = sys._current_frames()
    for thread in threading.enumerate():
        frame = frames.get(thread.ident or -1)
        while frame is not None:
            if frame.f_code.co_name == function_name:
                found.append(thread.name)
                break
            frame = frame.f_back
    return found


async def test_cancelled_parse_leaves_no_messages(user: Client, resources: Resources) -> None:
    result = await upload_chat(user, memotrace_txt(BIG), "big.txt")
    upload_id, job_id = result["upload"]["id"], result["job"]["id"]
    # Batches are committed as they go: cancel once some are in.
    await follow(user, job_id, lambda s: "messages" in (s["message"] or ""))
    assert (await user.query(CANCEL, {"id": job_id}))["cancelJob"]["__typename"] == (
        "CancelJobSuccess"
    )

    async def settled() -> dict[str, Any] | None:
        data = await user.query(UPLOAD, {"id": upload_id})
        return data if data["upload"]["status"] != "PARSING" else None

    data = await eventually(settled)
    assert data["upload"] == {"status": "UPLOADED", "error": None, "messageCount": 0}
    assert data["messages"]["totalCount"] == 0
    assert await message_rows(resources, upload_id) == 0
    assert (await wait_for_job(user, job_id))["status"] == "CANCELLED"


async def test_reparse_right_after_a_cancel_keeps_every_message(
    user: Client, resources: Resources
) -> None:
    # The cancelled parse may clean up after the reparse has started (arq aborts at its next
    # poll): its clean-up must then leave the upload to the reparse.
    result = await upload_chat(user, memotrace_txt(BIG), "big.txt")
    upload_id, job_id = result["upload"]["id"], result["job"]["id"]
    await follow(user, job_id, lambda s: "messages" in (s["message"] or ""))
    await user.query(CANCEL, {"id": job_id})
    reparse = """mutation($id: ID!) { reparseUpload(id: $id) {
        __typename ... on ReparseUploadSuccess { job { id } } } }"""
    started = await eventually(lambda: _started(user, reparse, upload_id), seconds=30)
    assert (await wait_for_job(user, started))["status"] == "SUCCEEDED"
    data = await user.query(UPLOAD, {"id": upload_id})
    assert data["upload"]["status"] == "PARSED"
    assert data["upload"]["messageCount"] == BIG
    assert await message_rows(resources, upload_id) == BIG


async def _started(user: Client, reparse: str, upload_id: str) -> str | None:
    """The reparse's job id, or None while the cancelled job still counts as active."""
    payload = (await user.query(reparse, {"id": upload_id}))["reparseUpload"]
    return payload["job"]["id"] if payload["__typename"] == "ReparseUploadSuccess" else None


async def test_parse_over_its_time_limit_fails_the_upload(
    user: Client, resources: Resources
) -> None:
    assert user.user_id
    upload = await stored_upload(resources, user.user_id, memotrace_txt(BIG))
    job_id = await unqueued_job(
        resources, user.user_id, "parse_upload", upload.id, upload_id=upload.id
    )
    await run_job(resources, job_id, "parse_upload", timeout=1.5)
    row = await job_row(resources, job_id)
    if row.status == "succeeded":
        pytest.skip("the parse finished within the limit on this machine")
    assert row.status == "failed"
    assert row.error == "the job took longer than 1.5 s"
    data = await user.query(UPLOAD, {"id": upload.id})
    assert data["upload"]["status"] == "FAILED"
    assert data["upload"]["error"] == "parsing took longer than the 1.5 s allowed"
    assert data["upload"]["messageCount"] == 0
    assert await message_rows(resources, upload.id) == 0


async def test_job_given_up_after_max_tries_fails_its_rows(
    user: Client, resources: Resources
) -> None:
    """A job whose every try was cut short (its worker killed each time) is not left queued:
    the try after the last one fails the job and its upload."""
    assert user.user_id
    upload = await stored_upload(resources, user.user_id, memotrace_txt(10))
    job_id = await unqueued_job(
        resources, user.user_id, "parse_upload", upload.id, upload_id=upload.id
    )
    definition = JOBS["parse_upload"]
    # What arq hands the job on the try after its last (see the next test).
    ctx = {"resources": resources, "job_id": job_id, "job_try": definition.max_tries + 1}
    await definition.func(ctx)
    row = await job_row(resources, job_id)
    assert row.status == "failed"
    assert row.error is not None and "started 3 times and never finished" in row.error
    data = await user.query(UPLOAD, {"id": upload.id})
    assert data["upload"]["status"] == "FAILED"
    assert data["upload"]["error"] == row.error
    assert await message_rows(resources, upload.id) == 0


async def test_a_job_the_queue_finished_without_us_fails_with_its_upload(
    user: Client, resources: Resources
) -> None:
    """arq holds a result for the job (it failed it itself) while the rows still say it runs:
    the sweep fails the job and, through the job's give_up hook, the upload."""
    if resources.redis is None:
        pytest.skip("arq only")
    assert user.user_id
    upload = await stored_upload(resources, user.user_id, memotrace_txt(10))
    job_id = await unqueued_job(
        resources, user.user_id, "parse_upload", upload.id, upload_id=upload.id
    )
    async with resources.sessionmaker() as session:
        await session.execute(update(Job).where(Job.id == job_id).values(status="running"))
        await session.execute(update(Upload).where(Upload.id == upload.id).values(status="parsing"))
        await session.commit()
    outcome = serialize_result(
        "parse_upload",
        (),
        {},
        4,
        0,
        False,
        RuntimeError("max 4 retries exceeded"),
        0,
        0,
        "x",
        queue_name("parse"),
        job_id,
    )
    assert outcome is not None
    await resources.redis.set(result_key_prefix + job_id, outcome)
    await sweep(resources, "parse")
    row = await job_row(resources, job_id)
    assert row.status == "failed"
    assert row.error == "the job queue gave up on the job: max 4 retries exceeded"
    data = await user.query(UPLOAD, {"id": upload.id})
    assert data["upload"]["status"] == "FAILED"
    assert data["upload"]["error"] == row.error


def test_arq_calls_the_runner_once_past_max_tries(tmp_path: Path) -> None:
    """arq fails a job past its max_tries without calling it; the worker allows one try more,
    which is where the runner gives up and says so."""
    settings = Settings(
        data_dir=tmp_path, jwt_secret=TEST_SECRET, redis_url="redis://127.0.0.1:1/0"
    )
    worker = create_worker("parse", settings)
    assert worker.functions["parse_upload"].max_tries == JOBS["parse_upload"].max_tries + 1


async def test_feed_wakes_its_consumer_when_stopped() -> None:
    """A build thread waiting for the next batch ends when the feed stops or its pump is
    cancelled, instead of blocking the worker's shutdown for ever."""
    loop = asyncio.get_running_loop()

    async def slow() -> AsyncIterator[list[Any]]:
        yield [object()]
        await asyncio.sleep(3600)
        yield [object()]

    for how in ("stop", "cancel"):
        feed = MessageFeed(slow(), loop)
        pump = asyncio.create_task(feed.pump())
        seen: list[Any] = []
        first = threading.Event()

        def consume(
            feed: MessageFeed = feed, seen: list[Any] = seen, first: threading.Event = first
        ) -> None:
            for message in feed.messages():
                seen.append(message)
                first.set()

        thread = asyncio.create_task(asyncio.to_thread(consume))
        assert await asyncio.to_thread(first.wait, 5)
        await asyncio.sleep(0.2)  # the thread now waits for the second batch
        if how == "stop":
            feed.stop()
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)
        with pytest.raises(FeedStopped):
            await asyncio.wait_for(thread, 5)
        assert len(seen) == 1


async def test_cancelled_export_fails_the_dataset_and_ends_its_thread(
    user: Client, resources: Resources
) -> None:
    upload_id = await upload_and_parse(user, memotrace_txt(BIG), "big.txt")
    created = await user.query(
        """mutation($u: ID!) { createDataset(input: {name: "big", uploadIds: [$u]}) {
             ... on CreateDatasetSuccess { dataset { id } job { id } } } }""",
        {"u": upload_id},
    )
    dataset_id = created["createDataset"]["dataset"]["id"]
    job_id = created["createDataset"]["job"]["id"]
    await follow(user, job_id, lambda s: s["status"] == "RUNNING" and (s["progress"] or 0) > 0)
    assert (await user.query(CANCEL, {"id": job_id}))["cancelJob"]["__typename"] == (
        "CancelJobSuccess"
    )

    async def ended() -> dict[str, Any] | None:
        data = await user.query(
            "query($id: ID!) { dataset(id: $id) { status error } }", {"id": dataset_id}
        )
        dataset: dict[str, Any] = data["dataset"]
        return dataset if dataset["status"] not in {"BUILDING", "PENDING"} else None

    dataset = await eventually(ended)
    if dataset["status"] != "READY":  # the cancel can come after the build finished
        assert dataset == {"status": "FAILED", "error": "the export was stopped"}
        async with resources.sessionmaker() as session:
            row = await session.get(Dataset, dataset_id)
        assert row is not None
        for name in ("train.jsonl", "eval.jsonl", "dataset_info.json"):
            assert await resources.storage.size(row.object_key + name) is None

    # The build thread ended with the job: nothing left to block a shutdown.
    async def no_build_thread() -> bool:
        return not threads_in("build")

    assert await eventually(no_build_thread, 10)


async def test_training_over_its_time_limit_fails_the_model(
    user: Client, resources: Resources, tiny_model: Path
) -> None:
    assert user.user_id
    dataset_id = await dataset_for(user)
    model_id = new_id()
    async with resources.sessionmaker() as session:
        session.add(
            Model(
                id=model_id,
                user_id=user.user_id,
                name="slow",
                dataset_id=dataset_id,
                base_model=str(tiny_model),
                method="lora",
                config={"max_steps": 100_000, "logging_steps": 1},
                object_key=artifact_key(user.user_id, model_id),
            )
        )
        await session.commit()
    job_id = await unqueued_job(resources, user.user_id, "train_model", model_id, model_id=model_id)
    await run_job(resources, job_id, "train_model", timeout=5.0)
    row = await job_row(resources, job_id)
    assert row.status == "failed"
    assert row.error == "the job took longer than 5 s"
    model = await user.query(
        "query($id: ID!) { model(id: $id) { status error downloadUrl } }", {"id": model_id}
    )
    assert model["model"] == {
        "status": "FAILED",
        "error": "training took longer than the 5 s allowed",
        "downloadUrl": None,
    }
    assert await resources.storage.size(artifact_key(user.user_id, model_id)) is None


async def test_cancelled_merge_leaves_no_scratch_files(
    user: Client, resources: Resources, tiny_model: Path, tmp_path: Path
) -> None:
    assert user.user_id
    model_id = await stored_adapter(resources, user.user_id, tiny_model, tmp_path)
    scratch = resources.settings.cache_dir / "scratch"
    before = set(scratch.glob("train-*"))
    exported = await user.query(
        """mutation($id: ID!) { exportModel(id: $id, merged: true) {
             __typename ... on ExportModelSuccess { job { id } } } }""",
        {"id": model_id},
    )
    job_id = exported["exportModel"]["job"]["id"]
    await follow(user, job_id, lambda s: "merging" in (s["message"] or ""))
    await user.query(CANCEL, {"id": job_id})
    assert (await wait_for_job(user, job_id))["status"] == "CANCELLED"

    async def no_scratch() -> bool:
        return not (set(scratch.glob("train-*")) - before)

    assert await eventually(no_scratch, 30)
    await asyncio.sleep(2)  # a merge thread still running would write its folder again
    assert not (set(scratch.glob("train-*")) - before)
    assert not threads_in("merge_adapter")
