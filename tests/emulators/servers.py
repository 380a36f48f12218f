"""Kinesis emulators on loopback, started and stopped from Python.

Two emulators are offered:

* :class:`Kinesalite` runs kinesalite (npm) in a child Node process through
  ``node/kinesalite-server.js``, bound to 127.0.0.1. It can keep its data in
  a LevelDB directory, so a test can stop it, see connections refused, and
  start it again on the same port with every stream and record still there.
* :class:`MotoServer` runs moto's server mode in a thread of this process,
  bound to 127.0.0.1.

What this module does not do: create streams or read records (see
``streams``), or decide which tests run against which emulator (see
``fixtures``). It never reads AWS credentials.

Limits: the port is only known once the server is up (port 0 asks the kernel).
Between ``stop()`` and ``start()`` another process could take the port; that
is reported as a start failure, never retried blindly. moto's server shares
its backends with ``moto.mock_aws`` in the same process: leaving a
``mock_aws`` block resets the moto server's streams too.

Errors::

    EmulatorError
    ├── EmulatorNotInstalledError   node or the npm packages are missing
    └── EmulatorStartError          the process died or never reported a port
"""

from __future__ import annotations

import enum
import json
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

__all__ = [
    "NODE_DIR",
    "NPM_INSTALL_COMMAND",
    "EmulatorError",
    "EmulatorNotInstalledError",
    "EmulatorStartError",
    "Kinesalite",
    "MotoServer",
    "ServerState",
]

HOST = "127.0.0.1"
NODE_DIR = Path(__file__).resolve().parent / "node"
NPM_INSTALL_COMMAND = "npm ci --prefix tests/emulators/node"
_SERVER_SCRIPT = NODE_DIR / "kinesalite-server.js"
_KINESALITE_PACKAGE = NODE_DIR / "node_modules" / "kinesalite" / "package.json"


class EmulatorError(Exception):
    """Base error of the emulator harness."""


class EmulatorNotInstalledError(EmulatorError):
    """A program or package the emulator needs is not installed."""


class EmulatorStartError(EmulatorError):
    """The emulator did not come up (bad option, port taken, crash)."""


class ServerState(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPED = "stopped"


class _LoopbackServer:
    """What both emulators share: a port on 127.0.0.1, and use as a context manager."""

    _port: int

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port; after a stop, the port that the next start reuses."""
        if not self._port:
            raise EmulatorError(f"{self!r} has no port yet: call start() first.")
        return self._port

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"


class Kinesalite(_LoopbackServer):
    """A kinesalite process listening on 127.0.0.1.

    Stream state changes (CREATING to ACTIVE and so on) take
    ``create_stream_ms`` etc., 0 by default so that tests do not wait.
    With ``data_dir`` the data lives in LevelDB on disk and survives
    :meth:`restart`; without it the data is in memory and lost on stop.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        data_dir: Path | str | None = None,
        create_stream_ms: int = 0,
        delete_stream_ms: int = 0,
        update_stream_ms: int = 0,
        shard_limit: int = 100,
        start_timeout: float = 30.0,
        stop_timeout: float = 5.0,
    ) -> None:
        self._port = port
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.create_stream_ms = create_stream_ms
        self.delete_stream_ms = delete_stream_ms
        self.update_stream_ms = update_stream_ms
        self.shard_limit = shard_limit
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.state = ServerState.NEW
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    def __repr__(self) -> str:
        return f"<Kinesalite {self.state.value} port={self._port} data_dir={self.data_dir}>"

    @property
    def pid(self) -> int:
        if self._process is None or self.state is not ServerState.RUNNING:
            raise EmulatorError(f"{self!r} has no process: call start() first.")
        return self._process.pid

    def start(self) -> None:
        """Start the process and wait until it reports its bound port.

        After a stop, the process starts again on the port it had before.
        """
        if self.state is ServerState.RUNNING:
            raise EmulatorError(f"{self!r} is already running; stop() it first.")
        node = _find_node()
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)

        # stderr goes to a file so that a failed start can quote it; stdin is a
        # pipe that the server watches, so it dies with us even on a hard crash.
        # It lives as long as the process, so no context manager.
        self._stderr = tempfile.TemporaryFile(prefix="kinesalite-stderr-")  # noqa: SIM115
        self._process = subprocess.Popen(
            [node, str(_SERVER_SCRIPT), *self._arguments()],
            cwd=NODE_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            bufsize=0,
        )
        try:
            self._port = self._read_port(self._process)
        except BaseException:
            self._terminate()
            raise
        self.state = ServerState.RUNNING

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL after ``stop_timeout``).

        Stopping a server that is not running does nothing.
        """
        if self.state is not ServerState.RUNNING:
            return
        self._terminate()
        self.state = ServerState.STOPPED

    def restart(self) -> None:
        """Stop and start again on the same port with the same data."""
        if self.data_dir is None:
            raise EmulatorError(
                f"{self!r} keeps its data in memory, so a restart would lose it; "
                "pass data_dir=... to keep streams and records across restarts."
            )
        self.stop()
        self.start()

    def _arguments(self) -> list[str]:
        arguments = [
            f"--port={self._port}",
            f"--createStreamMs={self.create_stream_ms}",
            f"--deleteStreamMs={self.delete_stream_ms}",
            f"--updateStreamMs={self.update_stream_ms}",
            f"--shardLimit={self.shard_limit}",
        ]
        if self.data_dir is not None:
            arguments.append(f"--path={self.data_dir}")
        return arguments

    def _read_port(self, process: subprocess.Popen[bytes]) -> int:
        assert process.stdout is not None
        deadline = time.monotonic() + self.start_timeout
        received = b""
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while b"\n" not in received:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise EmulatorStartError(
                        f"kinesalite did not report its port within {self.start_timeout} s."
                        f"{self._stderr_tail()}"
                    )
                if not selector.select(timeout=remaining):
                    continue
                chunk = os.read(process.stdout.fileno(), 4096)
                # End of file: the process exited before it could listen.
                if not chunk:
                    code = process.wait(timeout=self.stop_timeout)
                    raise EmulatorStartError(
                        f"kinesalite exited with code {code} before listening on "
                        f"{HOST}:{self._port}.{self._stderr_tail()}"
                    )
                received += chunk
        line = received.split(b"\n", 1)[0]
        try:
            port = json.loads(line)["port"]
        except (ValueError, KeyError, TypeError) as exc:
            raise EmulatorStartError(f"kinesalite printed an unexpected line: {line!r}") from exc
        if not isinstance(port, int) or port <= 0:
            raise EmulatorStartError(f"kinesalite reported an invalid port: {line!r}")
        return port

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=self.stop_timeout)
            # The graceful close hung: kill, and reap so no zombie is left.
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            for pipe in (process.stdin, process.stdout):
                if pipe is not None:
                    pipe.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def _stderr_tail(self, limit: int = 4000) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        text = self._stderr.read().decode("utf-8", "replace").strip()
        return f"\nstderr:\n{text[-limit:]}" if text else ""


def _find_node() -> str:
    node = shutil.which("node")
    if node is None:
        raise EmulatorNotInstalledError(
            "kinesalite needs Node.js, but `node` is not on PATH. Install Node.js 20, "
            f"then run `{NPM_INSTALL_COMMAND}` from the repository root."
        )
    if not _KINESALITE_PACKAGE.is_file():
        raise EmulatorNotInstalledError(
            f"kinesalite is not installed in {NODE_DIR / 'node_modules'}. "
            f"Run `{NPM_INSTALL_COMMAND}` from the repository root."
        )
    return node


class MotoServer(_LoopbackServer):
    """moto's server mode in a thread of this process, on 127.0.0.1.

    All moto services are served; tests here only use Kinesis. State is
    global to the process: :meth:`reset` empties every backend.
    """

    def __init__(self, *, port: int = 0) -> None:
        self._requested_port = port
        self._port = 0
        self._server: Any = None
        self.state = ServerState.NEW

    def __repr__(self) -> str:
        return f"<MotoServer {self.state.value} port={self._port or self._requested_port}>"

    def start(self) -> None:
        if self.state is ServerState.RUNNING:
            raise EmulatorError(f"{self!r} is already running; stop() it first.")

        # Imported here: moto is slow to import and only emulator tests need it.
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address=HOST, port=self._requested_port, verbose=False)
        server.start()
        self._server = server
        self._port = server.get_host_and_port()[1]
        self.state = ServerState.RUNNING

    def stop(self) -> None:
        if self.state is not ServerState.RUNNING:
            return
        server, self._server = self._server, None
        server.stop()
        # NB: ThreadedMotoServer.stop() shuts the loop down but leaves the
        # listening socket open, which is a ResourceWarning (an error here).
        wsgi_server = getattr(server, "_server", None)
        if wsgi_server is not None:
            wsgi_server.server_close()
        self.state = ServerState.STOPPED

    def reset(self) -> None:
        """Forget every stream and record (all moto backends of this process)."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        # An empty proxy map: loopback traffic never goes through HTTP_PROXY.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=10) as response:
            response.read()
