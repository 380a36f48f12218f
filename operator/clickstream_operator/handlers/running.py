"""``csgen operator``: run the kopf operator with csgen's settings."""

from __future__ import annotations

import argparse
import asyncio
import logging

import kopf

from clickstream_operator.handlers import registration


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
        "--peering",
        default=None,
        help="kopf peering name for high availability (only one replica is active)",
    )


def run(args: argparse.Namespace) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code."""
    log_format = kopf.LogFormat.JSON if args.log_format == "json" else kopf.LogFormat.PLAIN
    kopf.configure(debug=args.debug, verbose=False, log_format=log_format, log_prefix=True)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    liveness = (
        f"http://{args.liveness_host}:{args.liveness_port}/healthz" if args.liveness_port else None
    )
    namespaces = args.namespaces or []
    asyncio.run(
        kopf.operator(
            registry=kopf.get_default_registry(),
            clusterwide=not namespaces,
            namespaces=namespaces,
            liveness_endpoint=liveness,
            peering_name=args.peering,
            standalone=args.peering is None,
        )
    )
    return 0


__all__ = ["add_arguments", "registration", "run"]
