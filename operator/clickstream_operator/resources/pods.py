"""Pods as the operator sees them: the few facts reconciliation needs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ObservedPod:
    """A pod of the resource, as the API server shows it."""

    name: str
    index: int
    ip: str | None
    ready: bool
    phase: str
    terminating: bool = False
