"""Reading KPL aggregated records back into the events inside them.

`csgen tail` shows events, whether or not the run used ``--aggregate``: a
record that starts with the KPL magic bytes and ends with the MD5 of its
protobuf body is unpacked; anything else (including a record that merely
starts with the magic bytes but fails the check) is shown as it is, which is
what KCL does too.

Decodes only what the format uses: varints, length-delimited fields, and
skips 32/64-bit fields.
"""

from __future__ import annotations

import hashlib

from clickstream_generator.sinks.kinesis.aggregation import DIGEST_SIZE, MAGIC


class _Malformed(Exception):
    pass


def deaggregate(data: bytes) -> list[bytes]:
    """The events inside an aggregated record, or ``[data]`` if it is not one."""
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + DIGEST_SIZE:
        return [data]
    body = data[len(MAGIC) : -DIGEST_SIZE]
    if hashlib.md5(body, usedforsecurity=False).digest() != data[-DIGEST_SIZE:]:
        return [data]
    try:
        return [
            _field(record, 3) or b""
            for number, record in _fields(body)
            if number == 3 and isinstance(record, bytes)
        ]
    except _Malformed:
        return [data]


def _field(message: bytes, wanted: int) -> bytes | None:
    for number, value in _fields(message):
        if number == wanted and isinstance(value, bytes):
            return value
    return None


def _fields(message: bytes) -> list[tuple[int, int | bytes]]:
    fields: list[tuple[int, int | bytes]] = []
    position = 0
    while position < len(message):
        tag, position = _varint(message, position)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, position = _varint(message, position)
            fields.append((number, value))
        elif wire == 2:
            length, position = _varint(message, position)
            if position + length > len(message):
                raise _Malformed
            fields.append((number, message[position : position + length]))
            position += length
        elif wire == 1:
            position += 8
        elif wire == 5:
            position += 4
        else:
            raise _Malformed
    if position != len(message):
        raise _Malformed
    return fields


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise _Malformed
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7
