"""`TrainingProcess`: `train` in a child process, with its events relayed and a hard cancel.

The child is started with the spawn method (torch and CUDA are not safe across fork) and sends
its events through a multiprocessing queue. The parent never blocks its event loop: `aevents()`
waits on the queue in a worker thread, `poll(timeout)` returns what has arrived. `cancel()`
terminates the child at once; whatever it wrote stays in the output folder without a COMPLETE
marker, for the caller to delete. A child that raised or died surfaces as an exception in the
parent: the child's `TrainingError` (same class and message), or `TrainingCrashed` carrying
the child's traceback or the signal that killed it.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import queue as queue_module
import signal
import sys
import traceback
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from ml.training import errors
from ml.training.config import TrainConfig
from ml.training.errors import TrainingCrashed, TrainingError
from ml.training.trainer import Event, TrainResult

_ERROR = "error"  # message type of a child's failure; never yielded as an event
_DRAIN_LIMIT = 10_000  # events taken per poll at most, so a poll always returns


class TrainingProcess:
    """One training run in a spawned child process. Use it once:

        run = TrainingProcess(config, base, "train.jsonl", "eval.jsonl", "out").start()
        async for event in run.aevents():   # or: for event in run.events()
            ...                             # "start", "log", "eval", "done"
        result = run.result                 # TrainResult once "done" arrived

    Iteration ends when the child has exited and every event is delivered; it raises the
    child's error instead if the child failed. Consume the events from one place at a time.
    """

    def __init__(
        self,
        config: TrainConfig,
        base_model: str,
        train_path: str | Path,
        eval_path: str | Path | None,
        output_dir: str | Path,
        *,
        dataset_info: Mapping[str, Any] | None = None,
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self.output_dir = Path(output_dir)
        self.result: TrainResult | None = None
        self.cancelled = False
        self._queue: multiprocessing.Queue[Event] = context.Queue()
        payload = {
            "config": config.to_dict(),
            "base_model": base_model,
            "train_path": str(train_path),
            "eval_path": str(eval_path) if eval_path is not None else None,
            "output_dir": str(output_dir),
            "dataset_info": dict(dataset_info or {}),
        }
        # daemon: the child dies with its parent rather than train on, unwatched.
        self._process = context.Process(
            target=_child_main, args=(payload, self._queue), name="weft-train", daemon=True
        )
        self._finished = False

    def start(self) -> TrainingProcess:
        self._process.start()
        return self

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def finished(self) -> bool:
        """True once every event was delivered and the child is gone (or it was cancelled)."""
        return self._finished

    def poll(self, timeout: float = 0.0) -> list[Event]:
        """Events that have arrived, waiting up to `timeout` seconds for the first one.

        Raises the child's error once the child has failed; returns [] once finished.
        """
        if self._finished:
            return []
        events: list[Event] = []
        first = self._get(timeout)
        if first is not None:
            self._take(first, events)
        elif self._process.exitcode is None:  # running (or not started) and nothing came
            return events
        self._drain(events)
        if self._process.pid is not None and not self._process.is_alive() and not self.cancelled:
            self._process.join()
            self._drain(events)  # all the child sent before it exited is in the pipe by now
            self._conclude()
        return events

    def events(self) -> Iterator[Event]:
        """Every event until the child finishes (blocking); none after `cancel()`."""
        while not self._finished:
            for event in self.poll(timeout=0.5):
                if self.cancelled:
                    return
                yield event

    async def aevents(self, interval: float = 0.25) -> AsyncIterator[Event]:
        """Every event until the child finishes, none after `cancel()`; waits for them in a
        worker thread, never on the event loop."""
        while not self._finished:
            for event in await asyncio.to_thread(self.poll, interval):
                if self.cancelled:
                    return
                yield event

    def wait(self) -> TrainResult:
        """Block until the run ends; its result, or the child's error raised."""
        for _ in self.events():
            pass
        return self._result_or_raise()

    async def await_result(self) -> TrainResult:
        async for _ in self.aevents():
            pass
        return self._result_or_raise()

    def cancel(self, grace_seconds: float = 5.0) -> None:
        """Stop the child now (SIGTERM, then SIGKILL after `grace_seconds`) and reap it."""
        self.cancelled = True
        self._finished = True
        process = self._process
        if process.pid is None:
            return  # never started
        if process.is_alive():
            process.terminate()
            process.join(grace_seconds)
            if process.is_alive():
                process.kill()
        process.join()

    async def acancel(self, grace_seconds: float = 5.0) -> None:
        """`cancel` off the event loop (reaping the child may wait up to `grace_seconds`)."""
        await asyncio.to_thread(self.cancel, grace_seconds)

    def close(self) -> None:
        """Cancel if still running and release the queue's pipe."""
        if not self._finished or self._process.is_alive():
            self.cancel()
        self._queue.close()
        self._queue.join_thread()

    def __enter__(self) -> TrainingProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _get(self, timeout: float) -> Event | None:
        """The next message, or None when none came in time (or close() closed the queue)."""
        try:
            return self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
        except (queue_module.Empty, OSError, ValueError):
            return None

    def _drain(self, events: list[Event]) -> None:
        for _ in range(_DRAIN_LIMIT):
            message = self._get(0)
            if message is None:
                return
            self._take(message, events)

    def _take(self, message: Event, events: list[Event]) -> None:
        if message.get("type") == _ERROR:
            self._finished = True
            self._process.join(5.0)
            raise _rebuild_error(message)
        if message.get("type") == "done":
            self.result = TrainResult.from_dict(message)
        events.append(message)

    def _conclude(self) -> None:
        self._finished = True
        code = self._process.exitcode
        if code == 0 and self.result is not None:
            return
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            hint = " (out of memory?)" if -code == signal.SIGKILL else ""
            raise TrainingCrashed(f"the training process was killed by {name}{hint}")
        raise TrainingCrashed(f"the training process exited with code {code} without a result")

    def _result_or_raise(self) -> TrainResult:
        if self.result is None:
            if self.cancelled:
                raise errors.TrainingCancelled("training was cancelled")
            raise TrainingCrashed("the training process ended without a result")
        return self.result


def _rebuild_error(message: Event) -> TrainingError:
    kind = message.get("error")
    text = str(message.get("message", "training failed"))
    cls = getattr(errors, kind, None) if isinstance(kind, str) else None
    if isinstance(cls, type) and issubclass(cls, TrainingError) and cls is not TrainingCrashed:
        return cls(text)
    return TrainingCrashed(f"training crashed: {text}", message.get("traceback"))


def _child_main(payload: dict[str, Any], events: multiprocessing.Queue[Event]) -> None:
    from ml.training.trainer import train

    parent = os.getppid()
    try:
        train(
            TrainConfig.from_dict(payload["config"]),
            payload["base_model"],
            payload["train_path"],
            payload["eval_path"],
            payload["output_dir"],
            on_event=events.put,
            # An orphan (the worker died) stops at the next step instead of training unwatched.
            should_stop=lambda: os.getppid() != parent,
            dataset_info=payload["dataset_info"],
        )
    except TrainingError as exc:
        events.put({"type": _ERROR, "error": type(exc).__name__, "message": str(exc)})
        _exit(events, 1)
    except BaseException as exc:
        details = traceback.format_exc()
        print(details, file=sys.stderr, flush=True)
        events.put(
            {
                "type": _ERROR,
                "error": type(exc).__name__,
                "message": f"{type(exc).__name__}: {exc}",
                "traceback": details,
            }
        )
        _exit(events, 1)


def _exit(events: multiprocessing.Queue[Event], code: int) -> None:
    events.close()
    events.join_thread()  # make sure the error message is in the pipe before the exit
    sys.exit(code)
