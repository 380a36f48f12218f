"""Configuration files: the original's properties as they are, YAML, and every error."""

from __future__ import annotations

from pathlib import Path

import pytest

from clickstream_generator.model.errors import ConfigError
from clickstream_generator.model.loading import load_config
from clickstream_generator.model.properties import parse_properties
from clickstream_generator.model.settings import ClickModel, IdRange, ShardCount, ShardSlice

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SHIPPED = (EXAMPLES / "csgen.properties").read_text()


def _write(tmp_path: Path, text: str, name: str = "csgen.properties") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _edited(**changes: str | None) -> str:
    """The shipped file with keys changed (value) or removed (None)."""
    lines = []
    for line in SHIPPED.splitlines():
        key = line.split("=", 1)[0]
        if key in changes:
            value = changes.pop(key)
            if value is not None:
                lines.append(f"{key}={value}")
        else:
            lines.append(line)
    lines += [f"{key}={value}" for key, value in changes.items() if value is not None]
    return "\n".join(lines) + "\n"


def test_the_shipped_properties_file_reads_as_the_original_meant_it(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, SHIPPED))
    model = config.model
    assert model.base_url == "https://webstore.demo.com"
    assert model.users == IdRange(1, 100)
    assert model.group_click_probability == 0.1
    assert [(g.id, g.name, g.weight, g.products) for g in model.groups] == [
        (1, "Books", 0.15, IdRange(2001, 2100)),
        (2, "Movies", 0.85, IdRange(1, 1000)),
    ]
    assert config.rate == 3.0
    assert model == ClickModel(base_url=model.base_url)  # the shipped file is the default


def test_dead_keys_are_accepted_with_a_warning(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, SHIPPED + "token-as-hash=12345\n"))
    warned = " ".join(config.warnings)
    for key in (
        "probability-browsing-group-1",
        "probability-browsing-group-2",
        "poll-server-status-change",
        "token-as-hash",
    ):
        assert key in warned


def test_java_properties_syntax_is_honoured() -> None:
    text = (
        "# comment\n! another\n  spaced = value with spaces  \ncolon:1\nblank second\n"
        "multi=one \\\n    two\nescaped=a\\=b\\u0041\\tz\n"
    )
    assert parse_properties(text) == {
        "spaced": "value with spaces  ",
        "colon": "1",
        "blank": "second",
        "multi": "one two",
        "escaped": "a=bA\tz",
    }


@pytest.mark.parametrize(
    ("changes", "key", "words"),
    [
        ({"customer-id-max": None}, "customer-id-max", "missing"),
        ({"customer-id-min": "one"}, "customer-id-min", "whole number"),
        ({"probability-browsing-group": "ten%"}, "probability-browsing-group", "number"),
        ({"customer-id-min": "200"}, "customer-id-min", "must not exceed max"),
        ({"group-product-id-min-2": "1001"}, "group-product-id-min-2", "must not exceed max"),
        ({"group-count": "3"}, "group-name-3", "not defined"),
        (
            {"probability-browsing-products-in-group-1": "0.1"},
            "probability-browsing-products-in-group-N",
            "sum to 1",
        ),
        (
            {"probability-browsing-products-in-group-2": "0.86"},
            "probability-browsing-products-in-group-N",
            "sum to 1",
        ),
        ({"customer-id-max": ""}, "customer-id-max", "empty"),
        ({"group-name-1": ""}, "group-name-1", "empty"),
        ({"probability-browsing-group": "1.5"}, "probability-browsing-group", "between 0 and 1"),
        ({"web-store-url": "webstore.demo.com"}, "web-store-url", "http"),
        ({"clicks-per-second": "0"}, "clicks-per-second", "> 0"),
        ({"group-count": "zero"}, "group-count", "whole number"),
    ],
)
def test_a_bad_properties_file_is_rejected_naming_file_and_key(
    tmp_path: Path, changes: dict[str, str | None], key: str, words: str
) -> None:
    path = _write(tmp_path, _edited(**changes))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message
    assert key in message
    assert words in message


def test_weights_within_a_billionth_of_one_are_accepted(tmp_path: Path) -> None:
    text = _edited(**{"probability-browsing-products-in-group-2": "0.8500000005"})
    assert load_config(_write(tmp_path, text)).model.groups[1].weight == 0.8500000005


def test_weights_that_sum_below_one_are_an_error_not_a_crash(tmp_path: Path) -> None:
    text = _edited(**{"probability-browsing-products-in-group-2": "0.5"})
    with pytest.raises(ConfigError, match="sum to 1"):
        load_config(_write(tmp_path, text))


def test_the_yaml_example_loads(tmp_path: Path) -> None:
    config = load_config(EXAMPLES / "three-groups.yaml")
    assert [g.name for g in config.model.groups] == ["Garden", "Kitchen", "Toys & Games"]
    assert config.rate == 50.0
    assert config.model.seed == 2026


def test_a_whole_custom_resource_manifest_is_accepted(tmp_path: Path) -> None:
    manifest = """
apiVersion: csgen.dev/v1alpha1
kind: ClickstreamGenerator
metadata: {name: demo}
spec:
  replicas: 3
  eventsPerSecond: 7.5
  model:
    users: {min: 1, max: 30}
    groups: [{id: 1, name: All, weight: 1, products: {min: 1, max: 9}}]
  kinesis: {streamName: clicks, region: eu-west-1, partitionKey: random}
"""
    config = load_config(_write(tmp_path, manifest, "csg.yaml"))
    assert config.rate == 7.5
    assert config.kinesis.stream_name == "clicks"
    assert config.kinesis.partition_key == "random"
    assert config.model.users == IdRange(1, 30)


@pytest.mark.parametrize(
    ("yaml_text", "key", "words"),
    [
        ("model: {users: {min: 5, max: 1}}", "model.users.min", "must not exceed max"),
        ("model: {users: {min: a, max: 1}}", "model.users.min", "whole number"),
        ("model: {groupClickProbabilty: 0.2}", "model.groupClickProbabilty", "not a known key"),
        (
            "model: {groups: [{id: 1, name: A, weight: 0.5, products: {min: 1, max: 2}}]}",
            "model.groups[*].weight",
            "sum to 1",
        ),
        ("model: {groups: [{id: 1, name: A, weight: 1}]}", "model.groups[0].products", "missing"),
        ("eventsPerSecond: -5", "eventsPerSecond", "> 0"),
        ("kinesis: {partitionKey: shard}", "kinesis.partitionKey", "user, random"),
        ("model: [1, 2]", "model", "mapping"),
        ("model: {users: {min: 1, max: 5}}\n  bad: [", "", "not valid YAML"),
    ],
)
def test_a_bad_yaml_file_is_rejected_naming_the_key(
    tmp_path: Path, yaml_text: str, key: str, words: str
) -> None:
    path = _write(tmp_path, yaml_text, "bad.yaml")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(path) in str(caught.value)
    assert key in str(caught.value)
    assert words in str(caught.value)


def test_more_producers_than_users_is_an_empty_slice_error() -> None:
    with pytest.raises(ConfigError, match="empty slice"):
        ShardSlice(count=ShardCount(11)).validate(IdRange(1, 10))


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path / "nope.properties")
