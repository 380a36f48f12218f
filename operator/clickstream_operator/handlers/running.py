"""``csgen operator``: run the kopf operator with csgen's settings."""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets

import kopf

from clickstream_operator.handlers import registration


def run(args: argparse.Namespace) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code."""
    log_format = kopf.LogFormat.JSON if args.log_format == "json" else kopf.LogFormat.PLAIN
    kopf.configure(debug=args.debug, verbose=False, log_format=log_format, log_prefix=True)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    liveness = (
        f"http://{args.liveness_host}:{args.liveness_port}/healthz" if args.liveness_port else None
    )
    namespaces = args.namespaces or []
    # NB: kopf pauses every replica that sees a peer of equal priority, so
    # each replica draws its own unless told otherwise.
    priority = args.priority if args.priority is not None else secrets.randbelow(1_000_000) + 1
    asyncio.run(
        kopf.operator(
            registry=kopf.get_default_registry(),
            clusterwide=not namespaces,
            namespaces=namespaces,
            liveness_endpoint=liveness,
            peering_name=args.peering,
            priority=priority,
            standalone=args.peering is None,
        )
    )
    return 0


__all__ = ["registration", "run"]
