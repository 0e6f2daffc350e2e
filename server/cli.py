"""The `weft` command: serve, migrate, worker, inference-worker, parse, make-tiny-model."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from server.observability import configure_logging
from server.settings import Settings, SettingsError

Command = Callable[[argparse.Namespace, Settings], int]


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from server.app import create_app

    host = args.host or settings.host
    port = args.port or settings.port
    shown = "127.0.0.1" if host in {"0.0.0.0", "::"} else host
    mode = "embedded" if not settings.uses_redis else "production"
    print(f"weft ({mode} mode) — GraphiQL at http://{shown}:{port}/graphql", flush=True)
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        log_config=None,
        access_log=False,
        ws="websockets-sansio",
        timeout_graceful_shutdown=30,
    )
    return 0


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    from server.db.migrate import upgrade

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url, args.revision)
    print(f"database at {args.revision}: {_safe_url(settings.resolved_database_url)}")
    return 0


def _serve_metrics(settings: Settings) -> None:
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr=settings.host)


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from tasks.worker import run_worker

    _serve_metrics(settings)
    run_worker(args.queue, settings)
    return 0


def _inference_worker(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio
    import signal

    from server.resources import Resources
    from tasks.inference import InferenceWorker
    from tasks.registry import JOBS

    if not settings.uses_redis:
        print(
            "weft: the inference worker needs WEFT_REDIS_URL (embedded mode runs it in "
            "`weft serve`)",
            file=sys.stderr,
        )
        return 2

    _serve_metrics(settings)

    async def run() -> None:
        resources = await Resources.open(settings, JOBS, migrate=False)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            worker = InferenceWorker(resources, resources.chat)
            if args.preload:
                await worker.preload()
            await worker.run(stop)
        finally:
            await resources.close()

    asyncio.run(run())
    return 0


def _make_tiny_model(args: argparse.Namespace, settings: Settings) -> int:
    from ml.tiny import make_tiny_model

    texts = None
    if args.text:
        texts = [line for path in args.text for line in Path(path).read_text().splitlines() if line]
    path = make_tiny_model(args.directory, texts, architecture=args.architecture)
    print(f"tiny {args.architecture} model written to {path}")
    return 0


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="weft", description="WeChat chat history in, fine-tuned chat models out."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the API (GraphQL at /graphql)")
    serve.add_argument("--host", default=None, help="default: WEFT_HOST or 127.0.0.1")
    serve.add_argument("--port", type=int, default=None, help="default: WEFT_PORT or 8000")
    serve.set_defaults(run=_serve)

    migrate = commands.add_parser("migrate", help="bring the database schema up to date")
    migrate.add_argument("--revision", default="head")
    migrate.set_defaults(run=_migrate)

    worker = commands.add_parser("worker", help="run an arq worker for one queue")
    worker.add_argument("queue", choices=["parse", "label", "train"])
    worker.set_defaults(run=_worker)

    inference = commands.add_parser(
        "inference-worker", help="serve chat requests from the inference queue (GPU machine)"
    )
    inference.add_argument("--preload", action="store_true", help="load the engine at start-up")
    inference.set_defaults(run=_inference_worker)

    # Handled in main() before argparse; listed here for --help.
    commands.add_parser("parse", help="parse a chat export and print one JSON message per line")

    tiny = commands.add_parser("make-tiny-model", help="build a small random-init chat model")
    tiny.add_argument("directory", type=Path)
    tiny.add_argument("--architecture", choices=["qwen2", "llama"], default="qwen2")
    tiny.add_argument(
        "--text", action="append", type=Path, help="a text file to train the tokenizer on"
    )
    tiny.set_defaults(run=_make_tiny_model)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["parse"]:
        # The parser owns its options (and --help); hand them over untouched.
        from ml.parsing.cli import main as parse_main

        return int(parse_main(argv[1:]))
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"weft: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, json=settings.log_json)
    run: Command = args.run
    return run(args, settings)


if __name__ == "__main__":
    sys.exit(main())
