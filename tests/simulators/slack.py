"""A Slack Web API simulator (users.list, team.accessLogs) over HTTPS, per Slack's documented wire format.

Errors are HTTP 200 with ``"ok": false``; ``users.list`` pages with ``response_metadata.next_cursor``;
``team.accessLogs`` pages with ``page``/``paging.pages`` (100 pages at most) and answers ``paid_only`` on
free plans; rate limits are 429 with ``Retry-After`` in seconds.
"""

from __future__ import annotations

import base64
import math
import time
from dataclasses import dataclass, field
from typing import Any

from tests.simulators.https import HttpsSimulator, Reply, Request


@dataclass
class SlackTeam:
    token: str
    paid: bool = True
    members: list[dict[str, Any]] = field(default_factory=list)
    logins: list[dict[str, Any]] = field(default_factory=list)  # access-log entries


def slack_member(user_id: str, name: str, email: str | None = None, **flags: Any) -> dict[str, Any]:
    return {"id": user_id, "team_id": "T01", "name": name, "deleted": False, "real_name": name.title(),
            "tz": "Europe/London", "is_admin": False, "is_owner": False, "is_primary_owner": False,
            "is_restricted": False, "is_ultra_restricted": False, "is_bot": False, "is_app_user": False,
            "updated": int(time.time()) - 86_400, "has_2fa": True,
            "profile": {"real_name": name.title(), "display_name": name, **({"email": email} if email else {})},
            **flags}


def access_entry(user_id: str, name: str, last: float) -> dict[str, Any]:
    return {"user_id": user_id, "username": name, "date_first": int(last) - 86_400 * 30, "date_last": int(last),
            "count": 12, "ip": "203.0.113.7", "user_agent": "Slack/4.41", "isp": "Example ISP", "country": "GB",
            "region": "ENG"}


class SlackSimulator(HttpsSimulator):
    def __init__(self, team: SlackTeam, *args: Any) -> None:
        super().__init__(*args)
        self.team = team

    def throttled(self, request: Request, reset: int) -> Reply:
        wait = max(1, math.ceil(reset - time.time()))
        return Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(wait)})

    def route(self, request: Request) -> Reply:
        if request.headers.get("authorization") != f"Bearer {self.team.token}":
            return Reply(200, {"ok": False, "error": "invalid_auth"})
        if request.path == "/api/users.list":
            limit = min(int(request.query.get("limit", "0")) or len(self.team.members), 1000)
            start = int(base64.b64decode(request.query["cursor"]).decode().split(":")[1]) if request.query.get(
                "cursor") else 0
            chunk = self.team.members[start : start + limit]
            cursor = base64.b64encode(f"user:{start + limit}".encode()).decode() if start + limit < len(
                self.team.members) else ""
            return Reply(200, {"ok": True, "members": chunk, "cache_ts": int(time.time()),
                               "response_metadata": {"next_cursor": cursor}})
        if request.path == "/api/team.accessLogs":
            if not self.team.paid:
                return Reply(200, {"ok": False, "error": "paid_only"})
            count = min(int(request.query.get("count", "100")), 1000)
            page = int(request.query.get("page", "1"))
            if page > 100:
                return Reply(200, {"ok": False, "error": "over_pagination_limit"})
            entries = sorted(self.team.logins, key=lambda e: -e["date_last"])
            pages = max(1, math.ceil(len(entries) / count))
            return Reply(200, {"ok": True, "logins": entries[(page - 1) * count : page * count],
                               "paging": {"count": count, "total": len(entries), "page": page, "pages": pages}})
        return Reply(404, {"ok": False, "error": "unknown_method"})
