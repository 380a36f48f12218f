"""Tests against the local Kubernetes control plane (marker: controlplane)."""
