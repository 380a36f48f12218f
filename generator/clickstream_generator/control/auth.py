"""Bearer tokens of the control API: where they come from, how they are checked.

The token is read once at start-up from a file (``--token-file``, usually a
mounted Kubernetes Secret) or from ``$CSGEN_API_TOKEN``; with neither, the API
does not start unless authentication is switched off explicitly
(``--no-auth``). Clients send it as ``Authorization: Bearer <token>``.

Comparison is in constant time: both sides are hashed to a fixed length first
and then compared with `hmac.compare_digest`, so neither the content nor the
length of the token leaks through response times.

Not here: token rotation. A new Secret needs a restart of the process.
TODO(the operator rotates tokens): re-read the file when it changes.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from pathlib import Path

from clickstream_generator.kits.errors import GeneratorError

#: The environment variable holding the token when no file is given.
TOKEN_ENV = "CSGEN_API_TOKEN"  # noqa: S105 - the name of a variable, not a secret

_SCHEME = "bearer"


class TokenError(GeneratorError):
    """No usable token, or contradictory authentication options."""


class Token:
    """A secret bearer token; its text never appears in reprs, logs or errors."""

    __slots__ = ("_digest",)

    def __init__(self, text: str):
        if not text:
            raise TokenError("the API token is empty")
        self._digest = _digest(text.encode("utf-8"))

    def __repr__(self) -> str:
        return "Token(<hidden>)"

    def matches(self, presented: str) -> bool:
        """Whether ``presented`` is this token, compared in constant time."""
        return hmac.compare_digest(_digest(presented.encode("utf-8")), self._digest)


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def load_token(
    *, token_file: Path | None, environ: Mapping[str, str], no_auth: bool
) -> Token | None:
    """The token to require, or None when authentication is switched off."""
    if no_auth:
        if token_file is not None:
            raise TokenError("--no-auth and --token-file contradict each other; pass only one")
        return None
    if token_file is not None:
        try:
            text = token_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise TokenError(
                f"cannot read the API token file {token_file}: {exc.strerror}"
            ) from None
        # Secrets are often written with a trailing newline; it is not part of the token.
        text = text.strip()
        if not text:
            raise TokenError(f"the API token file {token_file} is empty")
        return Token(text)
    text = environ.get(TOKEN_ENV, "").strip()
    if text:
        return Token(text)
    raise TokenError(
        f"the control API needs a token: pass --token-file PATH or set ${TOKEN_ENV}, "
        "or pass --no-auth to run it without authentication (only on a trusted network)"
    )


def bearer_of(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, or None if there is none."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != _SCHEME:
        return None
    value = value.strip()
    return value or None
