"""Source type ``slack``: a Slack workspace's users (``users.list``) and, on paid plans, ``team.accessLogs``.

get: ``users.list`` paged by ``response_metadata.next_cursor`` (always with ``limit``: without it Slack
tries the whole team at once); ``team.accessLogs`` pages (at most 100 of up to 1,000 entries). Slack reports
errors as HTTP 200 with ``"ok": false``; rate limits as 429 with ``Retry-After``. transform: deleted users
are disabled; bots, app users and workflow bots (and Slackbot) are bots; single- and multi-channel guests are
guests; ``has_2fa`` (admin tokens only) is MFA registration; the newest ``date_last`` of a user's access-log
entries is their last activity.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from auditor.model import Account, AccountKind
from auditor.secrets import Redactor
from auditor.timeconv import from_unix, to_iso
from connectors.base import CollectContext, SourceResult, SourceType
from connectors.http_json import HttpError, JsonHttpClient
from connectors.paging import Cursor, PageRequest, pages
from connectors.preflight import AccessCheck, Probe
from connectors.saas import (
    CANNOT_AUDIT,
    TokenSourceConfig,
    client,
    probe_checks,
    read_error,
    secret,
    throttle_warnings,
)
from connectors.values import ValueProblems

SLACKBOT = "USLACKBOT"  # Slackbot is not flagged is_bot
ACCESS_LOG_MAX_PAGES = 100  # Slack serves no page past 100 with page-based paging


class SlackConfig(TokenSourceConfig):
    type: Literal["slack"]
    base_url: str = "https://slack.com/api"  # the token: users:read, users:read.email, admin (for accessLogs)
    page_size: int = Field(default=200, ge=1, le=1000)
    read_access_logs: bool = True


def _check(body: Any, url: str) -> None:
    """The Web API answers errors with HTTP 200 and ``ok: false``."""
    if not isinstance(body, dict) or body.get("ok") is not True:
        body = body if isinstance(body, dict) else {}
        error = str(body.get("error", "unknown_error"))
        detail = f"needed scope {body['needed']}" if body.get("needed") else "the Web API said ok=false"
        raise HttpError(200, error, detail, url.rsplit("/", 1)[-1])


def _call(api: JsonHttpClient, method: str, params: Mapping[str, str]) -> dict[str, Any]:
    body = api.get_json(f"{api.base_url}/{method}", params, {})
    _check(body, method)
    return body


def _users(config: SlackConfig, api: JsonHttpClient, problems: ValueProblems) -> list[dict[str, Any]]:
    first = PageRequest(f"{api.base_url}/users.list", {"limit": str(config.page_size)})
    return [m for page in pages(api, Cursor("members"), first, problems, check=_check) for m in page]


def _last_access(
    api: JsonHttpClient, problems: ValueProblems,
) -> tuple[dict[str, float | None], bool, float | None]:
    """(user id -> newest date_last, None where an entry of that user was unreadable; whether every entry was
    read; the oldest date_last read)."""
    latest: dict[str, float | None] = {}
    oldest: float | None = None
    page, pages = 1, 1
    while page <= min(pages, ACCESS_LOG_MAX_PAGES):
        body = _call(api, "team.accessLogs", {"count": "1000", "page": str(page)})
        pages, page_oldest = read_access_logs(body, page, latest, problems)
        if page_oldest is not None:
            oldest = page_oldest if oldest is None else min(oldest, page_oldest)
        page += 1
    return latest, pages <= ACCESS_LOG_MAX_PAGES, oldest


def read_access_logs(
    body: Mapping[str, Any], page: int, latest: dict[str, float | None], problems: ValueProblems,
) -> tuple[int, float | None]:
    """Fold one team.accessLogs page into ``latest`` (user id -> newest date_last; None once an entry of the
    user was unreadable: their last access is then unknown). Returns (pages announced, oldest date_last)."""
    oldest: float | None = None
    where = f"team.accessLogs page {page}"
    for entry in problems.items(body.get("logins"), where, "logins"):
        user_id = entry.get("user_id") if isinstance(entry, dict) else None
        if not isinstance(user_id, str) or not user_id:
            continue
        record = f"{user_id} (team.accessLogs)"
        if entry.get("date_last") is None:
            problems.missing(record, "date_last", "activity unknown")
        when = problems.epoch(entry.get("date_last"), record, "date_last")
        if when is None or (user_id in latest and latest[user_id] is None):
            latest[user_id] = None
            continue
        last = when.timestamp()
        latest[user_id] = max(latest.get(user_id) or 0.0, last)
        oldest = last if oldest is None else min(oldest, last)
    paging = problems.mapping(body.get("paging"), where, "paging") or {}
    return problems.integer(paging.get("pages"), where, "paging.pages") or 1, oldest


def map_user(
    source: str, member: Mapping[str, Any], access: dict[str, float | None] | None, complete: bool,
    horizon: str | None, unknown_reason: str, problems: ValueProblems,
) -> Account:
    user_id = problems.text(member.get("id"), "member", "id") or ""
    name = problems.text(member.get("name"), user_id, "name")
    record = f"{name} ({user_id})" if name else user_id
    profile = problems.mapping(member.get("profile"), record, "profile") or {}

    def flag(key: str) -> bool:
        return problems.boolean(member.get(key), record, key) is True

    bot = user_id == SLACKBOT or any(flag(k) for k in ("is_bot", "is_app_user", "is_workflow_bot"))
    guest = flag("is_restricted") or flag("is_ultra_restricted")
    roles = [r for r in ("is_primary_owner", "is_owner", "is_admin") if flag(r)]
    deleted = problems.boolean(member.get("deleted"), record, "deleted")
    if member.get("deleted") is None:
        problems.missing(record, "deleted", "enabled state unknown")
    seen = access.get(user_id) if access is not None else None
    unreadable = access is not None and user_id in access and seen is None
    # Access logs record people's sign-ins; bots and Slackbot never sign in, so absence says nothing of them.
    known = access is not None and not unreadable and not bot and (seen is not None or complete)
    reason = None if known else (
        unknown_reason if access is None else "an access-log entry was unreadable" if unreadable
        else "bots and apps do not sign in: access logs do not cover them" if bot
        else f"not in the access-log entries read (back to {horizon})")
    raw = {k: str(member[k]) for k in ("deleted", "is_restricted", "is_ultra_restricted", "is_bot", "updated",
                                       "two_factor_type") if member.get(k) is not None}
    return Account(
        source=source, id=user_id, username=name or user_id,
        enabled=None if deleted is None else not deleted, kind=AccountKind.BOT if bot else AccountKind.GUEST if guest
        else AccountKind.HUMAN,
        email=problems.text(profile.get("email"), record, "profile.email"),
        display_name=problems.text(member.get("real_name"), record, "real_name")
        or problems.text(profile.get("real_name"), record, "profile.real_name"),
        activity_known=known, activity_unknown_reason=reason,
        last_activity_at=from_unix(seen) if seen else None,
        last_activity_attribute="team.accessLogs date_last" if known else None,
        last_activity_raw=str(int(seen)) if seen else None,
        mfa_registered=problems.boolean(member.get("has_2fa"), record, "has_2fa"),
        privileged=bool(roles), privilege_evidence=roles, raw=raw,
    )


def collect(config: SlackConfig, context: CollectContext) -> SourceResult:
    redact = Redactor()
    api = client(config, f"Bearer {secret('token', config.token_env, config.token_file, redact)}")
    problems = ValueProblems()
    try:
        members = _users(config, api, problems)
    except HttpError as exc:
        raise read_error(config, "users.list", exc, redact) from None
    warnings: list[str] = []
    access: dict[str, float | None] | None = None
    complete, horizon = False, None
    reason = "access logs not read (read_access_logs = false)"
    if config.read_access_logs:
        try:
            access, complete, oldest = _last_access(api, problems)
            horizon = to_iso(from_unix(oldest)) if oldest else None
            if not complete:
                warnings.append(f"team.accessLogs has more than {ACCESS_LOG_MAX_PAGES} pages: users not seen since "
                                f"{horizon} have unknown activity")
        except HttpError as exc:
            reason = ("team.accessLogs needs a paid plan" if exc.code == "paid_only"
                      else f"team.accessLogs not readable ({exc.code})")
            warnings.append(f"activity unknown: {reason}: {redact(exc.message)}")
    accounts = problems.map_each(members, lambda m: map_user(config.name, m, access, complete, horizon, reason,
                                                              problems))
    warnings += throttle_warnings(api, "Retry-After") + problems.warnings()
    return SourceResult(accounts=accounts, warnings=warnings, partial_error=problems.partial_error())


def check_access(config: SlackConfig) -> list[AccessCheck]:
    probes = [Probe("users.list (users:read)", "/users.list", {"limit": "1"}, CANNOT_AUDIT, check=_check)]
    if config.read_access_logs:
        probes.append(Probe("team.accessLogs (admin, paid plan)", "/team.accessLogs", {"count": "1"},
                            "activity unknown for every user", check=_check))
    return probe_checks(config, lambda redact: f"Bearer {secret('token', config.token_env, config.token_file, redact)}",
                        probes)


PERMISSIONS = (
    "users:read and users:read.email (a bot or user token); team.accessLogs needs a user token with the admin "
    "scope, installed by an admin, on a paid plan. Without it activity is unknown; has_2fa is shown to admins only.",
)
SOURCE_TYPE = SourceType("slack", "A Slack workspace: users.list and team.accessLogs", SlackConfig, collect,
                         check_access, PERMISSIONS)
