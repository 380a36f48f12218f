"""Serving the control API next to the generator (``csgen run --serve``).

`listening` runs the aiohttp application on one address for the life of a
``with`` block; `keep_opening` opens the sink in the background, retrying
with backoff, so that ``/readyz`` turns ready as soon as the destination is
reachable while the generator still waits, idle, for a start.

Not here: signals, the producer's shutdown and the exit code (`cli`), and
the API itself (`api`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from clickstream_generator.engine.running import Producer
from clickstream_generator.kits.errors import GeneratorError
from clickstream_generator.sinks.base import SinkError

logger = logging.getLogger(__name__)

#: The address ``--serve`` uses when given no value: loopback, for laptops.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
#: Seconds that in-flight requests get to finish when the server closes.
CLOSE_TIMEOUT = 2.0
#: Longest pause between two attempts to open the sink, in seconds.
MAX_OPEN_BACKOFF = 30.0


class ServeError(GeneratorError):
    """The control API cannot listen where it was asked to."""


def parse_address(text: str) -> tuple[str, int]:
    """``[HOST:]PORT`` (``[::1]:8080`` for IPv6) as (host, port); raises ValueError."""
    text = text.strip()
    host, port_text = DEFAULT_HOST, text
    if text.startswith("["):
        closing = text.find("]:")
        if closing < 0:
            raise ValueError(f"an IPv6 address needs a port, as in [::1]:8080 (got {text!r})")
        host, port_text = text[1:closing], text[closing + 2 :]
    elif ":" in text:
        host, _, port_text = text.rpartition(":")
    if not host:
        raise ValueError(f"the host is empty (got {text!r}); write HOST:PORT or PORT")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"the port must be a number (got {port_text!r})") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"the port must be in 0..65535 (got {port})")
    return host, port


class PathOnlyAccessLogger(AbstractAccessLogger):
    """One DEBUG line per request: method, path and status, never the query string.

    NB: aiohttp's own access log prints the whole request line, query included,
    so a client that puts a token in the URL would get it logged.
    """

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.debug(
            "%s %s answered %d in %.1f ms.",
            request.method,
            request.path,
            response.status,
            time * 1000,
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.DEBUG)


@contextlib.asynccontextmanager
async def listening(app: web.Application, host: str, port: int) -> AsyncIterator[str]:
    """Serve ``app`` on host:port; yields the URL actually bound (port 0 picks one)."""
    # One line per request at DEBUG only: at INFO, probes and scrapes would flood the log.
    runner = web.AppRunner(
        app,
        access_log=logger,
        access_log_class=PathOnlyAccessLogger,
        shutdown_timeout=CLOSE_TIMEOUT,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            raise ServeError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}; pick another "
                "--serve address or stop what holds the port"
            ) from exc
        bound_host, bound_port = runner.addresses[0][:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        yield f"http://{shown}:{bound_port}"
    finally:
        await runner.cleanup()


async def keep_opening(producer: Producer) -> None:
    """Open the sink, retrying with backoff until it works; cancel to give up."""
    delay = 1.0
    last_problem = None
    while not producer.opened:
        try:
            await producer.open()
        except SinkError as exc:
            problem = str(exc)
            if problem != last_problem:
                logger.warning("Cannot open the sink yet (%s); retrying until it works.", problem)
                last_problem = problem
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_OPEN_BACKOFF)
        else:
            if last_problem is not None:
                logger.warning("The sink is open now; the generator is ready.")
