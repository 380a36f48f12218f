"""Test-suite wide configuration.

Fixture plugins for the emulators and the local control plane live in their
own packages; each registers itself here by adding a line to
``pytest_plugins``.
"""

pytest_plugins: list[str] = [
    "tests.emulators.fixtures",
    "tests.controlplane.fixtures",
]
