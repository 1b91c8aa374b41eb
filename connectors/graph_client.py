"""Microsoft Graph over requests: full ``@odata.nextLink`` paging and throttling done as documented.

429/503/504 are retried: ``Retry-After`` (seconds) is honoured; without it, exponential backoff with full
jitter. Attempts per request and total waiting are bounded. Headers such as ``ConsistencyLevel`` are sent
on every page (Graph does not carry them forward in nextLink).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping
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


class GraphError(Exception):
    def __init__(self, status: int, code: str, message: str, url: str) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status, self.code, self.message, self.url = status, code, message, url


@dataclass
class RetryPolicy:
    attempts: int = 6
    max_total_wait: float = 300.0
    base_delay: float = 1.0
    max_delay: float = 60.0


class GraphClient:
    def __init__(
        self, session: requests.Session, base_url: str, token: Callable[[], str], retry: RetryPolicy, timeout: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.session, self.base_url, self.token = session, base_url.rstrip("/"), token
        self.retry, self.timeout, self.sleep = retry, timeout, sleep
        self.waited = 0.0  # seconds spent honouring throttling, reported as evidence of the run
        self.delta_link: str | None = None  # the @odata.deltaLink of the last delta round read to its end

    def _get(self, url: str, params: Mapping[str, str] | None, headers: Mapping[str, str]) -> dict[str, Any]:
        for attempt in range(1, self.retry.attempts + 1):
            try:
                response = self.session.get(
                    url, params=params, timeout=self.timeout,
                    headers={"Authorization": f"Bearer {self.token()}", "Accept": "application/json", **headers},
                )
            except requests.RequestException as exc:
                if attempt == self.retry.attempts:
                    raise GraphError(0, "network", str(exc), url) from None
                self._wait(None, attempt, url)
                continue
            if response.status_code in _RETRYABLE and attempt < self.retry.attempts:
                self._wait(response.headers.get("Retry-After"), attempt, url)
                continue
            if response.status_code >= 400:
                code, message = "error", response.text[:300]
                try:
                    error = response.json().get("error", {})
                    code, message = error.get("code", code), error.get("message", message)
                except ValueError:
                    pass
                raise GraphError(response.status_code, code, message, url)
            try:
                body: dict[str, Any] = response.json()
            except ValueError:
                raise GraphError(response.status_code, "invalid_json", "the response is not JSON", url) from None
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
            raise GraphError(429, "throttled", f"gave up after waiting {self.waited:.0f} s for throttling", url)
        self.waited += delay
        self.sleep(delay)

    def pages(
        self, path: str, params: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield each page's ``value``, following the whole nextLink URL (never rebuilt from parts).

        ``path`` is relative to the Graph endpoint, or a saved link under it (a delta link).
        """
        if path.startswith("https://"):
            if not path.startswith(self.base_url + "/"):
                raise GraphError(0, "foreign_link", "a saved link does not point at the Graph endpoint", path)
            url: str | None = path
        else:
            url = self.base_url + path
        query: Mapping[str, str] | None = params
        self.delta_link = None
        while url:
            body = self._get(url, query, headers or {})
            value = body.get("value", [])
            yield [item for item in value if isinstance(item, dict)]
            url, query = body.get("@odata.nextLink"), None
            if url is None:
                self.delta_link = body.get("@odata.deltaLink")
