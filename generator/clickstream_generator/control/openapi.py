"""The OpenAPI 3 description of the control API, as plain data.

`openapi_document` builds the document once per application; it is served
as is at ``GET /openapi.json``. Which operations need the bearer token
depends on the server's options, so the document is built from the same
options as the application and always describes the server that serves it.

`OPERATIONS` lists every (method, path) pair; the application registers its
routes from the same table, and a test compares the document's paths with
the application's router so that the two cannot drift apart.

Not here: the handlers (`clickstream_generator.control.api`) and the
validation of configuration bodies (`clickstream_generator.control.configuring`),
whose limits the schemas below repeat (`MIN_RATE`, `MAX_RATE`, `MAX_ID`).
"""

from __future__ import annotations

from typing import Any, Final

from clickstream_generator import __version__

#: The slowest rate the API accepts, in events per second (one event in about 17 minutes).
MIN_RATE: Final = 0.001
#: The fastest rate the API accepts, in events per second per process.
MAX_RATE: Final = 1_000_000.0
#: The largest user, product or group id: the largest integer JSON keeps exact.
MAX_ID: Final = 2**53 - 1
#: States of the producer, in lifecycle order.
STATES: Final = ("idle", "running", "stopping", "stopped", "failed")

#: Operations that report on the process and may be left open for probes and scrapers.
PROBES: Final = frozenset({("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")})
#: Operations that describe the API itself; never behind the token.
DESCRIPTIONS: Final = frozenset({("GET", "/openapi.json"), ("GET", "/info")})

#: Every operation: (method, path) -> one-line summary.
OPERATIONS: Final[dict[tuple[str, str], str]] = {
    ("GET", "/v1/status"): "State, identity, rates and delivery counters of the generator.",
    ("POST", "/v1/start"): "Start generating (idempotent); replies with the resulting status.",
    ("POST", "/v1/stop"): "Stop generating and flush (idempotent); replies with the status.",
    ("GET", "/v1/config"): "The configuration in force and its version.",
    ("PUT", "/v1/config"): "Change rate, shard slice, model or partition key atomically.",
    ("PATCH", "/v1/config"): "The same as PUT: only the given fields change.",
    ("GET", "/healthz"): "Liveness: the process answers.",
    ("GET", "/readyz"): "Readiness: the sink is open and its destination reachable.",
    ("GET", "/metrics"): "Prometheus metrics of the generator and its sink.",
    ("GET", "/openapi.json"): "This OpenAPI document.",
    ("GET", "/info"): "A short human-readable help.",
}

_ERROR_DESCRIPTIONS: Final = {
    "400": "The request is malformed (bad JSON, a token in the URL, ...).",
    "401": "The bearer token is missing or wrong.",
    "409": "Not allowed in the current state, or the expected version is outdated.",
    "413": "The request body is too large.",
    "415": "The request body is not JSON.",
    "422": "The configuration is invalid; ``fields`` names each offending field.",
    "500": "An internal error; details are in the generator's log.",
    "503": "The sink cannot be used now (or, for /readyz, the process is not ready).",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: str) -> dict[str, Any]:
    return {code: _json(_ref("Error"), _ERROR_DESCRIPTIONS[code]) for code in codes}


def _integer(minimum: int, maximum: int = MAX_ID) -> dict[str, Any]:
    return {"type": "integer", "minimum": minimum, "maximum": maximum}


def _schemas() -> dict[str, Any]:
    id_range = {
        "type": "object",
        "description": "An inclusive range of ids.",
        "required": ["min", "max"],
        "additionalProperties": False,
        "properties": {"min": _integer(0), "max": _integer(0)},
    }
    counter = {"type": "integer", "minimum": 0}
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "additionalProperties": False,
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "state": {"type": "string", "enum": list(STATES)},
                        "currentVersion": {"type": "integer"},
                        "fields": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["field", "message"],
                                "properties": {
                                    "field": {"type": "string"},
                                    "message": {"type": "string"},
                                },
                            },
                        },
                    },
                }
            },
        },
        "IdRange": id_range,
        "Group": {
            "type": "object",
            "required": ["name", "weight", "products"],
            "additionalProperties": False,
            "properties": {
                "id": _integer(0),
                "name": {"type": "string", "minLength": 1},
                "weight": {"type": "number", "minimum": 0, "maximum": 1},
                "products": _ref("IdRange"),
            },
        },
        "Model": {
            "type": "object",
            "description": "The click model; missing keys take the shipped defaults.",
            "additionalProperties": False,
            "properties": {
                "baseUrl": {"type": "string", "pattern": "^https?://"},
                "users": _ref("IdRange"),
                "groupClickProbability": {"type": "number", "minimum": 0, "maximum": 1},
                "groups": {"type": "array", "minItems": 1, "items": _ref("Group")},
                "seed": {"type": "integer", "minimum": 0},
            },
        },
        "Rate": {
            "description": "Events per second, or 'max' for as fast as the sink accepts.",
            "oneOf": [
                {"type": "number", "minimum": MIN_RATE, "maximum": MAX_RATE},
                {"type": "string", "enum": ["max"]},
            ],
        },
        "Shard": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"index": _integer(0), "count": _integer(1)},
        },
        "ConfigChange": {
            "type": "object",
            "description": "Fields to change; absent fields keep their value.",
            "additionalProperties": False,
            "properties": {
                "eventsPerSecond": _ref("Rate"),
                "shard": _ref("Shard"),
                "model": _ref("Model"),
                "partitionKey": {"type": "string", "enum": ["user", "random"]},
                "expectedVersion": {"type": "integer", "minimum": 1},
            },
        },
        "Config": {
            "type": "object",
            "required": ["eventsPerSecond", "shard", "model", "partitionKey", "version"],
            "properties": {
                "eventsPerSecond": _ref("Rate"),
                "shard": _ref("Shard"),
                "model": _ref("Model"),
                "partitionKey": {"type": "string", "enum": ["user", "random"]},
                "version": {"type": "integer", "minimum": 1},
            },
        },
        "Status": {
            "type": "object",
            "required": [
                "state",
                "boot_id",
                "producer_id",
                "shard_index",
                "shard_count",
                "target_rate",
                "achieved_rate",
                "generated",
                "next_sequence",
                "shortfall",
                "acknowledged",
                "failed",
                "pending",
                "buffered_bytes",
                "last_error",
                "config_version",
                "loops_started",
            ],
            "properties": {
                "state": {"type": "string", "enum": list(STATES)},
                "boot_id": {"type": "string", "description": "New at every process start."},
                "producer_id": {"type": "string"},
                "shard_index": {"type": "integer", "minimum": 0},
                "shard_count": {"type": "integer", "minimum": 1},
                "users": {"type": "string", "description": "This shard's user ids, min..max."},
                "seed": {"type": "integer"},
                "target_rate": {
                    "type": "number",
                    "nullable": True,
                    "description": "Events per second; null means as fast as possible.",
                },
                "achieved_rate": {"type": "number", "minimum": 0},
                "generated": counter,
                "next_sequence": counter,
                "shortfall": counter,
                "acknowledged": counter,
                "failed": counter,
                "pending": {"type": "integer"},
                "failed_by_reason": {"type": "object", "additionalProperties": counter},
                "spooled": counter,
                "buffered_bytes": {"type": "integer"},
                "sink": {"type": "object", "description": "Sink-specific figures."},
                "last_error": {"type": "string", "nullable": True},
                "config_version": {"type": "integer", "minimum": 1},
                "loops_started": counter,
            },
        },
    }


def _operation(method: str, path: str, *, auth: bool, open_probes: bool) -> dict[str, Any]:
    key = (method, path)
    protected = auth and key not in DESCRIPTIONS and not (open_probes and key in PROBES)
    errors = ["400", "500"] + (["401"] if protected else [])
    responses: dict[str, Any]
    body: dict[str, Any] | None = None
    if path in ("/v1/status", "/v1/start", "/v1/stop"):
        responses = {"200": _json(_ref("Status"), "The status after the step.")}
        if method == "POST":
            errors.append("409")
        if path == "/v1/start":
            errors.append("503")
    elif path == "/v1/config" and method == "GET":
        responses = {"200": _json(_ref("Config"), "The configuration in force.")}
    elif path == "/v1/config":
        body = {
            "required": True,
            "content": {"application/json": {"schema": _ref("ConfigChange")}},
        }
        responses = {"200": _json(_ref("Status"), "Applied; the status with the new version.")}
        errors += ["409", "413", "415", "422"]
    elif path == "/healthz":
        responses = {
            "200": _json(
                {
                    "type": "object",
                    "required": ["status", "boot_id"],
                    "properties": {"status": {"type": "string"}, "boot_id": {"type": "string"}},
                },
                "The process is alive.",
            )
        }
    elif path == "/readyz":
        responses = {
            "200": _json(
                {
                    "type": "object",
                    "required": ["ready", "state"],
                    "properties": {
                        "ready": {"type": "boolean"},
                        "state": {"type": "string", "enum": list(STATES)},
                    },
                },
                "The sink is open and its destination reachable.",
            )
        }
        errors.append("503")
    elif path == "/metrics":
        responses = {
            "200": {
                "description": "Prometheus text exposition format.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        }
    elif path == "/openapi.json":
        responses = {"200": _json({"type": "object"}, "This document.")}
    else:
        responses = {
            "200": _json(
                {
                    "type": "object",
                    "required": ["name", "version", "help", "endpoints"],
                    "properties": {
                        "name": {"type": "string"},
                        "version": {"type": "string"},
                        "help": {"type": "array", "items": {"type": "string"}},
                        "endpoints": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "A short help.",
            )
        }
    responses.update(_errors(*sorted(set(errors))))
    operation: dict[str, Any] = {
        "operationId": _operation_id(method, path),
        "summary": OPERATIONS[key],
        "responses": responses,
        "security": [{"bearerAuth": []}] if protected else [],
    }
    if body is not None:
        operation["requestBody"] = body
    return operation


def _operation_id(method: str, path: str) -> str:
    words = [part for part in path.replace(".", "/").split("/") if part and part != "v1"]
    return method.lower() + "".join(word.capitalize() for word in words)


def openapi_document(*, auth: bool, open_probes: bool) -> dict[str, Any]:
    """The description of an application built with the same options."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path in OPERATIONS:
        paths.setdefault(path, {})[method.lower()] = _operation(
            method, path, auth=auth, open_probes=open_probes
        )
    document: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {
            "title": "csgen generator control API",
            "version": __version__,
            "description": (
                "Controls the clickstream generator of one process (one pod): start, stop, "
                "status, and configuration changes while it runs."
            ),
        },
        "paths": paths,
        "components": {"schemas": _schemas()},
    }
    if auth:
        document["components"]["securitySchemes"] = {
            "bearerAuth": {"type": "http", "scheme": "bearer"}
        }
    return document
