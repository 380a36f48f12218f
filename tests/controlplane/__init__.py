"""A real Kubernetes control plane for the test suite, and a local pod runner.

- ``building``: finds etcd, kube-apiserver and kube-controller-manager
  (``$KUBEBUILDER_ASSETS`` or the cache) and builds them from the Go module
  proxy with the Go module in this directory.
- ``running``: ``ControlPlane`` starts them on loopback with generated
  certificates and real RBAC, and stops them without leftovers.
- ``pods``: ``PodRunner`` stands in for a kubelet and runs pods as local
  processes, each with its own loopback IP; ``podspecs`` resolves env, field
  paths and volumes for it, ``probing`` runs its probes.
- ``processes``: process groups tied to their owner, and the leftover check.
- ``fixtures``: the pytest plugin (``control_plane``, ``pod_runner``,
  ``namespace``, ``module_namespace``).

``python -m tests.controlplane build`` builds; ``python -m tests.controlplane up
--kubeconfig PATH`` runs a control plane with the pod runner until Ctrl-C.
See docs/controlplane.md.
"""

from tests.polling import wait_for

from .building import (
    BinariesMissingError,
    BuildFailedError,
    ControlPlaneError,
    GoMissingError,
    build,
    find_binaries,
)
from .pods import PodRunner
from .running import ControlPlane, StartupError

__all__ = [
    "BinariesMissingError",
    "BuildFailedError",
    "ControlPlane",
    "ControlPlaneError",
    "GoMissingError",
    "PodRunner",
    "StartupError",
    "build",
    "find_binaries",
    "wait_for",
]
