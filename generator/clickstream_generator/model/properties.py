"""Reading the original system's ``csgen.properties`` files, as they are.

The file uses Java properties syntax (``key=value``, ``key: value`` or
``key value``; ``#`` and ``!`` comments; backslash continuations and escapes).
Its keys map to the click model as follows::

    web-store-url                               base_url
    customer-id-min / customer-id-max           users
    probability-browsing-group                  group_click_probability
    group-count                                 how many groups 1..N are defined
    group-name-N                                groups[N-1].name
    group-product-id-min-N / -max-N             groups[N-1].products
    probability-browsing-products-in-group-N    groups[N-1].weight
    clicks-per-second                           the rate
    url-kinesis-stream-name                     the Kinesis stream

Keys the original never read (``probability-browsing-group-N``) or that have
no meaning here (``poll-server-status-change``, ``token-as-hash``) are
accepted with a warning, so old files keep working unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from clickstream_generator.model.errors import ConfigError, read_config_file
from clickstream_generator.model.settings import ClickModel, Group, IdRange

# Canonical model paths to the original key names, for error messages.
_SCALAR_KEYS = {
    "baseUrl": "web-store-url",
    "users.min": "customer-id-min",
    "users.max": "customer-id-max",
    "groupClickProbability": "probability-browsing-group",
    "groups": "group-count",
    "groups[*].weight": "probability-browsing-products-in-group-N",
    "seed": "seed",
}
_GROUP_FIELD_KEYS = {
    "id": "group-count",
    "name": "group-name-{n}",
    "weight": "probability-browsing-products-in-group-{n}",
    "products.min": "group-product-id-min-{n}",
    "products.max": "group-product-id-max-{n}",
}
_GROUP_PATH = re.compile(r"groups\[(\d+)\]\.(.+)")

_DEAD_KEYS = {
    "poll-server-status-change": (
        "was the original's batching interval; csgen paces events evenly and batches "
        "by size and linger time instead"
    ),
    "token-as-hash": "the control API reads a bearer token from --token-file or CSGEN_API_TOKEN",
}
_DEAD_PATTERNS = (
    (
        re.compile(r"probability-browsing-group-\d+"),
        "was never read by the original system; group weights come from "
        "probability-browsing-products-in-group-N",
    ),
)
_KNOWN_PATTERNS = (
    re.compile(r"group-name-\d+"),
    re.compile(r"group-product-id-(min|max)-\d+"),
    re.compile(r"probability-browsing-products-in-group-\d+"),
)
_KNOWN_KEYS = {
    "web-store-url",
    "customer-id-min",
    "customer-id-max",
    "group-count",
    "probability-browsing-group",
    "clicks-per-second",
    "url-kinesis-stream-name",
    "seed",
}


@dataclass
class PropertiesConfig:
    """What a ``csgen.properties`` file says."""

    model: ClickModel
    """The click model."""
    rate: float | None = None
    """``clicks-per-second``, events per second, if present."""
    stream_name: str | None = None
    """``url-kinesis-stream-name``, if present."""
    warnings: list[str] = field(default_factory=list)
    """Sentences about accepted-but-ignored keys."""


def parse_properties(text: str) -> dict[str, str]:
    """Parse Java properties text into a dict (later keys win, as in Java)."""
    result: dict[str, str] = {}
    for logical in _logical_lines(text):
        key, value = _split_pair(logical)
        result[_unescape(key)] = _unescape(value)
    return result


def key_namer(path: str) -> str:
    """The original key name for a canonical model path."""
    if path in _SCALAR_KEYS:
        return _SCALAR_KEYS[path]
    match = _GROUP_PATH.fullmatch(path)
    if match:
        template = _GROUP_FIELD_KEYS.get(match.group(2), "group-count")
        return template.format(n=int(match.group(1)) + 1)
    return path


def load_properties(path: Path) -> PropertiesConfig:
    """Read and validate a ``csgen.properties`` file."""
    source = str(path)
    text = read_config_file(path)
    try:
        return properties_to_config(parse_properties(text))
    except ConfigError as exc:
        raise exc.located(source=source) from None


def properties_to_config(props: dict[str, str]) -> PropertiesConfig:
    """Turn parsed properties into a validated configuration."""
    reader = _Reader(props)
    warnings = _dead_key_warnings(props)

    group_count = reader.integer("group-count")
    if group_count < 1:
        raise ConfigError(f"must be at least 1 (got {group_count})", key="group-count")
    groups = []
    for n in range(1, group_count + 1):
        missing = [
            key
            for key in (
                f"group-name-{n}",
                f"group-product-id-min-{n}",
                f"group-product-id-max-{n}",
                f"probability-browsing-products-in-group-{n}",
            )
            if key not in props
        ]
        if len(missing) == 4:
            raise ConfigError(
                f"group {n} is counted by group-count={group_count} but not defined: "
                f"add group-name-{n}, group-product-id-min-{n}, group-product-id-max-{n} and "
                f"probability-browsing-products-in-group-{n}, or lower group-count",
                key=f"group-name-{n}",
            )
        groups.append(
            Group(
                id=n,
                name=reader.text(f"group-name-{n}"),
                weight=reader.number(f"probability-browsing-products-in-group-{n}"),
                products=IdRange(
                    reader.integer(f"group-product-id-min-{n}"),
                    reader.integer(f"group-product-id-max-{n}"),
                ),
            )
        )
    extra_groups = sorted(
        {
            int(m.group(1))
            for key in props
            if (m := re.fullmatch(r"group-name-(\d+)", key)) and int(m.group(1)) > group_count
        }
    )
    if extra_groups:
        warnings.append(
            f"group-count is {group_count}, so groups {', '.join(map(str, extra_groups))} "
            "are defined but not used"
        )

    model = ClickModel(
        base_url=reader.text("web-store-url").rstrip("/"),
        users=IdRange(reader.integer("customer-id-min"), reader.integer("customer-id-max")),
        group_click_probability=reader.number("probability-browsing-group"),
        groups=tuple(groups),
        seed=reader.integer("seed") if "seed" in props else None,
    ).validated(key_namer)

    rate = reader.number("clicks-per-second") if "clicks-per-second" in props else None
    if rate is not None and not rate > 0:
        raise ConfigError(f"must be > 0 (got {rate:g})", key="clicks-per-second")
    stream = props.get("url-kinesis-stream-name", "").strip() or None
    if stream and stream.startswith("<"):
        # The original's template placeholder, never filled in.
        stream = None
    return PropertiesConfig(model=model, rate=rate, stream_name=stream, warnings=warnings)


class _Reader:
    """Typed access to properties, with errors that name the key."""

    def __init__(self, props: dict[str, str]):
        self._props = props

    def text(self, key: str) -> str:
        if key not in self._props:
            raise ConfigError("is missing", key=key)
        value = self._props[key].strip()
        if not value:
            raise ConfigError("is empty", key=key)
        return value

    def integer(self, key: str) -> int:
        value = self.text(key)
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"must be a whole number (got {value!r})", key=key) from None

    def number(self, key: str) -> float:
        value = self.text(key)
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"must be a number (got {value!r})", key=key) from None


def _dead_key_warnings(props: dict[str, str]) -> list[str]:
    warnings = []
    for key in props:
        if key in _DEAD_KEYS:
            warnings.append(f"{key} is ignored: it {_DEAD_KEYS[key]}")
        elif any(pattern.fullmatch(key) for pattern, _ in _DEAD_PATTERNS):
            reason = next(why for pattern, why in _DEAD_PATTERNS if pattern.fullmatch(key))
            warnings.append(f"{key} is ignored: it {reason}")
        elif key not in _KNOWN_KEYS and not any(p.fullmatch(key) for p in _KNOWN_PATTERNS):
            warnings.append(f"{key} is not a known key and is ignored")
    return warnings


def _logical_lines(text: str) -> Iterator[str]:
    """Join continuation lines and drop comments and blank lines."""
    pending = ""
    for raw in text.splitlines():
        line = raw.lstrip(" \t\f")
        if not pending and (not line or line[0] in "#!"):
            continue
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2 == 1:
            pending += line[:-1]
            continue
        yield pending + line
        pending = ""
    if pending:
        yield pending


def _split_pair(line: str) -> tuple[str, str]:
    index = 0
    while index < len(line):
        char = line[index]
        if char == "\\":
            index += 2
            continue
        if char in "=: \t\f":
            break
        index += 1
    key = line[:index]
    rest = line[index:].lstrip(" \t\f")
    if rest[:1] in ("=", ":"):
        rest = rest[1:].lstrip(" \t\f")
    return key, rest


_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    out = []
    index = 0
    while index < len(text):
        char = text[index]
        if char != "\\" or index + 1 >= len(text):
            out.append(char)
            index += 1
            continue
        nxt = text[index + 1]
        if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[index + 2 : index + 6]):
            out.append(chr(int(text[index + 2 : index + 6], 16)))
            index += 6
            continue
        out.append(_ESCAPES.get(nxt, nxt))
        index += 2
    return "".join(out)
