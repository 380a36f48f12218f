"""Configuration errors: where, which key, what is wrong, how to fix it."""

from __future__ import annotations

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
