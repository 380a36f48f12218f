"""Sinks that write JSON lines to a stream: standard output or a file.

Both acknowledge a record once it is handed to the operating system's
buffer; the file sink appends (never truncates) and flushes on `flush` and
when closed.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

from clickstream_generator.model.events import Record, data_of
from clickstream_generator.sinks.base import PermanentSinkError, Sink


class _LinesSink(Sink):
    def __init__(self) -> None:
        super().__init__()
        self._out: BinaryIO | None = None

    def _stream(self) -> BinaryIO:
        raise NotImplementedError

    async def send(self, records: Sequence[Record]) -> None:
        self.accounting.accept(len(records))
        if self._out is None:
            self._out = self._stream()
        try:
            self._out.write(b"\n".join(data_of(records)) + b"\n" if records else b"")
        except OSError as exc:
            self.accounting.fail(len(records), "write_error")
            raise PermanentSinkError(f"cannot write: {exc}", reason="write_error") from exc
        self.accounting.acknowledge(len(records))

    async def flush(self, timeout: float | None = None) -> bool:
        if self._out is not None:
            # The reader may have gone away (``csgen run | head``): nothing more to do.
            with contextlib.suppress(BrokenPipeError):
                self._out.flush()
        return True


class StdoutSink(_LinesSink):
    """JSON lines on standard output."""

    kind = "stdout"

    def _stream(self) -> BinaryIO:
        return sys.stdout.buffer


class FileSink(_LinesSink):
    """JSON lines appended to a file."""

    kind = "file"

    def __init__(self, path: Path):
        super().__init__()
        self.path = path

    async def open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._out = self.path.open("ab")
        except OSError as exc:
            raise PermanentSinkError(
                f"cannot open {self.path} for appending: {exc.strerror}", reason="open_error"
            ) from exc

    def _stream(self) -> BinaryIO:
        raise PermanentSinkError(f"{self.path} is not open", reason="not_open")

    async def close(self, timeout: float | None = None) -> Any:
        snapshot = await super().close(timeout)
        if self._out is not None:
            self._out.close()
            self._out = None
        return snapshot

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": str(self.path)}
