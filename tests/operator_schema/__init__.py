"""The ClickstreamGenerator CRD, the deploy manifests, the Dockerfile and import-properties."""
