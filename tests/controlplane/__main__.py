"""Command line: ``python -m tests.controlplane {build,up,where}``.

``build`` builds the binaries into the cache when they are missing (minutes on
the first run, instant afterwards). ``up --kubeconfig PATH`` runs a control
plane and the local pod runner until Ctrl-C or SIGTERM, and writes an admin
kubeconfig to PATH once the API is ready (and removes it on the way out).
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import signal
import sys
import threading
import time

from . import building, processes
from .pods import PodRunner
from .running import ControlPlane


def _progress(message: str) -> None:
    print(f"[controlplane] {message}", flush=True)


def _build(_args: argparse.Namespace) -> int:
    building.build(progress=_progress)
    return 0


def _where(_args: argparse.Namespace) -> int:
    found = building.find_binaries()
    for path in (found.etcd, found.kube_apiserver, found.kube_controller_manager):
        print(path)
    return 0


def _up(args: argparse.Namespace) -> int:
    processes.install_signal_handlers()
    # A shell starts background jobs with SIGINT ignored; `kill -INT` should
    # still stop `up &` the way Ctrl-C stops it in the foreground.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    target = pathlib.Path(args.kubeconfig).expanduser().resolve()
    started = time.monotonic()
    _progress("starting etcd, kube-apiserver and kube-controller-manager")
    try:
        with ControlPlane() as plane, PodRunner(plane.kubeconfig):
            plane.write_kubeconfig(target)
            _progress(f"ready after {time.monotonic() - started:.1f} s at {plane.server}")
            _progress(f"export KUBECONFIG={target}   # admin (system:masters)")
            _progress("pods run as local processes; press Ctrl-C to stop and clean up")
            try:
                threading.Event().wait()
            finally:
                target.unlink(missing_ok=True)
                _progress("stopping")
    # Ctrl-C or SIGTERM: the way to stop, reported as an interrupt (130).
    except KeyboardInterrupt:
        _progress("stopped; nothing left running")
        return 130
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.controlplane", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build", help="build the binaries into the cache unless cached")
    commands.add_parser("where", help="print the paths of the binaries that would be used")
    up = commands.add_parser("up", help="run a control plane and the pod runner until Ctrl-C")
    up.add_argument("--kubeconfig", required=True, help="where to write the admin kubeconfig")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    handler = {"build": _build, "where": _where, "up": _up}[args.command]
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except building.ControlPlaneError as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
