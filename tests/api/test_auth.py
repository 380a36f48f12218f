"""Bearer tokens: loading, checking in constant time, and never showing them."""

from __future__ import annotations

import hmac
import logging

import aiohttp
import pytest

from clickstream_generator.control import auth, serving
from clickstream_generator.control.api import ApiSettings, make_app
from clickstream_generator.control.auth import TOKEN_ENV, Token, TokenError, load_token
from tests.api.conftest import AUTH, TOKEN, make_producer

PROTECTED = [
    ("GET", "/v1/status"),
    ("POST", "/v1/start"),
    ("POST", "/v1/stop"),
    ("GET", "/v1/config"),
    ("PUT", "/v1/config"),
]


@pytest.mark.asyncio
@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_a_request_without_a_token_gets_401_with_a_challenge(make_client, sink, method, path):
    client = await make_client(make_producer(sink))

    reply = await client.request(method, path)

    assert reply.status == 401
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await reply.json())["error"]["code"] == "unauthorized"
    assert sink.received == 0


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "header", [f"Bearer {TOKEN}x", "Bearer wrong", f"Basic {TOKEN}", TOKEN, "Bearer "]
)
async def test_a_wrong_token_gets_401_and_is_not_echoed(make_client, sink, header):
    client = await make_client(make_producer(sink))

    reply = await client.post("/v1/start", headers={"Authorization": header})
    text = await reply.text()

    assert reply.status == 401
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    assert TOKEN not in text
    assert "wrong" not in text
    assert (await client.get("/v1/status", headers=AUTH)).status == 200
    assert (await (await client.get("/v1/status", headers=AUTH)).json())["state"] == "idle"


@pytest.mark.asyncio
async def test_the_correct_token_is_accepted_with_any_case_of_the_scheme(make_client, sink):
    client = await make_client(make_producer(sink))

    reply = await client.get("/v1/status", headers={"Authorization": f"bearer {TOKEN}"})

    assert reply.status == 200


@pytest.mark.asyncio
async def test_tokens_are_compared_with_compare_digest(make_client, sink, monkeypatch):
    calls = []
    original = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return original(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    client = await make_client(make_producer(sink))

    good = await client.get("/v1/status", headers=AUTH)
    bad = await client.get("/v1/status", headers={"Authorization": "Bearer nope"})

    assert (good.status, bad.status) == (200, 401)
    assert len(calls) == 2
    # Fixed-length digests: the comparison leaks neither content nor length.
    assert all(len(a) == len(b) == 32 for a, b in calls)


@pytest.mark.asyncio
@pytest.mark.parametrize("name", ["token", "TOKEN", "access_token"])
async def test_a_token_in_the_query_string_is_refused_even_when_correct(make_client, sink, name):
    client = await make_client(make_producer(sink))

    reply = await client.post(f"/v1/start?{name}={TOKEN}", headers=AUTH)
    body = await reply.json()

    assert reply.status == 400
    assert body["error"]["code"] == "token_in_url"
    assert "Authorization" in body["error"]["message"]
    assert TOKEN not in await reply.text()
    assert sink.received == 0


@pytest.mark.asyncio
async def test_probes_metrics_and_descriptions_are_open_by_default(make_client, sink):
    client = await make_client(make_producer(sink))

    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/info"):
        assert (await client.get(path)).status == 200, path


@pytest.mark.asyncio
async def test_closed_probes_need_the_token(make_client, sink):
    client = await make_client(make_producer(sink), open_probes=False)

    for path in ("/healthz", "/readyz", "/metrics"):
        assert (await client.get(path)).status == 401, path
        assert (await client.get(path, headers=AUTH)).status == 200, path
    assert (await client.get("/info")).status == 200


@pytest.mark.asyncio
async def test_without_auth_everything_is_open(make_client, sink):
    client = await make_client(make_producer(sink), token=None)

    assert (await client.post("/v1/start")).status == 200


@pytest.mark.asyncio
async def test_the_token_never_reaches_the_logs(sink, caplog):
    caplog.set_level(logging.DEBUG)
    producer = make_producer(sink)
    app = make_app(producer, ApiSettings(token=Token(TOKEN)))

    # The production serving path, with its access log at DEBUG.
    async with serving.listening(app, "127.0.0.1", 0) as url, aiohttp.ClientSession() as session:
        for headers, query in (
            (AUTH, ""),
            ({"Authorization": "Bearer guess-123"}, ""),
            ({}, f"?token={TOKEN}"),
        ):
            async with session.get(f"{url}/v1/status{query}", headers=headers) as reply:
                await reply.read()
    await producer.shutdown(1.0)

    assert "/v1/status answered 400" in caplog.text  # the access log is on
    assert TOKEN not in caplog.text
    assert "guess-123" not in caplog.text


def test_the_token_is_read_from_the_file_without_its_newline(tmp_path):
    path = tmp_path / "token"
    path.write_text("abc123\n")

    token = load_token(token_file=path, environ={TOKEN_ENV: "other"}, no_auth=False)

    assert token is not None
    assert token.matches("abc123")
    assert not token.matches("other")
    assert "abc123" not in repr(token)


def test_the_token_is_read_from_the_environment_without_a_file():
    token = load_token(token_file=None, environ={TOKEN_ENV: "from-env"}, no_auth=False)

    assert token is not None
    assert token.matches("from-env")


def test_without_a_token_the_api_refuses_to_start():
    with pytest.raises(TokenError, match="--token-file PATH or set \\$CSGEN_API_TOKEN"):
        load_token(token_file=None, environ={}, no_auth=False)


def test_no_auth_switches_authentication_off_and_contradicts_a_token_file(tmp_path):
    path = tmp_path / "token"
    path.write_text("abc")

    assert load_token(token_file=None, environ={TOKEN_ENV: "x"}, no_auth=True) is None
    with pytest.raises(TokenError, match="contradict"):
        load_token(token_file=path, environ={}, no_auth=True)


@pytest.mark.parametrize("content", ["", "\n  \n"])
def test_an_empty_token_file_is_an_error(tmp_path, content):
    path = tmp_path / "token"
    path.write_text(content)

    with pytest.raises(TokenError, match="empty"):
        load_token(token_file=path, environ={}, no_auth=False)


def test_a_missing_token_file_is_an_error_naming_the_file(tmp_path):
    with pytest.raises(TokenError, match="cannot read the API token file"):
        load_token(token_file=tmp_path / "absent", environ={}, no_auth=False)


def test_an_empty_token_cannot_be_made():
    with pytest.raises(TokenError):
        Token("")
