"""A client of one generator pod's control API (see docs/api.md).

Every call has a short timeout: a pod that does not answer in time is
reported unreachable for this round and tried again at the next one. Errors
are `FleetError` with a sentence fit for the resource's status; the token
never appears in them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiohttp

from clickstream_operator.resources.rendering import API_PORT

#: Seconds for status and configuration calls.
QUICK_TIMEOUT = 3.0
#: Seconds for a start or a stop: either may wait for a flush of the pod's buffer.
STOP_TIMEOUT = 30.0


class FleetError(Exception):
    """A generator pod could not be reached or refused a call."""


class GeneratorClient:
    """Calls the control API of generator pods, by pod IP."""

    def __init__(self, session: aiohttp.ClientSession, token: str, *, port: int = API_PORT):
        self._session = session
        self._headers = {"Authorization": f"Bearer {token}"}
        self._port = port

    async def status(self, ip: str) -> dict[str, Any]:
        return await self._call("GET", ip, "/v1/status", timeout=QUICK_TIMEOUT)

    async def start(self, ip: str) -> dict[str, Any]:
        return await self._call("POST", ip, "/v1/start", timeout=STOP_TIMEOUT)

    async def stop(self, ip: str) -> dict[str, Any]:
        return await self._call("POST", ip, "/v1/stop", timeout=STOP_TIMEOUT)

    async def configure(self, ip: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self._call("PUT", ip, "/v1/config", timeout=QUICK_TIMEOUT, body=body)

    async def _call(
        self,
        method: str,
        ip: str,
        path: str,
        *,
        timeout: float,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        url = f"http://{ip}:{self._port}{path}"
        try:
            async with self._session.request(
                method,
                url,
                headers=self._headers,
                json=dict(body) if body is not None else None,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                try:
                    answer = await response.json(content_type=None)
                except ValueError:
                    answer = {}
                if response.status >= 400:
                    error = (answer or {}).get("error", {}) if isinstance(answer, dict) else {}
                    raise FleetError(
                        f"{method} {path} answered {response.status}: "
                        f"{error.get('message', response.reason)}"
                    )
                return answer if isinstance(answer, dict) else {}
        except TimeoutError:
            raise FleetError(f"{method} {path}: no answer within {timeout:g} s") from None
        except aiohttp.ClientError as exc:
            raise FleetError(f"{method} {path}: {exc}") from None
        except asyncio.CancelledError:
            raise
