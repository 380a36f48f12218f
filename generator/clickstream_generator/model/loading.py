"""Loading a configuration file of either kind, by its name."""

from __future__ import annotations

from pathlib import Path

from clickstream_generator.model.documents import DocumentConfig, KinesisTarget, load_yaml
from clickstream_generator.model.errors import ConfigError
from clickstream_generator.model.properties import load_properties

#: The environment variable through which the original system named its file.
CONFIG_ENV = "CS_CONFIG_FILE"


def load_config(path: Path) -> DocumentConfig:
    """Load ``.properties`` or ``.yaml``/``.yml``/``.json``, chosen by suffix."""
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml", ".json"):
        return load_yaml(path)
    if suffix in (".properties", ".props", ""):
        loaded = load_properties(path)
        return DocumentConfig(
            model=loaded.model,
            rate=loaded.rate,
            kinesis=KinesisTarget(stream_name=loaded.stream_name),
            warnings=loaded.warnings,
        )
    raise ConfigError(
        f"unknown configuration format {suffix!r}: use a .properties or a .yaml file",
        source=str(path),
    )
