"""``csgen run --serve`` as a real process: idle boot, start over HTTP, SIGTERM."""

from __future__ import annotations

import functools
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.polling import wait_for

TOKEN = "process-token-51c2"
LISTENING = re.compile(r"control API listening on (http://127\.0\.0\.1:\d+)")


class Generator:
    """A csgen process and the lines of its stderr, read by a thread."""

    def __init__(self, *args: str, env: dict[str, str] | None = None):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "clickstream_generator", "run", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env if env is not None else _clean_env(),
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.put(line)

    def wait_for_line(self, pattern: re.Pattern[str], timeout: float = 30.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.seen.append(line)
            if match := pattern.search(line):
                return match
        raise AssertionError(f"no line matched {pattern.pattern}; got: {''.join(self.seen)}")

    def rest_of_stderr(self) -> str:
        """Everything written to stderr; call after the process has exited."""
        self._reader.join(10)
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return "".join(self.seen)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        self._reader.join(10)
        assert self.process.stderr is not None
        self.process.stderr.close()


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CSGEN_API_TOKEN"}
    env["PYTHONUNBUFFERED"] = "1"
    return env


#: Waits as the other process tests do, with this module's patience.
poll = functools.partial(wait_for, timeout=20.0, interval=0.02)


def call(method: str, url: str, token: str | None = TOKEN) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, method=method)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return path


@pytest.fixture
def generators() -> Iterator[list[Generator]]:
    made: list[Generator] = []
    yield made
    for generator in made:
        generator.stop()


def test_a_process_without_autostart_sends_nothing_until_started_and_exits_on_sigterm(
    tmp_path, token_file, generators
):
    events = tmp_path / "events.jsonl"
    generator = Generator(
        "--serve",
        "127.0.0.1:0",
        "--sink",
        f"file:{events}",
        "--token-file",
        str(token_file),
        "--rate",
        "200",
        "--quiet",
    )
    generators.append(generator)
    url = generator.wait_for_line(LISTENING).group(1)

    # Ready means the sink is open: from then on anything generated would show.
    poll(lambda: call("GET", f"{url}/readyz", token=None)[0] == 200)
    _, idle = call("GET", f"{url}/v1/status")
    size_while_idle = events.stat().st_size
    unauthorised, _ = call("POST", f"{url}/v1/start", token="wrong")
    code, started = call("POST", f"{url}/v1/start")
    poll(lambda: events.stat().st_size > 0)
    _, running = poll(
        lambda: (r := call("GET", f"{url}/v1/status")) and r[1]["acknowledged"] >= 20 and r
    )
    generator.process.send_signal(signal.SIGTERM)
    exit_code = generator.process.wait(30)
    stderr = generator.rest_of_stderr()

    assert idle["state"] == "idle"
    assert idle["generated"] == idle["acknowledged"] == 0
    assert size_while_idle == 0
    assert unauthorised == 401
    assert (code, started["state"]) == (200, "running")
    assert running["state"] == "running"
    assert exit_code == 0, stderr
    lines = events.read_text().splitlines()
    assert [json.loads(line)["sequence"] for line in lines] == list(range(len(lines)))
    assert f"done: generated {len(lines):,} events" in stderr
    assert TOKEN not in stderr


def test_autostart_generates_at_once(tmp_path, generators):
    events = tmp_path / "events.jsonl"
    generator = Generator(
        "--serve",
        "127.0.0.1:0",
        "--sink",
        f"file:{events}",
        "--no-auth",
        "--autostart",
        "--rate",
        "200",
        "--quiet",
    )
    generators.append(generator)
    url = generator.wait_for_line(LISTENING).group(1)

    status = poll(lambda: (s := call("GET", f"{url}/v1/status", token=None)[1])["generated"] and s)
    generator.process.send_signal(signal.SIGTERM)

    assert status["state"] == "running"
    assert generator.process.wait(30) == 0


def test_serving_without_a_token_refuses_to_start(tmp_path, generators):
    generator = Generator("--serve", "127.0.0.1:0", "--sink", f"file:{tmp_path / 'e.jsonl'}")
    generators.append(generator)

    exit_code = generator.process.wait(30)
    stderr = generator.rest_of_stderr()

    assert exit_code == 2
    assert "--token-file PATH or set $CSGEN_API_TOKEN" in stderr
    assert "Traceback" not in stderr
