"""Resolving a pod spec as the kubelet would, for the local pod runner.

Pure functions, no I/O: ``$(VAR)`` expansion, downward-API field paths,
resource fields, Secret/ConfigMap data, and re-pointing of mount paths to the
local directories that stand in for volumes. The runner fetches the objects;
these functions only interpret them.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

from .building import ControlPlaneError

Obj = dict[str, Any]

HOST_IP = "127.0.0.1"  # the node's address, and the pod IP of hostNetwork pods


class PodSetupError(ControlPlaneError):
    """A pod cannot be started yet (e.g. a Secret it needs is missing); retried."""


# -- $(VAR) expansion -----------------------------------------------------------


def expand(text: str, variables: Mapping[str, str]) -> str:
    """Expand ``$(NAME)`` as Kubernetes does for env values, command and args.

    ``$$`` is an escaped ``$``; an unknown or unterminated reference stays as written.
    """
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "$" or i + 1 >= len(text):
            out.append(char)
            i += 1
        elif text[i + 1] == "$":
            out.append("$")
            i += 2
        elif text[i + 1] == "(":
            end = text.find(")", i + 2)
            if end < 0:
                out.append(text[i:])
                break
            name = text[i + 2 : end]
            out.append(variables[name] if name in variables else text[i : end + 1])
            i = end + 1
        else:
            out.append(char)
            i += 1
    return "".join(out)


# -- field paths ----------------------------------------------------------------

_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\[['\"]?(.+?)['\"]?\]$")


def field_value(pod: Obj, path: str, *, pod_ip: str, node: str) -> str:
    """The value of a downward-API ``fieldPath`` for ``pod``."""
    metadata = pod.get("metadata", {})
    spec = pod.get("spec", {})
    subscript = _SUBSCRIPT.match(path)
    if subscript:
        return str(metadata.get(subscript.group(1), {}).get(subscript.group(2), ""))
    simple = {
        "metadata.name": metadata.get("name", ""),
        "metadata.namespace": metadata.get("namespace", ""),
        "metadata.uid": metadata.get("uid", ""),
        "spec.nodeName": node,
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": HOST_IP,
        "status.hostIPs": HOST_IP,
    }
    if path in simple:
        return str(simple[path])
    if path in ("metadata.labels", "metadata.annotations"):
        items = metadata.get(path.split(".")[1], {})
        return "\n".join(f'{key}="{value}"' for key, value in sorted(items.items()))
    raise PodSetupError(f"fieldPath {path!r} is not supported by the local pod runner")


def resource_value(container: Obj, ref: Obj) -> str:
    # Limits fall back to requests and then to a notional node of 2 CPUs / 4 GiB.
    resource = ref.get("resource", "")
    kind, _, name = resource.partition(".")
    resources = container.get("resources", {})
    value = resources.get(kind, {}).get(name) or resources.get("requests", {}).get(name)
    if value is None:
        value = {"cpu": "2", "memory": str(4 << 30), "ephemeral-storage": str(10 << 30)}.get(
            name, "0"
        )
    return str(value)


def decoded(kind: str, obj: Obj) -> dict[str, bytes]:
    """The data of a Secret or ConfigMap as bytes, by key."""
    if kind == "secrets":
        return {key: base64.b64decode(value) for key, value in (obj.get("data") or {}).items()}
    data = {key: value.encode() for key, value in (obj.get("data") or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return data


def repoint(text: str, mounts: Mapping[str, str]) -> str:
    """Replace each mount path in ``text`` by its local directory (longest path first)."""
    # One pass over all paths, so that a replacement is never replaced again.
    paths = sorted((path for path in mounts if path != "/"), key=len, reverse=True)
    if not paths:
        return text
    pattern = "(?:" + "|".join(map(re.escape, paths)) + r")(?=$|[/\s:;,=\"'])"
    return re.sub(pattern, lambda match: mounts[match.group(0)], text)
