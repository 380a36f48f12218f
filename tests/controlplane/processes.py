"""Child processes that cannot outlive their owner.

Every process started here (etcd, the apiserver, the controller manager, and each
pod's container) gets:

- its own process group, so that stopping it stops whatever it spawned;
- ``PR_SET_PDEATHSIG`` = SIGKILL on Linux, so that it dies with the thread that
  started it even when the owner is killed with SIGKILL and no cleanup runs;
- an environment variable, ``CSGEN_CONTROLPLANE_OWNER=<owner pid>``, inherited by
  grandchildren, by which ``survivors()`` finds anything left behind.

``atexit`` stops what is still registered, and ``install_signal_handlers()``
turns SIGTERM and SIGHUP into ``KeyboardInterrupt``, so that they unwind like
Ctrl-C: ``finally`` blocks and pytest's fixture teardown run.

Limits: pdeathsig follows the *thread* that spawned the child, so spawn from a
thread that outlives the child (the main thread, or the pod runner's loop).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import IO

logger = logging.getLogger(__name__)

OWNER_VARIABLE = "CSGEN_CONTROLPLANE_OWNER"
_PR_SET_PDEATHSIG = 1

_lock = threading.Lock()
_live: dict[int, subprocess.Popen[bytes]] = {}
# Resolved once here: the child, between fork and exec, must not load libraries.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def _die_with_parent() -> None:
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    log: IO[bytes] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own process group, tied to this process, and register it."""
    environment = dict(os.environ if env is None else env)
    environment[OWNER_VARIABLE] = str(os.getpid())
    process = subprocess.Popen(
        list(argv),
        env=environment,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=log if log is not None else subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )
    with _lock:
        _live[process.pid] = process
    return process


def signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    """Send ``signum`` to the process group of ``process``, if it still exists."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def stop(process: subprocess.Popen[bytes], *, grace: float = 5.0) -> int | None:
    """SIGTERM the group, wait up to ``grace`` seconds, then SIGKILL it; reap and forget."""
    signal_group(process, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=max(grace, 0.0))
    # NB: the leader may have exited while its children linger; kill the group
    # unconditionally, then reap the leader.
    signal_group(process, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    forget(process)
    return process.returncode


def forget(process: subprocess.Popen[bytes]) -> None:
    with _lock:
        _live.pop(process.pid, None)


def stop_all(*, grace: float = 2.0) -> None:
    """Stop every registered process: the last line of defence."""
    with _lock:
        processes = list(_live.values())
    for process in processes:
        signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(deadline - time.monotonic(), 0.0))
    for process in processes:
        stop(process, grace=0)


atexit.register(stop_all)


def survivors(owner: int | None = None) -> list[tuple[int, str]]:
    """Processes (pid, command line) whose environment names ``owner`` (default: us)."""
    marker = f"{OWNER_VARIABLE}={owner or os.getpid()}".encode()
    found: list[tuple[int, str]] = []
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            if marker not in environ.split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        # The process exited while being read, or belongs to someone we may not inspect.
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        # A zombie has exited; only its parent's wait() is missing.
        if state != "Z":
            found.append((int(entry.name), cmdline.strip()))
    return found


def kill_survivors(owner: int | None = None) -> list[tuple[int, str]]:
    """SIGKILL every survivor; return what was found."""
    found = survivors(owner)
    for pid, _ in found:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return found


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"received signal {signum}")


def install_signal_handlers() -> None:
    """Turn SIGTERM and SIGHUP into ``KeyboardInterrupt`` so that cleanup code runs.

    Only from the main thread, and only where the default disposition is set:
    a host (such as pytest) that installed handlers of its own keeps them.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, _interrupt)
