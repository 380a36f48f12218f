"""``csgen import-properties``: a ``ClickstreamGenerator`` from a ``csgen.properties``.

Moving from the original system to the operator is one command::

    csgen import-properties csgen.properties --region eu-west-1 | kubectl apply -f -

The file is read exactly as ``csgen run --config`` reads it (same validation,
same warnings for keys with no meaning here), and its model is written in the
document shape of ``spec.model``, so ``spec_to_config`` on the printed
``spec`` gives back the same model. ``clicks-per-second`` becomes
``eventsPerSecond`` and ``url-kinesis-stream-name`` the stream.

It does not check what only the cluster can: that the name is free, or that
the rate fits the resource's limits; ``kubectl apply`` reports those.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any, TextIO

import yaml

from clickstream_generator.model.documents import model_to_mapping
from clickstream_generator.model.errors import ConfigError
from clickstream_generator.model.properties import PropertiesConfig, load_properties

API_VERSION = "csgen.dev/v1alpha1"
KIND = "ClickstreamGenerator"
DEFAULT_NAME = "clickstream"

# The resource's name also names its StatefulSet and pods (see the CRD).
_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_NAME_MAX = 52


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``import-properties`` on the ``csgen`` subcommand parsers."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "import-properties",
        help="print a ClickstreamGenerator manifest made from a csgen.properties",
        description=(
            "Read a csgen.properties file of the original system and print the "
            "equivalent ClickstreamGenerator resource as YAML on stdout, e.g. "
            "csgen import-properties csgen.properties --region eu-west-1 | kubectl apply -f -"
        ),
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="the csgen.properties to read")
    parser.add_argument(
        "--name",
        default=DEFAULT_NAME,
        help=f"metadata.name of the resource (default {DEFAULT_NAME})",
    )
    parser.add_argument("--namespace", help="metadata.namespace (default: none, kubectl's)")
    parser.add_argument(
        "--stream", help="Kinesis stream name (default: the file's url-kinesis-stream-name)"
    )
    parser.add_argument("--region", required=True, help="AWS region of the stream")
    return parser


def command_import_properties(args: argparse.Namespace) -> int:
    """Print the manifest; warnings about ignored keys go to stderr."""
    config = load_properties(args.file)
    for warning in config.warnings:
        print(f"csgen: warning: {args.file}: {warning}", file=sys.stderr)
    manifest = properties_to_manifest(
        config,
        name=args.name,
        namespace=args.namespace,
        stream=args.stream,
        region=args.region,
        source=str(args.file),
    )
    write_manifest(manifest, sys.stdout, source=str(args.file))
    return 0


def properties_to_manifest(
    config: PropertiesConfig,
    *,
    name: str,
    region: str,
    stream: str | None = None,
    namespace: str | None = None,
    source: str = "csgen.properties",
) -> dict[str, Any]:
    """The ``ClickstreamGenerator`` resource equivalent to a properties file."""
    _check_name(name)
    if not region.strip():
        raise ConfigError("must not be empty", source="command line", key="--region")
    stream_name = stream or config.stream_name
    if not stream_name:
        raise ConfigError(
            "is missing (or still the template's placeholder): pass --stream NAME",
            source=source,
            key="url-kinesis-stream-name",
        )
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    spec: dict[str, Any] = {}
    if config.rate is not None:
        spec["eventsPerSecond"] = _plain_number(config.rate)
    spec["model"] = model_to_mapping(config.model)
    spec["kinesis"] = {"streamName": stream_name, "region": region.strip()}
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}


def write_manifest(manifest: dict[str, Any], out: TextIO, *, source: str) -> None:
    """YAML with a first-line comment saying where it came from."""
    out.write(f"# Imported from {source} by csgen import-properties.\n")
    yaml.safe_dump(manifest, out, sort_keys=False, default_flow_style=False)


def _check_name(name: str) -> None:
    # NB: checked here so that a bad name fails before anything reaches the cluster.
    if not _NAME.fullmatch(name) or len(name) > _NAME_MAX:
        raise ConfigError(
            f"must be lower-case letters, digits and '-', start and end with a letter or "
            f"digit, and be at most {_NAME_MAX} characters (got {name!r})",
            source="command line",
            key="--name",
        )


def _plain_number(value: float) -> float | int:
    """12.0 as 12, so the manifest reads as a person would write it."""
    return int(value) if value.is_integer() else value
