"""Pytest plugin: the local control plane and pod runner as fixtures.

Registered in ``tests/conftest.py``. Fixtures:

- ``control_plane`` (session): a running ``ControlPlane``; ``.kubeconfig`` is an
  admin kubeconfig, ``.kubectl(*args)`` runs kubectl with it.
- ``pod_runner`` (session): a ``PodRunner`` on that control plane.
- ``module_namespace`` (module) and ``namespace`` (function): a fresh namespace,
  labelled ``csgen.test/owner=<module>``, deleted afterwards (without waiting).

Missing binaries fail the tests that need them, with the command that builds
them: a control-plane test is never skipped silently.

At the end of the session every process that this session started (found by
the owner marker in its environment) must be gone, and so must the temporary
directories; otherwise the session fails and the survivors are killed.
"""

from __future__ import annotations

import pathlib
import re
import shutil
import uuid
from collections.abc import Iterator

import pytest

from tests.polling import wait_for

from . import building, processes
from .pods import PodRunner
from .rest import Rest
from .running import ControlPlane

_directories: list[pathlib.Path] = []


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    try:
        binaries = building.find_binaries()
    except building.ControlPlaneError as error:
        pytest.fail(str(error), pytrace=False)
    processes.install_signal_handlers()
    with ControlPlane(binaries=binaries) as plane:
        assert plane.directory is not None
        _directories.append(plane.directory)
        yield plane


@pytest.fixture(scope="session")
def pod_runner(control_plane: ControlPlane) -> Iterator[PodRunner]:
    with PodRunner(control_plane.kubeconfig) as runner:
        assert runner.directory is not None
        _directories.append(runner.directory)
        yield runner
        errors = list(runner.errors)
    # Transient API errors are retried by the runner; report them so that they are seen.
    if errors:
        print(f"\nthe pod runner met {len(errors)} error(s), the last: {errors[-1]}")


@pytest.fixture(scope="session")
def _admin_api(control_plane: ControlPlane) -> Rest:
    assert control_plane.directory is not None
    return Rest(control_plane.kubeconfig, scratch=control_plane.directory / "admin-client")


def _fresh_namespace(api: Rest, owner: str) -> str:
    label = re.sub(r"[^a-z0-9-]+", "-", owner.lower()).strip("-")[-40:].strip("-") or "test"
    name = f"t-{label[-40:].strip('-')}-{uuid.uuid4().hex[:6]}"
    api.post(
        "/api/v1/namespaces",
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": {"csgen.test/owner": label}},
        },
    )

    # Pods are admitted only once the namespace's default ServiceAccount exists,
    # and their token volume needs the root CA ConfigMap: wait for both.
    def ready() -> bool:
        try:
            api.get(f"/api/v1/namespaces/{name}/serviceaccounts/default")
            api.get(f"/api/v1/namespaces/{name}/configmaps/kube-root-ca.crt")
        except building.ControlPlaneError:
            return False
        return True

    wait_for(ready, timeout=30, message=f"namespace {name} was not set up by the controllers")
    return name


def _delete_namespace(api: Rest, name: str) -> None:
    # The namespace controller finishes in the background; nothing waits for it.
    api.delete(f"/api/v1/namespaces/{name}")


@pytest.fixture(scope="module")
def module_namespace(_admin_api: Rest, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace for one test module; other modules never see it."""
    name = _fresh_namespace(_admin_api, request.module.__name__.rsplit(".", 1)[-1])
    yield name
    _delete_namespace(_admin_api, name)


@pytest.fixture
def namespace(_admin_api: Rest, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace for one test."""
    name = _fresh_namespace(_admin_api, request.node.name)
    yield name
    _delete_namespace(_admin_api, name)


# NB: trylast, after pytest's own sessionfinish, which tears the session
# fixtures down when the run was interrupted (Ctrl-C, SIGTERM).
@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the session when a process or directory of the control plane survived."""
    survivors = processes.kill_survivors()
    left = [path for path in _directories if path.exists()]
    if not survivors and not left:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = [f"pid {pid}: {cmdline}" for pid, cmdline in survivors]
    lines += [f"directory {path}" for path in left]
    message = "control-plane leftovers after the session (now killed/removed):\n  " + "\n  ".join(
        lines
    )
    if reporter is not None:
        reporter.write_line(message, red=True)
    for path in left:
        shutil.rmtree(path, ignore_errors=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
