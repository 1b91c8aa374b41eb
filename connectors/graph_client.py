"""Microsoft Graph: full ``@odata.nextLink`` paging over the retrying JSON client. Headers such as
``ConsistencyLevel`` are sent on every page (Graph does not carry them forward in nextLink)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import requests

from connectors.http_json import HttpError, JsonHttpClient, RetryPolicy, TrustedSession

GraphError = HttpError  # Graph's errors are the client's errors, with Graph's code and message
__all__ = ["GraphClient", "GraphError", "RetryPolicy", "TrustedSession"]


class GraphClient(JsonHttpClient):
    def __init__(
        self, session: requests.Session, base_url: str, token: Callable[[], str], retry: RetryPolicy, timeout: float,
    ) -> None:
        super().__init__(session, base_url, lambda: f"Bearer {token()}", retry, timeout)
        self.delta_link: str | None = None  # the @odata.deltaLink of the last delta round read to its end

    def pages(
        self, path: str, params: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield each page's ``value``, following the whole nextLink URL (never rebuilt from parts).

        ``path`` is relative to the Graph endpoint, or a saved link under it (a delta link).
        """
        if path.startswith("https://"):
            if not path.startswith(self.base_url + "/"):
                raise HttpError(0, "foreign_link", "a saved link does not point at the Graph endpoint", path)
            url: str | None = path
        else:
            url = self.base_url + path
        query: Mapping[str, str] | None = params
        self.delta_link = None
        while url:
            body = self.get_json(url, query, headers or {})
            value = body.get("value", [])
            yield [item for item in value if isinstance(item, dict)]
            url, query = body.get("@odata.nextLink"), None
            if url is None:
                self.delta_link = body.get("@odata.deltaLink")
