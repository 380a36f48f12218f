"""Fast checks of the pod runner's pure helpers (no control plane needed)."""

from __future__ import annotations

import pathlib
import re

import pytest

from tests.controlplane import PodRunner, building
from tests.controlplane.podspecs import PodSetupError, expand, field_value, repoint

POD = {
    "metadata": {
        "name": "web-2",
        "namespace": "ns",
        "uid": "u-1",
        "labels": {"apps.kubernetes.io/pod-index": "2", "app": "web"},
    },
    "spec": {"serviceAccountName": "gen"},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$(POD_IP):8080", "127.1.0.7:8080"),
        ("--serve=$(POD_IP):$(PORT)", "--serve=127.1.0.7:$(PORT)"),
        ("$$(POD_IP)", "$(POD_IP)"),
        ("cost: $5 and $$", "cost: $5 and $"),
        ("$(POD_IP", "$(POD_IP"),
    ],
)
def test_expansion_follows_kubernetes_rules(text: str, expected: str) -> None:
    assert expand(text, {"POD_IP": "127.1.0.7"}) == expected


def test_field_paths_resolve_names_labels_and_addresses() -> None:
    def value(path: str) -> str:
        return field_value(POD, path, pod_ip="127.1.0.7", node="n1")

    assert value("metadata.name") == "web-2"
    assert value("metadata.labels['apps.kubernetes.io/pod-index']") == "2"
    assert value("status.podIP") == "127.1.0.7"
    assert value("spec.serviceAccountName") == "gen"
    with pytest.raises(PodSetupError, match="not supported"):
        value("status.phase")


def test_mount_paths_are_repointed_only_as_whole_path_components() -> None:
    mounts = {"/etc/csgen": "/tmp/v/config", "/etc/csgen/tls": "/tmp/v/tls"}
    text = "--config=/etc/csgen/a.yaml --cert /etc/csgen/tls/c.pem /etc/csgenx"
    assert repoint(text, mounts) == (
        "--config=/tmp/v/config/a.yaml --cert /tmp/v/tls/c.pem /etc/csgenx"
    )


def test_kubebuilder_assets_are_preferred_and_the_cache_fills_gaps(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assets, cache = tmp_path / "assets", tmp_path / "cache"
    assets.mkdir()
    for name in ("etcd", "kube-apiserver"):
        (assets / name).write_text("#!/bin/sh\n")
        (assets / name).chmod(0o755)
    keyed = cache / building.read_versions().key
    keyed.mkdir(parents=True)
    for name in building.COMMANDS:
        (keyed / name).write_text("#!/bin/sh\n")
        (keyed / name).chmod(0o755)
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets))
    monkeypatch.setenv("CSGEN_CONTROLPLANE_CACHE", str(cache))

    found = building.find_binaries()

    assert found.etcd == assets / "etcd"
    assert found.kube_apiserver == assets / "kube-apiserver"
    assert found.kube_controller_manager == keyed / "kube-controller-manager"


def test_missing_binaries_name_the_build_command(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    monkeypatch.setenv("CSGEN_CONTROLPLANE_CACHE", str(tmp_path))
    with pytest.raises(
        building.BinariesMissingError, match=re.escape("python -m tests.controlplane build")
    ):
        building.find_binaries()


def test_a_missing_go_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GO", "/nonexistent/go")
    with pytest.raises(building.GoMissingError, match="not an executable Go command"):
        building.find_go()


def test_pod_ips_are_distinct_loopback_addresses_outside_127_0() -> None:
    runner = PodRunner("unused.kubeconfig")
    addresses = [runner._allocate_ip() for _ in range(600)]
    assert len(set(addresses)) == 600
    for address in addresses:
        first, second, _, low = (int(part) for part in address.split("."))
        assert first == 127
        assert 1 <= second <= 254
        assert 1 <= low <= 254
