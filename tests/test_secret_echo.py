"""Servers that echo credentials: no secret, in any encoding, leaves the process (issue: hostile input).

A loopback HTTPS server answers every request by reflecting the request's Authorization header and body into
every error field the vendors have (Graph and AADSTS, Okta, GitHub, Slack, SCIM, Google's token endpoint).
Each connector that takes a credential runs a whole audit against it; every output file of every run, every
row of the history (blobs decompressed) and stderr are searched for each derived form of the secret.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, urlencode

import pytest
from click.testing import CliRunner

from auditor.cli import main
from tests.servers.harness import Pki
from tests.simulators.google import Workspace
from tests.simulators.https import HttpsSimulator, Reply, Request

SECRET = "S3cr3t+Token/Value=42&x"  # '+', '/', '=' and '&' change under URL and base64 encoding
PASSWORD = "Basic+Pass/Word=99"
JWT_START = "eyJ"


class Reflector(HttpsSimulator):
    """Every answer is an error that quotes the request's credentials back, in every vendor's fields."""

    def route(self, request: Request) -> Reply:
        if request.path.endswith("/.well-known/openid-configuration"):  # msal's discovery, then the token call
            base = self.base_url + request.path.split("/v2.0/")[0]
            return Reply(200, {"authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                               "token_endpoint": f"{base}/oauth2/v2.0/token", "issuer": f"{base}/v2.0"})
        body = urlencode(request.form) if request.form else json.dumps(request.json or "")
        authorization = next((v for k, v in request.headers.items() if k.lower() == "authorization"), "")
        echo = f"you sent Authorization: {authorization} and body: {body}"
        if "token" in request.path:  # OAuth 2.0 token endpoints (RFC 6749 5.2), AADSTS style
            return Reply(401, {"error": "invalid_client", "error_description": echo, "error_codes": [7000215],
                               "error_uri": echo, "correlation_id": echo})
        if request.path.startswith("/api/") and "." in request.path:  # Slack Web API: 200 with ok false
            return Reply(200, {"ok": False, "error": echo, "needed": echo, "provided": echo, "warning": echo})
        return Reply(401, {
            "error": {"code": echo, "message": echo, "innerError": {"request-id": echo}},  # Graph
            "errorCode": echo, "errorSummary": echo, "errorLink": echo, "errorId": echo,  # Okta
            "errorCauses": [{"errorSummary": echo}],
            "message": echo, "documentation_url": echo, "errors": [{"message": echo, "code": echo}],  # GitHub
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "detail": echo, "scimType": echo,  # SCIM
            "status": "401",
        }, {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{echo}"'})

    def throttled(self, request: Request, reset: int) -> Reply:
        return Reply(429, {})


@pytest.fixture
def reflector(pki: Pki) -> Iterator[Reflector]:
    with Reflector(pki.cert, pki.key) as server:
        yield server


def forms(secret: str) -> set[str]:
    raw = secret.encode()
    encoded = {base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}
    return {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1],
            *encoded, *(e.rstrip("=") for e in encoded)}


def everything_written(tmp_path: Path, output: str) -> str:
    """Every output file of every run, every history row (compressed blobs opened), and what was printed."""
    parts = [output]
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            parts.append(path.read_bytes().decode("utf-8", "replace"))
            if path.suffix == ".zip":
                import zipfile

                with zipfile.ZipFile(path) as bundle:
                    parts += [bundle.read(n).decode("utf-8", "replace") for n in bundle.namelist()]
    with sqlite3.connect(tmp_path / "h.sqlite") as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in db.execute(f"SELECT * FROM {table}"):  # noqa: S608 - our own table names
                for value in row:
                    if isinstance(value, bytes):
                        try:
                            value = zlib.decompress(value)
                        except zlib.error:
                            pass
                        value = value.decode("utf-8", "replace")
                    parts.append(str(value))
    return "\n".join(parts)


def key_file(tmp_path: Path, reflector: Reflector) -> Path:
    path = tmp_path / "sa.json"
    path.write_text(Workspace().key_json(f"{reflector.base_url}/token"))
    return path


SOURCES = {
    "okta": ("type = 'okta'\nbase_url = '{url}'\ntoken_env = 'ECHO_SECRET'\n", [SECRET]),
    "github": ("type = 'github'\nbase_url = '{url}'\norganization = 'acme'\ntoken_env = 'ECHO_SECRET'\n", [SECRET]),
    "slack": ("type = 'slack'\nbase_url = '{url}/api'\ntoken_env = 'ECHO_SECRET'\n", [SECRET]),
    "scim-bearer": ("type = 'scim'\nbase_url = '{url}/v2'\ntoken_env = 'ECHO_SECRET'\n", [SECRET]),
    "scim-basic": ("type = 'scim'\nbase_url = '{url}/v2'\nusername = 'auditor'\npassword_env = 'ECHO_PASSWORD'\n",
                   [PASSWORD, base64.b64encode(f"auditor:{PASSWORD}".encode()).decode()]),
    "entra": ("type = 'entra'\ntenant_id = '11111111-2222-3333-4444-555555555555'\nclient_id = 'app'\n"
              "client_secret_env = 'ECHO_SECRET'\nauthority_host = '{url}'\ngraph_endpoint = '{url}'\n", [SECRET]),
    "google": ("type = 'google'\nbase_url = '{url}'\ncredentials_file = '{key}'\nsubject = 'admin@example.com'\n",
               []),  # the private key and the signed assertion; the key's PEM body is checked below
}


@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_a_server_echoing_credentials_leaks_nothing(kind: str, reflector: Reflector, pki: Pki, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECHO_SECRET", SECRET)
    monkeypatch.setenv("ECHO_PASSWORD", PASSWORD)
    template, secrets = SOURCES[kind]
    key = key_file(tmp_path, reflector)
    source = template.format(url=reflector.base_url, key=key)
    (tmp_path / "users.csv").write_text("id,u,e\n1,ann,true\n")
    config = tmp_path / "audit.toml"
    config.write_text(
        "[audit]\nhistory_db = 'h.sqlite'\n"
        f"[[sources]]\nname = 'echoing'\n{source}ca_bundle = '{pki.ca}'\nmax_attempts = 1\n"
        f"[[sources]]\nname = 'files'\ntype = 'csv'\npath = '{tmp_path / 'users.csv'}'\n"
        "columns = { id = 'id', username = 'u', enabled = 'e' }\n")
    result = CliRunner().invoke(main, ["run", "--config", str(config), "--output", str(tmp_path / "out"),
                                       "--evidence"])
    assert result.exit_code == 3, result.output  # the echoing source failed; the other was audited
    assert reflector.requests, "the connector never reached the reflecting server"
    written = everything_written(tmp_path, result.output)
    assert "[redacted]" in written  # the echo did arrive in the error: it was scrubbed, not lost
    for secret in secrets:
        for form in forms(secret):
            assert form not in written, f"{kind}: {form!r} leaked"
    assert JWT_START + "hbGciOi" not in written and "eyJ0eXAiOi" not in written  # no signed assertion, no token
    if kind == "google":
        pem = json.loads(key.read_text())["private_key"]
        assert pem.splitlines()[1] not in written


def test_scrubbing_covers_every_encoding() -> None:
    from auditor.secrets import register, scrub_bytes, scrub_text

    register(SECRET)
    for form in forms(SECRET):
        assert scrub_text(f"x {form} y") == "x [redacted] y"
        assert scrub_bytes(f"x {form} y".encode()) == b"x [redacted] y"
    token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhdWRpdG9yIn0.c2lnbmF0dXJlLWJ5dGVz"
    assert scrub_text(f"assertion={token}&grant_type=x") == "assertion=[redacted]&grant_type=x"
    quiet: dict[str, Any] = {"harmless": "an ordinary sentence, kept as it is"}
    assert scrub_text(json.dumps(quiet)) == json.dumps(quiet)
