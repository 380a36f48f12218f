"""The in-pod HTTP control API: start, stop, status and configuration of one producer.

`make_app` builds an aiohttp application around a `Producer`; the command
line serves it next to the generator (``csgen run --serve``). Handlers are
thin: the producer owns the state machine, `configuring` validates changes,
`openapi` describes the API, `auth` checks tokens.

States and what the API does in each (the producer's state machine)::

    idle ──start──▶ running ──stop──▶ stopping ──(flushed)──▶ stopped
                     │  ▲                                        │
               error │  └───────────────start────────────────────┘
                     ▼
                  failed ──start──▶ running

- ``POST /v1/start`` and ``POST /v1/stop`` are idempotent and serialised: any
  number of concurrent calls leaves at most one generation loop. A start
  that arrives while a stop is flushing waits for the flush, then starts one
  new loop (it is not refused). A stop in ``idle`` or ``failed`` changes
  nothing and replies 200 with that state; a start in ``failed`` recovers.
- Once the process is shutting down (SIGTERM), start, stop and configuration
  changes are illegal transitions: 409 with the current state.
- ``PUT``/``PATCH /v1/config`` validate the whole body first (422 with the
  offending fields), compare ``expectedVersion`` if given (409 on mismatch),
  then apply everything in one step and bump the version; changes are allowed
  in every state before shutdown, and take effect at the next start when idle.

Every error is JSON, ``{"error": {"code", "message", ...}}``, never a
traceback. Codes: ``bad_request``, ``invalid_json``, ``token_in_url`` (400),
``unauthorized`` (401), ``not_found`` (404), ``method_not_allowed`` (405),
``illegal_transition`` and ``version_conflict`` (409), ``body_too_large``
(413), ``unsupported_media_type`` (415), ``invalid_config`` (422),
``internal`` (500), ``sink_unavailable`` and ``not_ready`` (503).

Not here: serving, signals and shutdown of the process (`cli`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
    StateSetMetricFamily,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from clickstream_generator import __version__
from clickstream_generator.control.auth import Token, bearer_of
from clickstream_generator.control.configuring import (
    InvalidChange,
    parse_change,
    settings_document,
)
from clickstream_generator.control.openapi import (
    DESCRIPTIONS,
    OPERATIONS,
    PROBES,
    openapi_document,
)
from clickstream_generator.engine.running import IllegalTransition, Producer, State
from clickstream_generator.sinks.base import SinkError

logger = logging.getLogger(__name__)

#: The largest request body accepted, in bytes (a model with hundreds of groups fits).
DEFAULT_MAX_BODY = 256 * 1024

# Query parameters that look like credentials: refused outright, never read.
_TOKEN_PARAMETERS: Final = frozenset({"token", "access_token", "api_token", "auth"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class ApiSettings:
    """How the API is protected and limited."""

    token: Token | None = None
    """The bearer token every protected request must carry; None disables authentication."""
    open_probes: bool = True
    """Leave /healthz, /readyz and /metrics open (kubelet probes, Prometheus scrapers)."""
    max_body: int = DEFAULT_MAX_BODY
    """Largest request body in bytes."""


class ApiError(Exception):
    """An error reply: status, machine-readable code, a sentence, optional details."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        **details: Any,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.details = details


PRODUCER: Final = web.AppKey("producer", Producer)
SETTINGS: Final = web.AppKey("settings", ApiSettings)
DOCUMENT: Final = web.AppKey("openapi", dict)
REGISTRY: Final = web.AppKey("registry", CollectorRegistry)


def make_app(producer: Producer, settings: ApiSettings | None = None) -> web.Application:
    """The control API of ``producer``; serve it with aiohttp's runners."""
    settings = settings or ApiSettings()
    app = web.Application(
        client_max_size=settings.max_body,
        middlewares=[_render_errors, _guard(settings)],
    )
    app[PRODUCER] = producer
    app[SETTINGS] = settings
    app[DOCUMENT] = openapi_document(
        auth=settings.token is not None, open_probes=settings.open_probes
    )
    # NB: one registry per application, never the global one: tests build many apps.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ProducerCollector(producer))
    app[REGISTRY] = registry
    for (method, path), handler in HANDLERS.items():
        app.router.add_route(method, path, handler)
    return app


# -- middlewares -----------------------------------------------------------------


@web.middleware
async def _render_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    # Our own refusals: already a code and a sentence.
    except ApiError as exc:
        return _error_response(exc)
    # aiohttp's refusals (unknown path, wrong method, body too large): same JSON shape.
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error_response(_from_http(exc, request))
    # A bug: logged with its traceback, reported without it.
    except Exception:
        logger.exception("The control API failed on %s %s.", request.method, request.path)
        return _error_response(
            ApiError(500, "internal", "internal error; the generator's log has the details")
        )


def _from_http(exc: web.HTTPException, request: web.Request) -> ApiError:
    headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else {}
    if exc.status == 404:
        return ApiError(404, "not_found", f"no such endpoint: {request.path}; GET /info lists them")
    if exc.status == 405:
        return ApiError(
            405,
            "method_not_allowed",
            f"{request.method} is not allowed on {request.path}",
            headers=headers,
        )
    if exc.status == 413:
        limit = request.app[SETTINGS].max_body
        return ApiError(413, "body_too_large", f"the request body exceeds {limit} bytes")
    return ApiError(exc.status, "bad_request", exc.reason or "the request cannot be handled")


def _guard(settings: ApiSettings) -> Any:
    open_operations = DESCRIPTIONS | (PROBES if settings.open_probes else frozenset())

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        # Tokens in URLs end up in proxy and shell histories: refuse, even a correct one.
        if any(name.lower() in _TOKEN_PARAMETERS for name in request.query):
            raise ApiError(
                400,
                "token_in_url",
                "credentials are not accepted in the URL; remove the query parameter and send "
                "the token in the header 'Authorization: Bearer <token>'",
            )
        if settings.token is not None and (request.method, request.path) not in open_operations:
            _authenticate(settings.token, request)
        return await handler(request)

    return guard


def _authenticate(token: Token, request: web.Request) -> None:
    presented = bearer_of(request.headers.get("Authorization"))
    if presented is None:
        raise ApiError(
            401,
            "unauthorized",
            "this endpoint needs the API token in the header 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": 'Bearer realm="csgen"'},
        )
    if not token.matches(presented):
        raise ApiError(
            401,
            "unauthorized",
            "the bearer token is not valid",
            headers={"WWW-Authenticate": 'Bearer realm="csgen", error="invalid_token"'},
        )


# -- replies -----------------------------------------------------------------------


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    # NB: default=str keeps odd values in sink descriptions (paths) from failing a reply.
    return web.Response(
        body=orjson.dumps(data, default=str),
        status=status,
        headers=headers,
        content_type="application/json",
    )


def _error_response(error: ApiError) -> web.Response:
    body = {"error": {"code": error.code, "message": error.message, **error.details}}
    return _json(body, error.status, error.headers)


def _status(producer: Producer) -> dict[str, Any]:
    return {**producer.status(), "loops_started": producer.loops_started}


# -- handlers ----------------------------------------------------------------------


async def get_status(request: web.Request) -> web.Response:
    return _json(_status(request.app[PRODUCER]))


async def post_start(request: web.Request) -> web.Response:
    producer = request.app[PRODUCER]
    try:
        await producer.start()
    except IllegalTransition as exc:
        raise ApiError(409, "illegal_transition", str(exc), state=exc.state.value) from None
    except SinkError as exc:
        raise ApiError(
            503,
            "sink_unavailable",
            f"cannot start: {exc}",
            state=producer.state.value,
        ) from None
    return _json(_status(producer))


async def post_stop(request: web.Request) -> web.Response:
    producer = request.app[PRODUCER]
    try:
        await producer.stop()
    except IllegalTransition as exc:
        raise ApiError(409, "illegal_transition", str(exc), state=exc.state.value) from None
    return _json(_status(producer))


async def get_config(request: web.Request) -> web.Response:
    producer = request.app[PRODUCER]
    return _json(settings_document(producer.settings, producer.config_version))


async def put_config(request: web.Request) -> web.Response:
    producer = request.app[PRODUCER]
    body = await _read_json(request)
    try:
        change = parse_change(body, producer.settings)
    except InvalidChange as exc:
        raise ApiError(
            422,
            "invalid_config",
            f"the configuration is invalid: {exc}",
            fields=[{"field": p.field, "message": p.message} for p in exc.problems],
        ) from None
    # NB: no await from here on: the version check and the change are one atomic step.
    if change.expected_version is not None and change.expected_version != producer.config_version:
        raise ApiError(
            409,
            "version_conflict",
            f"the configuration is at version {producer.config_version}, not "
            f"{change.expected_version}; read it again and retry",
            currentVersion=producer.config_version,
        )
    try:
        producer.reconfigure(change.settings)
    except IllegalTransition as exc:
        raise ApiError(409, "illegal_transition", str(exc), state=exc.state.value) from None
    return _json(_status(producer))


async def _read_json(request: web.Request) -> Any:
    if request.content_type != "application/json" and not request.content_type.endswith("+json"):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"the body must be JSON with 'Content-Type: application/json' "
            f"(got {request.content_type!r})",
        )
    raw = await request.read()
    if not raw.strip():
        raise ApiError(400, "invalid_json", "the body is empty; send a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None


async def get_healthz(request: web.Request) -> web.Response:
    return _json({"status": "ok", "boot_id": request.app[PRODUCER].boot_id})


async def get_readyz(request: web.Request) -> web.Response:
    producer = request.app[PRODUCER]
    if not producer.opened:
        reason = "the sink is not open yet"
    elif not producer.sink.ready:
        reason = "the sink's destination is not reachable"
    else:
        return _json({"ready": True, "state": producer.state.value})
    raise ApiError(503, "not_ready", reason, state=producer.state.value)


async def get_metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def get_openapi(request: web.Request) -> web.Response:
    return _json(request.app[DOCUMENT])


async def get_info(request: web.Request) -> web.Response:
    producer = request.app[PRODUCER]
    settings = request.app[SETTINGS]
    auth = (
        "Requests need 'Authorization: Bearer <token>'"
        + (" except /healthz, /readyz, /metrics" if settings.open_probes else "")
        + ", /info and /openapi.json."
        if settings.token is not None
        else "Authentication is switched off (--no-auth)."
    )
    return _json(
        {
            "name": "csgen",
            "version": __version__,
            "help": [
                f"Clickstream generator {producer.producer_id}, now {producer.state.value}.",
                "POST /v1/start starts generating, POST /v1/stop stops after flushing.",
                "PUT /v1/config changes rate, shard, model or partition key while running.",
                auth,
                "The full description is at /openapi.json.",
            ],
            "endpoints": [
                f"{method} {path}: {text}" for (method, path), text in OPERATIONS.items()
            ],
        }
    )


HANDLERS: Final[dict[tuple[str, str], Handler]] = {
    ("GET", "/v1/status"): get_status,
    ("POST", "/v1/start"): post_start,
    ("POST", "/v1/stop"): post_stop,
    ("GET", "/v1/config"): get_config,
    ("PUT", "/v1/config"): put_config,
    ("PATCH", "/v1/config"): put_config,
    ("GET", "/healthz"): get_healthz,
    ("GET", "/readyz"): get_readyz,
    ("GET", "/metrics"): get_metrics,
    ("GET", "/openapi.json"): get_openapi,
    ("GET", "/info"): get_info,
}


# -- metrics -----------------------------------------------------------------------


class ProducerCollector(Collector):
    """The producer's figures, and its sink's, read at each scrape."""

    def __init__(self, producer: Producer):
        self.producer = producer

    def collect(self) -> Iterable[Metric]:
        producer = self.producer
        yield _counter("csgen_events_generated", "Events generated.", producer.generated)
        yield _counter(
            "csgen_events_shortfall",
            "Events the schedule wrote off because the sink could not keep up.",
            producer.shortfall,
        )
        yield _counter(
            "csgen_loops_started",
            "Generation loops started by this process.",
            producer.loops_started,
        )
        rate = producer.settings.rate
        yield GaugeMetricFamily(
            "csgen_target_rate_events_per_second",
            "Configured events per second; +Inf means as fast as the sink accepts.",
            value=float("inf") if rate is None else rate,
        )
        yield GaugeMetricFamily(
            "csgen_achieved_rate_events_per_second",
            "Events per second over about the last 10 seconds.",
            value=producer.achieved_rate(),
        )
        yield GaugeMetricFamily(
            "csgen_config_version",
            "Version of the configuration in force.",
            value=producer.config_version,
        )
        yield StateSetMetricFamily(
            "csgen_state",
            "Lifecycle state of the producer.",
            value={state.value: producer.state is state for state in State},
        )
        yield InfoMetricFamily(
            "csgen_producer",
            "Identity of this generator process.",
            value={
                "producer_id": producer.producer_id,
                "boot_id": producer.boot_id,
                "version": __version__,
            },
        )
        yield from producer.sink.collect_metrics()


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)
