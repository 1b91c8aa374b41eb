"""JSON APIs over HTTPS with throttling handled as the vendors document it (Graph, SCIM, Okta, ...).

Throttled responses are retried: what counts as throttled and how long to wait is per vendor
(:class:`Throttling`): ``Retry-After`` (seconds or an HTTP date), or a rate-limit reset given as an epoch
time (Okta, GitHub), read against the server's own clock; otherwise exponential backoff with full jitter.
Attempts per request and total waiting are bounded.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import requests

_RETRYABLE = frozenset({429, 503, 504})
# \ud800-\udfff escaped, or encoded in UTF-8 (json reads bytes with "surrogatepass"): half of a pair, or alone
_MAY_HOLD_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def parse_json(data: bytes) -> Any:
    """JSON a server sent or an export holds (``ValueError`` when it is not). JSON may escape half of a UTF-16
    surrogate pair with nothing to pair it with (``"\\ud800"``), which Python reads into text that no encoding
    can write: every output and the history would fail on it (json also reads one encoded in UTF-8). Such a
    half is read as U+FFFD, the replacement character, in keys and values; pairs are read as the character they
    make. UTF-8 bodies with no sign of one (nearly all) are not walked."""
    value = json.loads(data)
    if json.detect_encoding(data) != "utf-8" or _MAY_HOLD_SURROGATE.search(data):
        value = _replace_lone_surrogates(value)
    return value


def _replace_lone_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_replace_lone_surrogates(k): _replace_lone_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_lone_surrogates(v) for v in value]
    return value


class TrustedSession(requests.Session):
    """A session whose configured CA bundle wins. requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE replace
    ``Session.verify`` unless ``verify`` is passed per request, which would silently ignore ``ca_bundle``."""

    def __init__(self, ca_bundle: str | None) -> None:
        super().__init__()
        self.verify = ca_bundle or True

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("verify", self.verify)
        return super().request(method, url, *args, **kwargs)


class HttpError(Exception):
    def __init__(self, status: int, code: str, message: str, url: str) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status, self.code, self.message, self.url = status, code, message, url


@dataclass
class RetryPolicy:
    attempts: int = 6
    max_total_wait: float = 300.0
    base_delay: float = 1.0
    max_delay: float = 60.0


def _error_of(response: requests.Response) -> tuple[str, str]:
    """(code, message) from the error body formats we meet: Graph, Google, OAuth, SCIM (RFC 7644 3.12), Okta,
    GitHub, generic."""
    try:
        body = parse_json(response.content)
    except ValueError:
        return "error", response.text[:300]
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):  # Microsoft Graph {"code": "X"}; Google {"code": 403, "status": "X"}
            reasons = [e.get("reason") for e in error.get("errors") or [] if isinstance(e, dict) and e.get("reason")]
            code = error.get("code") if isinstance(error.get("code"), str) else (
                reasons[0] if reasons else error.get("status", "error"))
            return str(code), str(error.get("message", ""))
        if isinstance(error, str):  # OAuth 2.0 token endpoint (RFC 6749 5.2)
            return error, str(body.get("error_description", ""))
        if "detail" in body or "scimType" in body:  # SCIM
            return str(body.get("scimType") or body.get("status") or "error"), str(body.get("detail", ""))
        if "errorCode" in body:  # Okta
            return str(body["errorCode"]), str(body.get("errorSummary", ""))
        if "message" in body:  # GitHub
            return "error", str(body["message"])
    return "error", response.text[:300]


def _server_now(response: requests.Response) -> float:
    """The server's clock from its Date header: a reset epoch is compared with the clock that set it."""
    try:
        return parsedate_to_datetime(response.headers["Date"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return time.time()


def retry_after(response: requests.Response) -> float | None:
    """Retry-After as seconds (RFC 9110 10.2.3: delay-seconds or an HTTP date); None when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - _server_now(response))
    except (TypeError, ValueError):
        return None


class Throttling:
    """Which responses mean "slow down", and how long the vendor asks us to wait (None: back off)."""

    def throttled(self, response: requests.Response) -> bool:
        return response.status_code in _RETRYABLE

    def wait(self, response: requests.Response) -> float | None:
        return retry_after(response)


class EpochResetThrottling(Throttling):
    """Vendors that say when the rate-limit window resets as UTC epoch seconds (Okta X-Rate-Limit-Reset,
    GitHub x-ratelimit-reset). The header is a time, not a delay; one second is added because the server's
    Date header, our reference, is truncated to the second."""

    def __init__(self, reset_header: str) -> None:
        self.reset_header = reset_header

    def wait(self, response: requests.Response) -> float | None:
        explicit = retry_after(response)
        if explicit is not None:
            return explicit
        try:
            reset = float(response.headers[self.reset_header])
        except (KeyError, ValueError):
            return None
        return max(0.0, reset - _server_now(response)) + 1.0


@dataclass(frozen=True)
class JsonResponse:
    body: Any  # a JSON object or array
    headers: Mapping[str, str]
    next_url: str | None  # the RFC 8288 Link rel="next" target, when the API pages that way


class JsonHttpClient:
    """JSON from one API with bounded, documented retries. ``authorization`` gives the header value for each
    request (a bearer token that may be refreshed, or Basic credentials); None sends no header."""

    def __init__(
        self, session: requests.Session, base_url: str, authorization: Callable[[], str | None], retry: RetryPolicy,
        timeout: float, throttling: Throttling | None = None,
    ) -> None:
        self.session, self.base_url, self.authorization = session, base_url.rstrip("/"), authorization
        self.retry, self.timeout, self.throttling = retry, timeout, throttling or Throttling()
        self.waited = 0.0  # seconds spent honouring throttling, reported as evidence of the run
        self.throttled = 0  # throttled responses met

    def get_json(self, url: str, params: Mapping[str, str] | None, headers: Mapping[str, str]) -> dict[str, Any]:
        body = self.request("GET", url, params, headers).body
        if not isinstance(body, dict):
            raise HttpError(200, "invalid_json", "expected a JSON object", url)
        return body

    def request(
        self, method: str, url: str, params: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None, json_body: Any = None,
    ) -> JsonResponse:
        for attempt in range(1, self.retry.attempts + 1):
            sent = {"Accept": "application/json", **(headers or {})}
            authorization = self.authorization()
            if authorization is not None:
                sent["Authorization"] = authorization
            try:
                response = self.session.request(method, url, params=params, data=data, json=json_body,
                                                timeout=self.timeout, headers=sent)
            except requests.RequestException as exc:
                if attempt == self.retry.attempts:
                    raise HttpError(0, "network", str(exc), url) from None
                self._wait(None, attempt, url)
                continue
            if self.throttling.throttled(response) and attempt < self.retry.attempts:
                self.throttled += 1
                self._wait(self.throttling.wait(response), attempt, url)
                continue
            if response.status_code >= 400:
                code, message = _error_of(response)
                raise HttpError(response.status_code, code, message, url)
            try:
                body = parse_json(response.content)
            except ValueError:
                raise HttpError(response.status_code, "invalid_json", "the response is not JSON", url) from None
            return JsonResponse(body, response.headers, response.links.get("next", {}).get("url"))
        raise AssertionError("unreachable")

    def _wait(self, delay: float | None, attempt: int, url: str) -> None:
        if delay is None:  # full jitter: spreads retries of many clients apart
            delay = random.uniform(0, min(self.retry.max_delay, self.retry.base_delay * 2 ** (attempt - 1)))
        if self.waited + delay > self.retry.max_total_wait:
            raise HttpError(429, "throttled", f"gave up after waiting {self.waited:.0f} s for throttling", url)
        self.waited += delay
        time.sleep(delay)
