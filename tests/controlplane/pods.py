"""A test-only stand-in for a kubelet: runs pods as local processes.

``PodRunner`` registers one Node, binds every pending unbound pod to it, and for
each pod starts every container's ``command`` + ``args`` as a local process in
its own process group. The image is ignored: the command runs with the
project's Python environment (the directory of ``sys.executable`` comes first on
``PATH``), so the pod spec that the operator renders is what gets exercised.

What a pod gets:

- its own loopback address, ``127.x.y.z`` (x >= 1), as ``status.podIP``, so that many
  pods can listen on the same port, also beside other runners on the machine;
- its environment resolved as the kubelet would: plain values with ``$(VAR)``
  expansion, ``fieldRef`` (name, namespace, uid, labels, annotations, node name,
  service account, pod IP, host IP), ``resourceFieldRef``, ``secretKeyRef``,
  ``configMapKeyRef`` and ``envFrom``;
- its volumes (Secret, ConfigMap, projected, downwardAPI, emptyDir, PVC) written
  to a temporary directory; each ``mountPath`` found in the command, args, env
  values and ``workingDir`` is re-pointed there;
- when it runs under a ServiceAccount with an automounted token, ``KUBECONFIG``
  pointing to a kubeconfig with that account's token, so that API clients in the
  pod act with the account's RBAC permissions (in-cluster config cannot be used:
  ``/var/run/secrets`` is not re-pointable for libraries that hard-code it);
- status as the kubelet reports it: phase, podIP, conditions (Ready from the
  readiness probe: httpGet, tcpSocket or exec), container states and restart
  counts; liveness probes restart containers;
- restarts per ``restartPolicy`` with a short exponential back-off;
- on deletion: SIGTERM to each container's process group, the grace period,
  then SIGKILL, then the final deletion of the Pod object.

What it does not do: init or sidecar containers, startup probes, resource
limits, networking between IPs and Service IPs, ``kubectl logs``/``exec`` (logs
are in files, see ``log_path()``), image pulling.

Probe periods are capped (1 s by default, ``probe_period_cap``) so that tests do
not wait for the usual 10 s; pass ``None`` to keep the spec's periods.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import dataclasses
import datetime
import json
import logging
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import types
from collections.abc import Iterator, Mapping
from typing import IO

from . import podspecs, probing, processes
from .building import ControlPlaneError
from .podspecs import HOST_IP, Obj, PodSetupError
from .rest import ApiError, Rest

logger = logging.getLogger(__name__)

DEFAULT_NODE = "csgen-local-node"
TICK = 0.1  # seconds between supervision rounds


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the per-pod state ----------------------------------------------------------


@dataclasses.dataclass
class _Probe:
    spec: Obj
    successes: int = 0
    failures: int = 0
    next_at: float = 0.0
    pending: concurrent.futures.Future[bool] | None = None


@dataclasses.dataclass
class _Container:
    name: str
    spec: Obj
    argv: list[str] = dataclasses.field(default_factory=list)
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    cwd: str = ""
    process: subprocess.Popen[bytes] | None = None
    started_at: str = ""
    started_mono: float = 0.0
    restart_count: int = 0
    ready: bool = False
    terminated: Obj | None = None  # the state.terminated of the current run, once exited
    last_terminated: Obj | None = None
    waiting_reason: str = "ContainerCreating"
    next_start: float = 0.0
    backoff: float = 0.0
    kill_at: float | None = None  # SIGKILL deadline after a SIGTERM
    readiness: _Probe | None = None
    liveness: _Probe | None = None
    log: IO[bytes] | None = None


@dataclasses.dataclass
class _Pod:
    namespace: str
    name: str
    uid: str
    ip: str
    directory: pathlib.Path
    obj: Obj
    containers: list[_Container] = dataclasses.field(default_factory=list)
    prepared: bool = False
    setup_error: str = ""
    start_time: str = ""
    transitions: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)
    terminating: bool = False
    last_status: Obj | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


class PodRunner:
    """Runs the pods bound to one node as local processes; a context manager.

    The work happens in a background thread; the public methods are thread-safe.
    """

    def __init__(
        self,
        kubeconfig: os.PathLike[str] | str,
        *,
        node_name: str = DEFAULT_NODE,
        bin_dir: str | None = None,
        cwd: os.PathLike[str] | str | None = None,
        extra_env: Mapping[str, str] | None = None,
        probe_period_cap: float | None = 1.0,
        restart_backoff: tuple[float, float] = (0.2, 5.0),
    ) -> None:
        self.kubeconfig = pathlib.Path(kubeconfig)
        self.node_name = node_name
        self.bin_dir = bin_dir or os.path.dirname(sys.executable)
        self.cwd = str(cwd or os.getcwd())
        self.extra_env = dict(extra_env or {})
        self.probe_period_cap = probe_period_cap
        self.restart_backoff = restart_backoff
        self.directory: pathlib.Path | None = None
        self.errors: list[str] = []  # failures of the loop, newest last
        self._rest: Rest | None = None
        self._pods: dict[str, _Pod] = {}  # by uid
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._next_ip = 0
        self._first_block = random.SystemRandom().randrange(254 * 256)
        self._probes: concurrent.futures.ThreadPoolExecutor | None = None

    # -- public surface ---------------------------------------------------------

    def __enter__(self) -> PodRunner:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, *, timeout: float = 30.0) -> None:
        """Register the node and start the loop; return once the node exists."""
        if self._thread is not None:
            raise ControlPlaneError("the pod runner was already started")
        self.directory = pathlib.Path(tempfile.mkdtemp(prefix="csgen-podrunner-"))
        self._rest = Rest(self.kubeconfig, scratch=self.directory / "client")
        self._probes = concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="csgen-probe")
        self._thread = threading.Thread(target=self._run, name="csgen-pod-runner", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or not self._thread.is_alive():
            self.stop()
            raise ControlPlaneError(f"the pod runner did not register its node: {self.errors}")

    def stop(self) -> None:
        """Terminate every pod process, stop the loop and remove the directory."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        # The loop kills its pods on the way out; this is for a loop that died early.
        with self._lock:
            pods = list(self._pods.values())
            self._pods.clear()
        for pod in pods:
            self._kill_now(pod)
        if self._probes is not None:
            self._probes.shutdown(wait=True, cancel_futures=True)
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def pid_of(self, namespace: str, name: str, container: str | None = None) -> int | None:
        """The pid of a running container (the first one unless named), else None."""
        with self._lock:
            for pod in self._pods.values():
                if pod.key != (namespace, name):
                    continue
                for item in pod.containers:
                    process = item.process
                    if container in (None, item.name) and process and process.poll() is None:
                        return process.pid
        return None

    def ip_of(self, namespace: str, name: str) -> str | None:
        """The loopback address given to a pod, else None."""
        with self._lock:
            for pod in self._pods.values():
                if pod.key == (namespace, name):
                    return pod.ip
        return None

    def log_path(self, namespace: str, name: str, container: str | None = None) -> pathlib.Path:
        """The file that collects a container's stdout and stderr (all its runs)."""
        if self.directory is None:
            raise ControlPlaneError("the pod runner is not running")
        with self._lock:
            for pod in self._pods.values():
                if pod.key == (namespace, name):
                    chosen = container or pod.containers[0].name
                    return pod.directory / f"{chosen}.log"
        raise ControlPlaneError(f"no pod {namespace}/{name} is running here")

    def pods(self) -> list[tuple[str, str]]:
        """(namespace, name) of every pod that this runner currently runs."""
        with self._lock:
            return sorted(pod.key for pod in self._pods.values())

    # -- the loop ---------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._register_node()
            self._ready.set()
            while not self._stopping.is_set():
                try:
                    self._tick()
                # The API may blip (restarts, timeouts): log at once, keep the
                # loop alive and leave a trace for the fixture to report.
                except Exception as error:
                    logger.warning("The pod runner's loop failed; retrying: %s", error)
                    self.errors.append(repr(error))
                    del self.errors[:-20]
                self._stopping.wait(TICK)
        except Exception as error:
            logger.exception("The pod runner stopped on an error.")
            self.errors.append(repr(error))
        finally:
            self._shutdown_pods()

    def _api(self) -> Rest:
        assert self._rest is not None
        return self._rest

    def _register_node(self) -> None:
        path = f"/api/v1/nodes/{self.node_name}"
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.node_name, "labels": {"kubernetes.io/os": "linux"}},
        }
        try:
            self._api().post("/api/v1/nodes", body)
        except ApiError as error:
            # A runner restarted on the same control plane finds its node there.
            if error.status != 409:
                raise
        capacity = {"cpu": "2", "memory": "4Gi", "pods": "250", "ephemeral-storage": "10Gi"}
        now = _now()
        self._api().merge_patch(
            path + "/status",
            {
                "status": {
                    "capacity": capacity,
                    "allocatable": capacity,
                    "addresses": [
                        {"type": "InternalIP", "address": HOST_IP},
                        {"type": "Hostname", "address": self.node_name},
                    ],
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "True",
                            "reason": "KubeletReady",
                            "message": "csgen local pod runner",
                            "lastHeartbeatTime": now,
                            "lastTransitionTime": now,
                        }
                    ],
                    "nodeInfo": {
                        "architecture": "amd64",
                        "operatingSystem": "linux",
                        "kubeletVersion": "csgen-pod-runner",
                        "bootID": "",
                        "containerRuntimeVersion": "local://process",
                        "kernelVersion": "",
                        "kubeProxyVersion": "",
                        "machineID": "",
                        "osImage": "",
                        "systemUUID": "",
                    },
                }
            },
        )

    def _tick(self) -> None:
        listed = self._api().get("/api/v1/pods")["items"]
        seen: set[str] = set()
        for obj in listed:
            metadata, spec = obj["metadata"], obj.get("spec", {})
            node = spec.get("nodeName")
            if not node:
                if not metadata.get("deletionTimestamp"):
                    self._bind(obj)
                continue
            if node != self.node_name:
                continue
            uid = metadata["uid"]
            seen.add(uid)
            pod = self._pods.get(uid)
            if pod is None:
                if obj.get("status", {}).get("phase") in ("Succeeded", "Failed"):
                    continue
                pod = self._adopt(obj)
            pod.obj = obj
            if metadata.get("deletionTimestamp") and not pod.terminating:
                self._begin_termination(pod)

        # Pods that vanished without a graceful deletion (force-deleted): kill now.
        for uid in [uid for uid in self._pods if uid not in seen]:
            with self._lock:
                pod = self._pods.pop(uid)
            self._kill_now(pod)

        for pod in list(self._pods.values()):
            self._supervise(pod)

    def _bind(self, obj: Obj) -> None:
        metadata = obj["metadata"]
        namespace, name = metadata["namespace"], metadata["name"]
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace, "uid": metadata["uid"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name},
        }
        try:
            self._api().post(f"/api/v1/namespaces/{namespace}/pods/{name}/binding", body)
        except ApiError as error:
            # Bound or deleted in the meantime: the next round sees the truth.
            if error.status not in (404, 409):
                raise

    def _allocate_ip(self) -> str:
        """The next address of this runner's blocks of 254 in 127.1.0.0-127.254.255.255."""
        # NB: other runners (other test sessions, an `up`) share the machine's
        # loopback; each starts at a random block of the 65024, so that two of
        # them hand out the same address only by a 1-in-65024 chance per pair.
        index, low = divmod(self._next_ip, 254)
        self._next_ip += 1
        block = (self._first_block + index) % (254 * 256)
        second, third = divmod(block, 256)
        return f"127.{second + 1}.{third}.{low + 1}"

    def _adopt(self, obj: Obj) -> _Pod:
        metadata = obj["metadata"]
        assert self.directory is not None
        directory = (
            self.directory
            / "pods"
            / f"{metadata['namespace']}_{metadata['name']}_{metadata['uid'][:8]}"
        )
        directory.mkdir(parents=True, exist_ok=True)
        pod = _Pod(
            namespace=metadata["namespace"],
            name=metadata["name"],
            uid=metadata["uid"],
            ip=HOST_IP if obj["spec"].get("hostNetwork") else self._allocate_ip(),
            directory=directory,
            obj=obj,
            start_time=_now(),
        )
        pod.containers = [_Container(name=c["name"], spec=c) for c in obj["spec"]["containers"]]
        for container in pod.containers:
            if container.spec.get("readinessProbe"):
                container.readiness = _Probe(container.spec["readinessProbe"])
            if container.spec.get("livenessProbe"):
                container.liveness = _Probe(container.spec["livenessProbe"])
        with self._lock:
            self._pods[pod.uid] = pod
        logger.debug("Adopted pod %s/%s with IP %s.", pod.namespace, pod.name, pod.ip)
        return pod

    # -- preparing a pod: volumes and environment --------------------------------

    def _prepare(self, pod: _Pod) -> None:
        volumes = self._write_volumes(pod)
        kubeconfig = self._service_account_kubeconfig(pod)
        for container in pod.containers:
            mounts = {
                mount["mountPath"].rstrip("/") or "/": str(
                    pathlib.Path(volumes[mount["name"]]) / mount.get("subPath", "")
                ).rstrip("/")
                for mount in container.spec.get("volumeMounts", [])
                if mount["name"] in volumes
            }
            # NB: only what the spec says is re-pointed, never the runner's own
            # paths (HOME, TMPDIR, KUBECONFIG): those live under /tmp, which a
            # pod may well mount an emptyDir on.
            declared = self._container_env(pod, container.spec)
            declared = {key: podspecs.repoint(value, mounts) for key, value in declared.items()}
            env = self._base_env(pod)
            if kubeconfig is not None:
                env["KUBECONFIG"] = str(kubeconfig)
            env.update(declared)
            command = container.spec.get("command") or []
            args = container.spec.get("args") or []
            if not command:
                raise PodSetupError(
                    f"container {container.name!r} has no command; the local runner "
                    "ignores images, so it cannot use the image's entrypoint"
                )
            # Re-point the literal parts first, then expand from the container's
            # own variables, as the kubelet expands only those.
            argv = [
                podspecs.expand(podspecs.repoint(part, mounts), declared)
                for part in [*command, *args]
            ]
            # A bare command name is looked up on the pod's PATH, venv first.
            if os.sep not in argv[0]:
                found = shutil.which(argv[0], path=env.get("PATH"))
                if found is None:
                    raise PodSetupError(f"command {argv[0]!r} not found on PATH {env['PATH']}")
                argv[0] = found
            working_dir = container.spec.get("workingDir")
            container.cwd = podspecs.repoint(working_dir, mounts) if working_dir else self.cwd
            container.argv, container.env = argv, env
        pod.prepared = True
        pod.setup_error = ""

    def _base_env(self, pod: _Pod) -> dict[str, str]:
        # A clean environment, as in a container: nothing of the test process
        # (such as an admin KUBECONFIG) leaks in, except what Python needs.
        env = {
            "PATH": self.bin_dir + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(pod.directory),
            "HOSTNAME": pod.name,
            "TMPDIR": str(pod.directory),
            "PYTHONUNBUFFERED": "1",
        }
        for name in ("LANG", "LC_ALL", "TZ", "VIRTUAL_ENV"):
            if name in os.environ:
                env[name] = os.environ[name]
        env.update(self.extra_env)
        return env

    def _container_env(self, pod: _Pod, spec: Obj) -> dict[str, str]:
        env: dict[str, str] = {}
        namespace = pod.namespace
        for source in spec.get("envFrom", []):
            prefix = source.get("prefix", "")
            ref = source.get("configMapRef") or source.get("secretRef")
            kind = "configmaps" if "configMapRef" in source else "secrets"
            data = self._fetch_data(namespace, kind, ref["name"], optional=ref.get("optional"))
            env.update({prefix + key: value for key, value in data.items()})
        for item in spec.get("env", []):
            name = item["name"]
            if "valueFrom" not in item:
                env[name] = podspecs.expand(item.get("value", ""), env)
                continue
            source = item["valueFrom"]
            if "fieldRef" in source:
                env[name] = podspecs.field_value(
                    pod.obj, source["fieldRef"]["fieldPath"], pod_ip=pod.ip, node=self.node_name
                )
            elif "resourceFieldRef" in source:
                env[name] = podspecs.resource_value(spec, source["resourceFieldRef"])
            else:
                ref = source.get("secretKeyRef") or source.get("configMapKeyRef")
                kind = "secrets" if "secretKeyRef" in source else "configmaps"
                data = self._fetch_data(namespace, kind, ref["name"], optional=ref.get("optional"))
                if ref["key"] in data:
                    env[name] = data[ref["key"]]
                elif not ref.get("optional"):
                    raise PodSetupError(
                        f"key {ref['key']!r} not in {kind} {namespace}/{ref['name']}"
                    )
        return env

    def _fetch_data(
        self, namespace: str, kind: str, name: str, *, optional: bool | None
    ) -> dict[str, str]:
        try:
            obj = self._api().get(f"/api/v1/namespaces/{namespace}/{kind}/{name}")
        except ApiError as error:
            if error.status == 404 and optional:
                return {}
            if error.status == 404:
                raise PodSetupError(f"{kind} {namespace}/{name} does not exist") from error
            raise
        return {
            key: value.decode(errors="replace")
            for key, value in podspecs.decoded(kind, obj).items()
        }

    def _write_volumes(self, pod: _Pod) -> dict[str, str]:
        """Materialise the pod's volumes; return their local directories by name."""
        root = pod.directory / "volumes"
        found: dict[str, str] = {}
        for volume in pod.obj["spec"].get("volumes", []):
            name = volume["name"]
            if "hostPath" in volume:
                found[name] = volume["hostPath"]["path"]
                continue
            if "persistentVolumeClaim" in volume:
                # Claims outlive pods: keep their data per claim, beside the pods.
                assert self.directory is not None
                claim = volume["persistentVolumeClaim"]["claimName"]
                target = self.directory / "claims" / f"{pod.namespace}_{claim}"
                target.mkdir(parents=True, exist_ok=True)
                found[name] = str(target)
                continue
            target = root / name
            if target.exists():
                shutil.rmtree(target)
            target.mkdir(parents=True)
            for relative, content in self._volume_files(pod, volume):
                path = target / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
            found[name] = str(target)
        return found

    def _volume_files(self, pod: _Pod, volume: Obj) -> Iterator[tuple[str, bytes]]:
        if "secret" in volume or "configMap" in volume:
            yield from self._keyed_files(pod, volume)
        elif "downwardAPI" in volume:
            yield from self._downward_files(pod, volume["downwardAPI"].get("items", []))
        elif "projected" in volume:
            for source in volume["projected"].get("sources", []):
                if "serviceAccountToken" in source:
                    token = self._token(pod, source["serviceAccountToken"])
                    yield source["serviceAccountToken"].get("path", "token"), token.encode()
                elif "downwardAPI" in source:
                    yield from self._downward_files(pod, source["downwardAPI"].get("items", []))
                elif "secret" in source or "configMap" in source:
                    yield from self._keyed_files(pod, source)
        # emptyDir and anything unknown: an empty directory.

    def _keyed_files(self, pod: _Pod, source: Obj) -> Iterator[tuple[str, bytes]]:
        kind = "secrets" if "secret" in source else "configmaps"
        ref = source.get("secret") or source.get("configMap") or {}
        name = ref.get("secretName") or ref.get("name")
        try:
            obj = self._api().get(f"/api/v1/namespaces/{pod.namespace}/{kind}/{name}")
        except ApiError as error:
            if error.status == 404 and ref.get("optional"):
                return
            if error.status == 404:
                raise PodSetupError(f"{kind} {pod.namespace}/{name} does not exist") from error
            raise
        data = podspecs.decoded(kind, obj)
        items = ref.get("items")
        if items:
            for item in items:
                if item["key"] in data:
                    yield item.get("path", item["key"]), data[item["key"]]
        else:
            yield from data.items()

    def _downward_files(self, pod: _Pod, items: list[Obj]) -> Iterator[tuple[str, bytes]]:
        for item in items:
            if "fieldRef" in item:
                value = podspecs.field_value(
                    pod.obj, item["fieldRef"]["fieldPath"], pod_ip=pod.ip, node=self.node_name
                )
                yield item["path"], value.encode()

    def _token(self, pod: _Pod, source: Obj) -> str:
        account = pod.obj["spec"].get("serviceAccountName") or "default"
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": [source["audience"]] if source.get("audience") else None,
                "expirationSeconds": max(int(source.get("expirationSeconds", 3600)), 3600),
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": pod.name,
                    "uid": pod.uid,
                },
            },
        }
        path = f"/api/v1/namespaces/{pod.namespace}/serviceaccounts/{account}/token"
        try:
            return str(self._api().post(path, body)["status"]["token"])
        except ApiError as error:
            # The ServiceAccount may not be created yet; the next round retries.
            if error.status == 404:
                raise PodSetupError(
                    f"serviceaccount {pod.namespace}/{account} does not exist"
                ) from error
            raise

    def _service_account_kubeconfig(self, pod: _Pod) -> pathlib.Path | None:
        spec = pod.obj["spec"]
        if spec.get("automountServiceAccountToken") is False:
            return None
        token = self._token(pod, {})
        rest = self._api()
        ca = pathlib.Path(rest.ca_file).read_bytes() if rest.ca_file else b""
        path = pod.directory / "serviceaccount.kubeconfig"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "local",
                    "cluster": {
                        "server": rest.server,
                        "certificate-authority-data": base64.b64encode(ca).decode(),
                    },
                }
            ],
            "users": [{"name": "serviceaccount", "user": {"token": token}}],
            "contexts": [
                {
                    "name": "local",
                    "context": {
                        "cluster": "local",
                        "user": "serviceaccount",
                        "namespace": pod.namespace,
                    },
                }
            ],
            "current-context": "local",
        }
        path.write_text(json.dumps(config))
        path.chmod(0o600)
        return path

    # -- supervising containers -----------------------------------------------------

    def _supervise(self, pod: _Pod) -> None:
        if not pod.prepared and not pod.terminating:
            try:
                self._prepare(pod)
            except PodSetupError as error:
                if error.args[0] != pod.setup_error:
                    logger.warning("Pod %s/%s cannot start yet: %s", pod.namespace, pod.name, error)
                pod.setup_error = str(error)
        now = time.monotonic()
        policy = pod.obj["spec"].get("restartPolicy", "Always")
        for container in pod.containers:
            self._reap(pod, container, now)
            if pod.terminating or not pod.prepared:
                continue
            if container.process is None and self._should_start(container, policy, now):
                self._start_container(pod, container)
            if container.process is not None:
                self._probe(pod, container, now)
        if pod.terminating and all(c.process is None for c in pod.containers):
            self._finish(pod)
            return
        self._report(pod)

    def _should_start(self, container: _Container, policy: str, now: float) -> bool:
        if container.terminated is None:
            return now >= container.next_start
        if policy == "Never":
            return False
        if policy == "OnFailure" and container.terminated.get("exitCode") == 0:
            return False
        return now >= container.next_start

    def _start_container(self, pod: _Pod, container: _Container) -> None:
        if container.terminated is not None:
            container.last_terminated = container.terminated
            container.terminated = None
            container.restart_count += 1
        if container.log is None:
            container.log = open(pod.directory / f"{container.name}.log", "ab")  # noqa: SIM115
        try:
            container.process = processes.spawn(
                container.argv, env=container.env, cwd=container.cwd, log=container.log
            )
        except OSError as error:
            container.terminated = {
                "exitCode": 128,
                "reason": "StartError",
                "message": str(error),
                "startedAt": _now(),
                "finishedAt": _now(),
            }
            self._schedule_restart(container, ran_for=0.0)
            return
        container.started_at = _now()
        container.started_mono = time.monotonic()
        container.ready = container.readiness is None
        for probe in (container.readiness, container.liveness):
            if probe is not None:
                probe.successes = probe.failures = 0
                probe.next_at = container.started_mono + probe.spec.get("initialDelaySeconds", 0)
        logger.debug(
            "Started %s/%s[%s] as pid %d.",
            pod.namespace,
            pod.name,
            container.name,
            container.process.pid,
        )

    def _schedule_restart(self, container: _Container, *, ran_for: float) -> None:
        first, cap = self.restart_backoff
        # As in the kubelet: a container that ran long enough starts over at the first step.
        container.backoff = (
            first if ran_for > 10 or not container.backoff else min(container.backoff * 2, cap)
        )
        container.next_start = time.monotonic() + container.backoff

    def _reap(self, pod: _Pod, container: _Container, now: float) -> None:
        process = container.process
        if process is None:
            return
        code = process.poll()
        if code is None:
            if container.kill_at is not None and now >= container.kill_at:
                processes.signal_group(process, signal.SIGKILL)
            return
        # NB: the leader is gone but its children may linger in the group.
        processes.signal_group(process, signal.SIGKILL)
        processes.forget(process)
        container.process = None
        container.kill_at = None
        container.ready = False
        exit_code = code if code >= 0 else 128 - code
        container.terminated = {
            "exitCode": exit_code,
            "signal": -code if code < 0 else None,
            "reason": "Completed" if exit_code == 0 else "Error",
            "startedAt": container.started_at,
            "finishedAt": _now(),
        }
        if container.terminated["signal"] is None:
            del container.terminated["signal"]
        self._schedule_restart(container, ran_for=now - container.started_mono)
        logger.debug(
            "%s/%s[%s] exited with %d.", pod.namespace, pod.name, container.name, exit_code
        )

    # -- probes -------------------------------------------------------------------

    def _period(self, probe: _Probe) -> float:
        period = float(probe.spec.get("periodSeconds", 10))
        return min(period, self.probe_period_cap) if self.probe_period_cap else period

    def _probe(self, pod: _Pod, container: _Container, now: float) -> None:
        for probe, is_liveness in ((container.readiness, False), (container.liveness, True)):
            if probe is None:
                continue
            if probe.pending is not None and probe.pending.done():
                try:
                    passed = probe.pending.result()
                # A probe that crashes counts as failed, like a probe that timed out.
                except Exception:
                    passed = False
                probe.pending = None
                self._record(pod, container, probe, passed=passed, is_liveness=is_liveness)
            if probe.pending is None and now >= probe.next_at and self._probes is not None:
                probe.next_at = now + self._period(probe)
                probe.pending = self._probes.submit(
                    probing.run_probe,
                    probe.spec,
                    pod.ip,
                    container.spec,
                    container.env,
                    container.cwd,
                )

    def _record(
        self, pod: _Pod, container: _Container, probe: _Probe, *, passed: bool, is_liveness: bool
    ) -> None:
        if container.process is None:
            return
        if passed:
            probe.successes, probe.failures = probe.successes + 1, 0
        else:
            probe.successes, probe.failures = 0, probe.failures + 1
        if not is_liveness:
            if probe.successes >= probe.spec.get("successThreshold", 1):
                container.ready = True
            elif probe.failures >= probe.spec.get("failureThreshold", 3):
                container.ready = False
            return
        if probe.failures >= probe.spec.get("failureThreshold", 3) and container.kill_at is None:
            logger.info(
                "Liveness probe of %s/%s[%s] failed; restarting it.",
                pod.namespace,
                pod.name,
                container.name,
            )
            processes.signal_group(container.process, signal.SIGTERM)
            container.kill_at = time.monotonic() + self._grace(pod)

    # -- termination -----------------------------------------------------------------

    def _grace(self, pod: _Pod) -> float:
        metadata, spec = pod.obj["metadata"], pod.obj["spec"]
        grace = metadata.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds", 30)
        return float(grace)

    def _begin_termination(self, pod: _Pod) -> None:
        pod.terminating = True
        deadline = time.monotonic() + self._grace(pod)
        for container in pod.containers:
            if container.process is not None:
                processes.signal_group(container.process, signal.SIGTERM)
                container.kill_at = deadline
        logger.debug("Terminating pod %s/%s.", pod.namespace, pod.name)

    def _finish(self, pod: _Pod) -> None:
        with self._lock:
            self._pods.pop(pod.uid, None)
        self._close_logs(pod)
        path = f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}"
        body = {"gracePeriodSeconds": 0, "preconditions": {"uid": pod.uid}}
        try:
            self._api().delete(path, body)
        except ApiError as error:
            # Already gone, or replaced by a new pod of the same name.
            if error.status not in (404, 409):
                raise
        shutil.rmtree(pod.directory, ignore_errors=True)

    def _kill_now(self, pod: _Pod) -> None:
        for container in pod.containers:
            if container.process is not None:
                processes.stop(container.process, grace=0)
                container.process = None
        self._close_logs(pod)
        shutil.rmtree(pod.directory, ignore_errors=True)

    def _close_logs(self, pod: _Pod) -> None:
        for container in pod.containers:
            if container.log is not None:
                container.log.close()
                container.log = None

    def _shutdown_pods(self) -> None:
        """On stop: SIGTERM every pod, give them a few seconds together, then kill."""
        with self._lock:
            pods = list(self._pods.values())
        running = [c.process for pod in pods for c in pod.containers if c.process is not None]
        for process in running:
            processes.signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + 5.0
        for process in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(deadline - time.monotonic(), 0.0))
        with self._lock:
            self._pods.clear()
        for pod in pods:
            self._kill_now(pod)

    # -- status -----------------------------------------------------------------------

    def _report(self, pod: _Pod) -> None:
        status = self._status(pod)
        if status == pod.last_status:
            return
        path = f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}/status"
        try:
            self._api().merge_patch(path, {"status": status})
        except ApiError as error:
            # The pod is gone; the next round forgets it.
            if error.status != 404:
                raise
            return
        pod.last_status = status

    def _status(self, pod: _Pod) -> Obj:
        statuses = [self._container_status(pod, c) for c in pod.containers]
        policy = pod.obj["spec"].get("restartPolicy", "Always")
        done = [c.terminated for c in pod.containers if c.process is None and c.terminated]
        if len(done) == len(pod.containers) and policy != "Always":
            finals = [t for t in done if not (policy == "OnFailure" and t["exitCode"] != 0)]
            if len(finals) == len(pod.containers):
                phase = "Succeeded" if all(t["exitCode"] == 0 for t in finals) else "Failed"
            else:
                phase = "Running"
        elif any(c.process is not None or c.terminated for c in pod.containers):
            phase = "Running"
        else:
            phase = "Pending"
        ready = all(c.ready and c.process is not None for c in pod.containers)
        ready = ready and not pod.terminating
        conditions = [
            self._condition(pod, "PodScheduled", True),
            self._condition(pod, "Initialized", True),
            self._condition(pod, "ContainersReady", ready),
            self._condition(pod, "Ready", ready),
        ]
        return {
            "phase": phase,
            "hostIP": HOST_IP,
            "hostIPs": [{"ip": HOST_IP}],
            "podIP": pod.ip,
            "podIPs": [{"ip": pod.ip}],
            "startTime": pod.start_time,
            "conditions": conditions,
            "containerStatuses": statuses,
        }

    def _condition(self, pod: _Pod, kind: str, value: bool) -> Obj:
        text = "True" if value else "False"
        previous = pod.transitions.get(kind)
        if previous is None or previous[0] != text:
            pod.transitions[kind] = (text, _now())
        return {"type": kind, "status": text, "lastTransitionTime": pod.transitions[kind][1]}

    def _container_status(self, pod: _Pod, container: _Container) -> Obj:
        if container.process is not None:
            state: Obj = {"running": {"startedAt": container.started_at}}
        elif container.terminated is not None and (
            pod.obj["spec"].get("restartPolicy", "Always") == "Never"
            or (
                container.terminated["exitCode"] == 0
                and pod.obj["spec"].get("restartPolicy") == "OnFailure"
            )
        ):
            state = {"terminated": container.terminated}
        elif container.terminated is not None:
            state = {"waiting": {"reason": "CrashLoopBackOff"}}
        elif pod.setup_error:
            state = {
                "waiting": {"reason": "CreateContainerConfigError", "message": pod.setup_error}
            }
        else:
            state = {"waiting": {"reason": container.waiting_reason}}
        status: Obj = {
            "name": container.name,
            "image": container.spec.get("image", ""),
            "imageID": "",
            "ready": bool(container.ready and container.process is not None),
            "restartCount": container.restart_count,
            "started": container.process is not None,
            "state": state,
            "lastState": {},
        }
        if container.process is not None:
            status["containerID"] = f"local://{container.process.pid}"
        terminated = container.last_terminated if container.process is not None else None
        terminated = terminated or (container.terminated if "terminated" not in state else None)
        if terminated:
            status["lastState"] = {"terminated": terminated}
        return status
