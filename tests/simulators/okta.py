"""An Okta org simulator: Users, Groups, Policies and System Log APIs over HTTPS, per Okta's wire format.

``Link`` paging with opaque ``after`` cursors; the default user listing leaves out DEPROVISIONED users,
which only a ``status eq "DEPROVISIONED"`` filter returns; ``X-Rate-Limit-*`` headers on every reply and
429 ``E0000047`` whose ``X-Rate-Limit-Reset`` is an epoch time; ``SSWS`` API tokens; Okta error bodies.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.simulators.https import HttpsSimulator, Reply, Request, http_date, link_header

HIDDEN_BY_DEFAULT = {"DEPROVISIONED"}


def okta_time(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z") if moment else None


def okta_error(code: str, summary: str) -> dict[str, Any]:
    return {"errorCode": code, "errorSummary": summary, "errorLink": code, "errorId": f"oae{uuid.uuid4().hex[:20]}",
            "errorCauses": []}


@dataclass
class OktaOrg:
    token: str
    users: list[dict[str, Any]] = field(default_factory=list)
    groups: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # id -> (name, member user ids)
    policies: list[dict[str, Any]] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)
    # Tokens of lesser admins: each token -> the paths it may not read (403 E0000006, as Okta answers them)
    limited_tokens: dict[str, set[str]] = field(default_factory=dict)


def okta_user(user_id: str, login: str, status: str, *, last_login: datetime | None, created: datetime,
              status_changed: datetime | None = None, employee: str | None = None, **profile: Any) -> dict[str, Any]:
    return {
        "id": user_id, "status": status, "created": okta_time(created), "activated": okta_time(created),
        "statusChanged": okta_time(status_changed or created), "lastLogin": okta_time(last_login),
        "lastUpdated": okta_time(status_changed or created), "passwordChanged": okta_time(created),
        "type": {"id": "oty1"},
        "profile": {"login": login, "email": login, "firstName": login.split("@")[0], "lastName": "Test",
                    **({"employeeNumber": employee} if employee else {}), **profile},
        "credentials": {"provider": {"type": "OKTA", "name": "OKTA"}},
        "_links": {"self": {"href": f"https://example.okta.com/api/v1/users/{user_id}"}},
    }


class OktaSimulator(HttpsSimulator):
    def __init__(self, org: OktaOrg, *args: Any) -> None:
        super().__init__(*args)
        self.org = org

    def throttled(self, request: Request, reset: int) -> Reply:
        return Reply(429, okta_error("E0000047", "API call exceeded rate limit due to too many requests."),
                     {"X-Rate-Limit-Limit": "600", "X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": str(reset),
                      "Date": http_date()})

    def route(self, request: Request) -> Reply:
        token = request.headers.get("authorization", "").removeprefix("SSWS ")
        if token != self.org.token and token not in self.org.limited_tokens:
            return Reply(401, okta_error("E0000011", "Invalid token provided"))
        path, query = request.path, request.query
        if path in self.org.limited_tokens.get(token, set()):
            return Reply(403, okta_error("E0000006", "You do not have permission to perform the requested action"))
        if path == "/api/v1/users":
            status = re.fullmatch(r'status eq "([A-Z_]+)"', query.get("filter", ""))
            users = [u for u in self.org.users
                     if (u["status"] == status.group(1) if status else u["status"] not in HIDDEN_BY_DEFAULT)]
            return self._page(request, users, 200)
        if match := re.fullmatch(r"/api/v1/groups/([^/]+)/users", path):
            if match.group(1) not in self.org.groups:
                return Reply(404, okta_error("E0000007", f"Not found: Resource not found: {match.group(1)}"))
            members = set(self.org.groups[match.group(1)][1])
            return self._page(request, [u for u in self.org.users if u["id"] in members], 1000)
        if path == "/api/v1/policies":
            if query.get("type") != "PASSWORD":
                return Reply(400, okta_error("E0000001", "Api validation failed: type"))
            return self._reply(self.org.policies)
        if path == "/api/v1/logs":
            return self._logs(request)
        if path == "/api/v1/groups":  # the Groups API's list: {id, type, profile{name, description}}
            groups = [{"id": group_id, "type": "OKTA_GROUP", "profile": {"name": name, "description": None}}
                      for group_id, (name, _members) in self.org.groups.items()]
            return self._page(request, groups, 200)
        return Reply(404, okta_error("E0000022", "The endpoint does not support the provided HTTP method"))

    def _reply(self, body: Any, headers: dict[str, str] | None = None) -> Reply:
        return Reply(200, body, {"X-Rate-Limit-Limit": "600", "X-Rate-Limit-Remaining": "599",
                                 "X-Rate-Limit-Reset": str(int(time.time()) + 60), "Date": http_date(),
                                 **(headers or {})})

    def _page(self, request: Request, items: list[dict[str, Any]], max_limit: int) -> Reply:
        limit = min(int(request.query.get("limit", str(max_limit))), max_limit)
        start = 0
        if "after" in request.query:  # an opaque cursor: here, the id of the last item of the previous page
            cursor = request.query["after"]
            start = next(i for i, item in enumerate(items) if item.get("uuid", item.get("id")) == cursor) + 1
        page = items[start : start + limit]
        more = start + limit < len(items)
        query = {k: v for k, v in request.query.items() if k != "after"}
        next_cursor = {"after": page[-1].get("uuid", page[-1].get("id"))} if more and page else None
        return self._reply(page, {"Link": link_header(self.base_url, request.path, query, next_cursor)})

    def _logs(self, request: Request) -> Reply:
        query = request.query
        since = datetime.fromisoformat(query["since"].replace("Z", "+00:00")) if "since" in query else None
        if since is not None and since < datetime.now(UTC) - timedelta(days=180):
            return Reply(400, okta_error("E0000001", "Api validation failed: since"))
        if "until" not in query:
            return Reply(400, okta_error("E0000001", "this simulator serves bounded queries only"))
        until = datetime.fromisoformat(query["until"].replace("Z", "+00:00"))
        wanted = set(re.findall(r'eventType eq "([^"]+)"', query.get("filter", "")))
        events = sorted((e for e in self.org.logs
                         if (since is None or e["published"] >= okta_time(since))
                         and e["published"] < okta_time(until) and (not wanted or e["eventType"] in wanted)),
                        key=lambda e: e["published"])
        return self._page(request, events, 1000)


def log_event(event_type: str, user: dict[str, Any], at: datetime, actor: str = "admin@example.com") -> dict[str, Any]:
    return {
        "uuid": str(uuid.uuid4()), "published": okta_time(at), "eventType": event_type,
        "displayMessage": event_type, "severity": "INFO", "outcome": {"result": "SUCCESS"},
        "actor": {"id": "00uadmin", "type": "User", "alternateId": actor, "displayName": "Admin"},
        "target": [{"id": user["id"], "type": "User", "alternateId": user["profile"]["login"],
                    "displayName": user["profile"]["login"]}],
    }
