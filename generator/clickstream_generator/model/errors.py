"""Configuration errors: where, which key, what is wrong, how to fix it."""

from __future__ import annotations

from pathlib import Path

from clickstream_generator.kits.errors import GeneratorError


class ConfigError(GeneratorError):
    """A configuration that cannot be used.

    ``source`` is the file (or ``"command line"``, ``"API"``), ``key`` the key
    as the user wrote it in that source, and ``problem`` a sentence saying what
    is wrong and, where it helps, how to fix it.
    """

    def __init__(self, problem: str, *, source: str | None = None, key: str | None = None):
        self.problem = problem
        self.source = source
        self.key = key
        super().__init__(self._render())

    def _render(self) -> str:
        where = ": ".join(part for part in (self.source, self.key and f"{self.key}") if part)
        return f"{where}: {self.problem}" if where else self.problem

    def located(self, *, source: str | None = None, key: str | None = None) -> ConfigError:
        """The same error with its location filled in where it was missing."""
        return ConfigError(self.problem, source=self.source or source, key=self.key or key)


def read_config_file(path: Path) -> str:
    """A configuration file's text; a `ConfigError` naming the file if unreadable."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the file: {exc.strerror}", source=str(path)) from exc
