"""The simulated site's state in one object: world, issues, auth, clock, faults, replay, search cache.

`snapshot(name)` is the single source of every snapshot object's records (in the shape its endpoint
returns them): routes paginate it, GroundTruth reports it, replay mode replaces it.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Callable, Optional

import numpy as np

from .clock import Clock
from .config import SimulatorConfig
from .faults import Disruptor
from .fields import LISTED_ONLY
from .issues import IssueRenderer, IssueStore, ViewContext, component_counts
from .jql import EvalContext, Query, run
from .oauth import DEMO_ADMIN, AuthServer
from .quota import PointsQuota
from .timeutil import jira_datetime
from .world import ISSUE_TYPES, LINK_TYPES, PRIORITIES, RESOLUTIONS, STATUS_CATEGORIES, STATUSES, World

PROJECT_EXPAND = {"description", "lead", "issueTypes", "url", "insight"}


class JiraSite:
    def __init__(self, config: SimulatorConfig, site_url: str, clock: Clock, cloud_id: str):
        self.config = config
        self.site_url = site_url
        self.clock = clock
        self.cloud_id = cloud_id
        self.world = World(config, site_url, clock.start_ms)
        self.store = IssueStore(self.world, clock.start_ms)
        self.renderer = IssueRenderer(self.store)
        self.auth = AuthServer(config, clock, self.world, cloud_id)
        self.disruptor = Disruptor(config)
        self.quota = PointsQuota(config.quota_points_per_hour, clock) if config.quota_points_per_hour else None
        self.extra_audit: list[dict[str, Any]] = []
        #: replayed records by snapshot name (replay.py fills it)
        self.replayed: dict[str, Any] = {}
        self.replayed_issues: Any = None
        #: small LRU of derived results (search matches, sorted worklog feeds), keyed by data version
        self._cache: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._snapshots: dict[str, Callable[[], Any]] = self._registry()

    def stats(self) -> dict[str, Any]:
        served, auth = self.disruptor.stats, self.auth.stats
        return {
            "requests_total": sum(served.requests_by_route.values()),
            "requests_by_route": dict(served.requests_by_route),
            "responses_by_status": {str(k): v for k, v in served.responses_by_status.items()},
            "throttled_429": served.throttled, "faults_by_kind": dict(served.faults_by_kind),
            "scripted": served.scripted, "max_in_flight": served.max_in_flight, "in_flight": served.in_flight,
            "bytes_sent": served.bytes_sent, "internal_errors": served.internal_errors,
            "last_internal_error": served.last_internal_error,
            "quota_points_spent": self.quota.spent if self.quota else 0,
            "quota_denied": self.quota.denied if self.quota else 0,
            "tokens_issued": auth.tokens_issued, "token_refreshes": auth.refreshes,
            "invalid_grant": auth.invalid_grant, "family_revocations": auth.family_revocations,
            "oauth_errors": dict(auth.errors_by_kind),
        }

    # --- viewers ----------------------------------------------------------------------------------
    def admin_view(self) -> ViewContext:
        return ViewContext(self.world.users[DEMO_ADMIN].time_zone, DEMO_ADMIN)

    def zone_of(self, user_index: int) -> str:
        return self.config.server_time_zone if user_index < 0 else self.world.users[user_index].time_zone

    # --- snapshot objects -------------------------------------------------------------------------
    def snapshot(self, name: str) -> Any:
        if name in self.replayed:
            return self.replayed[name]
        return self._snapshots[name]()

    def snapshot_names(self) -> list[str]:
        return list(self._snapshots)

    def _registry(self) -> dict[str, Callable[[], Any]]:
        w = self.world
        return {
            "audit_records": self._audit_records,
            "groups": w.group_records,
            "issue_events": w.events,
            "issue_fields": lambda: [f.record() for f in self.store.catalog + list(LISTED_ONLY)],
            "issue_field_configurations": w.field_configurations,
            "issue_link_types": lambda: [w.link_type(i) for i in range(len(LINK_TYPES))],
            "issue_notification_schemes": w.notification_schemes,
            "issue_priorities": lambda: [w.priority(i, full=True) for i in range(len(PRIORITIES))],
            "issue_resolutions": lambda: [w.resolution(i, full=True) for i in range(len(RESOLUTIONS))],
            "issue_security_schemes": w.issue_security_schemes,
            "issue_types": lambda: [w.issue_type(i) for i in range(len(ISSUE_TYPES))],
            "issue_type_schemes": w.issue_type_schemes,
            "issue_type_screen_schemes": w.issue_type_screen_schemes,
            "jira_settings": w.application_properties,
            "jira_settings_advanced": w.advanced_settings,
            "jira_settings_global": lambda: [w.global_configuration()],
            "labels": self.store.used_labels,
            "myself": lambda: [w.myself(w.users[DEMO_ADMIN], set())],
            "permission_definitions": w.permissions,
            "permissions": self._admin_permissions,
            "projects": lambda: self.project_records(PROJECT_EXPAND),
            "project_categories": lambda: list(w.categories),
            "project_types": w.project_types,
            "server_info": lambda: [w.server_info(self.clock.now_ms())],
            "users": lambda: [w.user_search_record(u) for u in w.users],
            "workflows": w.workflows,
            "workflow_schemes": w.workflow_schemes,
            "workflow_scheme_project_associations": lambda: self.workflow_scheme_associations(
                [p["id"] for p in self.snapshot("projects")]),
            "workflow_statuses": lambda: [w.status(i) for i in range(len(STATUSES))],
            "workflow_status_categories": lambda: [w.status_category(i) for i in range(len(STATUS_CATEGORIES))],
            "boards": lambda: [w.board_record(b) for b in w.boards],
            "sprints": self._all_sprints,
            "project_versions": lambda: [v for p in w.projects for v in self.versions_of(p.index)],
            "project_components": lambda: [c for p in w.projects for c in self.components_of(p.index)],
            "dashboards": w.dashboards,
        }

    def _admin_permissions(self) -> list[dict[str, Any]]:
        definitions = self.snapshot("permission_definitions")
        return list(self.world.my_permissions(self.world.users[DEMO_ADMIN], definitions, list(definitions)).values())

    def _audit_records(self) -> list[dict[str, Any]]:
        records = self.world.audit_records() + self.extra_audit
        return sorted(records, key=lambda r: r["id"], reverse=True)

    def add_audit(self, created_ms: int, category: str, summary: str, type_name: str, name: str, object_id: str) -> None:
        with self._lock:
            record_id = len(self.world.audit_records()) + len(self.extra_audit) + 1
            self.extra_audit.append(self.world.audit_record(record_id, created_ms, category, summary, type_name,
                                                            name, object_id))

    def _all_sprints(self) -> list[dict[str, Any]]:
        return [self.world.sprint_record(s) for s in self.world.sprints]

    def project_records(self, expand: set[str], zone: Optional[str] = None) -> list[dict[str, Any]]:
        zone = zone or self.admin_view().zone
        col = self.store.col
        live = ~col["deleted"]
        records = []
        for project in self.world.projects:
            members = live & (col["project"] == project.index)
            count = int(members.sum())
            insight = {"totalIssueCount": count,
                       "lastIssueUpdateTime": jira_datetime(int(col["updated"][members].max()), zone) if count else None}
            records.append(self.world.project_record(project, expand, insight))
        return records

    def versions_of(self, project_index: int) -> list[dict[str, Any]]:
        return [dict(v) for v in self.world.versions[project_index]]

    def components_of(self, project_index: int) -> list[dict[str, Any]]:
        col = self.store.col
        live = ~col["deleted"]
        counts = component_counts(col["salt"][live], col["project"][live], len(self.world.projects))
        records = []
        for slot, component in enumerate(self.world.components[project_index]):
            bean = dict(component)
            records.append({"componentBean": bean, **bean, "issueCount": int(counts[project_index, slot])})
        return records

    def workflow_scheme_associations(self, project_ids: list[str]) -> list[dict[str, Any]]:
        """/workflowscheme/project `values`: projects grouped by scheme; team-managed and unknown ids ignored."""
        groups: dict[str, dict[str, Any]] = {}
        for project_id in project_ids:
            project = self.world.projects_by_id.get(str(project_id))
            if project is None:
                continue
            scheme = self.world.workflow_scheme_for(project)
            if scheme is None:
                continue
            key = str(scheme.get("id", "default"))
            entry = groups.setdefault(key, {"projectIds": [], "workflowScheme": scheme})
            if project.id not in entry["projectIds"]:
                entry["projectIds"].append(project.id)
        return list(groups.values())

    # --- issue search -----------------------------------------------------------------------------
    def search(self, jql: str, query: Query, viewer: int, zone: str) -> np.ndarray:
        """Matching issue indices in order; cached per (jql, viewer zone, data version) for token paging."""
        source = self.issue_source()
        visible = np.ones(len(source.col["id"]), dtype=bool) if viewer >= 0 else np.zeros(len(source.col["id"]), dtype=bool)
        now = self.clock.now_ms()
        # relative dates ("-5m") change with time, so they are pinned to the minute for caching
        key = ("search", jql, viewer, zone, self.store.version,
               now // 60_000 if "-" in jql or "now(" in jql.lower() else 0, id(source))
        account = self.world.users[viewer].account_id if viewer >= 0 else None
        return self._cached(key, lambda: run(query, source, EvalContext(now, zone, account), visible))

    def _cached(self, key: tuple, compute: Callable[[], Any], size: int = 16) -> Any:
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        value = compute()  # outside the lock: concurrent requests may compute twice, never block each other
        with self._lock:
            self._cache[key] = value
            while len(self._cache) > size:
                self._cache.popitem(last=False)
        return value

    def issue_source(self) -> Any:
        return self.replayed_issues if self.replayed_issues is not None else self.store

    @staticmethod
    def digest(*parts: str) -> str:
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]

    # --- issues and children, in a viewer's time zone ------------------------------------------------
    # Replay mode swaps in a source of recorded issues with the same methods (replay.py).
    def find_issue(self, id_or_key: str) -> Optional[int]:
        return self.issue_source().find(id_or_key)

    def render_issues(self, indices: Any, selection: Any, view: ViewContext, expand: set[str]) -> list[dict[str, Any]]:
        if self.replayed_issues is not None:
            return [self.replayed_issues.render(int(idx), selection, view, expand) for idx in indices]
        return self.renderer.issues(indices, selection, view, expand)

    def encoded_issues(self, indices: Any, selection: Any, view: ViewContext, expand: set[str]) -> list[Any]:
        """A page of issues as JSON fragments (generated issues come from the renderer's cache)."""
        if self.replayed_issues is not None:
            return self.render_issues(indices, selection, view, expand)
        return self.renderer.encoded(indices, selection, view, expand)

    def render_issue(self, idx: int, selection: Any, view: ViewContext, expand: set[str]) -> dict[str, Any]:
        return self.render_issues([idx], selection, view, expand)[0]

    def comments(self, idx: int, view: ViewContext, rendered: bool = False) -> list[dict[str, Any]]:
        if "issue_comments" in self.replayed:
            return list(self.replayed["issue_comments"])
        issue = self.store.view(idx)
        return [self.renderer.comment(issue.id, c, view, rendered) for c in self.store.comments_of(issue)]

    def histories(self, idx: int, view: ViewContext) -> Sequence[dict[str, Any]]:
        """An issue's changelog as a lazy sequence: pages build only the histories they show."""
        if self.replayed_issues is not None:
            return self.replayed_issues.histories(idx)
        return _Histories(self, self.store.view(idx), view)

    def worklogs(self, idx: int, view: ViewContext, started_after: int = 0, started_before: int = 0) -> list[dict[str, Any]]:
        if "issue_worklogs" in self.replayed:
            return list(self.replayed["issue_worklogs"])
        return [self.renderer.worklog(w, view) for w in self.store.worklogs_of(idx)
                if w.started >= started_after and (not started_before or w.started < started_before)]

    def worklogs_by_id(self, ids: list[int], view: ViewContext) -> list[dict[str, Any]]:
        if "issue_worklogs" in self.replayed:
            wanted = {str(i) for i in ids}
            return [w for w in self.replayed["issue_worklogs"] if str(w.get("id")) in wanted]
        found = (self.store.worklog(wid) for wid in ids)
        return [self.renderer.worklog(w, view) for w in found if w is not None and not w.deleted_ms]

    def worklog_feed(self, deleted: bool) -> tuple[np.ndarray, np.ndarray]:
        """(worklog ids, timestamps) sorted by (timestamp, id): update times of live worklogs, or deletion
        times of deleted ones. Cached per data version: /worklog/updated pages through it 1000 at a time."""
        def sort() -> tuple[np.ndarray, np.ndarray]:
            ids, stamps = self._worklog_feed_unsorted(deleted)
            order = np.lexsort((ids, stamps))
            return ids[order], stamps[order]

        return self._cached(("worklog_feed", deleted, self.store.version, len(self.replayed)), sort)

    def _worklog_feed_unsorted(self, deleted: bool) -> tuple[np.ndarray, np.ndarray]:
        if "issue_worklogs" in self.replayed:
            from .timeutil import parse_jira_datetime

            records = [] if deleted else self.replayed["issue_worklogs"]
            return (np.array([int(w["id"]) for w in records], dtype=np.int64),
                    np.array([parse_jira_datetime(w["updated"]) for w in records], dtype=np.int64))
        ids, updated, deleted_ms, _issues = self.store.worklog_events()
        if deleted:
            gone = deleted_ms > 0
            return ids[gone], deleted_ms[gone]
        live = deleted_ms == 0
        return ids[live], updated[live]


class _Histories(Sequence):
    """len() and slices of one issue's rendered changelog, generated on demand."""

    def __init__(self, site: JiraSite, issue: Any, view: ViewContext):
        self._site, self._issue, self._view = site, issue, view

    def __len__(self) -> int:
        return self._site.store.history_total(self._issue)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                return list(self)[index]
            histories = self._site.store.histories_of(self._issue, start, stop)
            return [self._site.renderer.history(h, self._view) for h in histories]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self[index:index + 1][0]
