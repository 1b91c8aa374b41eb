"""The one paging loop, over real HTTPS: each vendor's strategy, the page bound, foreign links, and listed
items that are not objects (bad records, never silently dropped)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.http_json import HttpError, JsonHttpClient, RetryPolicy, TrustedSession
from connectors.paging import Cursor, LinkHeader, NextLink, PageRequest, PageToken, StartIndex, pages
from connectors.values import ValueProblems
from tests.servers.harness import Pki
from tests.simulators.https import HttpsSimulator, Reply, Request


class Pages(HttpsSimulator):
    """Answers from ``answer(request, simulator)``."""

    def __init__(self, answer: Any, pki: Pki) -> None:
        super().__init__(pki.cert, pki.key)
        self.answer = answer

    def route(self, request: Request) -> Reply:
        result: Reply = self.answer(request, self)
        return result


@pytest.fixture
def serve(pki: Pki) -> Iterator[Any]:
    started: list[Pages] = []

    def start(answer: Any) -> tuple[Pages, JsonHttpClient]:
        simulator = Pages(answer, pki)
        simulator.__enter__()
        started.append(simulator)
        return simulator, JsonHttpClient(TrustedSession(str(pki.ca)), simulator.base_url, lambda: None,
                                         RetryPolicy(attempts=1), timeout=10)

    yield start
    for simulator in started:
        simulator.__exit__(None, None, None)


def _read(api: JsonHttpClient, paging: Any, first: PageRequest) -> tuple[list[Any], ValueProblems]:
    problems = ValueProblems()
    return [item["n"] for page in pages(api, paging, first, problems) for item in page], problems


def test_each_strategy_reads_every_page(serve: Any) -> None:
    def answer(request: Request, sim: Pages) -> Reply:
        n = int(request.query.get("pageToken") or request.query.get("cursor") or request.query.get("after") or
                request.query.get("startIndex") or 1)
        items = [{"n": n}, {"n": n + 1}]
        last = n >= 5
        if request.path == "/link":
            headers = {} if last else {"Link": f'<{sim.base_url}/link?after={n + 2}>; rel="next"'}
            return Reply(200, items, headers)
        if request.path == "/odata":
            return Reply(200, {"value": items, **({"@odata.deltaLink": "d"} if last else
                                                  {"@odata.nextLink": f"{sim.base_url}/odata?after={n + 2}"})})
        if request.path == "/token":
            return Reply(200, {"users": items, **({} if last else {"nextPageToken": str(n + 2)})})
        if request.path == "/cursor":
            return Reply(200, {"ok": True, "members": items,
                               "response_metadata": {"next_cursor": "" if last else str(n + 2)}})
        return Reply(200, {"Resources": items, "totalResults": 6, "itemsPerPage": 2})

    sim, api = serve(answer)
    expected = [1, 2, 3, 4, 5, 6]
    assert _read(api, LinkHeader(api), PageRequest(f"{sim.base_url}/link"))[0] == expected
    odata = NextLink(api)
    assert _read(api, odata, PageRequest(f"{sim.base_url}/odata"))[0] == expected
    assert odata.last_body is not None and odata.last_body["@odata.deltaLink"] == "d"
    assert _read(api, PageToken("users"), PageRequest(f"{sim.base_url}/token", {"maxResults": "2"}))[0] == expected
    assert _read(api, Cursor("members"), PageRequest(f"{sim.base_url}/cursor", {"limit": "2"}))[0] == expected
    assert _read(api, StartIndex(), PageRequest(f"{sim.base_url}/scim", {"startIndex": "1"}))[0] == expected
    # Request parameters are kept on every page (Google's maxResults, Slack's limit).
    assert all(r.query.get("maxResults") == "2" for r in sim.requests if r.path == "/token")


def test_items_that_are_not_objects_are_bad_records(serve: Any) -> None:
    sim, api = serve(lambda request, sim: Reply(200, {"users": [{"n": 1}, "junk", None, {"n": 2}]}))
    found, problems = _read(api, PageToken("users"), PageRequest(f"{sim.base_url}/u"))
    assert found == [1, 2]
    assert problems.partial_error() is not None and "2 listed item(s) are not JSON objects" in problems.partial_error()


def test_a_next_link_to_another_host_is_not_followed(serve: Any) -> None:
    sim, api = serve(lambda request, sim: Reply(200, [{"n": 1}], {"Link": '<https://evil.test/x>; rel="next"'}))
    with pytest.raises(HttpError, match="outside the API"):
        _read(api, LinkHeader(api), PageRequest(f"{sim.base_url}/link"))


def test_a_listing_that_never_ends_is_bounded(serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import connectors.paging

    monkeypatch.setattr(connectors.paging, "MAX_PAGES", 3)  # the bound, not the network, is what is shortened
    sim, api = serve(lambda request, sim: Reply(200, {"users": [{"n": 1}], "nextPageToken": "again"}))
    with pytest.raises(HttpError, match="more than 3 pages"):
        _read(api, PageToken("users"), PageRequest(f"{sim.base_url}/u"))
    assert len(sim.requests) == 3


def test_a_wrong_shape_is_an_error_not_an_empty_page(serve: Any) -> None:
    sim, api = serve(lambda request, sim: Reply(200, {"users": {"not": "a list"}}))
    with pytest.raises(HttpError, match="users is not an array"):
        _read(api, PageToken("users"), PageRequest(f"{sim.base_url}/u"))
