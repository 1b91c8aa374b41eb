"""A local Microsoft identity platform + Microsoft Graph simulator over real HTTPS, for connector tests.

Follows the documented wire format: the OpenID configuration and v2.0 token endpoint msal calls
(client secret or signed client assertion, AADSTS error bodies), Graph ``@odata.nextLink`` paging with
``$skiptoken``, ``$select``, Graph error bodies, the 403 for ``signInActivity`` on unlicensed tenants, and
throttling (429 with or without ``Retry-After``, 503). Faults are scripted per path, in request order.
"""

from __future__ import annotations

import json
import secrets
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import jwt

GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
# Server-chosen page sizes where a client cannot ask ($top unsupported or left out).
DEFAULT_PAGE = {"/v1.0/users": 100, "/v1.0/users/delta": 200,
                "/v1.0/reports/authenticationMethods/userRegistrationDetails": 1000,
                "/v1.0/roleManagement/directory/roleAssignments": 1000, "/v1.0/auditLogs/directoryAudits": 1000}


@dataclass
class Fault:
    status: int
    retry_after: str | None = None
    code: str = "TooManyRequests"


@dataclass
class Tenant:
    tenant_id: str
    client_id: str
    client_secret: str | None = None
    certificate_pem: str | None = None  # the app's registered certificate, for client assertions
    licensed: bool = True  # Entra ID P1/P2: signInActivity readable
    users: list[dict[str, Any]] = field(default_factory=list)
    registration: list[dict[str, Any]] = field(default_factory=list)
    role_assignments: list[dict[str, Any]] = field(default_factory=list)
    audits: list[dict[str, Any]] = field(default_factory=list)
    subscribed_skus: list[dict[str, Any]] = field(default_factory=list)  # GET /subscribedSkus (skuId, skuPartNumber)
    managers: dict[str, str] = field(default_factory=dict)  # user id -> manager's user id ($expand=manager)
    forbidden: set[str] = field(default_factory=set)  # paths the app lacks permission for


def make_tenant(count: int, now: datetime, **fields: Any) -> Tenant:
    """A generated tenant: a tenth of the users dormant for a year, every fiftieth never signed in."""
    tenant = Tenant(tenant_id=str(uuid.uuid4()), client_id=str(uuid.uuid4()), **fields)
    for n in range(count):
        user_id = str(uuid.UUID(int=n + 1))
        if n % 50 == 49:
            last = None
        elif n % 10 == 9:
            last = now - timedelta(days=365)
        else:
            last = now - timedelta(days=n % 30)
        tenant.users.append({
            "id": user_id, "userPrincipalName": f"user{n}@contoso.test", "mail": f"user{n}@contoso.test",
            "displayName": f"User {n}", "accountEnabled": n % 97 != 0,
            "userType": "Guest" if n % 40 == 39 else "Member",
            "createdDateTime": (now - timedelta(days=700)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "passwordPolicies": None,
            "signInActivity": {"lastSuccessfulSignInDateTime": last.strftime("%Y-%m-%dT%H:%M:%SZ") if last else None,
                               "lastSignInDateTime": last.strftime("%Y-%m-%dT%H:%M:%SZ") if last else None},
        })
        tenant.registration.append({"id": user_id, "isMfaRegistered": n % 4 != 0})
    tenant.role_assignments.append({"id": "ra1", "principalId": str(uuid.UUID(int=10)),
                                    "roleDefinitionId": GLOBAL_ADMIN, "directoryScopeId": "/"})
    return tenant


class GraphSimulator:
    def __init__(self, tenant: Tenant, cert: Path, key: Path, latency: float = 0.0) -> None:
        self.tenant, self.latency = tenant, latency
        self.faults: dict[str, list[Fault | None]] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # (method, path, headers)
        self.tokens: set[str] = set()
        # Users delta: every change gets a version; a delta token is the version it was issued at.
        self.version = 0
        self.changes: list[tuple[int, str, dict[str, Any] | None]] = []  # (version, user id, changed fields)
        self.oldest_valid_token = 0
        self.token_requests: list[dict[str, list[str]]] = []
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.base_url = f"https://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> GraphSimulator:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def change_user(self, user_id: str, **fields: Any) -> None:
        user = next(u for u in self.tenant.users if u["id"] == user_id)
        user.update(fields)
        self.version += 1
        self.changes.append((self.version, user_id, fields))

    def add_user(self, user: dict[str, Any]) -> None:
        self.tenant.users.append(user)
        self.version += 1
        self.changes.append((self.version, user["id"], dict(user)))

    def remove_user(self, user_id: str) -> None:
        self.tenant.users = [u for u in self.tenant.users if u["id"] != user_id]
        self.version += 1
        self.changes.append((self.version, user_id, None))

    def expire_delta_tokens(self) -> None:
        self.oldest_valid_token = self.version + 1

    def graph_requests(self, path: str) -> list[dict[str, str]]:
        return [headers for method, p, headers in self.requests if p == path]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        simulator = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                simulator._get(self)

            def do_POST(self) -> None:
                simulator._post(self)

        return Handler

    # ---- identity platform ----

    def _post(self, request: BaseHTTPRequestHandler) -> None:
        send = request._send  # type: ignore[attr-defined]
        path = urlparse(request.path).path
        if path != f"/{self.tenant.tenant_id}/oauth2/v2.0/token":
            send(400, aad_error("invalid_request", 90002, f"Tenant '{path.split('/')[1]}' not found."))
            return
        length = int(request.headers.get("Content-Length", 0))
        form = parse_qs(request.rfile.read(length).decode())
        self.token_requests.append(form)
        if form.get("client_id", [""])[0] != self.tenant.client_id:
            send(400, aad_error("unauthorized_client", 700016,
                                f"Application with identifier '{form.get('client_id', [''])[0]}' was not found"))
            return
        if not self._client_authenticated(form, path):
            send(401, aad_error("invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being "
                                "sent in the request is the client secret value, not the client secret ID."))
            return
        token = secrets.token_urlsafe(24)
        self.tokens.add(token)
        send(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token})

    def _client_authenticated(self, form: dict[str, list[str]], path: str) -> bool:
        if "client_secret" in form:
            return self.tenant.client_secret is not None and form["client_secret"][0] == self.tenant.client_secret
        assertion = form.get("client_assertion", [None])[0]
        if not assertion or self.tenant.certificate_pem is None:
            return False
        from cryptography import x509

        public_key = x509.load_pem_x509_certificate(self.tenant.certificate_pem.encode()).public_key()
        try:
            claims = jwt.decode(assertion, public_key, algorithms=["RS256", "PS256"],  # type: ignore[arg-type]
                                audience=f"{self.base_url}{path}")
        except jwt.PyJWTError:
            return False
        return bool(claims.get("iss") == claims.get("sub") == self.tenant.client_id)

    # ---- Graph ----

    def _get(self, request: BaseHTTPRequestHandler) -> None:
        send = request._send  # type: ignore[attr-defined]
        url = urlparse(request.path)
        if url.path == f"/{self.tenant.tenant_id}/v2.0/.well-known/openid-configuration":
            base = f"{self.base_url}/{self.tenant.tenant_id}"
            send(200, {"authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                       "token_endpoint": f"{base}/oauth2/v2.0/token", "issuer": f"{base}/v2.0"})
            return
        self.requests.append(("GET", url.path, dict(request.headers.items())))
        if self.latency:
            time.sleep(self.latency)
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            send(401, graph_error("InvalidAuthenticationToken", "Access token is empty or invalid."))
            return
        faults = self.faults.get(url.path)
        if faults:
            fault = faults.pop(0)
            if fault is not None:
                headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                send(fault.status, graph_error(fault.code, "Simulated fault."), headers)
                return
        if url.path in self.tenant.forbidden:
            send(403, graph_error("Authorization_RequestDenied", "Insufficient privileges to complete the operation."))
            return
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/v1.0/users/delta" and "$deltatoken" in query:
            self._delta_changes(request, query)
            return
        collections = {
            "/v1.0/users": self.tenant.users,
            "/v1.0/users/delta": self.tenant.users,
            "/v1.0/reports/authenticationMethods/userRegistrationDetails": self.tenant.registration,
            "/v1.0/roleManagement/directory/roleAssignments": self.tenant.role_assignments,
            "/v1.0/auditLogs/directoryAudits": self.tenant.audits,
            "/v1.0/subscribedSkus": self.tenant.subscribed_skus,
        }
        if url.path not in collections:
            send(404, graph_error("Request_ResourceNotFound", f"Resource '{url.path}' does not exist."))
            return
        selected = [s for s in query.get("$select", "").split(",") if s]
        if "signInActivity" in selected and not self.tenant.licensed:
            send(403, graph_error("Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                                  "Neither tenant is B2C or tenant doesn't have premium license"))
            return
        top = int(query.get("$top", str(DEFAULT_PAGE.get(url.path, 100))))
        if "$expand" in query:
            top = min(top, 100)  # Graph caps /users pages at 100 with $expand, whatever $top says
        if "signInActivity" in selected and top > 500:
            send(400, graph_error("Request_UnsupportedQuery", "$top is limited to 500 with signInActivity."))
            return
        items = collections[url.path]
        if "$filter" in query and url.path == "/v1.0/auditLogs/directoryAudits":
            since = query["$filter"].split("activityDateTime ge ")[1].split(" ")[0]
            items = [a for a in items if a["activityDateTime"] >= since]
        start = int(query.get("$skiptoken", "0"))
        page = items[start : start + top]
        if selected:
            page = [{k: v for k, v in item.items() if k in selected or k == "id"} for item in page]
        if url.path == "/v1.0/users" and query.get("$expand", "").startswith("manager"):
            by_id = {u["id"]: u for u in self.tenant.users}
            page = [item | ({"manager": {"@odata.type": "#microsoft.graph.user", "id": manager,
                                         "displayName": by_id[manager]["displayName"],
                                         "userPrincipalName": by_id[manager]["userPrincipalName"]}}
                            if (manager := self.tenant.managers.get(item["id"])) else {}) for item in page]
        body: dict[str, Any] = {"@odata.context": f"{self.base_url}/v1.0/$metadata", "value": page}
        if start + top < len(items):
            next_query = {k: v for k, v in query.items() if k != "$skiptoken"} | {"$skiptoken": str(start + top)}
            body["@odata.nextLink"] = f"{self.base_url}{url.path}?{urlencode(next_query)}"
        elif url.path == "/v1.0/users/delta":
            body["@odata.deltaLink"] = f"{self.base_url}{url.path}?$deltatoken={self.version}"
        send(200, body)

    def _delta_changes(self, request: BaseHTTPRequestHandler, query: dict[str, str]) -> None:
        send = request._send  # type: ignore[attr-defined]
        token = int(query["$deltatoken"])
        if token < self.oldest_valid_token:
            send(410, graph_error("SyncStateNotFound", "The sync state generation is not found or has expired."))
            return
        minimal = "return=minimal" in request.headers.get("Prefer", "")
        merged: dict[str, dict[str, Any] | None] = {}
        for version, user_id, fields in self.changes:
            if version <= token:
                continue
            if fields is None:
                merged[user_id] = None
            else:
                previous = merged.get(user_id) or {}
                merged[user_id] = previous | fields
        value: list[dict[str, Any]] = []
        for user_id, fields in merged.items():
            if fields is None:
                value.append({"id": user_id, "@removed": {"reason": "changed"}})
            elif minimal:
                value.append({"id": user_id, **fields})
            else:
                value.append(next(u for u in self.tenant.users if u["id"] == user_id))
        send(200, {"value": value, "@odata.deltaLink": f"{self.base_url}/v1.0/users/delta?$deltatoken={self.version}"})


def graph_error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "innerError": {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "request-id": str(uuid.uuid4()),
        "client-request-id": str(uuid.uuid4())}}}


def aad_error(error: str, code: int, text: str) -> dict[str, Any]:
    trace = str(uuid.uuid4())
    return {"error": error, "error_description": f"AADSTS{code}: {text}\r\nTrace ID: {trace}\r\nCorrelation ID: "
            f"{uuid.uuid4()}\r\nTimestamp: {datetime.now(UTC):%Y-%m-%d %H:%M:%SZ}", "error_codes": [code],
            "timestamp": f"{datetime.now(UTC):%Y-%m-%d %H:%M:%SZ}", "trace_id": trace,
            "correlation_id": str(uuid.uuid4())}
