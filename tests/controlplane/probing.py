"""Readiness and liveness probe actions of the local pod runner.

``run_probe`` performs one ``httpGet``, ``tcpSocket`` or ``exec`` probe against a
pod's loopback address and says whether it passed; the runner calls it from a
small thread pool and keeps the counts. gRPC probes are not supported and pass.
"""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import subprocess
from collections.abc import Mapping
from typing import Any

from . import processes
from .podspecs import Obj, PodSetupError


def probe_port(value: Any, container: Obj) -> int:
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    for port in container.get("ports", []):
        if port.get("name") == value:
            return int(port["containerPort"])
    raise PodSetupError(f"probe port {value!r} names no port of the container")


def run_probe(spec: Obj, pod_ip: str, container: Obj, env: Mapping[str, str], cwd: str) -> bool:
    """Run one probe; True when it passes. Runs in the probe thread pool."""
    timeout = float(spec.get("timeoutSeconds", 1))
    if "httpGet" in spec:
        action = spec["httpGet"]
        host = action.get("host") or pod_ip
        port = probe_port(action.get("port"), container)
        if action.get("scheme", "HTTP").upper() == "HTTPS":
            context = ssl._create_unverified_context()
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, port, timeout=timeout, context=context
            )
        else:
            connection = http.client.HTTPConnection(host, port, timeout=timeout)
        headers = {h["name"]: h["value"] for h in action.get("httpHeaders", [])}
        try:
            connection.request("GET", action.get("path", "/"), headers=headers)
            return 200 <= connection.getresponse().status < 400
        except OSError:
            return False
        finally:
            connection.close()
    if "tcpSocket" in spec:
        action = spec["tcpSocket"]
        address = (action.get("host") or pod_ip, probe_port(action.get("port"), container))
        try:
            with socket.create_connection(address, timeout=timeout):
                return True
        except OSError:
            return False
    if "exec" in spec:
        try:
            completed = subprocess.run(
                spec["exec"]["command"],
                env={**env, processes.OWNER_VARIABLE: str(os.getpid())},
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=timeout,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        return completed.returncode == 0
    # gRPC probes and anything newer: not supported, counted as passing.
    return True
