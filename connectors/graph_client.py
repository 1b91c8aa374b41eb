"""Microsoft Graph: full ``@odata.nextLink`` paging over the retrying JSON client. Headers such as
``ConsistencyLevel`` are sent on every page (Graph does not carry them forward in nextLink)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import requests

from connectors.http_json import HttpError, JsonHttpClient, RetryPolicy, TrustedSession
from connectors.paging import NextLink, PageRequest, pages
from connectors.values import ValueProblems

GraphError = HttpError  # Graph's errors are the client's errors, with Graph's code and message
__all__ = ["GraphClient", "GraphError", "RetryPolicy", "TrustedSession"]


class GraphClient(JsonHttpClient):
    def __init__(
        self, session: requests.Session, base_url: str, token: Callable[[], str], retry: RetryPolicy, timeout: float,
        problems: ValueProblems | None = None,
    ) -> None:
        super().__init__(session, base_url, lambda: f"Bearer {token()}", retry, timeout)
        self.problems = problems or ValueProblems()  # listed items that are not objects: bad records
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
            url = path
        else:
            url = self.base_url + path
        self.delta_link = None
        paging = NextLink(self)
        yield from pages(self, paging, PageRequest(url, params), self.problems, headers)
        if paging.last_body is not None:
            link = paging.last_body.get("@odata.deltaLink")
            self.delta_link = None if link is None else str(link)
