"""JiraClient: one request path (auth, retry, throttling, in-flight limits, error mapping) and the paging
drivers.

Thread-safe: callers fetch child pages concurrently from a thread pool.
"""
from __future__ import annotations

import logging
import re
import threading
from contextlib import ExitStack
from itertools import islice
from typing import Any, Iterable, Iterator, Sequence
from urllib.parse import urljoin, urlparse

import orjson
import requests
from requests.adapters import HTTPAdapter

from .auth import ATLASSIAN_API_URL, JiraAuth, is_loopback, origin, pick_cloud_id
from .budget import RequestBudget
from .errors import (
    LOGIN_AGAIN,
    ConfigError,
    JiraAuthError,
    JiraBadRequest,
    JiraError,
    JiraGone,
    JiraNotFound,
    JiraPermissionError,
    JiraProtocolError,
    JiraRateLimited,
    JiraScopeError,
    JiraServerError,
    messages_from_body,
)
from .paging import Paging, Records, SinglePage
from .redact import has_userinfo, redact, without_userinfo
from .retry import RetryPolicy, RetryStats, StatsCounter, ThrottleGate, process_throttle_gate

log = logging.getLogger(__name__)

SITE_URL = re.compile(r"^https://[a-z0-9][a-z0-9-]*\.atlassian\.net$")
MYSELF = "/rest/api/2/myself"
ACCESSIBLE_RESOURCES = "/oauth/token/accessible-resources"
TENANT_INFO = "/_edge/tenant_info"
USER_AGENT = "jira-assets/0.1 (+python-requests)"
MAX_REDIRECTS = 3
# A gateway 401 that a new access token cannot fix: the grant lacks a scope, re-consent is needed.
SCOPE_MISMATCH = "scope does not match"
# A 401 can be "expired" again right after a refresh when another process rotates at that moment (strict
# rotation revokes the companion access token), so allow a couple of recoveries, never an endless loop.
MAX_AUTH_RECOVERIES = 2
# The token endpoint failing transiently (5xx, 429, no or a cut-off answer; auth.py maps them): retried like a
# request, with the same refresh token (a rotation the lost answer carried is within Atlassian's reuse leeway).
TOKEN_ENDPOINT_BLIPS = (JiraServerError, JiraRateLimited)
# Resets, timeouts and bodies cut short (urllib3 enforces Content-Length; requests reports it as a chunked
# error).
RETRYABLE_TRANSPORT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


def validate_site_url(site_url: str, allow_local: bool) -> str:
    """``https://<name>.atlassian.net`` (or a loopback URL when ``allow_local``), without a trailing slash."""
    url = (site_url or "").strip().rstrip("/")
    _refuse_userinfo("site_url", url)
    if SITE_URL.match(url.lower()):
        return url.lower()
    if allow_local and _is_local_http(url):
        return url
    allowed = "https://<name>.atlassian.net"
    if allow_local:
        allowed += " or http(s)://127.0.0.1|localhost[:port]"
    elif _is_local_http(url):
        allowed += " (a local simulator needs JIRA_ALLOW_LOCAL=1)"
    raise ConfigError(f"site_url {without_userinfo(site_url)!r} is not a Jira Cloud site URL; "
                      f"expected {allowed}")


def _validate_api_base_url(api_base_url: str, allow_local: bool) -> str:
    url = (api_base_url or "").strip().rstrip("/")
    _refuse_userinfo("api_base_url", url)
    parsed = urlparse(url)
    if parsed.scheme == "https" and parsed.netloc and not parsed.path:
        return url
    if allow_local and _is_local_http(url):
        return url
    raise ConfigError(f"api_base_url {without_userinfo(api_base_url)!r} must be an https:// origin such as "
                      f"{ATLASSIAN_API_URL}")


def _refuse_userinfo(setting: str, url: str) -> None:
    """Credentials belong in their own settings: in a URL they would be sent and shown wherever it goes."""
    if has_userinfo(url):
        raise ConfigError(f"{setting} {without_userinfo(url)!r} holds a user name or password; remove it and "
                          "use the credential settings (JIRA_CLIENT_SECRET, JIRA_API_TOKEN)")


def _is_local_http(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.scheme in {"http", "https"} and bool(parsed.netloc) and is_loopback(url)


class JiraClient:
    """A Jira Cloud REST client.

    ``auth`` is an :class:`OAuth3LO`, :class:`ApiToken` or :class:`ClientCredentials`. Requests go through
    the gateway ``{api_base_url}/ex/jira/{cloud_id}`` when the auth needs it (cloud_id discovered from
    accessible-resources when not given), else to the site. ``/myself`` is checked before the first real
    request, because many endpoints answer bad credentials with anonymous, empty results.
    """

    def __init__(
        self,
        site_url: str,
        auth: JiraAuth,
        *,
        api_base_url: str = ATLASSIAN_API_URL,
        cloud_id: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: Any = (10, 60),
        max_in_flight: int = 4,
        allow_local: bool = False,
        session: requests.Session | None = None,
        budget: RequestBudget | None = None,
        throttle: ThrottleGate | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise ConfigError(f"max_in_flight must be at least 1, got {max_in_flight}")
        self.site_url = validate_site_url(site_url, allow_local)
        self.api_base_url = _validate_api_base_url(api_base_url, allow_local)
        self.auth = auth
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self._cloud_id = cloud_id
        self._in_flight = threading.BoundedSemaphore(max_in_flight)
        self._budget = budget if budget is not None else RequestBudget.from_env()
        # Shared by every client of this process talking to this site (tests with a fake clock pass their
        # own).
        self._throttle = throttle or process_throttle_gate(self.site_url)
        self._session = session or _new_session(max_in_flight)
        self._stats = StatsCounter()
        self._setup_lock = threading.RLock()
        self._api_root: str | None = None
        self._myself: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"JiraClient({self.site_url!r}, auth={self.auth.describe()})"

    def __enter__(self) -> JiraClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    # ---- public API -------------------------------------------------------------------------------------

    @property
    def stats(self) -> RetryStats:
        return self._stats.snapshot(token_refreshes=self.auth.refreshes)

    @property
    def cloud_id(self) -> str:
        if self._cloud_id is not None:
            return self._cloud_id
        with self._setup_lock:
            if self._cloud_id is None:
                self._cloud_id = self._discover_cloud_id()
            return self._cloud_id

    @property
    def api_root(self) -> str:
        if self._api_root is not None:
            return self._api_root
        with self._setup_lock:
            if self._api_root is None:
                gateway = f"{self.api_base_url}/ex/jira/{self.cloud_id}" if self.auth.uses_gateway else None
                self._api_root = gateway or self.site_url
            return self._api_root

    def myself(self) -> dict[str, Any]:
        """``/myself``, fetched once: proves the credentials work (a 401 fails hard) and gives the
        time zone."""
        if self._myself is not None:
            return self._myself
        with self._setup_lock:
            if self._myself is None:
                try:
                    me = self._request("GET", MYSELF)
                except JiraScopeError:
                    if not self.auth.uses_gateway:
                        raise
                    # The gateway accepted the token and refused only /myself's scope (read:jira-user): the
                    # credentials work. Objects under other scopes go on; those needing it fail naming it.
                    log.warning("the OAuth grant lacks read:jira-user; /myself skipped")
                    self._myself = {}
                    return self._myself
                if not isinstance(me, dict) or not me.get("accountId"):
                    raise JiraAuthError("/myself did not identify a user; the credentials act as anonymous",
                                        endpoint=f"GET {MYSELF}")
                self._myself = me
            return self._myself

    def get_json(self, path: str, params: dict[str, Any] | None = None, **context: Any) -> Any:
        self.myself()
        return self._request("GET", path, params, None, **context)

    def post_json(self, path: str, body: Any, params: dict[str, Any] | None = None, **context: Any) -> Any:
        self.myself()
        return self._request("POST", path, params, body, **context)

    def iter_pages(
        self,
        path: str,
        paging: Paging,
        params: dict[str, Any] | None = None,
        body: Any = None,
        **context: Any,
    ) -> Iterator[Records]:
        """Stream the pages of ``path`` as lists of records, driven by ``paging`` (see ``paging.py``).

        ``context`` may name ``scopes`` (OAuth scopes the endpoint needs) and ``permission`` (the Jira
        permission it needs), so errors can say what is missing.
        """
        self.myself()

        def fetch(method: str, target: str, page_params: dict[str, Any] | None, page_body: Any) -> Any:
            return self._request(method, target, page_params, page_body, **context)

        yield from paging.pages(fetch, path, params, body)

    def records(self, path: str, paging: Paging, params: dict[str, Any] | None = None, **context: Any) -> Records:
        """Every record of a small answer, checked for its shape by ``paging`` (an empty or error answer is a
        protocol error, never an empty list)."""
        return [record for page in self.iter_pages(path, paging, params=params, **context) for record in page]

    def iter_chunked(
        self,
        path: str,
        param: str,
        values: Iterable[Any],
        chunk: int = 100,
        paging: Paging = SinglePage("values"),
        params: dict[str, Any] | None = None,
        **context: Any,
    ) -> Iterator[Records]:
        """Fan out over ``values`` in chunks of ``chunk``, sent as a repeated query parameter
        (``projectId=1&projectId=2``; Jira refuses a comma-joined list, C14)."""
        values = iter(values)
        while batch := list(islice(values, chunk)):
            yield from self.iter_pages(path, paging, params={**(params or {}), param: batch}, **context)

    # ---- the one request path -----------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        target: str,
        params: dict[str, Any] | None = None,
        body: Any = None,
        *,
        scopes: Sequence[str] | None = None,
        permission: str | None = None,
    ) -> Any:
        """Send one logical request (with retries and auth recovery) and return its decoded JSON."""
        url, path = self._resolve(target)
        endpoint = f"{method} {path}"
        policy = self.retry
        retryable = policy.may_retry(method, path)
        attempt = 0
        auth_recoveries = 0
        while True:
            attempt += 1
            self._stats.throttled(self._throttle.wait(policy))
            try:
                authorization = self.auth.authorization()
            except TOKEN_ENDPOINT_BLIPS:  # the refresh failed transiently: nothing was sent to Jira yet
                if self._back_off_for_another_attempt(True, attempt):
                    continue
                raise
            try:
                response = self._send(method, url, params, body, authorization, endpoint)
            except RETRYABLE_TRANSPORT_ERRORS as exc:
                self._stats.no_response()
                if self._back_off_for_another_attempt(retryable, attempt):
                    continue
                raise JiraServerError(
                    f"no complete response after {attempt} attempt(s) ({type(exc).__name__})",
                    endpoint=endpoint,
                ) from None
            status = response.status_code
            self._stats.response(status)

            if status == 401 and self.auth.can_refresh and auth_recoveries < MAX_AUTH_RECOVERIES:
                try:
                    recovered = (not _is_scope_mismatch(response)
                                 and self.auth.recover_from_unauthorized(authorization))
                except TOKEN_ENDPOINT_BLIPS:
                    if self._back_off_for_another_attempt(True, attempt):
                        continue
                    raise
                if recovered:
                    auth_recoveries += 1
                    attempt -= 1  # a stale token is not a failed attempt
                    continue

            if policy.retries_status(status) and retryable and attempt < policy.max_attempts:
                delay = policy.retry_delay(attempt, response.headers)
                if delay > policy.max_retry_after:
                    asked = policy.server_requested_wait(response.headers) or delay  # without our jitter
                    raise error_for_response(response, endpoint, auth=self.auth, scopes=scopes,
                                             permission=permission, hint=_long_wait_hint(response, asked))
                self._stats.retry()
                if status == 429:
                    # Everyone sharing the gate waits, this request included (at the top of the loop).
                    self._throttle.hold_until(policy.clock() + delay)
                else:
                    policy.sleep(delay)
                continue

            if 200 <= status < 300:
                try:
                    return _decode_json(response, endpoint)
                except _TruncatedBody:
                    if self._back_off_for_another_attempt(retryable, attempt):
                        continue
                    raise JiraProtocolError("malformed JSON (truncated?)", endpoint=endpoint, status=status,
                                            messages=[_snippet(response)]) from None
            raise error_for_response(response, endpoint, auth=self.auth, scopes=scopes, permission=permission)

    def _back_off_for_another_attempt(self, retryable: bool, attempt: int) -> bool:
        """After a failure the server gave no advice on (a reset, a cut-off body): sleep the backoff and
        say whether another attempt is allowed."""
        if not retryable or attempt >= self.retry.max_attempts:
            return False
        self._stats.retry()
        self.retry.sleep(self.retry.backoff(attempt))
        return True

    def _send(
        self, method: str, url: str, params: Any, body: Any, authorization: str, endpoint: str
    ) -> requests.Response:
        """One HTTP exchange within the in-flight limits. Redirects are followed only within the same
        origin, so the Authorization header never travels to another host."""
        headers = {"Accept": "application/json", "Authorization": authorization, "User-Agent": USER_AGENT}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = orjson.dumps(body)
        with ExitStack() as held:
            held.enter_context(self._in_flight)
            if self._budget is not None:
                held.enter_context(self._budget.slot())
            for _ in range(MAX_REDIRECTS + 1):
                response = self._session.request(
                    method, url, params=_encode_params(params), data=data, headers=headers,
                    timeout=self.timeout, allow_redirects=False, stream=True,
                )
                _read_body(response)  # the whole body, inside the slot (raises on a truncated body)
                if not response.is_redirect:
                    return response
                location = urljoin(url, response.headers.get("Location", ""))
                if origin(location) != origin(url):
                    raise JiraProtocolError(
                        f"redirected to another host ({urlparse(location).netloc}); "
                        "not following with credentials",
                        endpoint=endpoint, status=response.status_code,
                    )
                url, params = location, None
        raise JiraProtocolError("too many redirects", endpoint=endpoint, status=response.status_code)

    def _resolve(self, target: str) -> tuple[str, str]:
        """(absolute URL, path for messages) for a path like ``/rest/api/2/field`` or an absolute URL.

        ``nextPage`` links point at the site host even through the gateway, so site URLs are mapped
        onto the API root. Gateway-level URLs (accessible-resources) pass as they are. Any other host
        is refused, so credentials never leave for it.
        """
        if target.startswith("/"):
            return self.api_root + target, target
        gateway_site = self.api_base_url + "/ex/jira/"
        if target.startswith(gateway_site):
            path = target[len(gateway_site):].partition("/")[2]
            return target, _path_only("/" + path)
        if target.startswith(self.site_url + "/rest/"):
            path = target[len(self.site_url):]
            return self.api_root + path, _path_only(path)
        if target.startswith(self.api_base_url + "/"):  # gateway-level endpoints such as accessible-resources
            return target, _path_only(target[len(self.api_base_url):])
        raise JiraProtocolError(f"refusing to send credentials to {urlparse(target).netloc or target!r}",
                                endpoint=_path_only(target))

    def _discover_cloud_id(self) -> str:
        if self.auth.can_refresh:  # an OAuth token lists the sites it may reach
            resources = self._request("GET", self.api_base_url + ACCESSIBLE_RESOURCES)
            return pick_cloud_id(resources, self.site_url)
        # A scoped API token (Basic) cannot list accessible resources; the site tells its cloud id to anyone.
        try:
            response = self._session.get(self.site_url + TENANT_INFO, timeout=self.timeout,
                                         allow_redirects=False)
            cloud_id = _body(response).get("cloudId") if response.ok else None
        except (requests.RequestException, AttributeError):
            cloud_id = None
        if not cloud_id:
            raise ConfigError(f"could not read the cloud id from {self.site_url}{TENANT_INFO}; pass cloud_id")
        return cloud_id


# ---- helpers -----------------------------------------------------------------------------------------------


class _TruncatedBody(Exception):
    pass


def _new_session(max_in_flight: int) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(10, max_in_flight * 2), max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


# requests reads a body 10 KB at a time; a search page of 100 issues with every field is megabytes, and each
# read gives up and retakes the GIL, which the threads of a split window then fight over (about 10 % of the
# extraction's CPU). The same read as `response.content`, in bigger pieces.
BODY_READ_CHUNK = 1 << 20


def _read_body(response: requests.Response) -> bytes:
    response._content = b"".join(response.iter_content(BODY_READ_CHUNK))  # what .content stores, read faster
    return response._content


def _encode_params(params: Any) -> Any:
    """Booleans as Jira spells them (``true``); lists stay lists, which requests sends as repeated keys."""
    if not isinstance(params, dict):
        return params
    spelled = {True: "true", False: "false"}
    return {k: spelled[v] if isinstance(v, bool) else v for k, v in params.items() if v is not None}


def _path_only(url: str) -> str:
    return url.split("?", 1)[0]


def _decode_json(response: requests.Response, endpoint: str) -> Any:
    content = response.content
    if not content.strip():
        return None
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        pass
    if content.lstrip()[:1] in (b"{", b"["):
        raise _TruncatedBody()
    what = "HTML" if content.lstrip()[:1] == b"<" else "a body that is not JSON"
    raise JiraProtocolError(f"expected JSON, got {what}", endpoint=endpoint, status=response.status_code,
                            messages=[_snippet(response)])


def _snippet(response: requests.Response, limit: int = 160) -> str:
    text = re.sub(r"<[^>]+>", " ", response.content[:2000].decode("utf-8", "replace"))
    text = " ".join(text.split())
    return redact(text[:limit] + ("…" if len(text) > limit else ""))


def _body(response: requests.Response) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None


def _is_scope_mismatch(response: requests.Response) -> bool:
    return SCOPE_MISMATCH in " ".join(messages_from_body(_body(response))).lower()


def _long_wait_hint(response: requests.Response, seconds: float) -> str:
    reason = response.headers.get("RateLimit-Reason") or ""
    if "quota" in reason:  # points-based hourly quota: every request is denied until the hour turns
        reset = response.headers.get("X-RateLimit-Reset") or f"in {seconds:.0f} s"
        return (f"the app's hourly points quota is spent ({reason}); Jira denies every request until it resets at "
                f"{reset} ({seconds:.0f} s from now): run again after that")
    return f"the server asks to wait {seconds:.0f} s; try again later"


def error_for_response(
    response: requests.Response,
    endpoint: str,
    *,
    auth: JiraAuth | None = None,
    scopes: Sequence[str] | None = None,
    permission: str | None = None,
    hint: str = "",
) -> JiraError:
    """The typed error for a non-2xx response: endpoint, status and Jira's messages (never empty)."""
    status = response.status_code
    fallback = _snippet(response) or f"HTTP {status} {response.reason}"
    messages = messages_from_body(_body(response)) or [fallback]
    details = dict(endpoint=endpoint, status=status, messages=messages)
    if status == 400:
        return JiraBadRequest(**details, hint=hint)
    if status == 401:
        if _is_scope_mismatch(response):
            needed = f"this endpoint needs {', '.join(scopes)}" if scopes else "the grant lacks a scope"
            return JiraScopeError(needed, **details, hint=f"add the scope to the app and {LOGIN_AGAIN}")
        if auth is not None and auth.can_refresh:
            return JiraAuthError("the access token was refused even after a refresh", **details,
                                 hint=LOGIN_AGAIN)
        if getattr(auth, "uses_gateway", False):
            hint = ("check the email and API token: as a scoped token (JIRA_SCOPED_API_TOKEN=true) it goes through "
                    "the api.atlassian.com gateway, which refuses classic tokens without scopes")
        else:
            hint = ("check the email and API token (Jira treats bad credentials as anonymous); a token with scopes "
                    "works only through the gateway: set JIRA_SCOPED_API_TOKEN=true")
        return JiraAuthError("credentials refused", **details, hint=hint)
    if status == 403:
        text = " ".join(messages).lower()
        needed = permission or ("Administer Jira" if "administrator" in text or "admin" in text else None)
        return JiraPermissionError(
            f"needs the Jira permission '{needed}'" if needed else None, **details,
            hint="the account lacks a Jira permission; OAuth scopes do not grant it",
        )
    if status == 404:
        return JiraNotFound(**details, hint=hint)
    if status == 410:
        return JiraGone(**details, hint=hint)
    if status == 429:
        return JiraRateLimited(**details, hint=hint or "retries exhausted")
    if status >= 500:
        return JiraServerError(**details, hint=hint or "retries exhausted")
    return JiraError(**details, hint=hint)
