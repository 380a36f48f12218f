"""csgen import-properties: a csgen.properties becomes a ClickstreamGenerator manifest."""

from __future__ import annotations

import pathlib
import subprocess
import sys
from typing import Any

import pytest
import yaml

from clickstream_generator.model.documents import spec_to_config
from clickstream_generator.model.properties import load_properties
from tests.controlplane import ControlPlane

from .conftest import REPO, get

EXAMPLE = REPO / "examples" / "csgen.properties"

PROPERTIES = """\
web-store-url=https://shop.example.com/
customer-id-min=1000
customer-id-max=1999
probability-browsing-group=0.25
group-count=3
group-name-1=Garden
group-product-id-min-1=1
group-product-id-max-1=10
probability-browsing-products-in-group-1=0.5
group-name-2=Kitchen
group-product-id-min-2=500
group-product-id-max-2=9999
probability-browsing-products-in-group-2=0.3
group-name-3=Toys \\u0026 Games
group-product-id-min-3=42
group-product-id-max-3=42
probability-browsing-products-in-group-3=0.2
clicks-per-second=12.5
url-kinesis-stream-name=shop-clicks
seed=2026
token-as-hash=123
"""


def _csgen(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clickstream_generator", *args],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip


def _properties(tmp_path: pathlib.Path, text: str = PROPERTIES) -> pathlib.Path:
    path = tmp_path / "csgen.properties"
    path.write_text(text)
    return path


def _manifest(completed: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert completed.returncode == 0, completed.stderr
    return dict(yaml.safe_load(completed.stdout))


def test_the_manifest_carries_the_rate_the_model_and_the_stream(tmp_path: pathlib.Path) -> None:
    path = _properties(tmp_path)
    manifest = _manifest(_csgen("import-properties", str(path), "--region", "eu-west-1"))

    assert manifest["apiVersion"] == "csgen.dev/v1alpha1"
    assert manifest["kind"] == "ClickstreamGenerator"
    assert manifest["metadata"] == {"name": "clickstream"}
    spec = manifest["spec"]
    assert spec["eventsPerSecond"] == 12.5
    assert spec["kinesis"] == {"streamName": "shop-clicks", "region": "eu-west-1"}
    assert spec["model"]["baseUrl"] == "https://shop.example.com"
    assert spec["model"]["groups"][2]["name"] == "Toys & Games"


def test_the_model_round_trips_through_spec_to_config(tmp_path: pathlib.Path) -> None:
    path = _properties(tmp_path)
    manifest = _manifest(_csgen("import-properties", str(path), "--region", "eu-west-1"))

    config = spec_to_config(manifest["spec"])
    original = load_properties(path)
    assert config.model == original.model
    assert config.rate == original.rate
    assert config.kinesis.stream_name == "shop-clicks"
    assert config.warnings == []


def test_dead_keys_are_warned_about_on_stderr_only(tmp_path: pathlib.Path) -> None:
    completed = _csgen("import-properties", str(EXAMPLE), "--region", "eu-west-1", "--stream", "s")
    manifest = _manifest(completed)
    assert "poll-server-status-change is ignored" in completed.stderr
    assert "probability-browsing-group-1 is ignored" in completed.stderr
    assert manifest["spec"]["eventsPerSecond"] == 3


def test_name_namespace_and_stream_come_from_the_command_line(tmp_path: pathlib.Path) -> None:
    path = _properties(tmp_path)
    manifest = _manifest(
        _csgen(
            "import-properties", str(path), "--region", "us-east-1",
            "--name", "shop", "--namespace", "demo", "--stream", "override",
        )
    )  # fmt: skip
    assert manifest["metadata"] == {"name": "shop", "namespace": "demo"}
    assert manifest["spec"]["kinesis"]["streamName"] == "override"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--region", "eu-west-1"], "url-kinesis-stream-name: is missing"),
        ([], "the following arguments are required: --region"),
        (
            ["--region", "eu-west-1", "--stream", "s", "--name", "Shop"],
            "--name: must be lower-case",
        ),
    ],
    ids=["no stream anywhere", "no region", "bad name"],
)
def test_a_missing_or_bad_argument_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    completed = _csgen("import-properties", str(EXAMPLE), *args)
    assert completed.returncode == 2
    assert message in completed.stderr
    assert "Traceback" not in completed.stderr
    assert completed.stdout == ""


def test_a_bad_file_names_the_key(tmp_path: pathlib.Path) -> None:
    path = _properties(tmp_path, PROPERTIES.replace("customer-id-max=1999", "customer-id-max=x"))
    completed = _csgen("import-properties", str(path), "--region", "eu-west-1")
    assert completed.returncode == 2
    assert "customer-id-max: must be a whole number (got 'x')" in completed.stderr


@pytest.mark.controlplane
def test_the_output_applies_cleanly_and_the_stored_model_is_the_same(
    crds: ControlPlane, module_namespace: str, tmp_path: pathlib.Path
) -> None:
    path = _properties(tmp_path)
    completed = _csgen("import-properties", str(path), "--region", "eu-west-1", "--name", "shop")
    assert completed.returncode == 0, completed.stderr

    crds.kubectl("-n", module_namespace, "apply", "-f", "-", input=completed.stdout)

    stored = get(crds, module_namespace, "shop")
    config = spec_to_config(stored["spec"])
    assert config.model == load_properties(path).model
    assert config.rate == 12.5
    assert config.warnings == []
