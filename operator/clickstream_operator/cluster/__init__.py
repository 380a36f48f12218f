"""Kubernetes API access: the only part of the operator that imports ``kubernetes``."""
