"""The ``csgen operator`` options; importing this module does not import kopf."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``csgen operator`` options."""
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace",
        "-n",
        action="append",
        dest="namespaces",
        help="watch this namespace (repeatable; globs allowed)",
    )
    scope.add_argument(
        "--all-namespaces", "-A", action="store_true", help="watch the whole cluster (default)"
    )
    parser.add_argument(
        "--liveness-port", type=int, default=8081, help="serve /healthz on this port (0: off)"
    )
    parser.add_argument(
        "--liveness-host",
        default="0.0.0.0",  # noqa: S104 - the kubelet probes the pod IP
        help="bind address of the liveness endpoint",
    )
    parser.add_argument(
        "--priority",
        type=int,
        default=None,
        help="peering priority of this replica (default: random, so that one replica leads)",
    )
    parser.add_argument(
        "--peering",
        default=None,
        help="kopf peering name for high availability (only one replica is active)",
    )
