"""The generator's faces: the command line and the in-pod HTTP API."""
