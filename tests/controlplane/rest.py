"""A minimal JSON client for the Kubernetes API, driven by a kubeconfig.

The pod runner lists, patches and deletes a handful of objects many times a
second; plain dicts over ``urllib`` keep that cheap, and inline certificates are
written under the caller's directory, which it removes, rather than into the
temporary files that the ``kubernetes`` package leaves behind until exit.

Supports client certificates and bearer tokens, inline (``*-data``) or as files;
nothing else (no exec plugins, no proxies).
"""

from __future__ import annotations

import base64
import contextlib
import json
import pathlib
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import yaml

from .building import ControlPlaneError


class ApiError(ControlPlaneError):
    """The API answered with an error status; ``status`` holds the HTTP code."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class Rest:
    """GET/POST/PATCH/DELETE JSON against the server of a kubeconfig."""

    def __init__(self, kubeconfig: pathlib.Path, *, scratch: pathlib.Path) -> None:
        config = yaml.safe_load(kubeconfig.read_text())
        context_name = config.get("current-context")
        context = _named(config.get("contexts", []), context_name)["context"]
        cluster = _named(config.get("clusters", []), context["cluster"])["cluster"]
        user = _named(config.get("users", []), context["user"])["user"]
        self.server = cluster["server"].rstrip("/")
        self._headers = {"Accept": "application/json"}
        scratch.mkdir(parents=True, exist_ok=True)

        def material(key: str) -> str | None:
            # Inline data wins, as in kubectl; it is written out because ssl reads files.
            if f"{key}-data" in user or f"{key}-data" in cluster:
                source = user if f"{key}-data" in user else cluster
                path = scratch / key
                path.write_bytes(base64.b64decode(source[f"{key}-data"]))
                path.chmod(0o600)
                return str(path)
            value = user.get(key) or cluster.get(key)
            return str(value) if value else None

        self.ca_file = material("certificate-authority")
        self._context = ssl.create_default_context(cafile=self.ca_file)
        cert, key = material("client-certificate"), material("client-key")
        if cert and key:
            self._context.load_cert_chain(cert, key)
        if user.get("token"):
            self._headers["Authorization"] = f"Bearer {user['token']}"

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        query: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> Any:
        url = self.server + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode()
        headers = dict(self._headers)
        if data is not None:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, context=self._context, timeout=timeout) as resp:
                payload = resp.read()
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            # Not a Status object: keep the raw text.
            with contextlib.suppress(ValueError, AttributeError):
                detail = json.loads(detail).get("message", detail)
            raise ApiError(error.code, f"{method} {path}: {detail}") from error
        return json.loads(payload) if payload else None

    def get(self, path: str, **query: str) -> Any:
        return self.request("GET", path, query=query or None)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body)

    def merge_patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, body, content_type="application/merge-patch+json")

    def delete(self, path: str, body: Any = None) -> Any:
        return self.request("DELETE", path, body)


def _named(items: list[dict[str, Any]], name: str | None) -> dict[str, Any]:
    for item in items:
        if item.get("name") == name:
            return item
    raise ControlPlaneError(f"the kubeconfig names {name!r} but does not define it")
