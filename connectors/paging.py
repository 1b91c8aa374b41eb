"""How each API says where the next page is, and the one loop that follows it.

Strategies: RFC 8288 ``Link: rel="next"`` headers (Okta, GitHub), OData ``@odata.nextLink`` (Microsoft
Graph), page tokens (Google ``nextPageToken``), cursors (Slack ``response_metadata.next_cursor``) and SCIM's
1-based ``startIndex`` (RFC 7644 3.4.2.4). Every loop is bounded by :data:`MAX_PAGES`; next links are
followed as given (their cursors are opaque) but never to another host; a listed item that is not a JSON
object is a bad record (the source becomes partial), never silently dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from connectors.http_json import HttpError, JsonHttpClient, JsonResponse
from connectors.values import ValueProblems

MAX_PAGES = 100_000  # a server that never stops paging must not keep us forever


@dataclass(frozen=True)
class PageRequest:
    url: str
    params: Mapping[str, str] | None = None


class Paging:
    """Where a page's records are, and the request for the next page (None after the last)."""

    items_key: str | None = None  # None: the body is the array of records

    def items(self, body: Any, url: str) -> list[Any]:
        if self.items_key is None:
            if not isinstance(body, list):
                raise HttpError(200, "invalid_json", "expected a JSON array", url)
            return body
        if not isinstance(body, dict):
            raise HttpError(200, "invalid_json", "expected a JSON object", url)
        value = body.get(self.items_key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise HttpError(200, "invalid_json", f"{self.items_key} is not an array", url)
        return value

    def next(self, request: PageRequest, response: JsonResponse, count: int) -> PageRequest | None:
        raise NotImplementedError


def _same_api(api: JsonHttpClient, url: str) -> str:
    if not url.startswith(api.base_url + "/"):
        raise HttpError(200, "foreign_link", "a next link points outside the API; not followed", url)
    return url


@dataclass
class LinkHeader(Paging):
    api: JsonHttpClient

    def next(self, request: PageRequest, response: JsonResponse, count: int) -> PageRequest | None:
        return None if response.next_url is None else PageRequest(_same_api(self.api, response.next_url))


@dataclass
class NextLink(Paging):
    """OData: the whole next URL is in the body; the last page may carry a delta link for the next read."""

    api: JsonHttpClient
    items_key: str | None = "value"
    last_body: Mapping[str, Any] | None = None

    def next(self, request: PageRequest, response: JsonResponse, count: int) -> PageRequest | None:
        body = response.body if isinstance(response.body, dict) else {}
        link = body.get("@odata.nextLink")
        if link is None:
            self.last_body = body
            return None
        return PageRequest(_same_api(self.api, str(link)))


@dataclass
class PageToken(Paging):
    items_key: str | None = None
    token_field: str = "nextPageToken"  # noqa: S105 - a field name, not a secret
    param: str = "pageToken"

    def next(self, request: PageRequest, response: JsonResponse, count: int) -> PageRequest | None:
        token = response.body.get(self.token_field) if isinstance(response.body, dict) else None
        return replace(request, params={**(request.params or {}), self.param: str(token)}) if token else None


@dataclass
class Cursor(Paging):
    items_key: str | None = None
    cursor_path: tuple[str, ...] = ("response_metadata", "next_cursor")
    param: str = "cursor"

    def next(self, request: PageRequest, response: JsonResponse, count: int) -> PageRequest | None:
        value: Any = response.body
        for key in self.cursor_path:
            value = value.get(key) if isinstance(value, dict) else None
        return replace(request, params={**(request.params or {}), self.param: str(value)}) if value else None


@dataclass
class StartIndex(Paging):
    """SCIM: 1-based ``startIndex`` advanced by the records received, until ``totalResults``."""

    items_key: str | None = "Resources"

    def next(self, request: PageRequest, response: JsonResponse, count: int) -> PageRequest | None:
        params = dict(request.params or {})
        start = int(params.get("startIndex", "1")) + count
        total = response.body.get("totalResults") if isinstance(response.body, dict) else None
        try:
            total = int(total) if isinstance(total, int | str) and not isinstance(total, bool) else 0
        except ValueError:
            total = 0
        if not count or start > total:
            return None
        return replace(request, params=params | {"startIndex": str(start)})


def pages(
    api: JsonHttpClient, paging: Paging, first: PageRequest, problems: ValueProblems,
    headers: Mapping[str, str] | None = None, check: Callable[[Any, str], None] | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """Each page's records. ``check(body, url)`` raises HttpError for a vendor's in-body errors (Slack's
    ``ok: false``)."""
    request: PageRequest | None = first
    for number in range(1, MAX_PAGES + 1):
        if request is None:
            return
        response = api.request("GET", request.url, request.params, headers)
        if check is not None:
            check(response.body, request.url)
        items = paging.items(response.body, request.url)
        objects = [item for item in items if isinstance(item, dict)]
        if len(objects) != len(items):
            problems.bad_record(f"page {number} of {first.url}",
                                f"{len(items) - len(objects)} listed item(s) are not JSON objects")
        yield objects
        request = paging.next(request, response, len(items))
    raise HttpError(200, "endless_paging", f"more than {MAX_PAGES} pages", first.url)
