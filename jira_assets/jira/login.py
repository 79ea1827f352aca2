"""`jira-assets auth login|status`: obtain an OAuth 2.0 (3LO) grant and inspect it without revealing tokens.

login: print (and open) Atlassian's consent URL with the recommended scopes + ``offline_access``, a random
``state`` and a localhost callback; receive the code, check ``state``, exchange it and write the token store.
status: site, cloud id, scopes, access-token expiry and refresh-token age. Tokens are never printed.
"""
from __future__ import annotations

import argparse
import hmac
import http.server
import os
import secrets
import sys
import threading
import time
import webbrowser
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable
from urllib.parse import parse_qs, urlparse

from .auth import ATLASSIAN_API_URL, ATLASSIAN_AUTH_URL, OAuth3LO, _token_set, _TokenEndpoint
from .client import JiraClient
from .errors import LOGIN_AGAIN, ConfigError, JiraAuthError, JiraError
from .token_store import TokenSet, TokenStore, default_token_store_path, token_store_from_url

RECOMMENDED_SCOPES = (
    "read:jira-work",
    "read:jira-user",
    "manage:jira-configuration",
    "manage:jira-project",
    "read:board-scope:jira-software",
    "read:sprint:jira-software",
    "read:project:jira",
    "offline_access",
)
AUDIENCE = "api.atlassian.com"
CALLBACK_PAGE = b"<html><body>jira-assets: you can close this tab and return to the terminal.</body></html>"
REFRESH_TOKEN_IDLE_DAYS = 90  # FACTS §1.3: inactivity expiry
GRANT_MAX_DAYS = 365  # absolute expiry: re-consent needed after a year, refreshes or not
ENV = {
    "site_url": "JIRA_SITE_URL",
    "client_id": "JIRA_CLIENT_ID",
    "client_secret": "JIRA_CLIENT_SECRET",
    "token_store": "JIRA_TOKEN_STORE",
    "auth_base_url": "JIRA_AUTH_BASE_URL",
    "api_base_url": "JIRA_API_BASE_URL",
    "allow_local": "JIRA_ALLOW_LOCAL",
    "refresh_token": "JIRA_REFRESH_TOKEN",
}


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``auth login`` and ``auth status`` to the ``jira-assets`` command line."""
    auth = subparsers.add_parser("auth", help="OAuth 2.0 (3LO) consent and the stored grant")
    commands = auth.add_subparsers(dest="auth_command", required=True)

    login = commands.add_parser("login", help="open Atlassian's consent page and store the resulting tokens")
    _add_common_options(login)
    login.add_argument("--client-secret", help=f"OAuth client secret (prefer ${ENV['client_secret']})")
    login.add_argument("--scopes", help="space-separated scopes (default: the recommended read scopes)")
    login.add_argument("--callback-port", type=int, default=int(os.environ.get("JIRA_CALLBACK_PORT", "0")),
                       help="port of the localhost callback; it must match the app's callback URL "
                            "(0 = any free port)")
    login.add_argument("--no-browser", action="store_true", help="only print the consent URL")
    login.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the consent")
    login.set_defaults(func=run_login)

    status = commands.add_parser("status", help="show the stored grant (never the tokens)")
    _add_common_options(status)
    status.add_argument("--client-secret", help=f"OAuth client secret (prefer ${ENV['client_secret']})")
    status.set_defaults(func=run_status)
    return auth


def _add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--site-url", help=f"https://<name>.atlassian.net (${ENV['site_url']})")
    parser.add_argument("--client-id", help=f"OAuth client id (${ENV['client_id']})")
    parser.add_argument("--token-store",
                        help=f"path, file:///path or s3://bucket/key (${ENV['token_store']})")
    parser.add_argument("--auth-base-url", help=f"default {ATLASSIAN_AUTH_URL} (${ENV['auth_base_url']})")
    parser.add_argument("--api-base-url", help=f"default {ATLASSIAN_API_URL} (${ENV['api_base_url']})")
    parser.add_argument("--allow-local", action="store_true", default=None,
                        help=f"allow a loopback simulator URL (${ENV['allow_local']})")


@dataclass(frozen=True)
class LoginSettings:
    site_url: str | None
    client_id: str
    client_secret: str
    token_store: TokenStore
    auth_base_url: str
    api_base_url: str
    allow_local: bool
    seed_refresh_token: str | None = None  # JIRA_REFRESH_TOKEN: seeds an empty store, as in a run

    @classmethod
    def from_args(cls, args: argparse.Namespace, need_secret: bool = True) -> LoginSettings:
        def pick(name: str, default: Any = None) -> Any:
            value = getattr(args, name, None)
            return value if value not in (None, "") else os.environ.get(ENV[name], default)

        client_id, client_secret = pick("client_id"), pick("client_secret")
        if not client_id or (need_secret and not client_secret):
            raise ConfigError(f"set --client-id and ${ENV['client_secret']} (or --client-secret)")
        allow_local = pick("allow_local", False)
        return cls(
            site_url=pick("site_url"),
            client_id=client_id,
            client_secret=client_secret or "",
            token_store=token_store_from_url(pick("token_store") or default_token_store_path()),
            auth_base_url=pick("auth_base_url", ATLASSIAN_AUTH_URL).rstrip("/"),
            api_base_url=pick("api_base_url", ATLASSIAN_API_URL).rstrip("/"),
            allow_local=allow_local is True or str(allow_local).lower() in {"1", "true", "yes"},
            seed_refresh_token=os.environ.get(ENV["refresh_token"]) or None,
        )

    def client(self) -> JiraClient:
        if not self.site_url:
            raise ConfigError(f"set --site-url or ${ENV['site_url']}")
        auth = OAuth3LO(self.client_id, self.client_secret, self.token_store,
                        auth_base_url=self.auth_base_url, initial_refresh_token=self.seed_refresh_token)
        return JiraClient(self.site_url, auth, api_base_url=self.api_base_url, allow_local=self.allow_local)


# ---- login -------------------------------------------------------------------------------------------------


def run_login(args: argparse.Namespace, *, out: Callable[[str], None] = print) -> int:
    settings = LoginSettings.from_args(args)
    if settings.site_url:  # refuse a bad site URL before the user goes through consent
        settings.client()
    scopes = args.scopes.split() if getattr(args, "scopes", None) else list(RECOMMENDED_SCOPES)
    opener = None if args.no_browser else _open_in_browser
    tokens = login_flow(
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        token_store=settings.token_store,
        auth_base_url=settings.auth_base_url,
        scopes=scopes,
        open_url=opener,
        callback_port=args.callback_port,
        timeout=args.timeout,
        out=out,
    )
    out(f"Stored the grant in {settings.token_store.describe()} (scopes: {tokens.scope or 'none reported'}).")
    if settings.site_url:
        client = settings.client()
        out(f"Site {client.site_url}: cloud id {client.cloud_id}; signed in as "
            f"{client.myself().get('displayName', '?')}.")
    return 0


def _open_in_browser(url: str) -> None:
    try:
        webbrowser.open(url)
    except Exception:  # no browser here: the printed URL is enough
        pass


def login_flow(
    *,
    client_id: str,
    client_secret: str,
    token_store: TokenStore,
    auth_base_url: str = ATLASSIAN_AUTH_URL,
    scopes: list[str] | tuple[str, ...] = RECOMMENDED_SCOPES,
    open_url: Callable[[str], Any] | None = None,
    callback_port: int = 0,
    timeout: float = 300.0,
    out: Callable[[str], None] = print,
) -> TokenSet:
    """The authorization-code flow end to end; returns the stored token set."""
    if "offline_access" not in scopes:
        scopes = [*scopes, "offline_access"]  # without it there is no refresh token
    endpoint = _TokenEndpoint(client_id, client_secret, auth_base_url)
    state = secrets.token_urlsafe(32)
    with CallbackServer(callback_port) as callback:
        session = endpoint.session(redirect_uri=callback.redirect_uri, scope=list(scopes))
        url, _ = session.authorization_url(
            f"{endpoint.auth_base_url}/authorize", state=state, audience=AUDIENCE, prompt="consent"
        )
        out("Open this URL to grant access (the callback URL of the app must be "
            f"{callback.redirect_uri}):\n\n  {url}\n")
        if open_url is not None:
            open_url(url)
        answer = callback.wait(timeout)
    if answer.get("error"):
        reason = f"{answer['error']} {answer.get('error_description', '')}".strip()
        raise JiraAuthError(f"consent was not given: {reason}")
    if not hmac.compare_digest(answer.get("state", ""), state):
        raise JiraAuthError("the callback's state does not match this login (a forged or stale callback); "
                            "nothing was stored")
    if not answer.get("code"):
        raise JiraAuthError("the callback carried no authorization code")
    tokens = _token_set(endpoint.exchange_code(answer["code"], callback.redirect_uri), time.time(), None)
    if not tokens.refresh_token:
        raise JiraAuthError("Atlassian returned no refresh token; the consent must include offline_access")
    with token_store.lock():
        token_store.read()  # learn the current version (S3 writes are compare-and-swap against it)
        token_store.write(tokens)
    return tokens


class CallbackServer:
    """A one-shot HTTP server on localhost that receives ``/callback?code=...&state=...``."""

    def __init__(self, port: int = 0) -> None:
        self._answer: dict[str, str] = {}
        self._received = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                parsed = urlparse(self.path)
                if parsed.path != "/callback":
                    self.send_error(404)
                    return
                if not outer._received.is_set():
                    outer._answer = {k: v[0] for k, v in parse_qs(parsed.query).items()}
                    outer._received.set()
                page = CALLBACK_PAGE
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args: Any) -> None:  # the request line carries the code: never log it
                pass

        self._server = http.server.HTTPServer(("127.0.0.1", port), Handler)
        self.redirect_uri = f"http://localhost:{self._server.server_address[1]}/callback"
        self._thread = threading.Thread(target=self._server.serve_forever, name="oauth-callback", daemon=True)

    def __enter__(self) -> CallbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait(self, timeout: float) -> dict[str, str]:
        if not self._received.wait(timeout):
            raise JiraAuthError(f"no consent callback within {timeout:.0f} s; {LOGIN_AGAIN}")
        return dict(self._answer)


# ---- status ------------------------------------------------------------------------------------------------


def run_status(args: argparse.Namespace, *, out: Callable[[str], None] = print) -> int:
    settings = LoginSettings.from_args(args, need_secret=False)
    tokens = settings.token_store.read()
    can_check_site = bool(settings.site_url and settings.client_secret)
    if tokens is None and not (settings.seed_refresh_token and can_check_site):
        if settings.seed_refresh_token:
            out(f"No grant in {settings.token_store.describe()} yet; {ENV['refresh_token']} is set and the first "
                f"run stores it (set {ENV['site_url']} and {ENV['client_secret']} to check it now).")
            return 0
        out(f"No grant in {settings.token_store.describe()} yet; run `jira-assets auth login` to create one "
            "(auth status is for OAuth 2.0 grants; API tokens and service accounts need no login).")
        return 1
    site_lines, site_failed = [], False
    if can_check_site:  # with an empty store this uses (and stores) the seed, as a run would
        try:
            client = settings.client()
            site_lines = [f"site:           {client.site_url}", f"cloud id:       {client.cloud_id}"]
        except JiraError as exc:
            site_lines, site_failed = [f"site check:     failed: {exc}"], True
        tokens = settings.token_store.read() or tokens
    elif settings.site_url:
        site_lines = [f"site:           {settings.site_url} (cloud id needs the client secret)"]
    for line in (describe_grant(tokens, time.time()) if tokens is not None else []) + site_lines:
        out(line)
    return 1 if site_failed else 0


def describe_grant(tokens: TokenSet, now: float) -> list[str]:
    """Human lines about a stored grant; no token appears in them."""
    def when(epoch: float) -> str:
        return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    left = tokens.expires_at - now
    access = f"expires {when(tokens.expires_at)} (in {left / 60:.0f} min)" if left > 0 else (
        f"expired {when(tokens.expires_at)} (refreshed on next use)")
    lines = [f"scopes:         {tokens.scope or '(none recorded)'}", f"access token:   {access}"]
    if tokens.refresh_token_issued_at:
        age_days = (now - tokens.refresh_token_issued_at) / 86400
        idle_deadline = tokens.refresh_token_issued_at + REFRESH_TOKEN_IDLE_DAYS * 86400
        lines.append(f"refresh token:  {age_days:.1f} days old (unused it lapses {when(idle_deadline)})")
    else:
        present = "present" if tokens.refresh_token else f"missing; {LOGIN_AGAIN}"
        lines.append(f"refresh token:  {present}")
    if tokens.grant_started_at:
        deadline = tokens.grant_started_at + GRANT_MAX_DAYS * 86400
        lines.append(f"consent:        given {when(tokens.grant_started_at)}; "
                     f"re-consent needed by {when(deadline)}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """``python -m jira_assets.jira.login auth login ...`` (the same commands without the rest of the CLI)."""
    parser = argparse.ArgumentParser(prog="jira-assets")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (JiraError, ConfigError) as exc:
        print(f"jira-assets: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
