"""The csgen operator: runs ClickstreamGenerator resources as generator pods (kopf)."""
