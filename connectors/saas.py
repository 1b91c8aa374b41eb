"""What the SaaS API connectors share: HTTPS config keys, secrets, the retrying client, time values.

Each SaaS connector (okta, google, github, slack, scim) is a ``get`` over its vendor's API and a
``transform`` into the inventory; the plumbing here keeps them to that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pydantic import Field, model_validator

from auditor.secrets import Redactor, SecretUnavailable, resolve_secret
from connectors.base import SourceConfig, SourceError
from connectors.http_json import HttpError, JsonHttpClient, RetryPolicy, Throttling, TrustedSession
from connectors.paging import LinkHeader, PageRequest, pages
from connectors.preflight import AccessCheck, Probe, run_probes
from connectors.values import ValueProblems


class HttpsSourceConfig(SourceConfig):
    """Keys of every source read over an HTTPS API."""

    base_url: str
    ca_bundle: Path | None = Field(default=None, strict=False)
    allow_insecure_http: bool = False  # only for a lab; credentials would cross the network in clear
    timeout: int = Field(default=60, ge=1, le=600)
    max_attempts: int = Field(default=6, ge=1, le=20)
    max_throttle_wait: int = Field(default=600, ge=0)  # seconds of throttling waits before giving up

    def insecure_settings(self) -> list[str]:
        return [f"PLAIN HTTP IS ALLOWED (allow_insecure_http = true): credentials and data for {self.base_url} may "
                "cross the network in clear"] if self.allow_insecure_http and self.base_url.startswith("http:") else []

    @model_validator(mode="after")
    def _transport(self) -> HttpsSourceConfig:
        check_url(self.base_url, self.allow_insecure_http)
        return self


class TokenSourceConfig(HttpsSourceConfig):
    """An HTTPS source that authenticates with one API token."""

    token_env: str | None = None
    token_file: Path | None = Field(default=None, strict=False)

    @model_validator(mode="after")
    def _one_token(self) -> TokenSourceConfig:
        if bool(self.token_env) == bool(self.token_file):
            raise ValueError("set token_env or token_file (the API token), one of them")
        return self


def check_url(url: str, allow_insecure_http: bool) -> None:
    parsed = urlparse(url)
    if parsed.scheme not in ("https", "http") or not parsed.hostname:
        raise ValueError(f"'{url}' is not an http(s) URL")
    if parsed.scheme == "http" and not allow_insecure_http:
        raise ValueError(f"sending credentials to {url} over plain http would expose them; use https "
                         "or set allow_insecure_http = true")


def secret(what: str, env_name: str | None, file_path: Path | None, redact: Redactor) -> str:
    """A secret from the environment or a file, registered for redaction; a SourceError when unavailable."""
    try:
        value = resolve_secret(what, env_name, file_path)
    except SecretUnavailable as exc:
        raise SourceError(str(exc)) from None
    redact.add(value)
    return value


def client(
    config: HttpsSourceConfig, authorization: str | Callable[[], str | None] | None,
    throttling: Throttling | None = None, base_url: str | None = None,
) -> JsonHttpClient:
    """``authorization``: a fixed header value, or a function giving it per request (tokens that expire)."""
    session = TrustedSession(str(config.ca_bundle) if config.ca_bundle else None)
    header = authorization if callable(authorization) else (lambda: authorization)
    return JsonHttpClient(session, base_url or config.base_url, header,
                          RetryPolicy(config.max_attempts, config.max_throttle_wait), config.timeout, throttling)


def link_pages(
    api: JsonHttpClient, path: str, params: Mapping[str, str], problems: ValueProblems,
    headers: Mapping[str, str] | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """Every page of a listing paged by RFC 8288 ``Link: <...>; rel="next"`` headers (Okta, GitHub)."""
    return pages(api, LinkHeader(api), PageRequest(f"{api.base_url}{path}", params), problems, headers)


class OptionalReads:
    """The one policy for parts of a source that may be refused (MFA state, roles, logs, policies): a refusal
    (401/403, or a status the vendor documents as "not allowed for this token") means that part is unknown,
    said in a warning; any other failure makes the source partial, because then data is missing unseen."""

    def __init__(self, redact: Redactor, warnings: list[str]) -> None:
        self.redact, self.warnings = redact, warnings
        self.failures: list[str] = []

    def refused(self, exc: HttpError, what: str, refused: tuple[int, ...] = (401, 403)) -> bool:
        """Handle ``exc`` from reading ``what``: True when it was a refusal (the caller records the unknown),
        False when it made the source partial."""
        if exc.status in refused:
            return True
        self.failures.append(f"{what}: {self.redact(str(exc))}")
        return False

    def partial_error(self) -> str | None:
        return "; ".join(self.failures) or None


def read_error(config: HttpsSourceConfig, what: str, exc: HttpError, redact: Redactor) -> SourceError:
    """A failed read, phrased for the user: refused credentials are said as such; no secret in it."""
    if exc.status in (401, 403):
        code = f" {exc.code}" if exc.code not in (str(exc.status), "error") else ""
        return SourceError(f"{config.base_url}: {what}: authentication or permission refused "
                           f"(HTTP {exc.status}{code}): {redact(exc.message)}")
    return SourceError(f"{config.base_url}: {what} failed: {redact(str(exc))}")


def throttle_warnings(api: JsonHttpClient, vendor_rule: str) -> list[str]:
    if not api.throttled:
        return []
    return [f"the API throttled {api.throttled} request(s): waited {api.waited:.0f} s, as {vendor_rule} asked"]


CANNOT_AUDIT = "the source cannot be audited"


def probe_checks(config: HttpsSourceConfig, authorization: Callable[[Redactor], str | Callable[[], str | None]],
                 probes: list[Probe], throttling: Throttling | None = None) -> list[AccessCheck]:
    """check-access for an HTTPS source: the credential read (``authorization`` raises SourceError when it
    cannot be), then each probe once, without retries: a preflight answers in seconds."""
    redact = Redactor()
    try:
        header = authorization(redact)
    except SourceError as exc:
        return [AccessCheck("read the credential", "missing", CANNOT_AUDIT, redact(str(exc)))]
    api = client(config.model_copy(update={"max_attempts": 1}), header, throttling)
    return run_probes(api, probes, redact)
