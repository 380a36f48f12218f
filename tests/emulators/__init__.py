"""Kinesis emulators for the test suite: kinesalite and moto, on loopback only.

``servers`` starts and stops the emulators, ``streams`` creates streams and
reads records back, ``fixtures`` offers both to pytest. See
docs/testing-emulators.md for usage and the known emulator bugs.
"""

from tests.emulators.servers import (
    NPM_INSTALL_COMMAND,
    EmulatorError,
    EmulatorNotInstalledError,
    EmulatorStartError,
    Kinesalite,
    MotoServer,
    ServerState,
)
from tests.emulators.streams import (
    ShardRange,
    StoredRecord,
    create_stream,
    hash_key_of,
    kinesis_client,
    list_shards,
    read_all_records,
    unique_stream_name,
    wait_for_stream_active,
)

__all__ = [
    "NPM_INSTALL_COMMAND",
    "EmulatorError",
    "EmulatorNotInstalledError",
    "EmulatorStartError",
    "Kinesalite",
    "MotoServer",
    "ServerState",
    "ShardRange",
    "StoredRecord",
    "create_stream",
    "hash_key_of",
    "kinesis_client",
    "list_shards",
    "read_all_records",
    "unique_stream_name",
    "wait_for_stream_active",
]
