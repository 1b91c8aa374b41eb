"""A GitHub REST + GraphQL simulator for one organization, over HTTPS, per GitHub's documented wire format.

``per_page``/``page`` paging with ``Link`` (rel next/last), ``x-ratelimit-*`` headers and the primary rate
limit's 403 with ``x-ratelimit-remaining: 0``; the ``2fa_disabled`` filter answers 422 unless the token is an
owner's; ``two_factor_requirement_enabled`` only for owners; SAML external identities through GraphQL.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from tests.simulators.https import HttpsSimulator, Reply, Request, http_date, link_header

DOCS = "https://docs.github.com/rest"


@dataclass
class Organization:
    login: str
    owner_token: str
    member_token: str = "ghp_member_token_0000000000000000000000"
    two_factor_required: bool = False
    members: list[dict[str, Any]] = field(default_factory=list)
    admins: set[str] = field(default_factory=set)
    outside: list[dict[str, Any]] = field(default_factory=list)
    two_factor_off: set[str] = field(default_factory=set)
    saml: dict[str, str] | None = None  # login -> SAML nameId; None: the organization has no SAML SSO
    credentials: list[dict[str, Any]] = field(default_factory=list)


def gh_user(login: str, number: int, kind: str = "User") -> dict[str, Any]:
    return {"login": login, "id": number, "node_id": f"U_{number}", "type": kind, "site_admin": False,
            "url": f"https://api.github.com/users/{login}"}


class GitHubSimulator(HttpsSimulator):
    def __init__(self, org: Organization, *args: Any) -> None:
        super().__init__(*args)
        self.org = org

    def _limits(self, remaining: int = 4999, reset: int | None = None) -> dict[str, str]:
        return {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": str(remaining), "x-ratelimit-used": "1",
                "x-ratelimit-reset": str(reset or int(time.time()) + 3600), "x-ratelimit-resource": "core",
                "Date": http_date()}

    def throttled(self, request: Request, reset: int) -> Reply:
        return Reply(403, {"message": "API rate limit exceeded for user ID 1.", "documentation_url": DOCS},
                     self._limits(0, reset))

    def route(self, request: Request) -> Reply:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in (self.org.owner_token, self.org.member_token):
            return Reply(401, {"message": "Bad credentials", "documentation_url": DOCS}, self._limits())
        owner = token == self.org.owner_token
        org = f"/orgs/{self.org.login}"
        if request.method == "POST" and request.path == "/graphql":
            return self._graphql(request)
        if request.path == org:
            details: dict[str, Any] = {"login": self.org.login, "id": 1, "type": "Organization"}
            if owner:
                details["two_factor_requirement_enabled"] = self.org.two_factor_required
            return Reply(200, details, self._limits())
        if request.path in (f"{org}/members", f"{org}/outside_collaborators"):
            people = self.org.members if request.path.endswith("/members") else self.org.outside
            if request.query.get("filter") == "2fa_disabled":
                if not owner:
                    return Reply(422, {"message": "Only owners can use this filter.", "documentation_url": DOCS})
                people = [p for p in people if p["login"] in self.org.two_factor_off]
            if request.query.get("role") == "admin":
                people = [p for p in people if p["login"] in self.org.admins]
            return self._page(request, people)
        if request.path == f"{org}/credential-authorizations":
            if self.org.saml is None:
                return Reply(404, {"message": "Not Found", "documentation_url": DOCS})
            return self._page(request, self.org.credentials)
        return Reply(404, {"message": "Not Found", "documentation_url": DOCS})

    def _page(self, request: Request, items: list[dict[str, Any]]) -> Reply:
        size = min(int(request.query.get("per_page", "30")), 100)
        page = int(request.query.get("page", "1"))
        chunk = items[(page - 1) * size : page * size]
        last = max(1, math.ceil(len(items) / size))
        query = {k: v for k, v in request.query.items() if k != "page"}
        links = link_header(self.base_url, request.path, query, {"page": str(page + 1)} if page < last else None)
        return Reply(200, chunk, self._limits() | {"Link": links})

    def _graphql(self, request: Request) -> Reply:
        body = request.json or {}
        if "externalIdentities" not in body.get("query", ""):
            return Reply(200, {"errors": [{"type": "INVALID", "message": "unexpected query"}]})
        if self.org.saml is None:
            return Reply(200, {"data": {"organization": {"samlIdentityProvider": None}}})
        entries = sorted(self.org.saml.items())
        start = int(body.get("variables", {}).get("after") or 0)
        chunk = entries[start : start + 100]
        edges = [{"node": {"samlIdentity": {"nameId": name_id}, "scimIdentity": {"username": None},
                           "user": {"login": login}}} for login, name_id in chunk]
        more = start + 100 < len(entries)
        connection = {"pageInfo": {"hasNextPage": more, "endCursor": str(start + 100) if more else None},
                      "edges": edges}
        return Reply(200, {"data": {"organization": {"samlIdentityProvider": {"externalIdentities": connection}}}})
