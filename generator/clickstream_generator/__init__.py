"""csgen: a synthetic clickstream generator for AWS Kinesis Data Streams.

The package is layered (enforced by import-linter, see pyproject.toml):

- ``control``: the command line and the in-pod HTTP API;
- ``engine``: pacing, the generation loop and its lifecycle;
- ``sinks``: where records go (stdout, files, Kinesis);
- ``model``: the click model, its configuration and the events it produces;
- ``kits``: small utilities with no knowledge of the above.
"""

__version__ = "0.1.0"
