"""Finding, and if need be building, the control-plane binaries.

The binaries are ``etcd``, ``kube-apiserver`` and ``kube-controller-manager``.
They are looked up in this order:

1. ``$KUBEBUILDER_ASSETS``, laid out as controller-runtime's envtest lays it out
   (one flat directory). envtest ships no ``kube-controller-manager``; when that
   one is missing there, the cached or freshly built one is used beside the others.
2. The cache, ``${CSGEN_CONTROLPLANE_CACHE:-~/.cache/csgen/controlplane}/<key>/``,
   where ``<key>`` names the Kubernetes and etcd versions pinned in ``go.mod``.
3. A build from the Go module proxy with the Go module beside this file, written
   into the cache. Only ``build()`` builds; finding never does, so that a test run
   never starts a half-hour compile by surprise.

What this module does not do: download prebuilt binaries (the machines reach
only package registries), or build anything but the three commands.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable

MODULE_DIR = pathlib.Path(__file__).resolve().parent
COMMANDS = ("etcd", "kube-apiserver", "kube-controller-manager")


class ControlPlaneError(Exception):
    """The base error of the local control plane."""


class BinariesMissingError(ControlPlaneError):
    """The binaries are neither provided nor cached; building them is the fix."""


class GoMissingError(ControlPlaneError):
    """The Go toolchain that builds the binaries cannot be found."""


class BuildFailedError(ControlPlaneError):
    """``go build`` ran and failed."""


@dataclasses.dataclass(frozen=True)
class Versions:
    """The releases pinned by ``go.mod``; they name the cache directory."""

    kubernetes: str  # e.g. "v1.36.3"
    etcd: str  # e.g. "v3.6.8"

    @property
    def key(self) -> str:
        return f"kubernetes-{self.kubernetes}_etcd-{self.etcd}"


def read_versions(go_mod: pathlib.Path = MODULE_DIR / "go.mod") -> Versions:
    """Read the pinned versions from ``go.mod``, the single place that names them."""
    text = go_mod.read_text()
    kube = re.search(r"^\s*k8s\.io/kubernetes (v\S+)", text, re.MULTILINE)
    etcd = re.search(r"^\s*go\.etcd\.io/etcd/server/v3 (v\S+)", text, re.MULTILINE)
    if kube is None or etcd is None:
        raise ControlPlaneError(f"{go_mod} must require k8s.io/kubernetes and etcd/server/v3")
    return Versions(kubernetes=kube.group(1), etcd=etcd.group(1))


def cache_root() -> pathlib.Path:
    """The cache of built binaries, outside the repository."""
    configured = os.environ.get("CSGEN_CONTROLPLANE_CACHE")
    if configured:
        return pathlib.Path(configured).expanduser()
    return pathlib.Path.home() / ".cache" / "csgen" / "controlplane"


def cache_dir(versions: Versions | None = None) -> pathlib.Path:
    return cache_root() / (versions or read_versions()).key


@dataclasses.dataclass(frozen=True)
class Binaries:
    """Absolute paths of the three commands."""

    etcd: pathlib.Path
    kube_apiserver: pathlib.Path
    kube_controller_manager: pathlib.Path


def _usable(path: pathlib.Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_binaries() -> Binaries:
    """Locate the binaries without building; raise with the fix when they are missing."""
    found: dict[str, pathlib.Path] = {}
    places: list[pathlib.Path] = []
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets:
        places.append(pathlib.Path(assets))
    places.append(cache_dir())
    for place in places:
        for command in COMMANDS:
            if command not in found and _usable(place / command):
                found[command] = place / command
    missing = [command for command in COMMANDS if command not in found]
    if missing:
        raise BinariesMissingError(
            f"missing {', '.join(missing)} in {' or '.join(map(str, places))}; "
            "run `python -m tests.controlplane build` (needs Go) "
            "or point KUBEBUILDER_ASSETS at a directory that holds them"
        )
    return Binaries(
        etcd=found["etcd"],
        kube_apiserver=found["kube-apiserver"],
        kube_controller_manager=found["kube-controller-manager"],
    )


def find_go() -> pathlib.Path:
    """The ``go`` command: ``$GO`` if set, else on PATH, else the usual install location."""
    configured = os.environ.get("GO")
    if configured:
        if _usable(pathlib.Path(configured)):
            return pathlib.Path(configured)
        raise GoMissingError(f"GO={configured} is not an executable Go command; unset it or fix it")
    on_path = shutil.which("go")
    if on_path:
        return pathlib.Path(on_path)
    fallback = pathlib.Path("/usr/local/go/bin/go")
    if _usable(fallback):
        return fallback
    raise GoMissingError(
        "the Go toolchain is missing: install Go >= 1.26 and put `go` on PATH "
        "to build etcd, kube-apiserver and kube-controller-manager"
    )


def _ldflags(versions: Versions) -> str:
    # Stamp the release so that `kubectl version` and the apiserver's
    # compatibility checks see v1.36.3 rather than v0.0.0-master.
    major, minor = versions.kubernetes.lstrip("v").split(".")[:2]
    flags = ["-s", "-w"]
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {package}.gitVersion={versions.kubernetes}",
            f"-X {package}.gitMajor={major}",
            f"-X {package}.gitMinor={minor}",
            f"-X {package}.gitTreeState=clean",
        ]
    return " ".join(flags)


def build(*, progress: Callable[[str], None] = print, force: bool = False) -> pathlib.Path:
    """Build the three commands into the cache unless they are there; return the directory.

    Idempotent: a complete cache directory is reused as is. The build writes into a
    sibling ``.partial`` directory and renames it at the end, so an interrupted
    build never leaves a directory that looks complete.
    """
    versions = read_versions()
    target = cache_dir(versions)
    if not force and all(_usable(target / command) for command in COMMANDS):
        progress(f"control-plane binaries are cached in {target}")
        return target
    go = find_go()
    partial = target.with_name(target.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CGO_ENABLED="0")
    started = time.monotonic()

    # Downloading first makes the long silent phase of `go build` shorter and
    # lets a proxy problem show up as such rather than as a compile error.
    progress(
        f"downloading Go modules for Kubernetes {versions.kubernetes} and etcd {versions.etcd}"
    )
    _run_go([str(go), "mod", "download"], env=env)
    for command in COMMANDS:
        progress(f"building {command} (the first build takes minutes on 2 cores)")
        _run_go(
            [
                str(go),
                "build",
                "-trimpath",
                f"-ldflags={_ldflags(versions)}",
                "-o",
                str(partial / command),
                f"./cmd/{command}",
            ],
            env=env,
        )
        progress(f"built {command} after {time.monotonic() - started:.0f} s")
    if target.exists():
        shutil.rmtree(target)
    partial.rename(target)
    progress(f"control-plane binaries are in {target} ({time.monotonic() - started:.0f} s)")
    return target


def _run_go(argv: list[str], *, env: dict[str, str]) -> None:
    completed = subprocess.run(
        argv, cwd=MODULE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    if completed.returncode != 0:
        sys.stderr.write(completed.stdout)
        raise BuildFailedError(
            f"`{' '.join(argv[:2])}` failed with exit code {completed.returncode}"
        )
