"""A Google OAuth 2.0 token endpoint + Admin SDK Directory ``users.list`` simulator over HTTPS.

The token endpoint takes a service account's signed JWT (RFC 7523 jwt-bearer grant), checks its signature,
audience and scope, and that ``sub`` is an administrator the delegation allows; errors follow Google's OAuth
bodies. ``users.list`` needs ``customer`` or ``domain``, pages with ``pageToken``/``nextPageToken``,
caps ``maxResults`` at 500, and answers rate limits with 429 or 403 ``rateLimitExceeded`` and no Retry-After.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.simulators.https import HttpsSimulator, Reply, Request

SCOPE = "https://www.googleapis.com/auth/admin.directory.user.readonly"
NEVER = "1970-01-01T00:00:00.000Z"


def google_time(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z") if moment else NEVER


def google_error(code: int, message: str, reason: str, status: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message,
                      "errors": [{"message": message, "domain": "global", "reason": reason}], "status": status}}


@dataclass
class Workspace:
    customer_id: str = "C01abcdef"
    users: list[dict[str, Any]] = field(default_factory=list)
    delegated_scopes: set[str] = field(default_factory=lambda: {SCOPE})
    key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    client_email: str = "auditor@audit-project.iam.gserviceaccount.com"

    def key_json(self, token_uri: str) -> str:
        pem = self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode()
        return json.dumps({"type": "service_account", "project_id": "audit-project", "private_key_id": "k1",
                           "private_key": pem, "client_email": self.client_email, "client_id": "1234567890",
                           "token_uri": token_uri})


def google_user(user_id: str, email: str, *, last_login: datetime | None, created: datetime,
                **fields: Any) -> dict[str, Any]:
    return {"kind": "admin#directory#user", "id": user_id, "primaryEmail": email,
            "name": {"givenName": email.split("@")[0], "familyName": "Test", "fullName": f"{email.split('@')[0]} Test"},
            "isAdmin": False, "isDelegatedAdmin": False, "lastLoginTime": google_time(last_login),
            "creationTime": google_time(created), "agreedToTerms": True, "suspended": False, "archived": False,
            "changePasswordAtNextLogin": False, "ipWhitelisted": False, "isMailboxSetup": True,
            "isEnrolledIn2Sv": True, "isEnforcedIn2Sv": True, "orgUnitPath": "/", "customerId": "C01abcdef",
            **fields}


class GoogleSimulator(HttpsSimulator):
    def __init__(self, workspace: Workspace, *args: Any) -> None:
        super().__init__(*args)
        self.workspace = workspace
        self.tokens: set[str] = set()

    def throttled(self, request: Request, reset: int) -> Reply:
        return Reply(429, google_error(429, "Quota exceeded for quota metric 'Queries'.", "rateLimitExceeded",
                                       "RESOURCE_EXHAUSTED"))

    def route(self, request: Request) -> Reply:
        if request.method == "POST" and request.path == "/token":
            return self._token(request)
        if request.path != "/admin/directory/v1/users":
            return Reply(404, google_error(404, "Not Found", "notFound", "NOT_FOUND"))
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return Reply(401, google_error(401, "Request had invalid authentication credentials.", "authError",
                                           "UNAUTHENTICATED"))
        query = request.query
        if "customer" not in query and "domain" not in query:
            return Reply(400, google_error(400, "Bad Request", "badRequest", "INVALID_ARGUMENT"))
        size = int(query.get("maxResults", "100"))
        if not 1 <= size <= 500:
            return Reply(400, google_error(400, "Invalid Input: maxResults", "invalid", "INVALID_ARGUMENT"))
        start = int(base64.urlsafe_b64decode(query["pageToken"]).decode()) if "pageToken" in query else 0
        users = self.workspace.users
        if "domain" in query:
            users = [u for u in users if u["primaryEmail"].endswith("@" + query["domain"])]
        body: dict[str, Any] = {"kind": "admin#directory#users", "etag": '"etag"', "users": users[start : start + size]}
        if start + size < len(users):
            body["nextPageToken"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
        return Reply(200, body)

    def _token(self, request: Request) -> Reply:
        form = request.form
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return Reply(400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"})
        try:
            claims = jwt.decode(form.get("assertion", ""), self.workspace.key.public_key(), algorithms=["RS256"],
                                audience=f"{self.base_url}/token")
        except jwt.PyJWTError:
            return Reply(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
        if claims.get("iss") != self.workspace.client_email:
            return Reply(400, {"error": "invalid_grant", "error_description": "Invalid issuer"})
        if set(str(claims.get("scope", "")).split()) - self.workspace.delegated_scopes:
            return Reply(401, {"error": "unauthorized_client", "error_description": "Client is unauthorized to "
                               "retrieve access tokens using this method, or client not authorized for any of the "
                               "scopes requested."})
        admins = {u["primaryEmail"] for u in self.workspace.users if u.get("isAdmin")}
        if claims.get("sub") not in admins:
            return Reply(400, {"error": "invalid_grant", "error_description": "Invalid email or User ID"})
        token = "ya29." + secrets.token_urlsafe(32)
        self.tokens.add(token)
        return Reply(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})
