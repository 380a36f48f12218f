"""kopf registration and the ``csgen operator`` entry point."""
