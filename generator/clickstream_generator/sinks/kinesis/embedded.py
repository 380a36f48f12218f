"""An embedded Kinesis for laptops: moto's server on loopback, in this process.

`csgen run` with no stream and no endpoint starts one, so a new user sees the
main job work with no AWS account. It is an emulator: data lives in memory
and is gone when the process exits, and moto can lose records when several
threads write one stream at once, so the sink talks to it with one request
in flight.
"""

from __future__ import annotations

import logging
from typing import Any

from moto.server import ThreadedMotoServer

from clickstream_generator.sinks.base import PermanentSinkError

#: Credentials that the emulator accepts; they are not AWS credentials.
EMULATOR_CREDENTIALS = {"aws_access_key_id": "embedded", "aws_secret_access_key": "embedded"}
EMULATOR_REGION = "us-east-1"


class EmbeddedKinesis:
    """moto's server on 127.0.0.1 with one stream created."""

    def __init__(self, stream_name: str = "csgen-clickstream", shards: int = 1):
        self.stream_name = stream_name
        self.shards = shards
        self._server: ThreadedMotoServer | None = None
        self.endpoint_url = ""

    def start(self) -> EmbeddedKinesis:
        # werkzeug logs every request at INFO; the user does not need them.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        self._server = server
        host, port = server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        client = self.client()
        try:
            client.create_stream(StreamName=self.stream_name, ShardCount=self.shards)
            client.get_waiter("stream_exists").wait(
                StreamName=self.stream_name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100}
            )
        except Exception as exc:
            self.stop()
            raise PermanentSinkError(f"cannot start the embedded Kinesis: {exc}") from exc
        return self

    def client(self) -> Any:
        import boto3

        return boto3.session.Session(
            aws_access_key_id=EMULATOR_CREDENTIALS["aws_access_key_id"],
            aws_secret_access_key=EMULATOR_CREDENTIALS["aws_secret_access_key"],
        ).client("kinesis", region_name=EMULATOR_REGION, endpoint_url=self.endpoint_url)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> EmbeddedKinesis:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
