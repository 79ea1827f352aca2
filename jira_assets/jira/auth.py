"""How requests are authorised: OAuth 2.0 (3LO) with rotating refresh tokens, API tokens, client credentials.

Every auth answers three questions for the client: which API root to use (``uses_gateway``), which
``Authorization`` header to send now, and whether a 401 can be fixed by a new access token.

OAuth 3LO refresh is single-flight across threads (a lock), processes and machines (the token store's lock):
take the lock, re-read the store, use an access token someone else just stored if it is still good, otherwise
exchange the stored refresh token, persist the rotated pair durably, and only then use it (C12).
"""
from __future__ import annotations

import base64
import contextlib
import ipaddress
import os
import random
import threading
import time
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import urlparse

import orjson
import requests
from oauthlib.oauth2 import BackendApplicationClient
from requests_oauthlib import OAuth2Session

from .errors import (
    LOGIN_AGAIN,
    ConfigError,
    JiraAuthError,
    JiraError,
    JiraProtocolError,
    JiraRateLimited,
    JiraServerError,
    messages_from_body,
)
from .redact import has_userinfo, install_log_redaction, redact, register_secret, without_userinfo
from .token_store import LockTimeout, TokenSet, TokenStore

ATLASSIAN_AUTH_URL = "https://auth.atlassian.com"
ATLASSIAN_API_URL = "https://api.atlassian.com"
TOKEN_TIMEOUT = (10, 30)
LOCK_PATIENCE_SECONDS = 120.0

install_log_redaction()


class JiraAuth:
    """What the client needs from any authentication method."""

    uses_gateway: bool = True  # api.atlassian.com/ex/jira/{cloudId} rather than the site host
    can_refresh: bool = False  # a 401 "Unauthorized" may be fixed by getting a new access token
    refreshes: int = 0  # token exchanges this object performed (metadata)

    def authorization(self) -> str:
        """The ``Authorization`` header value to send now (refreshing first when needed)."""
        raise NotImplementedError

    def recover_from_unauthorized(self, rejected_authorization: str) -> bool:
        """A request sent with ``rejected_authorization`` got a gateway 401 "Unauthorized": make a
        retry worth it. Returns False when nothing can be done (the caller then raises)."""
        return False

    def describe(self) -> str:
        return type(self).__name__


class ApiToken(JiraAuth):
    """Basic ``email:api_token``. Classic tokens go to the site host; scoped tokens must go through the
    gateway."""

    can_refresh = False

    def __init__(self, email: str, api_token: str, scoped: bool = False) -> None:
        if not email or not api_token:
            raise ConfigError("API token auth needs both an email and an API token")
        register_secret(api_token)
        self.uses_gateway = scoped
        self._header = "Basic " + base64.b64encode(f"{email}:{api_token}".encode()).decode()
        register_secret(self._header.split()[1])

    def authorization(self) -> str:
        return self._header

    def describe(self) -> str:
        return "scoped API token" if self.uses_gateway else "API token"

    def __repr__(self) -> str:
        return f"ApiToken(scoped={self.uses_gateway})"


class _TokenEndpoint:
    """The mechanics of Atlassian's token endpoint, done with requests-oauthlib, with errors mapped to
    ours."""

    def __init__(
        self, client_id: str, client_secret: str, auth_base_url: str, timeout: Any = TOKEN_TIMEOUT
    ) -> None:
        if not client_id or not client_secret:
            raise ConfigError("OAuth needs a client id and a client secret")
        register_secret(client_secret)
        self.client_id = client_id
        self.client_secret = client_secret
        self.auth_base_url = auth_base_url.strip().rstrip("/")
        if has_userinfo(self.auth_base_url):
            raise ConfigError(f"auth_base_url {without_userinfo(auth_base_url)!r} holds a user name or "
                              "password; remove it")
        parsed = urlparse(self.auth_base_url)
        local = parsed.scheme == "http" and is_loopback(self.auth_base_url)
        if not parsed.netloc or not (parsed.scheme == "https" or local):
            # the client secret and refresh tokens travel to it: https only (oauthlib's own check can be off
            # process-wide once a local simulator was used, so it is not relied on)
            raise ConfigError(f"auth_base_url {without_userinfo(auth_base_url)!r} must be an https:// origin "
                              f"such as {ATLASSIAN_AUTH_URL} (plain http only on 127.0.0.1/localhost)")
        self.token_url = f"{self.auth_base_url}/oauth/token"
        self.timeout = timeout
        _allow_plain_http_on_loopback(self.token_url)

    def session(self, **kwargs: Any) -> OAuth2Session:
        session = OAuth2Session(self.client_id, **kwargs)
        # A token request carries the client secret and the refresh token in its body; requests would re-send
        # that body to wherever a 307/308 points. Never follow a redirect from the token endpoint.
        session.max_redirects = 0
        for hook in ("access_token_response", "refresh_token_response"):
            session.register_compliance_hook(hook, self._raise_for_error)
        return session

    def refresh(self, refresh_token: str) -> dict[str, Any]:
        with self._transport_errors():
            return self.session().refresh_token(
                self.token_url,
                refresh_token=refresh_token,
                client_id=self.client_id,
                client_secret=self.client_secret,
                timeout=self.timeout,
            )

    def client_credentials(self) -> dict[str, Any]:
        session = self.session(client=BackendApplicationClient(client_id=self.client_id))
        with self._transport_errors():
            return session.fetch_token(
                self.token_url, client_secret=self.client_secret, include_client_id=True, timeout=self.timeout
            )

    def exchange_code(self, code: str, redirect_uri: str) -> dict[str, Any]:
        session = self.session(redirect_uri=redirect_uri)
        with self._transport_errors():
            return session.fetch_token(
                self.token_url, code=code, client_secret=self.client_secret, include_client_id=True,
                timeout=self.timeout,
            )

    @contextlib.contextmanager
    def _transport_errors(self) -> Iterator[None]:
        """A redirect (refused, see session) or no answer at all, as our typed errors naming the endpoint."""
        endpoint = "POST /oauth/token"
        try:
            yield
        except requests.TooManyRedirects as exc:
            response = exc.response
            target = urlparse((response.headers.get("Location") or "") if response is not None else "").netloc
            raise JiraProtocolError(
                f"the token endpoint redirected to {target or 'elsewhere'}; not following it with the client "
                "secret", endpoint=endpoint, status=response.status_code if response is not None else None,
                hint="check JIRA_AUTH_BASE_URL") from None
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError) as exc:
            raise JiraServerError(f"no answer from {self.auth_base_url} ({type(exc).__name__})",
                                  endpoint=endpoint, hint="check JIRA_AUTH_BASE_URL and the network",
                                  ) from None

    def _raise_for_error(self, response: requests.Response) -> requests.Response:
        """Compliance hook: turn any non-2xx answer of the token endpoint into a typed error before oauthlib
        parses it (its own errors would quote the response)."""
        status = response.status_code
        endpoint = "POST /oauth/token"
        if 200 <= status < 300:
            problem = _unusable_token_answer(response)
            if problem:  # a proxy's page or a wrong JIRA_AUTH_BASE_URL; retrying would not change it
                raise JiraAuthError(f"the token endpoint answered {status} with {problem}", endpoint=endpoint,
                                    status=status, hint="check JIRA_AUTH_BASE_URL")
            return response
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = None
        messages = messages_from_body(body) or [redact(response.text[:200])]
        error = body.get("error") if isinstance(body, dict) else None
        if error == "invalid_grant":
            raise JiraAuthError(
                "consent lost or revoked: the refresh token was refused (invalid_grant)",
                endpoint=endpoint, status=status, messages=messages, hint=LOGIN_AGAIN,
            )
        if status == 429:
            raise JiraRateLimited(endpoint=endpoint, status=status, messages=messages)
        if status >= 500:
            raise JiraServerError(endpoint=endpoint, status=status, messages=messages)
        if error in {"access_denied", "unauthorized_client", "invalid_client"}:
            raise JiraAuthError(
                "the OAuth client id or secret was refused", endpoint=endpoint, status=status,
                messages=messages, hint="check JIRA_CLIENT_ID / JIRA_CLIENT_SECRET",
            )
        raise JiraAuthError(endpoint=endpoint, status=status, messages=messages)


def _unusable_token_answer(response: requests.Response) -> str | None:
    """What is wrong with a 2xx token answer, or None. Only types are named, never values (secrets)."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        kind = response.headers.get("Content-Type", "").split(";")[0] or "no content type"
        return f"a body that is not JSON ({kind}, {len(response.content)} bytes)"
    if not isinstance(body, dict):
        return f"JSON that is not an object ({type(body).__name__})"
    if not isinstance(body.get("access_token"), str) or not body["access_token"]:
        return "no access_token string"
    if body.get("refresh_token") is not None and not isinstance(body["refresh_token"], str):
        return "a refresh_token that is not a string"
    expires_in = body.get("expires_in")
    if expires_in is not None and (isinstance(expires_in, bool) or not isinstance(expires_in, (int, float))):
        if not (isinstance(expires_in, str) and expires_in.isdigit()):
            return "an expires_in that is not a number of seconds"
    return None


def _token_set(token: Mapping[str, Any], now: float, previous: TokenSet | None) -> TokenSet:
    """A TokenSet from a token response (oauthlib's dict), carrying the grant's history forward."""
    access_token = token.get("access_token")
    if not access_token:
        raise JiraProtocolError("the token endpoint answered without an access_token",
                                endpoint="POST /oauth/token")
    refresh_token = token.get("refresh_token") or (previous.refresh_token if previous else None)
    register_secret(access_token)
    register_secret(refresh_token)
    scope = token.get("scope") or (previous.scope if previous else "")
    if isinstance(scope, (list, tuple)):
        scope = " ".join(scope)
    rotated = previous is None or refresh_token != previous.refresh_token
    return TokenSet(
        access_token=access_token,
        refresh_token=refresh_token,
        expires_at=now + float(token.get("expires_in") or 3600),
        scope=scope,
        obtained_at=now,
        refresh_token_issued_at=now if rotated else previous.refresh_token_issued_at,
        grant_started_at=(previous.grant_started_at if previous and previous.grant_started_at else now),
    )


class OAuth3LO(JiraAuth):
    """OAuth 2.0 (3LO) with rotating refresh tokens, shared through a token store.

    ``initial_refresh_token`` only seeds an empty store; afterwards the store is the truth, because every
    refresh rotates the refresh token and only the newest one is valid.
    """

    uses_gateway = True
    can_refresh = True

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        token_store: TokenStore,
        auth_base_url: str = ATLASSIAN_AUTH_URL,
        initial_refresh_token: str | None = None,
        refresh_margin_seconds: float = 300.0,
        *,
        clock: Callable[[], float] = time.time,
        timeout: Any = TOKEN_TIMEOUT,
    ) -> None:
        self.endpoint = _TokenEndpoint(client_id, client_secret, auth_base_url, timeout)
        self.token_store = token_store
        self.initial_refresh_token = initial_refresh_token
        register_secret(initial_refresh_token)
        # Each process refreshes a little earlier or later than the others (up to +50 % margin): processes
        # that started together would otherwise all find the token stale at the same instant and queue for the
        # lock.
        self.refresh_margin_seconds = refresh_margin_seconds * random.uniform(1.0, 1.5)
        self.clock = clock
        self._lock = threading.Lock()  # single flight among this process's threads
        self._current: TokenSet | None = None
        self._unsaved: TokenSet | None = None  # a refresh result the store refused to take
        self.refreshes = 0  # refresh tokens this object spent
        self.adoptions = 0  # fresh tokens it found in the store, stored by another process or object

    def __repr__(self) -> str:
        return f"OAuth3LO(client_id={self.endpoint.client_id!r}, store={self.token_store.describe()!r})"

    def describe(self) -> str:
        return "OAuth 2.0 (3LO)"

    def authorization(self) -> str:
        return f"Bearer {self.tokens().access_token}"

    def tokens(self) -> TokenSet:
        """A token set whose access token is good for a while yet, refreshing (single-flight) when needed."""
        with self._lock:
            current = self._current
            if current is None or not current.is_fresh(self.clock(), self.refresh_margin_seconds):
                current = self._refresh_single_flight(rejected_access_token=None)
            return current

    def recover_from_unauthorized(self, rejected_authorization: str) -> bool:
        """The gateway said "Unauthorized": the token expired early or was revoked because someone
        rotated its companion refresh token. Get the newest one (from the store, or by refreshing)
        unless a thread already did."""
        rejected = rejected_authorization.removeprefix("Bearer ")
        with self._lock:
            if self._current is not None and self._current.access_token != rejected:
                return True
            self._refresh_single_flight(rejected_access_token=rejected)
            return True

    def _refresh_single_flight(self, rejected_access_token: str | None) -> TokenSet:
        """Caller holds ``self._lock``. The store lock makes this single-flight across processes and machines.

        When a token goes stale, several processes notice at about the same time. One of them gets the
        lock and refreshes. The others do not queue for the lock: they look at the store again after a
        growing pause and adopt the new token as soon as it is written (a look at the store is cheaper
        than a lock attempt, especially on S3).
        """
        deadline = time.monotonic() + LOCK_PATIENCE_SECONDS
        pause = 0.05
        while True:
            adopted = self._adopt_if_usable(self.token_store.read(), rejected_access_token)
            if adopted is not None:
                return adopted
            try:
                with self.token_store.lock(timeout=0):
                    return self._refresh_holding_lock(rejected_access_token)
            except LockTimeout:
                if time.monotonic() > deadline:
                    raise JiraAuthError(f"{self.token_store.describe()} stayed locked for "
                                        f"{LOCK_PATIENCE_SECONDS:.0f} s; is a refresh stuck?") from None
            time.sleep(pause * random.uniform(0.5, 1.5))
            pause = min(pause * 2, 1.0)

    def _refresh_holding_lock(self, rejected_access_token: str | None) -> TokenSet:
        stored = self.token_store.read()  # re-read under the lock: the holder before us may have refreshed
        if self._unsaved is not None:
            # An earlier refresh could not be written; its refresh token is the only valid one: save it now.
            self.token_store.write(self._unsaved)
            stored, self._unsaved = self._unsaved, None
        adopted = self._adopt_if_usable(stored, rejected_access_token)
        if adopted is not None:
            return adopted
        refresh_token = stored.refresh_token if stored is not None else self.initial_refresh_token
        if not refresh_token:
            raise JiraAuthError(f"no OAuth refresh token in {self.token_store.describe()}", hint=LOGIN_AGAIN)
        register_secret(refresh_token)
        fresh = _token_set(self.endpoint.refresh(refresh_token), self.clock(), stored)
        self.refreshes += 1
        # Durable before use: the old refresh token is dead (or dies within the leeway) from now on.
        try:
            self.token_store.write(fresh)
        except Exception as exc:
            self._unsaved = fresh  # never drop it: the next call saves it before anything else
            raise JiraAuthError(
                f"the rotated refresh token could not be saved to {self.token_store.describe()} "
                f"({type(exc).__name__}); it is kept in memory and saved on the next attempt",
                hint="if this process exits first, run `jira-assets auth login` again",
            ) from None
        self._current = fresh
        return fresh

    def _adopt_if_usable(self, stored: TokenSet | None, rejected_access_token: str | None) -> TokenSet | None:
        if (
            stored is None
            or not stored.access_token
            or stored.access_token == rejected_access_token
            or not stored.is_fresh(self.clock(), self.refresh_margin_seconds)
        ):
            return None
        register_secret(stored.access_token)
        self._current = stored
        self.adoptions += 1
        return stored


class ClientCredentials(JiraAuth):
    """Service-account OAuth 2.0 client credentials: no refresh token; each process caches its access
    token and fetches a new one 60 s before expiry."""

    uses_gateway = True
    can_refresh = True

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        auth_base_url: str = ATLASSIAN_AUTH_URL,
        *,
        refresh_margin_seconds: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.endpoint = _TokenEndpoint(client_id, client_secret, auth_base_url)
        self.refresh_margin_seconds = refresh_margin_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._current: TokenSet | None = None
        self.refreshes = 0

    def __repr__(self) -> str:
        return f"ClientCredentials(client_id={self.endpoint.client_id!r})"

    def describe(self) -> str:
        return "OAuth 2.0 client credentials"

    def authorization(self) -> str:
        with self._lock:
            if self._current is None or not self._current.is_fresh(self.clock(), self.refresh_margin_seconds):
                self._current = _token_set(self.endpoint.client_credentials(), self.clock(), None)
                self.refreshes += 1
            return f"Bearer {self._current.access_token}"

    def recover_from_unauthorized(self, rejected_authorization: str) -> bool:
        with self._lock:
            if self._current is not None and f"Bearer {self._current.access_token}" == rejected_authorization:
                self._current = None
        return True


def pick_cloud_id(resources: Any, site_url: str) -> str:
    """The cloudId of ``site_url`` among ``/oauth/token/accessible-resources``; clear errors otherwise."""
    if not isinstance(resources, list):
        raise JiraProtocolError("accessible-resources did not return a list",
                                endpoint="GET /oauth/token/accessible-resources")
    wanted = origin(site_url)
    ids = {r.get("id") for r in resources if isinstance(r, dict) and origin(str(r.get("url", ""))) == wanted}
    ids.discard(None)
    if len(ids) == 1:
        return ids.pop()
    granted = sorted({str(r.get("url")) for r in resources if isinstance(r, dict)})
    if not ids:
        raise ConfigError(
            f"the OAuth grant does not cover {site_url}; it covers: {', '.join(granted) or 'no site'}. "
            f"Check the site URL or {LOGIN_AGAIN} and grant that site"
        )
    raise ConfigError(
        f"{site_url} matches several cloud ids ({', '.join(sorted(ids))}); pass cloud_id explicitly"
    )


def origin(url: str) -> str:
    """``scheme://host[:port]`` in lower case: what "the same site" means for URLs."""
    parsed = urlparse(url.strip())
    return f"{parsed.scheme.lower()}://{(parsed.netloc or '').lower()}"


def is_loopback(url: str) -> bool:
    host = (urlparse(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _allow_plain_http_on_loopback(token_url: str) -> None:
    """oauthlib refuses http:// token URLs; a local simulator on 127.0.0.1 is the one legitimate exception."""
    if token_url.startswith("http://") and is_loopback(token_url):
        os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")


__all__ = [
    "ApiToken",
    "ClientCredentials",
    "JiraAuth",
    "JiraError",
    "OAuth3LO",
    "pick_cloud_id",
]
