"""JSON APIs over HTTPS with throttling handled as the vendors document it (Graph, SCIM, Okta, ...).

429/503/504 are retried: ``Retry-After`` (seconds) is honoured; without it, exponential backoff with full
jitter. Attempts per request and total waiting are bounded.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests

_RETRYABLE = {429, 503, 504}


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
    """(code, message) from the error body formats we meet: Graph, SCIM (RFC 7644 3.12), Okta, generic."""
    try:
        body = response.json()
    except ValueError:
        return "error", response.text[:300]
    if isinstance(body, dict):
        if isinstance(body.get("error"), dict):  # Microsoft Graph
            return str(body["error"].get("code", "error")), str(body["error"].get("message", ""))
        if "detail" in body or "scimType" in body:  # SCIM
            return str(body.get("scimType") or body.get("status") or "error"), str(body.get("detail", ""))
        if "errorCode" in body:  # Okta
            return str(body["errorCode"]), str(body.get("errorSummary", ""))
    return "error", response.text[:300]


class JsonHttpClient:
    """GET JSON from one API with bounded, documented retries. ``authorization`` gives the header value
    for each request (a bearer token that may be refreshed, or Basic credentials)."""

    def __init__(
        self, session: requests.Session, base_url: str, authorization: Callable[[], str], retry: RetryPolicy,
        timeout: float,
    ) -> None:
        self.session, self.base_url, self.authorization = session, base_url.rstrip("/"), authorization
        self.retry, self.timeout = retry, timeout
        self.waited = 0.0  # seconds spent honouring throttling, reported as evidence of the run

    def get_json(self, url: str, params: Mapping[str, str] | None, headers: Mapping[str, str]) -> dict[str, Any]:
        for attempt in range(1, self.retry.attempts + 1):
            try:
                response = self.session.get(
                    url, params=params, timeout=self.timeout,
                    headers={"Authorization": self.authorization(), "Accept": "application/json", **headers},
                )
            except requests.RequestException as exc:
                if attempt == self.retry.attempts:
                    raise HttpError(0, "network", str(exc), url) from None
                self._wait(None, attempt, url)
                continue
            if response.status_code in _RETRYABLE and attempt < self.retry.attempts:
                self._wait(response.headers.get("Retry-After"), attempt, url)
                continue
            if response.status_code >= 400:
                code, message = _error_of(response)
                raise HttpError(response.status_code, code, message, url)
            try:
                body: dict[str, Any] = response.json()
            except ValueError:
                raise HttpError(response.status_code, "invalid_json", "the response is not JSON", url) from None
            return body
        raise AssertionError("unreachable")

    def _wait(self, retry_after: str | None, attempt: int, url: str) -> None:
        delay = None
        if retry_after:
            try:
                delay = max(0.0, float(retry_after))
            except ValueError:
                delay = None
        if delay is None:  # full jitter: spreads retries of many clients apart
            delay = random.uniform(0, min(self.retry.max_delay, self.retry.base_delay * 2 ** (attempt - 1)))
        if self.waited + delay > self.retry.max_total_wait:
            raise HttpError(429, "throttled", f"gave up after waiting {self.waited:.0f} s for throttling", url)
        self.waited += delay
        time.sleep(delay)
