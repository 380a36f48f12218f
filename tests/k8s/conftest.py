"""Run the isolation checks after the other control-plane modules.

They assert that no namespace of a module that ran before is still live; that
says something only when another module has run first.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.nodeid.startswith("tests/k8s/test_controlplane_isolation"))
