"""Atlassian's auth server (OAuth 2.0 3LO with rotating refresh tokens) and request authentication.

Rules (FACTS.md §1, §6):
- `/authorize` checks client_id, redirect_uri and response_type=code, echoes `state`, and (standing in
  for the consent screen) redirects straight back with a code, as if the demo admin clicked "Accept".
- `/oauth/token`: access tokens live `access_token_ttl` seconds. Every refresh rotates the refresh
  token. The old refresh token and its companion access token stay valid for `refresh_leeway`
  seconds, then are revoked; reusing a rotated refresh token after the leeway revokes the whole
  family (403 invalid_grant). Refresh tokens die after 90 days unused and 365 days after consent.
- The gateway answers `{"code":401,"message":"Unauthorized"}` for a dead access token and
  `"Unauthorized; scope does not match"` for a missing scope.
"""
from __future__ import annotations

import base64
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any, Optional
from urllib.parse import urlencode, urlsplit

import orjson

from .clock import Clock
from .config import SimulatorConfig
from .errors import HttpError, gateway_error, oauth_error
from .rand import hex_id
from .timeutil import MS_PER_DAY
from .world import User, World

CLASSIC_SCOPES = (
    "read:jira-work", "write:jira-work", "read:jira-user", "manage:jira-configuration", "manage:jira-project",
    "manage:jira-webhook", "read:me",
)
GRANULAR_SCOPES = (
    "read:board-scope:jira-software", "read:board-scope.admin:jira-software", "read:sprint:jira-software",
    "read:epic:jira-software", "read:project:jira", "read:issue-details:jira", "read:jql:jira",
    "read:project-version:jira", "read:project.component:jira", "read:issue-worklog:jira",
)
OFFLINE = "offline_access"
ALL_SCOPES = CLASSIC_SCOPES + GRANULAR_SCOPES + (OFFLINE,)
INVALID_REFRESH = "Unknown or invalid refresh token."
CODE_TTL_MS = 10 * 60 * 1000
DEMO_ADMIN, NON_ADMIN, SERVICE_ACCOUNT = 0, 1, 6


@dataclass
class Grant:
    """One consent: a family of rotating refresh tokens and their access tokens."""

    id: int
    user: int
    client_id: str
    scopes: frozenset[str]
    consented_ms: int
    revoked: bool = False


@dataclass
class RefreshToken:
    value: str
    grant: Grant
    issued_ms: int
    rotated_ms: Optional[int] = None


@dataclass
class AccessToken:
    value: str
    grant: Grant
    expires_ms: int
    #: the refresh token issued together with this access token (its rotation ends this token's life)
    companion: Optional[RefreshToken] = None


@dataclass
class Principal:
    """Who a request runs as. `user` None = anonymous; `scopes` None = not scope-restricted (Basic)."""

    user: Optional[User]
    scopes: Optional[frozenset[str]] = None
    via_gateway: bool = False
    #: Basic credentials were sent but wrong (Jira then runs the request as anonymous where it can)
    bad_credentials: bool = False

    @property
    def anonymous(self) -> bool:
        return self.user is None

    @property
    def is_admin(self) -> bool:
        return bool(self.user and self.user.is_admin)


@dataclass
class AuthStats:
    tokens_issued: int = 0
    refreshes: int = 0
    invalid_grant: int = 0
    family_revocations: int = 0
    errors_by_kind: dict[str, int] = field(default_factory=dict)


class AuthServer:
    def __init__(self, config: SimulatorConfig, clock: Clock, world: World, cloud_id: str):
        self.config = config
        self.clock = clock
        self.world = world
        self.cloud_id = cloud_id
        seed = config.seed
        self.client_id = hex_id(seed, 901, length=32)
        self.client_secret = "ATOA" + hex_id(seed, 902, length=60)
        self.service_client_id = hex_id(seed, 903, length=32)
        self.service_client_secret = "ATSA" + hex_id(seed, 904, length=60)
        #: classic (unscoped) API tokens, Basic auth on the site host: email -> token
        self.api_tokens = {
            world.users[DEMO_ADMIN].email: "ATATT3x" + hex_id(seed, 905, length=48),
            world.users[NON_ADMIN].email: "ATATT3x" + hex_id(seed, 906, length=48),
        }
        #: scoped API tokens ("API token with scopes"): Basic auth through the gateway only, limited to their scopes
        self.scoped_api_tokens = {world.users[DEMO_ADMIN].email: "ATATT3x" + hex_id(seed, 907, length=48)}
        self.stats = AuthStats()
        self._lock = threading.Lock()
        self._codes: dict[str, dict[str, Any]] = {}
        self._refresh: dict[str, RefreshToken] = {}
        self._access: dict[str, AccessToken] = {}
        self._grants: list[Grant] = []

    # --- grants for tests and info() ---------------------------------------------------------------
    def grant(self, scopes: Optional[list[str]] = None, admin: bool = True, user: Optional[int] = None) -> str:
        """A refresh token of a fresh consent (as if the user went through /authorize)."""
        chosen = frozenset(scopes if scopes is not None else ALL_SCOPES) | {OFFLINE}
        with self._lock:
            grant = self._new_grant(user if user is not None else (DEMO_ADMIN if admin else NON_ADMIN),
                                    self.client_id, chosen)
            _access, refresh = self._issue_pair(grant)
        return refresh.value

    def _new_grant(self, user: int, client_id: str, scopes: frozenset[str]) -> Grant:
        grant = Grant(len(self._grants) + 1, user, client_id, scopes, self.clock.now_ms())
        self._grants.append(grant)
        return grant

    def _issue_pair(self, grant: Grant, with_refresh: bool = True) -> tuple[AccessToken, Optional[RefreshToken]]:
        now = self.clock.now_ms()
        refresh = None
        if with_refresh and OFFLINE in grant.scopes:
            refresh = RefreshToken("rt-" + self.config.token_marker + secrets.token_urlsafe(32), grant, now)
            self._refresh[refresh.value] = refresh
        access = AccessToken(self._jwt(grant, now), grant, now + self.config.access_token_ttl * 1000, refresh)
        self._access[access.value] = access
        self.stats.tokens_issued += 1
        return access, refresh

    def _jwt(self, grant: Grant, now_ms: int) -> str:
        """A JWT-shaped bearer token (header.payload.signature), like Atlassian's."""
        def part(obj: dict[str, Any]) -> str:
            return base64.urlsafe_b64encode(orjson.dumps(obj)).rstrip(b"=").decode()

        payload = {"sub": self.world.users[grant.user].account_id, "iss": "https://auth.atlassian.com",
                   "aud": "api.atlassian.com", "iat": now_ms // 1000,
                   "exp": now_ms // 1000 + self.config.access_token_ttl, "jti": secrets.token_hex(8),
                   "scope": " ".join(sorted(grant.scopes)), "client_id": grant.client_id}
        signature = self.config.token_marker + secrets.token_urlsafe(32)
        return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(payload)}.{signature}"

    # --- /authorize --------------------------------------------------------------------------------
    def authorize(self, params: dict[str, str]) -> str:
        """Validate an authorization request; return the redirect Location (raises HttpError if no redirect is safe)."""
        if params.get("client_id") != self.client_id:
            raise oauth_error(400, "invalid_client", "Unknown client_id.")
        redirect_uri = params.get("redirect_uri", "")
        if not _local_redirect(redirect_uri):
            raise oauth_error(400, "invalid_request", "The redirect_uri does not match the app's callback URL.")
        state = params.get("state")

        def back(**query: str) -> str:
            if state is not None:
                query["state"] = state
            return f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{urlencode(query)}"

        if params.get("response_type") != "code":
            return back(error="unsupported_response_type", error_description="Only response_type=code is supported.")
        if params.get("audience", "api.atlassian.com") != "api.atlassian.com":
            return back(error="invalid_request", error_description="Unknown audience.")
        scopes = frozenset(params.get("scope", "").split())
        if not scopes:
            return back(error="invalid_scope", error_description="The scope parameter is required.")
        unknown = scopes - set(ALL_SCOPES)
        if unknown:
            return back(error="invalid_scope", error_description=f"Unknown scope(s): {' '.join(sorted(unknown))}")
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = {"client_id": self.client_id, "redirect_uri": redirect_uri, "scopes": scopes,
                                 "user": DEMO_ADMIN, "issued_ms": self.clock.now_ms()}
        return back(code=code)

    # --- /oauth/token ------------------------------------------------------------------------------
    def token(self, body: dict[str, Any]) -> dict[str, Any]:
        grant_type = body.get("grant_type")
        try:
            if grant_type == "authorization_code":
                return self._authorization_code(body)
            if grant_type == "refresh_token":
                return self._refresh_grant(body)
            if grant_type == "client_credentials":
                return self._client_credentials(body)
            if not grant_type:
                raise oauth_error(400, "invalid_request", "Missing grant_type.")
            raise oauth_error(400, "unsupported_grant_type", f"Unsupported grant type: {grant_type}")
        except HttpError as error:
            kind = error.body.get("error", "?") if isinstance(error.body, dict) else "?"
            with self._lock:
                self.stats.errors_by_kind[kind] = self.stats.errors_by_kind.get(kind, 0) + 1
                if kind == "invalid_grant":
                    self.stats.invalid_grant += 1
            raise

    def _check_client(self, body: dict[str, Any]) -> None:
        for name in ("client_id", "client_secret"):
            if not body.get(name):
                raise oauth_error(400, "invalid_request", f"Missing {name}.")
        if body["client_id"] != self.client_id or not secrets.compare_digest(str(body["client_secret"]), self.client_secret):
            raise oauth_error(401, "access_denied", "Unauthorized")

    def _token_response(self, access: AccessToken, refresh: Optional[RefreshToken]) -> dict[str, Any]:
        response: dict[str, Any] = {"access_token": access.value}
        if refresh is not None:
            response["refresh_token"] = refresh.value
        response.update({"expires_in": self.config.access_token_ttl,
                         "scope": " ".join(sorted(access.grant.scopes)), "token_type": "Bearer"})
        return response

    def _authorization_code(self, body: dict[str, Any]) -> dict[str, Any]:
        self._check_client(body)
        if not body.get("code"):
            raise oauth_error(400, "invalid_request", "Missing code.")
        with self._lock:
            code = self._codes.pop(str(body["code"]), None)
            now = self.clock.now_ms()
            if code is None or now - code["issued_ms"] > CODE_TTL_MS:
                raise oauth_error(403, "invalid_grant", "Invalid authorization code")
            if body.get("redirect_uri") != code["redirect_uri"]:
                raise oauth_error(403, "invalid_grant", "redirect_uri does not match the authorization request")
            grant = self._new_grant(code["user"], code["client_id"], code["scopes"])
            access, refresh = self._issue_pair(grant)
        return self._token_response(access, refresh)

    def _refresh_grant(self, body: dict[str, Any]) -> dict[str, Any]:
        self._check_client(body)
        if not body.get("refresh_token"):
            raise oauth_error(400, "invalid_request", "Missing refresh_token.")
        leeway_ms = self.config.refresh_leeway * 1000
        with self._lock:
            now = self.clock.now_ms()
            token = self._refresh.get(str(body["refresh_token"]))
            if token is None or token.grant.revoked or token.grant.client_id != body["client_id"]:
                raise oauth_error(403, "invalid_grant", INVALID_REFRESH)
            grant = token.grant
            if now - grant.consented_ms > self.config.refresh_absolute_days * MS_PER_DAY:
                self._revoke(grant)
                raise oauth_error(403, "invalid_grant", INVALID_REFRESH)
            if now - token.issued_ms > self.config.refresh_inactivity_days * MS_PER_DAY:
                raise oauth_error(403, "invalid_grant", INVALID_REFRESH)
            if token.rotated_ms is not None and now - token.rotated_ms >= leeway_ms:
                # reuse of a rotated token outside the leeway: treat as theft, kill the whole family
                self._revoke(grant)
                raise oauth_error(403, "invalid_grant", INVALID_REFRESH)
            if token.rotated_ms is None:
                token.rotated_ms = now
            access, refresh = self._issue_pair(grant)
            self.stats.refreshes += 1
        return self._token_response(access, refresh)

    def _revoke(self, grant: Grant) -> None:
        if not grant.revoked:
            grant.revoked = True
            self.stats.family_revocations += 1

    def _client_credentials(self, body: dict[str, Any]) -> dict[str, Any]:
        """Service-account credentials: an access token, never a refresh token."""
        if body.get("client_id") != self.service_client_id or body.get("client_secret") != self.service_client_secret:
            if body.get("client_id") == self.client_id:
                raise oauth_error(401, "unauthorized_client",
                                  "The authenticated client is not authorized to use this authorization grant type")
            raise oauth_error(401, "access_denied", "Unauthorized")
        requested = frozenset(str(body.get("scope") or "").split()) or frozenset(ALL_SCOPES) - {OFFLINE}
        with self._lock:
            grant = self._new_grant(SERVICE_ACCOUNT, self.service_client_id, requested - {OFFLINE})
            access, _ = self._issue_pair(grant, with_refresh=False)
        return self._token_response(access, None)

    # --- authenticating API calls ------------------------------------------------------------------
    def bearer(self, value: str) -> Principal:
        """The principal of a gateway Bearer token, or a gateway 401."""
        leeway_ms = self.config.refresh_leeway * 1000
        with self._lock:
            now = self.clock.now_ms()
            token = self._access.get(value)
            if token is None or token.grant.revoked or now >= token.expires_ms:
                raise gateway_error("Unauthorized")
            companion = token.companion
            if companion is not None and companion.rotated_ms is not None and now >= companion.rotated_ms + leeway_ms:
                raise gateway_error("Unauthorized")  # companion refresh token rotated: revoked after the leeway
            user = self.world.users[token.grant.user]
            return Principal(user, token.grant.scopes, via_gateway=True)

    def basic(self, email: str, api_token: str) -> Optional[User]:
        expected = self.api_tokens.get(email)
        if expected is None or not secrets.compare_digest(expected, api_token):
            return None
        return next(u for u in self.world.users if u.email == email)

    def scoped_basic(self, email: str, api_token: str) -> Optional[Principal]:
        """The principal of a scoped API token sent to the gateway, or None for any other credentials."""
        expected = self.scoped_api_tokens.get(email)
        if expected is None or not secrets.compare_digest(expected, api_token):
            return None
        user = next(u for u in self.world.users if u.email == email)
        return Principal(user, frozenset(ALL_SCOPES) - {OFFLINE}, via_gateway=True)

    def is_scoped_token(self, email: str, api_token: str) -> bool:
        expected = self.scoped_api_tokens.get(email)
        return expected is not None and secrets.compare_digest(expected, api_token)

    def accessible_resources(self, principal: Principal) -> list[dict[str, Any]]:
        scopes = sorted((principal.scopes or frozenset()) - {OFFLINE})
        return [{"id": self.cloud_id, "name": "demo", "url": self.world.site_url, "scopes": scopes,
                 "avatarUrl": "https://site-admin-avatar-cdn.prod.public.atl-paas.net/avatars/240/rocket.png"}]


def _local_redirect(uri: str) -> bool:
    """The demo app accepts any loopback callback (what a CLI login listener uses)."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and parts.hostname in ("127.0.0.1", "localhost")
