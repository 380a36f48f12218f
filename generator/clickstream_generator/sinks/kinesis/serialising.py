"""PutRecords bodies and answers, without botocore's walk over the model.

botocore serialises a request by walking the operation's shapes for every
one of up to 500 entries (each blob through a generic base64 handler, then
the standard library's JSON encoder), and parses the answer the same way:
together about 8 µs per record, more than all the rest of the sink per event.
Here a request body is built with C-level iteration only (base64 and JSON
escaping of each key by library calls, joined once), and an answer is decoded
by orjson.

The sink still calls ``put_records`` on its botocore client: credentials,
signing, endpoints, botocore's own retries and every event hook stay
botocore's. Only the two walks are skipped, through documented events
(`install` registers the handlers, first in line, once per client):

- ``before-parameter-build``: a `PreparedRecords` passed as ``Records`` is set
  aside in the call's context and replaced by one empty entry, so that the
  serializer has next to nothing to walk;
- ``before-call``: the body botocore built is replaced by the prepared one
  (hooks registered later see, and may change, the real body);
- ``before-parse``: a 200 answer is decoded here into the customised
  response, and botocore's parser is handed an empty object instead.

Calls made without a `PreparedRecords`, and error answers, are left alone.
"""

from __future__ import annotations

import binascii
import operator
from collections.abc import Iterable, Sequence
from itertools import repeat
from typing import Any, Final

import orjson

_CONTEXT_KEY: Final = "csgen_prepared_body"
_HANDLER_ID: Final = "csgen-prepared-put-records"

_PLACEHOLDER: Final = {"Data": b"", "PartitionKey": "-"}
#: Drops the newline binascii ends base64 with (cheaper than its keyword argument).
_CHOMP: Final = operator.itemgetter(slice(None, -1))


class PreparedRecords:
    """The body of one PutRecords request, encoded ahead of the call."""

    __slots__ = ("body", "count")

    def __init__(self, body: bytes, count: int):
        self.body = body
        """The JSON request body, UTF-8, stream argument included."""
        self.count = count
        """Entries in it."""

    def __len__(self) -> int:
        return self.count


def prepare(
    stream_argument: dict[str, str],
    data: Sequence[bytes],
    keys: Sequence[str],
    hash_keys: Sequence[str | None] | None = None,
) -> PreparedRecords:
    """Encode a PutRecords body of entries index-aligned in ``data``, ``keys``, ``hash_keys``.

    The body is what botocore would send: ``Data`` in base64, ``PartitionKey``
    and, where given, ``ExplicitHashKey`` as JSON strings.
    """
    head = orjson.dumps(stream_argument)[:-1] + b',"Records":['
    if not data:
        return PreparedRecords(head + b"]}", 0)
    joined = "".join(keys)
    tails = None
    if hash_keys is not None and any(hash_keys):
        tails = [b"" if h is None else b',"ExplicitHashKey":"%s"' % h.encode() for h in hash_keys]
    if tails is not None or '"' in joined or "\\" in joined or not joined.isprintable():
        # NB: orjson.dumps of a str is its JSON literal, quotes and escapes included.
        quoted, middle, close = map(orjson.dumps, keys), b'","PartitionKey":', b"}"
    else:
        # Nothing to escape and no hash keys (the usual case): the quotes go into the separators.
        quoted, middle, close = map(str.encode, keys), b'","PartitionKey":"', b'"}'
    columns: list[Iterable[bytes]] = [
        repeat(b'{"Data":"'),
        map(_CHOMP, map(binascii.b2a_base64, data)),
        repeat(middle),
        quoted,
    ]
    if tails is not None:
        columns.append(tails)
    entries = (close + b",").join(map(b"".join, zip(*columns, strict=False)))
    return PreparedRecords(b"".join((head, entries, close, b"]}")), len(data))


def install(client: Any) -> None:
    """Let ``client.put_records`` take a `PreparedRecords` and decode answers fast (idempotent)."""
    events = client.meta.events
    events.register_first(
        "before-parameter-build.kinesis.PutRecords",
        _set_aside,
        unique_id=_HANDLER_ID + "-params",
    )
    events.register_first(
        "before-call.kinesis.PutRecords", _replace_body, unique_id=_HANDLER_ID + "-body"
    )
    events.register_first(
        "before-parse.kinesis.PutRecords", _decode_answer, unique_id=_HANDLER_ID + "-answer"
    )


def _set_aside(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    records = params.get("Records")
    if isinstance(records, PreparedRecords):
        context[_CONTEXT_KEY] = records.body
        # NB: one valid entry, so that clients validating parameters accept the call.
        params["Records"] = [_PLACEHOLDER]


def _replace_body(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    body = context.get(_CONTEXT_KEY)
    if body is not None:
        params["body"] = body


def _decode_answer(
    response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any
) -> None:
    body = response_dict.get("body")
    if response_dict.get("status_code") != 200 or not isinstance(body, bytes | bytearray):
        return
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        # NB: botocore's parser then reports the malformed answer its own way.
        return
    if not isinstance(answer, dict):
        return
    customized_response_dict.update(answer)
    response_dict["body"] = b"{}"


__all__ = ["PreparedRecords", "install", "prepare"]
