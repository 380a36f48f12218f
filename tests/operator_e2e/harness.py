"""The operator under test: CRDs and RBAC applied, the operator running as its ServiceAccount.

The operator runs as a child process with a kubeconfig holding a token of the
``csgen-operator`` ServiceAccount from deploy/manifests, so every call it makes
is checked against the ClusterRole we ship, not done as an admin.
"""

from __future__ import annotations

import datetime
import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson
import yaml

from tests.controlplane.running import ControlPlane
from tests.emulators import kinesis_client, read_all_records
from tests.polling import wait_for

ROOT = pathlib.Path(__file__).resolve().parents[2]


def service_account_kubeconfig(plane: ControlPlane, path: pathlib.Path) -> pathlib.Path:
    """A kubeconfig that authenticates as csgen-system/csgen-operator."""
    token = plane.kubectl(
        "create", "token", "csgen-operator", "-n", "csgen-system", "--duration=7200s"
    ).stdout.strip()
    admin = yaml.safe_load(plane.kubeconfig.read_text())
    cluster = admin["clusters"][0]["cluster"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": cluster}],
        "users": [{"name": "csgen-operator", "user": {"token": token}}],
        "contexts": [
            {"name": "operator", "context": {"cluster": "local", "user": "csgen-operator"}}
        ],
        "current-context": "operator",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def install(plane: ControlPlane) -> None:
    """CRDs, the operator namespace, its ServiceAccount and RBAC (idempotent)."""
    plane.kubectl("apply", "-f", str(ROOT / "deploy/crds/"))
    plane.kubectl("wait", "--for=condition=Established", "-f", str(ROOT / "deploy/crds/"))
    # Established is not yet served: the API answers 429 "storage is (re)initializing"
    # for a moment, which kopf's start-up listing and peering would run into.
    for plural in ("clickstreamgenerators.csgen.dev", "kopfpeerings.kopf.dev"):
        wait_for(
            lambda plural=plural: plane.kubectl("get", plural, "-A", check=False).returncode == 0,
            timeout=30,
            message=f"{plural} is not served",
        )
    plane.kubectl("apply", "-f", str(ROOT / "deploy/manifests/namespace.yaml"))
    plane.kubectl("apply", "-f", str(ROOT / "deploy/manifests/rbac.yaml"))
    wait_for(
        lambda: (
            plane.kubectl(
                "get", "serviceaccount", "csgen-operator", "-n", "csgen-system", check=False
            ).returncode
            == 0
        ),
        timeout=30,
        message="the operator's ServiceAccount did not appear",
    )


class OperatorProcess:
    """``python -m clickstream_operator --namespace NS`` as a child process."""

    def __init__(
        self,
        kubeconfig: pathlib.Path,
        namespace: str,
        log: pathlib.Path,
        *,
        extra: list[str] | None = None,
    ):
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.log = log
        self.extra = extra or []
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KUBE"))}
        env["KUBECONFIG"] = str(self.kubeconfig)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "clickstream_operator",
                    "--namespace",
                    self.namespace,
                    "--liveness-port",
                    "0",
                    *self.extra,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=ROOT,
                start_new_session=True,
            )

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


class Resource:
    """One ClickstreamGenerator under test, read through kubectl."""

    def __init__(self, plane: ControlPlane, namespace: str, name: str):
        self.plane = plane
        self.namespace = namespace
        self.name = name

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.plane.kubectl(*args, "-n", self.namespace, check=check)

    def get(self) -> dict[str, Any]:
        return dict(orjson.loads(self.kubectl("get", "csg", self.name, "-o", "json").stdout))

    def condition(self, kind: str) -> dict[str, Any]:
        conditions = self.get().get("status", {}).get("conditions", [])
        return next((c for c in conditions if c["type"] == kind), {})

    def patch_spec(self, **spec: Any) -> None:
        body = orjson.dumps({"spec": spec}).decode()
        self.kubectl("patch", "csg", self.name, "--type", "merge", "-p", body)

    def wait(
        self, check: Callable[[dict[str, Any]], bool], what: str, timeout: float = 60
    ) -> dict[str, Any]:
        last: dict[str, Any] = {}

        def probe() -> bool:
            nonlocal last
            last = self.get()
            return check(last)

        try:
            wait_for(probe, timeout=timeout, interval=0.2)
        except TimeoutError:
            raise AssertionError(
                f"{what} within {timeout} s; last status: {last.get('status')}"
            ) from None
        return last

    def pods(self) -> list[dict[str, Any]]:
        answer = self.kubectl(
            "get", "pods", "-l", f"csgen.dev/generator={self.name}", "-o", "json"
        ).stdout
        return list(orjson.loads(answer)["items"])


def generating(count: int, rate: float | None = None) -> Callable[[dict[str, Any]], bool]:
    """A status check: ``count`` generators running, Ready, and the rate split."""

    def check(body: dict[str, Any]) -> bool:
        status = body.get("status") or {}
        ready = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), {})
        listed = status.get("producers", [])
        producers = [p for p in listed if p.get("state") == "running"]
        shares_ok = rate is None or (
            len(producers) == count
            and abs(sum(p.get("targetRate", 0) for p in producers) - rate) < 1e-6
            and all(p.get("targetRate") == rate / count for p in producers)
        )
        return (
            status.get("observedGeneration") == body["metadata"]["generation"]
            and status.get("generatingReplicas") == count
            and len(listed) == count
            and ready.get("status") == "True"
            and shares_ok
        )

    return check


def read_events(endpoint: str, stream: str) -> list[dict[str, Any]]:
    client = kinesis_client(endpoint)
    return [orjson.loads(record.data) for record in read_all_records(client, stream)]


def parse_time(text: str) -> float:
    return (
        datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
        .replace(tzinfo=datetime.UTC)
        .timestamp()
    )


def stays(check: Callable[[], bool], seconds: float, interval: float = 0.25) -> bool:
    """Observe ``check`` over a window: True if it held at every look."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not check():
            return False
        time.sleep(interval)
    return check()
