"""The HTTP front door: one threaded server for every Atlassian host (site, gateway, auth server).

Order of business per request: parse → scripted/random disruption → latency → authenticate →
route → scope / permission checks → handler → serialize (v3 conversion) → count.
"""
from __future__ import annotations

import base64
import binascii
import socket
import struct
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional
from urllib.parse import parse_qsl, urlsplit

import orjson

from .adf import to_v3
from .errors import ADMIN_REQUIRED, NOT_LOGGED_IN, HttpError, gateway_error, jira_error
from .fields import TEXTAREA_FIELDS
from .jira_site import JiraSite
from .oauth import Principal
from .route_table import ROUTER
from .routes import AGILE, PLATFORM, Request, Route, parse_query

JSON = "application/json;charset=UTF-8"
GATEWAY_PREFIX = "/ex/jira/"


class SimulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], site: Optional[JiraSite] = None):
        super().__init__(address, RequestHandler)
        self.site = site  # set by Simulator once the port (and so the site URL) is known

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # client went away mid-response (or a fault closed it): nothing to report


class Outcome:
    """What to send: status, body (JSON-able or bytes), headers, and the route key it is counted under."""

    def __init__(self, status: int, body: Any, headers: Optional[dict[str, str]] = None, route_key: str = "other",
                 version: int = 2, rich_text: bool = False):
        self.status, self.body, self.headers = status, body, headers or {}
        self.route_key, self.version, self.rich_text = route_key, version, rich_text


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "jira-simulator/1.0"
    sys_version = ""
    # Headers and body go out in two writes; with Nagle on, the body waits for the client's delayed ACK (~40 ms
    # per request on loopback), which no real Jira front end adds.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    # ----------------------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        site: JiraSite = self.server.site
        disruptor = site.disruptor
        in_flight = disruptor.enter()
        self._in_flight = True
        try:
            length = int(self.headers.get("Content-Length") or 0)
            raw_body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            path, query = parts.path, parts.query
            is_api = "/rest/" in path
            planned, extra_headers = disruptor.plan(self.command, path, self._route_key_guess(path), in_flight,
                                                    api=is_api)
            if planned is not None and planned.kind == "slow":
                time.sleep(site.config.slow_seconds)
                planned = None
            delay = disruptor.latency()
            if delay:
                time.sleep(delay)
            if planned is not None and planned.kind == "reset":
                self._reset_connection()
                return
            charged = site.quota is not None and path.startswith("/ex/jira/") and self._bearer() is not None
            if charged and planned is None:
                planned = site.quota.denial()  # a spent hourly quota denies everything until the hour turns
                charged = planned is None
            if planned is None or planned.kind == "truncate":
                outcome = self._outcome(site, path, query, raw_body)
            else:
                outcome = Outcome(planned.status, planned.body, planned.headers, self._route_key_guess(path))
            if charged:
                answered = outcome.body if outcome.status < 400 else None
                outcome.headers = {**outcome.headers, **site.quota.charge(outcome.route_key, answered)}
            outcome.headers = {**extra_headers, **outcome.headers}
            self._send(site, outcome, truncate=planned is not None and planned.kind == "truncate")
        finally:
            self._leave(disruptor)

    def _leave(self, disruptor: Any) -> None:
        """The request stops counting as in flight once (at the latest) its body is handed to the socket: a client
        that has read the whole response may send its next request before this thread runs again (GIL), and
        must not find its finished request still counted against max_in_flight."""
        if self._in_flight:
            self._in_flight = False
            disruptor.leave()

    def _route_key_guess(self, path: str) -> str:
        """`METHOD /rest/api/2/pattern` of the route a path belongs to (rate-limit buckets, counters)."""
        family, _version, api_path = _split_api_path(_strip_gateway(path)[1])
        if family is None:
            return f"{self.command} {path}"
        route, _params, _exists = ROUTER.match(family, self.command, api_path)
        return route.key if route else f"{self.command} {path}"

    def _outcome(self, site: JiraSite, path: str, query: str, raw_body: bytes) -> Outcome:
        try:
            if path == "/authorize" and self.command == "GET":
                location = site.auth.authorize(dict(parse_qsl(query, keep_blank_values=True)))
                return Outcome(302, b"", {"Location": location}, "GET /authorize")
            if path == "/oauth/token" and self.command == "POST":
                body = self._token_body(raw_body)
                return Outcome(200, site.auth.token(body), {"Cache-Control": "no-store"}, "POST /oauth/token")
            if path == "/oauth/token/accessible-resources" and self.command == "GET":
                principal = site.auth.bearer(self._bearer() or "")
                return Outcome(200, site.auth.accessible_resources(principal), {},
                               "GET /oauth/token/accessible-resources")
            if path == "/_edge/tenant_info":
                return Outcome(200, {"cloudId": site.cloud_id}, {}, "GET /_edge/tenant_info")
            if path == "/_simulator/stats":  # not Jira: the simulator's counters for out-of-process readers
                return Outcome(200, site.stats(), {}, "GET /_simulator/stats")
            return self._api(site, path, query, raw_body)
        except HttpError as error:
            return Outcome(error.status, error.body, error.headers, self._route_key_guess(path))
        except Exception:  # never a stack trace on the wire
            site.disruptor.internal_error(traceback.format_exc())
            return Outcome(500, {"errorMessages": ["Internal server error"], "errors": {}}, {},
                           self._route_key_guess(path))

    def _api(self, site: JiraSite, path: str, query: str, raw_body: bytes) -> Outcome:
        via_gateway, rest_path = _strip_gateway(path)
        if via_gateway:
            cloud_id = path[len(GATEWAY_PREFIX):].split("/", 1)[0]
            if cloud_id != site.cloud_id:
                raise HttpError(404, {"code": 404, "message": "Site not found"})
        family, version, api_path = _split_api_path(rest_path)
        if family is None:
            raise jira_error(404, f"null for uri: {site.site_url}{rest_path}")
        principal = self._authenticate(site, via_gateway)
        route, params, path_exists = ROUTER.match(family, self.command, api_path)
        if route is None:
            if path_exists:
                raise HttpError(405, {"errorMessages": [f"Method {self.command} is not allowed here."], "errors": {}},
                                {"Allow": "GET, POST"})
            raise jira_error(404, f"null for uri: {site.site_url}{rest_path}")
        self._authorize(route, principal)
        request = Request(self.command, path, api_path, parse_query(query), raw_body, principal, version, params,
                          zone=site.zone_of(-1 if principal.user is None else principal.user.index))
        body = route.handler(site, request)
        return Outcome(200, body, {}, route.key, version, route.rich_text)

    # --- auth -------------------------------------------------------------------------------------
    def _bearer(self) -> Optional[str]:
        header = self.headers.get("Authorization") or ""
        return header[7:].strip() if header[:7].lower() == "bearer " else None

    def _authenticate(self, site: JiraSite, via_gateway: bool) -> Principal:
        header = self.headers.get("Authorization") or ""
        scheme = header.split(" ", 1)[0].lower()
        if via_gateway:
            if scheme == "basic":  # only scoped API tokens; classic ones are for the site host
                principal = site.auth.scoped_basic(*self._basic_credentials(header))
                if principal is None:
                    raise gateway_error("Unauthorized")
                return principal
            if scheme != "bearer":
                raise gateway_error("Unauthorized")
            return site.auth.bearer(header[7:].strip())
        if scheme == "bearer":
            raise jira_error(401, NOT_LOGGED_IN)  # 3LO tokens only work through the gateway
        if scheme == "basic":
            email, token = self._basic_credentials(header)
            if site.auth.is_scoped_token(email, token):
                raise jira_error(401, NOT_LOGGED_IN)  # scoped API tokens must go through the gateway
            user = site.auth.basic(email, token)
            return Principal(user) if user else Principal(None, bad_credentials=True)
        return Principal(None)

    @staticmethod
    def _basic_credentials(header: str) -> tuple[str, str]:
        try:
            email, _, token = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return "", ""
        return email, token

    @staticmethod
    def _authorize(route: Route, principal: Principal) -> None:
        if principal.scopes is not None and not set(route.scopes) <= principal.scopes:
            raise gateway_error("Unauthorized; scope does not match")
        if principal.anonymous and not route.anonymous:
            raise jira_error(401, NOT_LOGGED_IN)
        if route.admin and not principal.is_admin:
            raise jira_error(401, NOT_LOGGED_IN) if principal.anonymous else jira_error(403, ADMIN_REQUIRED)

    def _token_body(self, raw: bytes) -> dict[str, Any]:
        """requests-oauthlib sends form bodies; Atlassian documents JSON. Both are accepted."""
        content_type = (self.headers.get("Content-Type") or "").lower()
        if "json" in content_type or raw[:1] == b"{":
            try:
                body = orjson.loads(raw or b"{}")
            except orjson.JSONDecodeError:
                raise HttpError(400, {"error": "invalid_request", "error_description": "Malformed JSON body."}) from None
            return body if isinstance(body, dict) else {}
        body = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        header = self.headers.get("Authorization") or ""
        if header.lower().startswith("basic ") and "client_id" not in body:  # client_secret_basic
            try:
                client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
                body.update({"client_id": client_id, "client_secret": secret})
            except (binascii.Error, UnicodeDecodeError):
                pass
        return body

    # --- sending ----------------------------------------------------------------------------------
    def _send(self, site: JiraSite, outcome: Outcome, truncate: bool = False) -> None:
        if isinstance(outcome.body, bytes):
            payload = outcome.body
        else:
            body = outcome.body
            if outcome.version == 3 and outcome.status < 300:
                body = orjson.loads(orjson.dumps(body))  # shared v2 objects must stay v2
                if outcome.rich_text:
                    body = to_v3(body, TEXTAREA_FIELDS)
            payload = orjson.dumps(body)
            if outcome.version == 3:
                payload = payload.replace(b"/rest/api/2/", b"/rest/api/3/")
        # counted before sending, so a client that reads stats() right after its response sees it
        site.disruptor.count(outcome.route_key, outcome.status, len(payload))
        self.send_response(outcome.status)
        if payload or outcome.status != 302:
            self.send_header("Content-Type", JSON)
        for name, value in outcome.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self._leave(site.disruptor)
        if truncate:
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.close_connection = True
            self._reset_connection(graceful=True)
        else:
            self.wfile.write(payload)

    def _reset_connection(self, graceful: bool = False) -> None:
        """Drop the connection: RST (SO_LINGER 0) for a reset, a plain close after a truncated body."""
        self.close_connection = True
        try:
            if not graceful:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
            self.connection.close()
        except OSError:
            pass


def _strip_gateway(path: str) -> tuple[bool, str]:
    if path.startswith(GATEWAY_PREFIX):
        rest = path[len(GATEWAY_PREFIX):]
        return True, "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    return False, path


def _split_api_path(path: str) -> tuple[Optional[str], int, str]:
    """('platform'|'agile'|None, api version, path below the API root)."""
    for prefix, family, version in (("/rest/api/2", PLATFORM, 2), ("/rest/api/3", PLATFORM, 3),
                                    ("/rest/api/latest", PLATFORM, 2), ("/rest/agile/1.0", AGILE, 2)):
        if path == prefix or path.startswith(prefix + "/"):
            return family, version, path[len(prefix):] or "/"
    return None, 2, path


def serve_in_thread(server: SimulatorHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              name="jira-simulator", daemon=True)
    thread.start()
    return thread
