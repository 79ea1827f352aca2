"""`Simulator`: a faithful Jira Cloud site on a loopback port, for tests, demos and benchmarks."""
from __future__ import annotations

import shutil
from typing import Any, Optional, Sequence

from .clock import Clock
from .config import SimulatorConfig
from .faults import ScriptEntry
from .jira_site import JiraSite
from .mutate import Mutator
from .oauth import ALL_SCOPES, DEMO_ADMIN, NON_ADMIN
from .paging import Lie
from .rand import uuid_like
from .server import SimulatorHTTPServer, serve_in_thread
from .truth import GroundTruth

EXAMPLE_REDIRECT_URI = "http://127.0.0.1:8765/callback"


class Simulator:
    """Start with `with Simulator(SimulatorConfig(...)) as sim:`; `sim.info()` has everything a client needs."""

    def __init__(self, config: Optional[SimulatorConfig] = None, **overrides: Any):
        if config is None:
            config = SimulatorConfig(**overrides)
        elif overrides:
            raise TypeError("pass either a SimulatorConfig or keyword overrides, not both")
        self.config = config
        self.clock = Clock(config.start, frozen=config.frozen_clock)
        self._server: Optional[SimulatorHTTPServer] = None
        self._site: Optional[JiraSite] = None
        self._tls = None
        self._tokens: dict[str, str] = {}

    # --- lifecycle --------------------------------------------------------------------------------
    def start(self) -> "Simulator":
        if self._server is not None:
            return self
        cfg = self.config
        server = SimulatorHTTPServer((cfg.host, cfg.port))
        port = server.server_address[1]
        scheme = "http"
        if cfg.tls:
            from . import tls

            self._tls = tls.generate()
            server.socket = self._tls.server_context().wrap_socket(server.socket, server_side=True,
                                                                   do_handshake_on_connect=False)
            scheme = "https"
        base_url = f"{scheme}://{cfg.host}:{port}"
        site = JiraSite(cfg, base_url, self.clock, uuid_like(cfg.seed, 0xC10D))
        if cfg.replay_dir:
            from .replay import load_replay

            load_replay(site, cfg.replay_dir)
        server.site = site
        self._site, self._server = site, server
        self._tokens = {"admin": site.auth.grant(list(ALL_SCOPES), admin=True),
                        "non_admin": site.auth.grant(list(ALL_SCOPES), admin=False)}
        serve_in_thread(server)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._tls is not None:
            shutil.rmtree(self._tls.directory, ignore_errors=True)
            self._tls = None

    def __enter__(self) -> "Simulator":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # --- what clients need ------------------------------------------------------------------------
    @property
    def site(self) -> JiraSite:
        if self._site is None:
            raise RuntimeError("the simulator is not started; use start() or a with-block")
        return self._site

    @property
    def base_url(self) -> str:
        return self.site.site_url

    def info(self) -> dict[str, Any]:
        site = self.site
        auth, world = site.auth, site.world
        admin, member = world.users[DEMO_ADMIN], world.users[NON_ADMIN]
        base = site.site_url
        return {
            "base_url": base, "site_url": base, "api_base_url": base, "auth_base_url": base,
            "cloud_id": site.cloud_id, "gateway_url": f"{base}/ex/jira/{site.cloud_id}",
            "client_id": auth.client_id, "client_secret": auth.client_secret,
            "refresh_token": self._tokens["admin"], "scopes": list(ALL_SCOPES),
            "redirect_uri": EXAMPLE_REDIRECT_URI, "redirect_uris_allowed": ["http://127.0.0.1:*", "http://localhost:*"],
            "email": admin.email, "api_token": auth.api_tokens[admin.email], "account_id": admin.account_id,
            "scoped_api_token": auth.scoped_api_tokens[admin.email],
            "time_zone": admin.time_zone, "ca_file": self._tls.ca_file if self._tls else None,
            "non_admin": {"email": member.email, "api_token": auth.api_tokens[member.email],
                          "refresh_token": self._tokens["non_admin"], "account_id": member.account_id,
                          "time_zone": member.time_zone},
            "service_account": {"client_id": auth.service_client_id, "client_secret": auth.service_client_secret},
            "seed": self.config.seed, "issues": self.config.issues, "projects": [p.key for p in world.projects],
            "clock_start_ms": self.clock.start_ms,
        }

    @property
    def truth(self) -> GroundTruth:
        return GroundTruth(self.site)

    @property
    def mutate(self) -> Mutator:
        return Mutator(self.site)

    def grant(self, scopes: Optional[Sequence[str]] = None, admin: bool = True) -> str:
        """A refresh token of a new consent with exactly these scopes (offline_access is added)."""
        return self.site.auth.grant(list(scopes) if scopes is not None else None, admin=admin)

    # --- misbehaviour on demand -------------------------------------------------------------------
    def script(self, path_regex: str, responses: Sequence[ScriptEntry], method: Optional[str] = None) -> None:
        """The next len(responses) requests whose path matches get these answers, in order.

        Entries: `(status, headers)`, `(status, headers, body)`, or a fault name ("reset", "truncate",
        "slow", "500", "503", "429", "429_zero", "429_no_retry_after"). A 2xx entry without a body lets
        the request through normally (with the given headers).
        """
        self.site.disruptor.script(path_regex, responses, method)

    def lie(self, path_regex: str, inflate_total: int = 0, repeat_previous: int = 0, repeat_token: bool = False,
            restart: bool = False) -> None:
        """Make paged answers on matching paths lie (C13), on every paged shape: inflated totals with empty pages
        past the end, pages that repeat records of the previous page, pages that ignore the cursor and start
        over (`restart`), or /search/jql handing back the same token."""
        self.site.disruptor.lie(path_regex, Lie(inflate_total, repeat_previous, repeat_token, restart))

    def clear_disruptions(self) -> None:
        self.site.disruptor.clear()

    def stats(self) -> dict[str, Any]:
        """What was served: requests per route, statuses, 429s, faults, peak in flight, OAuth counters.
        (Also at `GET {base_url}/_simulator/stats` for out-of-process users.)"""
        return self.site.stats()
