"""Logging set-up: plain sentences for people, JSON lines for collectors.

Context that holds for the whole process (producer id, shard) is bound once
here, not repeated in every call. Nothing logs per event at INFO.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

_context: dict[str, Any] = {}


def bind(**context: Any) -> None:
    """Attach fields to every later log line (JSON) or prefix (plain)."""
    _context.update({k: v for k, v in context.items() if v is not None})


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_context,
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class _PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = "csgen"
        if "producer_id" in _context:
            prefix += f" [{_context['producer_id']}]"
        text = f"{prefix}: {record.levelname.lower()}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def configure(*, fmt: str = "plain", level: str = "info", debug: bool = False) -> None:
    """Send log records to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _PlainFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else getattr(logging, level.upper(), logging.INFO))
    # Libraries that log every request stay quiet unless debugging.
    for noisy in ("botocore", "boto3", "urllib3", "werkzeug", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if debug else logging.WARNING)
