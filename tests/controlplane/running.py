"""Starting and stopping etcd, kube-apiserver and kube-controller-manager on loopback.

``ControlPlane`` is a context manager. Entering it generates a CA, serving and
client certificates and a service-account key in a fresh temporary directory,
starts the three processes on free loopback ports, writes an admin kubeconfig
and waits until ``/readyz`` answers and the controllers have created the
``default`` ServiceAccount. Leaving it stops the processes (SIGTERM, then SIGKILL
of each process group) and removes the directory, on errors and Ctrl-C too.

Authorization is real RBAC: only the admin client (``O=system:masters``) is
all-powerful; a ServiceAccount gets what its bindings grant.

What it does not run: a scheduler, a kubelet, kube-proxy or DNS. Pods are bound
and run by ``tests.controlplane.pods.PodRunner``; Service IPs do not route.
"""

from __future__ import annotations

import base64
import enum
import logging
import os
import pathlib
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import types
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import IO

from . import building, pki, processes

logger = logging.getLogger(__name__)

SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
SERVICE_IP = "10.0.0.1"
# The controllers that the project's tests rely on. Left out on purpose: the
# node-lifecycle ones (the pod runner's node sends no heartbeats) and the
# endpoints ones (the API refuses the loopback pod IPs in Endpoints and
# EndpointSlices, so they would only fail, loudly, for every Service).
CONTROLLERS = (
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    "namespace-controller",
    "garbage-collector-controller",
    "statefulset-controller",
    "replicaset-controller",
    "deployment-controller",
    "job-controller",
    "disruption-controller",
    "pod-garbage-collector-controller",
    "clusterrole-aggregation-controller",
)


class StartupError(building.ControlPlaneError):
    """A process exited or did not become ready in time; the message holds its log tail."""


class State(enum.Enum):
    NEW = "new"
    STARTING = "starting"
    RUNNING = "running"
    STOPPED = "stopped"


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free now; the tiny race until it is bound again is accepted."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class ControlPlane:
    """A throwaway Kubernetes control plane; use it as a context manager."""

    def __init__(
        self,
        *,
        binaries: building.Binaries | None = None,
        startup_timeout: float = 90.0,
        keep_logs_on_failure: bool = True,
    ) -> None:
        self._binaries = binaries
        self._startup_timeout = startup_timeout
        self._keep_logs = keep_logs_on_failure
        self.state = State.NEW
        self.directory: pathlib.Path | None = None
        self.server = ""  # https://127.0.0.1:<port>, set on start
        self._pki: pki.Pki | None = None
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []

    # -- public surface ---------------------------------------------------------

    @property
    def kubeconfig(self) -> pathlib.Path:
        """The admin kubeconfig (``system:masters``); valid while running."""
        return self._require_dir() / "admin.kubeconfig"

    @property
    def ca_cert(self) -> pathlib.Path:
        return self._require_pki().ca_cert

    def pids(self) -> dict[str, int]:
        """The pids of the running control-plane processes, by command name."""
        return {name: process.pid for name, process in self._processes.items()}

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Run ``kubectl`` against this control plane as the admin; text in, text out."""
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            raise building.ControlPlaneError("kubectl is not on PATH; install a kubectl client")
        completed = subprocess.run(
            [kubectl, f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and completed.returncode != 0:
            raise subprocess.CalledProcessError(
                completed.returncode, completed.args, completed.stdout, completed.stderr
            )
        return completed

    def write_kubeconfig(self, path: os.PathLike[str] | str) -> pathlib.Path:
        """Copy the admin kubeconfig to ``path`` (certificates are embedded)."""
        target = pathlib.Path(path).expanduser().resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(self.kubeconfig.read_bytes())
        tmp.chmod(0o600)
        tmp.replace(target)
        return target

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.stop()

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> None:
        if self.state is not State.NEW:
            raise building.ControlPlaneError(
                f"cannot start a control plane that is {self.state.value}"
            )
        self.state = State.STARTING
        binaries = self._binaries or building.find_binaries()
        try:
            self._start(binaries)
        except BaseException:
            # Shutdown first: a failed or interrupted start leaves nothing behind.
            self.stop()
            raise
        self.state = State.RUNNING

    def _start(self, binaries: building.Binaries) -> None:
        self.directory = pathlib.Path(tempfile.mkdtemp(prefix="csgen-controlplane-"))
        self._pki = pki.generate(self.directory / "pki", service_ip=SERVICE_IP)
        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        self.server = f"https://127.0.0.1:{api_port}"
        self._write_kubeconfig()

        etcd_url = f"http://127.0.0.1:{etcd_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        self._launch(
            "etcd",
            [
                str(binaries.etcd),
                f"--data-dir={self.directory / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=default={peer_url}",
                # A test cluster survives no crash anyway: skip fsync, it is the slow part.
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )
        self._wait_for_etcd(etcd_url)

        assert self._pki is not None
        self._launch(
            "kube-apiserver",
            [
                str(binaries.kube_apiserver),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={api_port}",
                f"--tls-cert-file={self._pki.serving_cert}",
                f"--tls-private-key-file={self._pki.serving_key}",
                f"--client-ca-file={self._pki.ca_cert}",
                "--authorization-mode=RBAC",
                f"--service-account-issuer={self.server}",
                f"--service-account-key-file={self._pki.sa_pub}",
                f"--service-account-signing-key-file={self._pki.sa_key}",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                # Loopback endpoints are invalid for the `kubernetes` Service.
                "--endpoint-reconciler-type=none",
                "--allow-privileged=true",
                "--enable-priority-and-fairness=false",
                f"--cert-dir={self.directory / 'apiserver-certs'}",
                "--v=0",
            ],
        )
        self._wait_for_readyz()

        self._launch(
            "kube-controller-manager",
            [
                str(binaries.kube_controller_manager),
                f"--kubeconfig={self.kubeconfig}",
                f"--service-account-private-key-file={self._pki.sa_key}",
                f"--root-ca-file={self._pki.ca_cert}",
                f"--cluster-signing-cert-file={self._pki.ca_cert}",
                f"--cluster-signing-key-file={self._pki.ca_key}",
                f"--controllers={','.join(CONTROLLERS)}",
                "--use-service-account-credentials=false",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                "--secure-port=0",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                "--v=0",
            ],
        )
        self._wait_for_controllers()

    def stop(self) -> None:
        """Stop every process and remove the directory; safe to call more than once."""
        # Reverse order: the controllers first, etcd last, so none logs a lost peer for long.
        for name in reversed(list(self._processes)):
            process = self._processes.pop(name)
            processes.stop(process, grace=5.0)
        for log in self._logs:
            log.close()
        self._logs.clear()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None
        self.state = State.STOPPED

    # -- helpers ----------------------------------------------------------------

    def _require_dir(self) -> pathlib.Path:
        if self.directory is None:
            raise building.ControlPlaneError("the control plane is not running")
        return self.directory

    def _require_pki(self) -> pki.Pki:
        if self._pki is None or self.directory is None:
            raise building.ControlPlaneError("the control plane is not running")
        return self._pki

    def _launch(self, name: str, argv: Sequence[str]) -> None:
        log = open(self._require_dir() / f"{name}.log", "wb")  # noqa: SIM115 - closed in stop()
        self._logs.append(log)
        self._processes[name] = processes.spawn(argv, log=log, cwd=self._require_dir())

    def _log_tail(self, name: str, lines: int = 30) -> str:
        path = self._require_dir() / f"{name}.log"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def _wait(self, name: str, what: str, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self._startup_timeout
        while True:
            for process_name, process in self._processes.items():
                if process.poll() is not None:
                    raise StartupError(
                        f"{process_name} exited with code {process.returncode} while waiting "
                        f"for {what}; its log ends with:\n{self._log_tail(process_name)}"
                    )
            if ready():
                return
            if time.monotonic() > deadline:
                raise StartupError(
                    f"{what} not reached within {self._startup_timeout:.0f} s; "
                    f"the log of {name} ends with:\n{self._log_tail(name)}"
                )
            time.sleep(0.1)

    def _wait_for_etcd(self, url: str) -> None:
        def ready() -> bool:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    return b'"true"' in response.read()
            except (OSError, urllib.error.URLError):
                return False

        self._wait("etcd", "etcd health", ready)

    def _ssl_context(self) -> ssl.SSLContext:
        pki_ = self._require_pki()
        context = ssl.create_default_context(cafile=str(pki_.ca_cert))
        context.load_cert_chain(str(pki_.admin_cert), str(pki_.admin_key))
        return context

    def _get(self, path: str) -> tuple[int, bytes]:
        request = urllib.request.Request(self.server + path)
        try:
            with urllib.request.urlopen(request, context=self._ssl_context(), timeout=5) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except (OSError, urllib.error.URLError):
            return 0, b""

    def _wait_for_readyz(self) -> None:
        self._wait("kube-apiserver", "/readyz", lambda: self._get("/readyz")[0] == 200)

    def _wait_for_controllers(self) -> None:
        # The `default` ServiceAccount and the root CA ConfigMap are made by the
        # controllers: once both exist, pods can be created in `default`.
        def ready() -> bool:
            account = self._get("/api/v1/namespaces/default/serviceaccounts/default")[0]
            root_ca = self._get("/api/v1/namespaces/default/configmaps/kube-root-ca.crt")[0]
            return account == 200 and root_ca == 200

        self._wait("kube-controller-manager", "the default ServiceAccount", ready)

    def _write_kubeconfig(self) -> None:
        pki_ = self._require_pki()

        def b64(path: pathlib.Path) -> str:
            return base64.b64encode(path.read_bytes()).decode()

        text = (
            "apiVersion: v1\n"
            "kind: Config\n"
            "clusters:\n"
            "- name: csgen-local\n"
            "  cluster:\n"
            f"    server: {self.server}\n"
            f"    certificate-authority-data: {b64(pki_.ca_cert)}\n"
            "users:\n"
            "- name: admin\n"
            "  user:\n"
            f"    client-certificate-data: {b64(pki_.admin_cert)}\n"
            f"    client-key-data: {b64(pki_.admin_key)}\n"
            "contexts:\n"
            "- name: csgen-local\n"
            "  context:\n"
            "    cluster: csgen-local\n"
            "    user: admin\n"
            "current-context: csgen-local\n"
        )
        self.kubeconfig.write_text(text)
        self.kubeconfig.chmod(0o600)
