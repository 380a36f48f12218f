"""``python -m clickstream_operator``: the same as ``csgen operator``."""

from __future__ import annotations

import argparse

from clickstream_operator.handlers.options import add_arguments
from clickstream_operator.handlers.running import run


def main() -> int:
    parser = argparse.ArgumentParser(prog="csgen operator", description="Run the csgen operator.")
    add_arguments(parser)
    parser.add_argument("--debug", action="store_true", help="verbose logs")
    parser.add_argument("--log-format", choices=("plain", "json"), default="plain")
    return run(parser.parse_args())


raise SystemExit(main())
