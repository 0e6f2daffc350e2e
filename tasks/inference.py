"""The inference worker: takes chat requests off the inference queue, generates with
ml.inference's Engine (base models with several LoRA adapters resident), and publishes every
token on the request's channel as soon as it exists, then a final chunk with the finish reason
and token counts.

One request is generated at a time (the engine's contract); the rest wait in the queue. A
request whose client went away or cancelled stops at the next token. A failing request ends
with finish "error" and never takes the worker down. Output passes the sensitive-output filter
(the dataset PII patterns) on the way out, holding back only what could still become a match.

Embedded, this runs as a task of the weft process; in production, `weft inference-worker`.
torch is imported on the first request, never at start-up of the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import threading
import time
from collections import OrderedDict
from typing import Any

from sqlalchemy import select

from ml.datasets.pii import StreamMasker
from server.chat import CONTROL, ChatBroker, ChatRequest
from server.db.models import Model
from server.events import chat_channel
from server.resources import Resources
from tasks.artifacts import download_folder

log = logging.getLogger(__name__)

READY_MARKER = ".weft-ready"
STATUS_EVERY = 5.0
# How often, at most, the cache is checked for models deleted since (between requests).
FORGET_EVERY = 60.0
# Cancelled request ids remembered (a cancel may arrive before its request is taken).
REMEMBER = 10_000


class InferenceWorker:
    def __init__(self, resources: Resources, broker: ChatBroker) -> None:
        self.resources = resources
        self.broker = broker
        self.cancelled: OrderedDict[str, None] = OrderedDict()
        self.served = 0
        self.busy: str | None = None
        self._engine: Any = None
        self._engine_lock = asyncio.Lock()

    async def run(self, stop: asyncio.Event) -> None:
        """Serve requests until stop is set; the request in hand is finished first."""
        listener = asyncio.create_task(self._follow_control())
        reporter = asyncio.create_task(self._report())
        swept = -FORGET_EVERY
        try:
            while not stop.is_set():
                if time.monotonic() - swept >= FORGET_EVERY:
                    swept = time.monotonic()
                    with contextlib.suppress(Exception):
                        await self.forget_deleted()
                try:
                    request = await self.broker.take(timeout=1.0)
                except Exception:
                    log.warning("inference queue unavailable; retrying", exc_info=True)
                    await asyncio.sleep(1.0)
                    continue
                if request is not None:
                    await self.serve(request)
        finally:
            for task in (listener, reporter):
                task.cancel()
            await asyncio.gather(listener, reporter, return_exceptions=True)

    async def serve(self, request: ChatRequest) -> None:
        """Generate one request; every outcome ends with a final chunk on its channel."""
        request_id = str(request["id"])
        channel = chat_channel(request_id)
        self.busy = request_id
        try:
            if time.time() > float(request["deadline"]):
                await self._final(
                    channel, "error", error="the request waited too long in the queue"
                )
                return
            if request_id in self.cancelled:
                await self._final(channel, "cancelled")
                return
            try:
                base, adapter = await self._model_files(request)
                engine = await self._get_engine()
            except Exception as error:
                log.exception("loading model %s failed", request.get("model_id"))
                await self._final(channel, "error", error=f"the model cannot be loaded: {error}")
                return
            await self._generate(engine, request, base, adapter, channel)
        except Exception:
            log.exception("chat request %s failed", request_id)
            with contextlib.suppress(Exception):
                await self._final(channel, "error", error="the inference worker failed")
        finally:
            self.busy = None
            self.served += 1
            with contextlib.suppress(Exception):
                await self.broker.report(await self.status())

    async def _generate(
        self, engine: Any, request: ChatRequest, base: str, adapter: str | None, channel: str
    ) -> None:
        from ml.inference import ChatRequest as EngineRequest
        from ml.inference import InvalidRequestError

        request_id = str(request["id"])
        params = request.get("params") or {}
        try:
            engine_request = EngineRequest(
                base_model=base,
                adapter=adapter,
                adapter_id=str(request["model_id"]) if adapter else None,
                messages=request["messages"],
                max_tokens=params.get("max_tokens"),
                temperature=float(params.get("temperature", 1.0)),
                top_p=float(params.get("top_p", 1.0)),
                stop=tuple(params.get("stop") or ()),
                seed=params.get("seed"),
            )
        except InvalidRequestError as error:
            await self._final(channel, "error", error=str(error))
            return
        loop = asyncio.get_running_loop()
        chunks: asyncio.Queue[Any] = asyncio.Queue()
        closed = threading.Event()

        def produce() -> None:
            stream = engine.generate(
                engine_request, cancelled=lambda: closed.is_set() or request_id in self.cancelled
            )
            try:
                for chunk in stream:
                    loop.call_soon_threadsafe(chunks.put_nowait, chunk)
            except BaseException as error:  # reported as the final chunk
                loop.call_soon_threadsafe(chunks.put_nowait, error)
            finally:
                stream.close()

        producer = loop.run_in_executor(None, produce)
        masker = StreamMasker()
        try:
            while True:
                chunk = await chunks.get()
                if isinstance(chunk, BaseException):
                    await self._final(channel, "error", error=f"generation failed: {chunk}")
                    return
                if not chunk.done:
                    # Tokens that piled up while we were publishing go out together: each
                    # still leaves as soon as the loop gets to it, with less work per token.
                    text = [chunk.delta]
                    while not chunks.empty():
                        following = chunks.get_nowait()
                        if isinstance(following, BaseException) or following.done:
                            chunks.put_nowait(following)  # handled by the next turn
                            break
                        text.append(following.delta)
                    safe = masker.feed("".join(text))
                    if safe:
                        await self._publish(channel, {"delta": safe, "done": False})
                    continue
                tail = masker.flush()
                if tail:
                    await self._publish(channel, {"delta": tail, "done": False})
                usage = chunk.usage.to_dict() if chunk.usage is not None else None
                await self._final(channel, chunk.finish_reason, usage=usage, error=chunk.error)
                return
        finally:
            closed.set()
            await producer

    async def _publish(self, channel: str, event: dict[str, Any]) -> None:
        await self.resources.events.publish(channel, event)

    async def _final(
        self,
        channel: str,
        reason: str | None,
        *,
        usage: dict[str, int] | None = None,
        error: str | None = None,
    ) -> None:
        await self._publish(
            channel,
            {
                "delta": "",
                "done": True,
                "finish_reason": reason,
                "usage": usage or {"prompt_tokens": 0, "completion_tokens": 0},
                "error": error,
            },
        )

    async def preload(self) -> None:
        """Import torch and create the engine now rather than on the first request."""
        await self._get_engine()

    async def _get_engine(self) -> Any:
        async with self._engine_lock:
            if self._engine is None:
                settings = self.resources.settings

                def create() -> Any:
                    import torch

                    from ml.inference import Engine

                    if settings.inference_threads:
                        torch.set_num_threads(settings.inference_threads)
                    return Engine(
                        device=settings.inference_device or None,
                        max_bases=settings.inference_max_bases,
                        max_adapters=settings.inference_max_adapters,
                    )

                self._engine = await asyncio.to_thread(create)
            return self._engine

    async def _model_files(self, request: ChatRequest) -> tuple[str, str | None]:
        """(base model, adapter dir or None), downloading the artifact into the cache once."""
        cache = self.resources.settings.cache_dir / "models" / str(request["model_id"])
        if not (cache / READY_MARKER).exists():
            shutil.rmtree(cache, ignore_errors=True)
            scratch = self.resources.settings.cache_dir / "scratch"
            await download_folder(self.resources.storage, request["artifact_key"], cache, scratch)
            (cache / READY_MARKER).touch()
        if request["method"] == "full":
            return str(cache), None
        return str(request["base_model"]), str(cache)

    async def forget_deleted(self) -> list[str]:
        """Unload and remove from the cache the models whose rows are gone (deleted by their
        owner): their weights must not stay on this machine. Run between requests. Returns the
        ids forgotten."""
        models = self.resources.settings.cache_dir / "models"
        cached = [p for p in models.iterdir() if p.is_dir()] if models.is_dir() else []
        if not cached:
            return []
        async with self.resources.sessionmaker() as session:
            kept = set(
                await session.scalars(
                    select(Model.id).where(Model.id.in_([p.name for p in cached]))
                )
            )
        gone = [p for p in cached if p.name not in kept]
        for path in gone:
            if self._engine is not None:
                await asyncio.to_thread(self._engine.unload, path)
            await asyncio.to_thread(shutil.rmtree, path, True)
            log.info("model %s was deleted: unloaded and removed from the cache", path.name)
        return [p.name for p in gone]

    async def _follow_control(self) -> None:
        while True:
            try:
                async with self.resources.events.subscribe(CONTROL) as events:
                    async for event in events:
                        request_id = event.get("cancel")
                        if isinstance(request_id, str):
                            self.cancelled[request_id] = None
                            while len(self.cancelled) > REMEMBER:
                                self.cancelled.popitem(last=False)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("control channel lost; resubscribing", exc_info=True)
                await asyncio.sleep(1.0)

    async def _report(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                await self.broker.report(await self.status())
            await asyncio.sleep(STATUS_EVERY)

    async def status(self) -> dict[str, Any]:
        loaded = self._engine.loaded() if self._engine is not None else None
        return {
            "loaded": _plain(loaded),
            "busy": self.busy is not None,
            "served": self.served,
            "waiting": await self.broker.waiting(),
            "reported_at": time.time(),
        }


def _plain(value: Any) -> Any:
    """The engine's snapshot as JSON values (devices and paths as text)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
