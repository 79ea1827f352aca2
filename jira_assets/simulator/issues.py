"""Issues and their children (comments, changelog, worklogs): compact columns, JSON on demand.

Storage is a handful of numpy columns per issue (plus the worklog table), so 200 000 issues fit in a few
tens of MB and generate in well under a second. Everything else about an issue (texts, custom-field
values, comments, changelog histories) is *derived* from its salt each time it is rendered, so nothing
big is cached. Mutations are recorded as overrides on top of the derived values.
"""
from __future__ import annotations

import random
import threading
from collections import OrderedDict
from functools import lru_cache
from dataclasses import dataclass, replace
from typing import Any, Iterable, Optional

import numpy as np
import orjson

from . import text
from .fields import (CASCADE_CHILDREN, SELECT_OPTIONS, SPRINT_FIELD, TEXTAREA_FIELDS, FieldDef, build_catalog,
                     option_id)
from .rand import Bits, mix, mix_array
from .timeutil import MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE, jira_date, jira_datetime
from .world import (BUG, DONE_STATUS, EPIC, ISSUE_TYPES, LABELS, LINK_TYPES, PRIORITIES, RESOLUTIONS, STATUSES,
                    STORY, SUBTASK, TASK, World)

FIRST_ISSUE_ID = 10001
FIRST_COMMENT_ID = 10000
FIRST_HISTORY_ID = 10000
FIRST_WORKLOG_ID = 10000
ISSUE_EXPAND = "operations,versionedRepresentations,editmeta,changelog,renderedFields"
#: what /search/jql and bulkfetch embed before clients must page the per-issue endpoints
EMBEDDED_COMMENTS = 20
EMBEDDED_WORKLOGS = 20
EMBEDDED_HISTORIES = 40
#: issue index -> (histories, comments, worklogs); index 1 (id 10002) carries C06's numbers exactly
HEAVY_ISSUES = {1: (250, 75, 25)}


@dataclass
class IssueView:
    """One issue's stored columns as plain Python values (read once per render)."""

    idx: int
    id: int
    key: str
    project: int
    type: int
    status: int
    priority: int
    assignee: int
    reporter: int
    created: int
    updated: int
    resolution: int
    resolved: int
    labels: int
    parent: int
    n_comments: int
    n_histories: int
    salt: int


@dataclass(slots=True)
class Worklog:
    id: int
    issue: int  # issue index
    author: int
    update_author: int
    started: int
    created: int
    updated: int
    seconds: int
    comment: str
    deleted_ms: int = 0


class IssueStore:
    """The issue columns, the worklog table, and every mutation applied since generation."""

    def __init__(self, world: World, start_ms: int):
        self.world = world
        self.config = world.config
        self.seed = world.config.seed
        self.start_ms = start_ms
        self.catalog: list[FieldDef] = build_catalog(world.config.custom_fields)
        self.field_by_id = {f.id: f for f in self.catalog}
        self.labels_vocab: list[str] = list(LABELS)
        self.lock = threading.RLock()
        #: bumped by every mutation, so cached search results are recomputed
        self.version = 0
        self.overrides: dict[int, dict[str, Any]] = {}
        self.extra_histories: dict[int, list[dict[str, Any]]] = {}
        self.deleted_at: dict[int, int] = {}
        self.added_worklogs: dict[int, Worklog] = {}
        self.worklog_overrides: dict[int, dict[str, Any]] = {}
        self.worklog_deleted_at: dict[int, int] = {}
        self._next_history_id = 0
        self._next_worklog_id = 0
        self._generate()

    # --- generation -------------------------------------------------------------------------------
    def _generate(self) -> None:
        cfg, world = self.config, self.world
        n = cfg.issues
        r = np.random.default_rng(self.seed)
        window = max(1, cfg.days) * MS_PER_DAY
        latest = self.start_ms - 2 * MS_PER_MINUTE
        created = np.sort(self.start_ms - window + r.integers(0, window - 5 * MS_PER_MINUTE, n, endpoint=True))
        age = np.maximum(latest - created, 0)
        updated = created + (r.random(n) ** 2 * age).astype(np.int64)
        for idx in HEAVY_ISSUES:  # long-lived, so their hundreds of children spread over weeks
            if n > idx:
                updated[idx] = created[idx] + age[idx] * 9 // 10
        project_weights = np.array([2.0] + [1.0] * (cfg.projects - 1))
        project = r.choice(cfg.projects, n, p=project_weights / project_weights.sum())
        issue_type = r.choice(5, n, p=[0.03, 0.35, 0.25, 0.17, 0.20])
        parent = np.full(n, -1, dtype=np.int64)
        key_num = np.zeros(n, dtype=np.int64)
        # parents must be older issues of the same project: walk in creation order
        next_key = [0] * cfg.projects
        recent_parents: list[list[int]] = [[] for _ in range(cfg.projects)]
        epics: list[list[int]] = [[] for _ in range(cfg.projects)]
        picks = r.random(n)
        project_list, type_list = project.tolist(), issue_type.tolist()
        for i in range(n):
            p, t = project_list[i], type_list[i]
            next_key[p] += 1
            key_num[i] = next_key[p]
            if t == SUBTASK:
                if recent_parents[p]:
                    parent[i] = recent_parents[p][int(picks[i] * len(recent_parents[p]))]
                else:
                    type_list[i] = TASK
            elif t == EPIC:
                epics[p].append(i)
            elif epics[p] and picks[i] < 0.5:
                parent[i] = epics[p][int(picks[i] * 2 * len(epics[p])) % len(epics[p])]
            if type_list[i] in (STORY, TASK, BUG):
                recent_parents[p].append(i)
                if len(recent_parents[p]) > 50:
                    recent_parents[p].pop(0)
        issue_type = np.array(type_list, dtype=np.int64)
        status = r.choice(len(STATUSES), n, p=[0.25, 0.2, 0.1, 0.4, 0.05])
        done = status == DONE_STATUS
        resolution = np.where(done, r.choice(len(RESOLUTIONS), n, p=[0.8, 0.1, 0.05, 0.05]), -1)
        resolved = np.where(done, updated - (r.random(n) * np.minimum(age, MS_PER_HOUR)).astype(np.int64), 0)
        resolved = np.where(done, np.maximum(resolved, created), 0)
        workers = np.array(world.workers, dtype=np.int64)
        assignee = np.where(r.random(n) < 0.8, workers[r.integers(0, len(workers), n)], -1)
        reporter = workers[r.integers(0, len(workers), n)]
        label_bits = r.integers(0, len(LABELS), (n, 3))
        label_count = r.choice(4, n, p=[0.35, 0.35, 0.2, 0.1])
        labels = np.zeros(n, dtype=np.int64)
        for slot in range(3):
            labels |= np.where(label_count > slot, np.int64(1) << label_bits[:, slot], 0)

        def counts(small: tuple[int, int], medium: tuple[int, int], large: tuple[int, int], p: list[float]) -> np.ndarray:
            tier = r.choice(4, n, p=p)
            values = np.zeros(n, dtype=np.int64)
            for level, (low, high) in enumerate((small, medium, large), start=1):
                mask = tier == level
                values[mask] = r.integers(low, high, int(mask.sum()), endpoint=True)
            return values

        # Other test suites rely on these exact draws (e.g. seed 7: issue 10045 has 201 comments): keep them stable.
        n_comments = counts((1, 3), (4, 25), (60, 300), [0.45, 0.4, 0.14, 0.01])
        n_histories = counts((1, 8), (9, 39), (41, 400), [0.1, 0.6, 0.28, 0.02])
        n_worklogs = counts((1, 4), (5, 30), (100, 250), [0.6, 0.3, 0.095, 0.005])
        # fixed heavy issues, so even a small site has C06's numbers and "hundreds" of children
        for idx, (histories, comments, worklogs) in HEAVY_ISSUES.items():
            if n > idx:
                n_histories[idx], n_comments[idx], n_worklogs[idx] = histories, comments, worklogs

        self.n = n
        self.col = {
            "id": FIRST_ISSUE_ID + np.arange(n, dtype=np.int64),
            "project": project.astype(np.int64), "key_num": key_num, "type": issue_type,
            "status": status.astype(np.int64), "priority": r.choice(5, n, p=[0.05, 0.2, 0.5, 0.2, 0.05]).astype(np.int64),
            "assignee": assignee.astype(np.int64), "reporter": reporter.astype(np.int64),
            "created": created.astype(np.int64), "updated": updated.astype(np.int64),
            "resolution": resolution.astype(np.int64), "resolved": resolved.astype(np.int64), "labels": labels,
            "parent": parent, "n_comments": n_comments, "n_histories": n_histories,
            "salt": r.integers(0, 2 ** 62, n, dtype=np.int64),
            "deleted": np.zeros(n, dtype=bool),
        }
        self.col["comment_base"] = FIRST_COMMENT_ID + np.concatenate(([0], np.cumsum(n_comments)[:-1])) if n else np.zeros(0, np.int64)
        self.col["history_base"] = FIRST_HISTORY_ID + np.concatenate(([0], np.cumsum(n_histories)[:-1])) if n else np.zeros(0, np.int64)
        self._next_history_id = FIRST_HISTORY_ID + int(n_histories.sum()) + 1000
        # per-project lookup of key number -> index (key numbers grow with the index inside a project)
        self.project_members = [np.flatnonzero(project == p) for p in range(cfg.projects)]
        self._build_links(r)
        self._build_worklogs(n_worklogs)
        self._children: dict[int, list[int]] = {}
        for child, parent_idx in zip(np.flatnonzero(issue_type == SUBTASK).tolist(),
                                     parent[issue_type == SUBTASK].tolist()):
            self._children.setdefault(parent_idx, []).append(child)

    def _build_links(self, r: np.random.Generator) -> None:
        """About 8% of issues link to an older issue; both ends show the link (outward / inward)."""
        self.links: dict[int, list[tuple[int, int, int, bool]]] = {}
        if self.n < 2:
            return
        sources = np.flatnonzero(r.random(self.n) < 0.08)
        sources = sources[sources > 0]
        targets = (r.random(len(sources)) * sources).astype(np.int64)
        kinds = r.integers(0, len(LINK_TYPES), len(sources))
        for link_no, (source, target, kind) in enumerate(zip(sources.tolist(), targets.tolist(), kinds.tolist())):
            link_id = 10000 + 2 * link_no
            self.links.setdefault(source, []).append((link_id, target, kind, True))
            self.links.setdefault(target, []).append((link_id, source, kind, False))

    def _build_worklogs(self, n_worklogs: np.ndarray) -> None:
        """The worklog table: generated worklogs with ids, times, authors; ~2.5% deleted before start."""
        total = int(n_worklogs.sum())
        issue = np.repeat(np.arange(self.n, dtype=np.int64), n_worklogs)
        base = np.concatenate(([0], np.cumsum(n_worklogs)[:-1])) if self.n else np.zeros(0, np.int64)
        position = np.arange(total, dtype=np.int64) - np.repeat(base, n_worklogs)
        wid = FIRST_WORKLOG_ID + np.arange(total, dtype=np.int64)
        h = mix_array(self.seed, wid, 0x57A7)
        created_issue = self.col["created"][issue]
        span = np.maximum(self.col["updated"][issue] - created_issue, MS_PER_MINUTE)
        count = n_worklogs[issue]
        started = created_issue + span * (position + 1) // (count + 1)
        latest = self.start_ms - 2 * MS_PER_MINUTE
        created = np.minimum(started + (h % np.uint64(MS_PER_HOUR)).astype(np.int64), latest)
        created = np.maximum(created, started)
        room = np.maximum(latest - created, 1).astype(np.uint64)
        edited = ((h >> np.uint64(20)) % np.uint64(5)) == 0
        updated = np.where(edited, created + ((h >> np.uint64(24)) % room).astype(np.int64), created)
        deleted = ((h >> np.uint64(40)) % np.uint64(40)) == 0
        delete_room = np.maximum(latest - updated, 1).astype(np.uint64)
        deleted_ms = np.where(deleted, updated + ((h >> np.uint64(44)) % delete_room).astype(np.int64), 0)
        workers = np.array(self.world.workers, dtype=np.int64)
        self.wl = {
            "id": wid, "issue": issue, "started": started, "created": created, "updated": updated,
            "detail": (h >> np.uint64(1)).astype(np.int64),  # comment and update author choices
            "seconds": (((h >> np.uint64(8)) % np.uint64(32)).astype(np.int64) + 1) * 900,
            "author": workers[((h >> np.uint64(50)) % np.uint64(len(workers))).astype(np.int64)],
            "deleted_ms": deleted_ms.astype(np.int64),
        }
        self.worklog_base = FIRST_WORKLOG_ID + base
        self.worklog_count = n_worklogs.astype(np.int64)
        self._next_worklog_id = FIRST_WORKLOG_ID + total + 1000
        self._issue_worklogs_added: dict[int, list[int]] = {}

    # --- lookups ----------------------------------------------------------------------------------
    def key_of(self, idx: int) -> str:
        return f"{self.world.projects[int(self.col['project'][idx])].key}-{int(self.col['key_num'][idx])}"

    def find(self, id_or_key: str) -> Optional[int]:
        """Index of a live issue by id or key, or None (deleted issues are gone)."""
        id_or_key = str(id_or_key).strip()
        if id_or_key.isdigit():
            idx = int(id_or_key) - FIRST_ISSUE_ID
        else:
            project_key, _, number = id_or_key.upper().rpartition("-")
            project = self.world.projects_by_key.get(project_key)
            if project is None or not number.isdigit():
                return None
            members = self.project_members[project.index]
            nums = self.col["key_num"][members]
            pos = int(np.searchsorted(nums, int(number)))
            if pos >= len(members) or nums[pos] != int(number):
                return None
            idx = int(members[pos])
        if 0 <= idx < self.n and not self.col["deleted"][idx]:
            return idx
        return None

    _VIEW_COLUMNS = ("id", "project", "key_num", "type", "status", "priority", "assignee", "reporter", "created",
                     "updated", "resolution", "resolved", "labels", "parent", "n_comments", "n_histories", "salt")

    def views(self, indices: Iterable[int]) -> list[IssueView]:
        """IssueViews for many issues at once (one vectorised read per column: rendering pages is hot)."""
        indices = np.asarray(list(indices) if not isinstance(indices, np.ndarray) else indices, dtype=np.int64)
        columns = [self.col[name][indices].tolist() for name in self._VIEW_COLUMNS]
        keys = [p.key for p in self.world.projects]
        return [IssueView(idx, issue_id, f"{keys[project]}-{key_num}", project, *rest)
                for idx, (issue_id, project, key_num, *rest) in zip(indices.tolist(), zip(*columns))]

    def view(self, idx: int) -> IssueView:
        c = self.col
        project = c["project"].item(idx)
        return IssueView(idx, c["id"].item(idx), f"{self.world.projects[project].key}-{c['key_num'].item(idx)}",
                         project, *(c[name].item(idx) for name in self._VIEW_COLUMNS[3:]))

    def labels_of(self, mask: int) -> list[str]:
        return [label for bit, label in enumerate(self.labels_vocab) if mask >> bit & 1]

    def children_of(self, idx: int) -> list[int]:
        return [c for c in self._children.get(idx, ()) if not self.col["deleted"][c]]

    def links_of(self, idx: int) -> list[tuple[int, int, int, bool]]:
        return [link for link in self.links.get(idx, ()) if not self.col["deleted"][link[1]]]

    # --- worklogs ---------------------------------------------------------------------------------
    _WORKLOG_COLUMNS = ("id", "issue", "author", "started", "created", "updated", "seconds", "deleted_ms", "detail")

    def _generated_worklogs(self, start_row: int, stop_row: int) -> list[Worklog]:
        """Generated worklogs of table rows [start, stop): one slice per column."""
        columns = [self.wl[name][start_row:stop_row].tolist() for name in self._WORKLOG_COLUMNS]
        comments, boss = text.WORKLOG_COMMENTS, self.world.workers[0]
        return [Worklog(wid, issue, author, author if detail % 10 else boss, started, created, updated, seconds,
                        comments[(detail >> 8) % len(comments)], deleted_ms)
                for wid, issue, author, started, created, updated, seconds, deleted_ms, detail in zip(*columns)]

    def _current(self, worklog: Worklog) -> Worklog:
        """Apply edits and deletions (its own, or its issue's) to a worklog's stored state (a new object)."""
        changes = dict(self.worklog_overrides.get(worklog.id, ()))
        if worklog.id in self.worklog_deleted_at:
            changes["deleted_ms"] = self.worklog_deleted_at[worklog.id]
        elif not worklog.deleted_ms and worklog.issue in self.deleted_at:
            changes["deleted_ms"] = self.deleted_at[worklog.issue]
        return replace(worklog, **changes) if changes else worklog

    def worklog(self, wid: int) -> Optional[Worklog]:
        """The current state of a worklog (None if unknown); `deleted_ms` > 0 means deleted."""
        if wid in self.added_worklogs:
            return self._current(self.added_worklogs[wid])
        row = wid - FIRST_WORKLOG_ID
        if not 0 <= row < len(self.wl["id"]):
            return None
        return self._current(self._generated_worklogs(row, row + 1)[0])

    def worklog_ids_of(self, idx: int) -> list[int]:
        base, count = int(self.worklog_base[idx]), int(self.worklog_count[idx])
        return list(range(base, base + count)) + self._issue_worklogs_added.get(idx, [])

    def worklogs_of(self, idx: int) -> list[Worklog]:
        """Live worklogs of an issue, oldest created first (as /issue/{id}/worklog lists them)."""
        count = self.worklog_count.item(idx)
        row = self.worklog_base.item(idx) - FIRST_WORKLOG_ID
        generated = self._generated_worklogs(row, row + count) if count else []
        added = [self.added_worklogs[wid] for wid in self._issue_worklogs_added.get(idx, ())]
        live = [w for w in map(self._current, generated + added) if not w.deleted_ms]
        if len(live) > 1:
            live.sort(key=_created_then_id)
        return live

    def worklog_events(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(ids, updated ms, deleted ms, issue index) of every worklog ever created, for /worklog/updated|deleted."""
        with self.lock:
            ids = self.wl["id"].copy()
            updated = self.wl["updated"].copy()
            deleted = self.wl["deleted_ms"].copy()
            issues = self.wl["issue"].copy()
            extra_ids = sorted(set(self.worklog_overrides) | set(self.worklog_deleted_at) | set(self.added_worklogs)
                               | set(self._worklogs_of_deleted_issues()))
            if extra_ids:
                extra = [self.worklog(wid) for wid in extra_ids]
                generated = [w for w in extra if w.id not in self.added_worklogs]
                rows = np.array([w.id - FIRST_WORKLOG_ID for w in generated], dtype=np.int64)
                if len(rows):
                    updated[rows] = [w.updated for w in generated]
                    deleted[rows] = [w.deleted_ms for w in generated]
                added = [w for w in extra if w.id in self.added_worklogs]
                if added:
                    ids = np.concatenate((ids, [w.id for w in added]))
                    updated = np.concatenate((updated, [w.updated for w in added]))
                    deleted = np.concatenate((deleted, [w.deleted_ms for w in added]))
                    issues = np.concatenate((issues, [w.issue for w in added]))
            return ids, updated, deleted, issues

    def _worklogs_of_deleted_issues(self) -> list[int]:
        return [wid for idx in self.deleted_at for wid in self.worklog_ids_of(idx)]

    # --- comments and changelog (derived) ---------------------------------------------------------
    def comments_of(self, view: IssueView) -> list[dict[str, Any]]:
        """Comment states of an issue, oldest first: id, author, created, updated, body, visibility."""
        base = int(self.col["comment_base"][view.idx])
        span = max(view.updated - view.created, MS_PER_MINUTE)
        workers = self.world.workers
        r = random.Random(mix(self.seed, base, 0xC1))
        comments = []
        for j in range(view.n_comments):
            created = view.created + span * (j + 1) // (view.n_comments + 1)
            roll = r.random()
            comments.append({
                "id": base + j, "author": workers[int(r.random() * len(workers))], "created": created,
                "updated": created + (int(roll * 10 * (view.updated - created)) if roll < 0.1 else 0),
                "body": text.comment(r), "restricted": 0.1 <= roll < 0.15,
            })
        return comments

    def history_total(self, view: IssueView) -> int:
        return view.n_histories + len(self.extra_histories.get(view.idx, ()))

    def histories_of(self, view: IssueView, start: int = 0, stop: Optional[int] = None) -> list[dict[str, Any]]:
        """Changelog histories [start, stop), oldest first, ending at the issue's current status and assignee.

        Only the requested slice is built (search embeds 40 of possibly hundreds).
        """
        base = int(self.col["history_base"][view.idx])
        count = view.n_histories
        extras = self.extra_histories.get(view.idx, [])
        stop = count + len(extras) if stop is None else min(stop, count + len(extras))
        span = max(view.updated - view.created, MS_PER_MINUTE)
        workers = self.world.workers
        rnd = random.Random(mix(self.seed, view.id, 0xC2))
        kinds = rnd.choices("ssaplpx", k=count)
        if count and view.status != 0:
            kinds[-1] = "s"  # the last change is the transition into the current status
        # walk the status and assignee chains backwards from the current values: (from, to) per change
        changes: dict[int, tuple[int, int]] = {}
        status, assignee = view.status, view.assignee
        for j in range(count - 1, -1, -1):
            if kinds[j] == "s":
                before = STATUS_CYCLE[(STATUS_CYCLE.index(status) - 1) % 4] if status in STATUS_CYCLE else 0
                changes[j], status = (before, status), before
            elif kinds[j] == "a":
                before = workers[(j * 7 + view.id) % len(workers)]
                changes[j], assignee = (before, assignee), before
        histories = []
        for j in range(start, min(stop, count)):
            kind = kinds[j]
            if kind == "s":
                old, new = changes[j]
                items = [change_item("status", "jira", STATUSES[old][0], STATUSES[old][1], STATUSES[new][0],
                                     STATUSES[new][1])]
            elif kind == "a":
                old, new = changes[j]
                items = [change_item("assignee", "jira", self._account(old), self._name(old), self._account(new),
                                     self._name(new))]
            elif kind == "p":
                a, b = (j + view.id) % 5, (j + view.id + 1) % 5
                items = [change_item("priority", "jira", PRIORITIES[a][0], PRIORITIES[a][1], PRIORITIES[b][0],
                                     PRIORITIES[b][1])]
            elif kind == "l":
                items = [change_item("labels", "jira", None, "", None, LABELS[(j + view.id) % len(LABELS)])]
            else:
                points = (1, 2, 3, 5, 8, 13)
                items = [change_item("Story point estimate", "custom", None, str(points[j % 6]), None,
                                     str(points[(j + 1) % 6]), field_id="customfield_10016")]
            histories.append({"id": base + j, "author": workers[((base + j) * 0x9E3779B1 >> 11) % len(workers)],
                              "created": view.created + span * (j + 1) // count, "items": items})
        histories.extend(extras[max(0, start - count):max(0, stop - count)])
        return histories

    def _account(self, user: int) -> Optional[str]:
        return None if user < 0 else self.world.users[user].account_id

    def _name(self, user: int) -> Optional[str]:
        return None if user < 0 else self.world.users[user].display_name

    # --- mutations (called through Mutator) -------------------------------------------------------
    def next_history_id(self) -> int:
        self._next_history_id += 1
        return self._next_history_id

    def next_worklog_id(self) -> int:
        self._next_worklog_id += 1
        return self._next_worklog_id

    def add_worklog_record(self, worklog: Worklog) -> None:
        self.added_worklogs[worklog.id] = worklog
        self._issue_worklogs_added.setdefault(worklog.issue, []).append(worklog.id)

    def label_mask(self, labels: Iterable[str]) -> int:
        mask = 0
        for label in labels:
            if label not in self.labels_vocab:
                if len(self.labels_vocab) >= 62:
                    raise ValueError("the simulator supports at most 62 distinct labels")
                self.labels_vocab.append(label)
            mask |= 1 << self.labels_vocab.index(label)
        return mask

    def used_labels(self) -> list[str]:
        """Labels in use by live issues, sorted (what /label lists)."""
        live = self.col["labels"][~self.col["deleted"]]
        union = int(np.bitwise_or.reduce(live)) if len(live) else 0
        return sorted(self.labels_of(union))


def change_item(field: str, fieldtype: str, from_value: Optional[str], from_string: Optional[str], to_value: Optional[str],
          to_string: Optional[str], field_id: Optional[str] = None, field_name: Optional[str] = None) -> dict[str, Any]:
    return {"field": field_name or field, "fieldtype": fieldtype, "fieldId": field_id or field, "from": from_value,
            "fromString": from_string, "to": to_value, "toString": to_string}


# --- rendering -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FieldSelection:
    """Which fields a request asked for: an ordered tuple of field ids, or none (id/key only)."""

    fields: tuple[str, ...]
    want_key: bool = True
    #: `*all` without exclusions (replayed issues then return every recorded field, catalogued or not)
    everything: bool = False

    @property
    def ids_only(self) -> bool:
        return not self.fields


def select_fields(specs: Iterable[str], catalog: list[FieldDef], default: str) -> FieldSelection:
    """Parse `fields` like Jira: comma lists, repeated params, `*all`, `*navigable`, `-exclusions`, `id`, `key`."""
    tokens = [t.strip() for spec in specs for t in str(spec).split(",") if t.strip()]
    if not tokens:
        tokens = [default]
    ids = [f.id for f in catalog]
    chosen: list[str] = []
    excluded: set[str] = set()
    want_key = False
    for token in tokens:
        if token.startswith("-"):
            excluded.add(token[1:])
        elif token == "*all":
            chosen.extend(ids)
            want_key = True
        elif token == "*navigable":
            chosen.extend(f.id for f in catalog if f.navigable)
            want_key = True
        elif token == "id":
            continue
        elif token == "key":
            want_key = True
        elif token in ids:
            chosen.append(token)
            want_key = True
        else:
            want_key = True  # Jira silently ignores unknown fields but still returns the issue envelope
    seen: set[str] = set()
    ordered = tuple(f for f in chosen if not (f in seen or seen.add(f)) and f not in excluded)
    return FieldSelection(ordered, want_key or bool(ordered), everything="*all" in tokens and not excluded)


@dataclass(frozen=True)
class ViewContext:
    """Who is looking: the viewer's time zone decides every timestamp's offset."""

    zone: str
    viewer: int  # user index, -1 for anonymous


class RenderedIssues:
    """Encoded issues by (data version, view, issue), least recently used dropped beyond a byte budget.

    Any mutation bumps the store's version, which empties the cache: rendered issues embed children and
    linked issues, so per-issue invalidation would have to track every dependency."""

    def __init__(self, budget_bytes: int):
        self.budget = budget_bytes
        self.size = 0
        self.version = -1
        self._entries: OrderedDict[tuple, tuple[orjson.Fragment, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get_many(self, version: int, view_key: tuple, indices: list[int]) -> dict[int, orjson.Fragment]:
        if not self.budget:
            return {}
        found = {}
        with self._lock:
            if version != self.version:
                self._entries.clear()
                self.size, self.version = 0, version
            for idx in indices:
                entry = self._entries.get((view_key, idx))
                if entry is not None:
                    self._entries.move_to_end((view_key, idx))
                    found[idx] = entry[0]
        return found

    def put_many(self, version: int, view_key: tuple, encoded: dict[int, bytes]) -> None:
        if not self.budget:
            return
        with self._lock:
            if version != self.version:
                return  # the data changed while these were rendered
            for idx, payload in encoded.items():
                previous = self._entries.pop((view_key, idx), None)
                if previous is not None:
                    self.size -= previous[1]
                self._entries[(view_key, idx)] = (orjson.Fragment(payload), len(payload))
                self.size += len(payload)
            while self.size > self.budget and self._entries:
                self.size -= self._entries.popitem(last=False)[1][1]


class IssueRenderer:
    """Turns stored issues into Jira's v2 JSON (v3 conversion happens in the HTTP layer)."""

    def __init__(self, store: IssueStore):
        self.store = store
        self.world = store.world
        self.api = self.world.api
        world = self.world
        # Shared sub-objects are serialized once and embedded as orjson Fragments: most of an issue's
        # bytes are users, statuses and projects, and re-encoding them per issue dominated the CPU cost.
        self._types = [_fragment(world.issue_type(i)) for i in range(len(ISSUE_TYPES))]
        self._statuses = [_fragment(world.status(i)) for i in range(len(STATUSES))]
        self._priorities = [_fragment(world.priority(i)) for i in range(len(PRIORITIES))]
        self._resolutions = [_fragment(world.resolution(i)) for i in range(len(RESOLUTIONS))]
        self._projects = [_fragment(world.project_ref(p)) for p in world.projects]
        self._link_types = [_fragment(world.link_type(i)) for i in range(len(LINK_TYPES))]
        self._versions = {p: [_fragment(world.version_ref(v)) for v in world.versions[p]] for p in world.versions}
        self._components = {p: [_fragment(world.component_ref(c)) for c in world.components[p]] for p in world.components}
        self._sprint_values = {s.id: _fragment(world.sprint_field_value(s)) for s in world.sprints}
        self._users: dict[int, orjson.Fragment] = {}
        self._custom_fields = [(f.id, f.kind, self._value_pool(int(f.id.split("_")[1]), f.kind))
                               for f in store.catalog if f.custom]
        self._rendered = RenderedIssues(store.world.config.render_cache_mb * 1_000_000)

    def user(self, index: int) -> orjson.Fragment:
        ref = self._users.get(index)
        if ref is None:
            ref = self._users[index] = _fragment(self.world.user_ref(index))
        return ref

    # public entry points ---------------------------------------------------------------------------
    def issues(self, indices: Iterable[int], selection: FieldSelection, ctx: ViewContext,
               expand: set[str]) -> list[dict[str, Any]]:
        """Many issues (a search page): one vectorised column read for all of them."""
        if selection.ids_only and not selection.want_key:
            ids = self.store.col["id"][np.asarray(list(indices), dtype=np.int64)].tolist()
            return [{"id": str(issue_id)} for issue_id in ids]
        return [self._issue(view, selection, ctx, expand) for view in self.store.views(indices)]

    def issue(self, idx: int, selection: FieldSelection, ctx: ViewContext, expand: set[str]) -> dict[str, Any]:
        return self.issues([idx], selection, ctx, expand)[0]

    def encoded(self, indices: Iterable[int], selection: FieldSelection, ctx: ViewContext,
                expand: set[str]) -> list[orjson.Fragment]:
        """A page of issues as ready JSON, each issue rendered once per data version and view.

        Clients read the same issues again and again (overlapping windows, retried pages, every run of a
        benchmark), and building an issue costs about three times what a client spends parsing it."""
        indices = [int(i) for i in indices]
        view_key = (selection, ctx, frozenset(expand))
        found = self._rendered.get_many(self.store.version, view_key, indices)
        missing = [idx for idx in indices if idx not in found]
        if missing:
            encoded = {idx: orjson.dumps(record) for idx, record in
                       zip(missing, self.issues(missing, selection, ctx, expand))}
            self._rendered.put_many(self.store.version, view_key, encoded)
            found.update((idx, orjson.Fragment(payload)) for idx, payload in encoded.items())
        return [found[idx] for idx in indices]

    def _issue(self, view: IssueView, selection: FieldSelection, ctx: ViewContext, expand: set[str]) -> dict[str, Any]:
        store = self.store
        if selection.ids_only and not selection.want_key:
            return {"id": str(view.id)}
        record: dict[str, Any] = {"expand": ISSUE_EXPAND, "id": str(view.id), "self": f"{self.api}/issue/{view.id}",
                                  "key": view.key}
        values = self.field_values(view, selection.fields, ctx)
        if "renderedFields" in expand:
            record["renderedFields"] = self.rendered_fields(view, values, ctx)
        if selection.fields or not selection.ids_only:
            record["fields"] = values
        if "changelog" in expand:
            histories = store.histories_of(view, 0, EMBEDDED_HISTORIES)
            record["changelog"] = {"startAt": 0, "maxResults": EMBEDDED_HISTORIES, "total": store.history_total(view),
                                   "histories": [self.history(h, ctx) for h in histories]}
        return record

    def field_values(self, view: IssueView, field_ids: tuple[str, ...], ctx: ViewContext) -> dict[str, Any]:
        derived = self._derive(view, ctx)
        values: dict[str, Any] = {}
        for field_id in field_ids:
            value = derived.get(field_id, _MISSING)
            if value is _MISSING:  # e.g. `parent` is absent, not null, on issues without one
                continue
            values[field_id] = value(view, ctx) if callable(value) else value
        return values

    def comment(self, issue_id: int, comment: dict[str, Any], ctx: ViewContext, rendered: bool = False) -> dict[str, Any]:
        record = {"self": f"{self.api}/issue/{issue_id}/comment/{comment['id']}", "id": str(comment["id"]),
                  "author": self.user(comment["author"]), "body": comment["body"],
                  "updateAuthor": self.user(comment["author"]),
                  "created": jira_datetime(comment["created"], ctx.zone),
                  "updated": jira_datetime(comment["updated"], ctx.zone), "jsdPublic": True}
        if rendered:
            record["renderedBody"] = text.to_html(comment["body"])
        if comment.get("restricted"):
            record["visibility"] = {"type": "role", "value": "Administrators", "identifier": "Administrators"}
        return record

    def history(self, history: dict[str, Any], ctx: ViewContext) -> dict[str, Any]:
        return {"id": str(history["id"]), "author": self.user(history["author"]),
                "created": jira_datetime(history["created"], ctx.zone), "items": history["items"]}

    def worklog(self, worklog: Worklog, ctx: ViewContext) -> dict[str, Any]:
        issue_id = FIRST_ISSUE_ID + worklog.issue
        return {"self": f"{self.api}/issue/{issue_id}/worklog/{worklog.id}",
                "author": self.user(worklog.author), "updateAuthor": self.user(worklog.update_author),
                "comment": worklog.comment, "created": jira_datetime(worklog.created, ctx.zone),
                "updated": jira_datetime(worklog.updated, ctx.zone), "started": jira_datetime(worklog.started, ctx.zone),
                "timeSpent": _duration(worklog.seconds), "timeSpentSeconds": worklog.seconds,
                "id": str(worklog.id), "issueId": str(issue_id)}

    def rendered_fields(self, view: IssueView, values: dict[str, Any], ctx: ViewContext) -> dict[str, Any]:
        from .timeutil import rendered_datetime

        rendered: dict[str, Any] = {}
        for field_id, value in values.items():
            definition = self.store.field_by_id.get(field_id)
            kind = (definition.schema or {}).get("type") if definition else None
            if field_id in ("description", "environment") or field_id in TEXTAREA_FIELDS:
                rendered[field_id] = text.to_html(value) if isinstance(value, str) else None
            elif kind == "datetime" and isinstance(value, str):
                rendered[field_id] = rendered_datetime(_parse_ms(value), ctx.zone)
            elif field_id == "comment" and isinstance(value, dict):
                rendered[field_id] = {**value, "comments": [{**c, "body": text.to_html(c["body"])} for c in value["comments"]]}
            else:
                rendered[field_id] = None
        return rendered

    # derived values -------------------------------------------------------------------------------
    def _derive(self, view: IssueView, ctx: ViewContext) -> dict[str, Any]:
        """All field values of one issue; expensive ones are lazily computed callables."""
        store = self.store
        bits = Bits(view.salt)
        zone = ctx.zone
        summary = issue_summary(view.salt)
        description = bits.pick(text.DESCRIPTIONS)
        estimate = bits.pick(_ESTIMATES)
        remaining_fraction = bits.take(10) / 1024
        watch_count = bits.below(5)
        votes = bits.pick((0, 0, 0, 1, 2))
        versions = self._versions[view.project]
        fix_versions = [bits.pick(versions)] if bits.chance(0.4) else []
        affects = [bits.pick(versions)] if view.type == BUG and bits.chance(0.6) else []
        comps = [self._components[view.project][k] for k in component_slots(view.salt)]
        due = view.created + (3 + bits.below(38)) * MS_PER_DAY if bits.chance(0.3) else None
        environment = bits.pick(_ENVIRONMENTS) if view.type == BUG and bits.chance(0.5) else None
        custom = self._custom_values(view, bits, zone)

        worklogs = store.worklogs_of(view.idx)
        total_spent = sum(w.seconds for w in worklogs) or None

        remaining = None if estimate is None else int(estimate * remaining_fraction) // 60 * 60

        def progress(_v: IssueView, _c: ViewContext) -> dict[str, Any]:
            done = total_spent or 0
            total = done + (remaining or 0)
            result: dict[str, Any] = {"progress": done, "total": total}
            if total:
                result["percent"] = done * 100 // total
            return result

        def timetracking(_v: IssueView, _c: ViewContext) -> dict[str, Any]:
            result: dict[str, Any] = {}
            if estimate is not None:
                result.update({"originalEstimate": _duration(estimate), "remainingEstimate": _duration(remaining or 0)})
            if total_spent:
                result["timeSpent"] = _duration(total_spent)
            if estimate is not None:
                result.update({"originalEstimateSeconds": estimate, "remainingEstimateSeconds": remaining or 0})
            if total_spent:
                result["timeSpentSeconds"] = total_spent
            return result

        values: dict[str, Any] = {
            "statuscategorychangedate": jira_datetime(view.resolved or view.created + (view.updated - view.created) // 2, zone),
            "issuetype": self._types[view.type],
            "parent": (lambda v, c: self._issue_stub(v.parent, c)) if view.parent >= 0 else _MISSING,
            "timespent": total_spent,
            "project": self._projects[view.project],
            "fixVersions": fix_versions,
            "aggregatetimespent": total_spent,
            "resolution": self._resolutions[view.resolution] if view.resolution >= 0 else None,
            "resolutiondate": jira_datetime(view.resolved, zone) if view.resolution >= 0 else None,
            "workratio": (total_spent or 0) * 100 // estimate if estimate else -1,
            "watches": {"self": f"{self.api}/issue/{view.key}/watchers", "watchCount": watch_count,
                        "isWatching": ctx.viewer == view.reporter},
            "lastViewed": jira_datetime(view.updated, zone) if ctx.viewer == view.reporter else None,
            "issuerestriction": {"issuerestrictions": {}, "shouldDisplay": False},
            "created": jira_datetime(view.created, zone),
            "priority": self._priorities[view.priority],
            "labels": store.labels_of(view.labels),
            "timeestimate": remaining,
            "aggregatetimeoriginalestimate": estimate,
            "versions": affects,
            "issuelinks": lambda v, c: self._links(v, c),
            "assignee": self.user(view.assignee) if view.assignee >= 0 else None,
            "updated": jira_datetime(view.updated, zone),
            "status": self._statuses[view.status],
            "components": comps,
            "timeoriginalestimate": estimate,
            "description": description,
            "timetracking": timetracking,
            "security": None,
            "attachment": [],
            "aggregatetimeestimate": remaining,
            "summary": summary,
            "creator": self.user(view.reporter),
            "subtasks": lambda v, c: [self._issue_stub(child, c) for child in store.children_of(v.idx)],
            "reporter": self.user(view.reporter),
            "aggregateprogress": progress,
            "environment": environment,
            "duedate": jira_date(due, zone) if due else None,
            "progress": progress,
            "votes": {"self": f"{self.api}/issue/{view.key}/votes", "votes": votes, "hasVoted": False},
            "comment": lambda v, c: self._comment_page(v, c),
            "worklog": lambda v, c: self._worklog_page(v, worklogs, c),
        }
        values.update(custom)
        for field_id, value in store.overrides.get(view.idx, {}).items():
            values[field_id] = value
        return values

    def _custom_values(self, view: IssueView, bits: Bits, zone: str) -> dict[str, Any]:
        values: dict[str, Any] = {}
        presence = bits.take(4 * len(self._custom_fields))  # four bits a field, drawn at once
        for field_id, kind, pool in self._custom_fields:
            present = (presence & 15) < 9  # a value in about 56% of issues, like real custom fields
            presence >>= 4
            if field_id == SPRINT_FIELD:
                values[field_id] = self._sprints(view) or None
            elif kind == "gh-lexo-rank":
                values[field_id] = "0|i%05x:" % view.idx
            elif not present or (kind == "jsw-story-points" and view.type not in (STORY, TASK, BUG)):
                values[field_id] = None
            elif kind == "datetime":
                values[field_id] = jira_datetime(view.created + bits.below(61) * MS_PER_DAY + bits.take(16) * 1000, zone)
            elif kind == "datepicker":
                values[field_id] = jira_date(view.created + (1 + bits.below(90)) * MS_PER_DAY, zone)
            elif kind == "url":
                values[field_id] = f"https://specs.example.com/{view.key.lower()}"
            else:
                values[field_id] = pool[bits.take(5)] if pool else None  # pools hold 32 values
        return values

    def _value_pool(self, number: int, kind: str) -> tuple[Any, ...]:
        """32 seeded candidate values of one custom field (pre-serialized where they are objects)."""
        r = random.Random(mix(self.store.seed, number, 0xF1E1D))
        workers = self.world.workers

        def one() -> Any:
            if kind == "jsw-story-points":
                return float(r.choice((1, 2, 3, 5, 8, 13)))
            if kind == "float":
                return float(r.choice((1, 2, 3, 5, 8))) if number == 10028 else round(r.uniform(0, 50000), 2)
            if kind == "select":
                return _fragment(self._option(number, r.randrange(len(SELECT_OPTIONS.get(number, _COLOURS)))))
            if kind == "multiselect":
                chosen = sorted(r.sample(range(len(SELECT_OPTIONS[number])), r.randint(1, 3)))
                return _fragment([self._option(number, i) for i in chosen])
            if kind == "userpicker":
                return self.user(r.choice(workers))
            if kind == "multiuserpicker":
                return _fragment([self.world.user_ref(u) for u in sorted(set(r.sample(workers, r.randint(1, 3))))])
            if kind == "labels":
                return sorted(r.sample(("alpha", "beta", "ga", "ünïcødé", "x-team"), r.randint(1, 2)))
            if kind == "textarea":
                return "Release notes:\n- " + text.paragraph(r, 1) + "\n- naïve café ✓\n\nThanks!"
            if kind == "textfield":
                return r.choice(("ACME GmbH", "Zürich Versicherung", "東京商事", "O'Brien & Sons", "Ñandú S.A."))
            if kind == "cascadingselect":
                parent_index = r.randrange(len(SELECT_OPTIONS[number]))
                children = CASCADE_CHILDREN[SELECT_OPTIONS[number][parent_index]]
                child = r.randrange(len(children))
                child_id = option_id(number, parent_index, child)
                return _fragment({**self._option(number, parent_index),
                                  "child": {"self": f"{self.api}/customFieldOption/{child_id}",
                                            "value": children[child], "id": child_id}})
            return None

        return tuple(one() for _ in range(32))

    def _option(self, number: int, index: int) -> dict[str, Any]:
        options = SELECT_OPTIONS.get(number, _COLOURS)
        return {"self": f"{self.api}/customFieldOption/{option_id(number, index)}", "value": options[index],
                "id": option_id(number, index)}

    def _sprints(self, view: IssueView) -> list[dict[str, Any]]:
        """Closed sprints the issue passed through plus its current active sprint (Cloud array form)."""
        if view.type in (EPIC, SUBTASK):
            return []
        sprints = self.world.sprints_by_project.get(view.project, [])
        result = []
        for sprint in sprints:
            if sprint.start_ms is None or sprint.end_ms < view.created:
                continue
            if sprint.state == "closed" and (view.status != DONE_STATUS or sprint.start_ms <= view.updated):
                result.append(self._sprint_values[sprint.id])
            elif sprint.state == "active" and view.status != DONE_STATUS:
                result.append(self._sprint_values[sprint.id])
            if view.status == DONE_STATUS and sprint.end_ms >= view.updated:
                break
        return result[-4:]

    def _issue_stub(self, idx: int, ctx: ViewContext) -> dict[str, Any]:
        """How parents, sub-tasks and linked issues are embedded: id, key, self and four fields."""
        view = self.store.view(idx)
        summary = issue_summary(view.salt)
        overrides = self.store.overrides.get(idx, {})
        return {"id": str(view.id), "key": view.key, "self": f"{self.api}/issue/{view.id}",
                "fields": {"summary": overrides.get("summary", summary), "status": self._statuses[view.status],
                           "priority": self._priorities[view.priority], "issuetype": self._types[view.type]}}

    def _links(self, view: IssueView, ctx: ViewContext) -> list[dict[str, Any]]:
        links = []
        for link_id, other, kind, outward in self.store.links_of(view.idx):
            link = {"id": str(link_id), "self": f"{self.api}/issueLink/{link_id}", "type": self._link_types[kind]}
            link["outwardIssue" if outward else "inwardIssue"] = self._issue_stub(other, ctx)
            links.append(link)
        return links

    def _comment_page(self, view: IssueView, ctx: ViewContext) -> dict[str, Any]:
        comments = self.store.comments_of(view)
        shown = [self.comment(view.id, c, ctx) for c in comments[:EMBEDDED_COMMENTS]]
        return {"comments": shown, "self": f"{self.api}/issue/{view.id}/comment", "maxResults": len(shown),
                "total": len(comments), "startAt": 0}

    def _worklog_page(self, view: IssueView, worklogs: list[Worklog], ctx: ViewContext) -> dict[str, Any]:
        return {"startAt": 0, "maxResults": EMBEDDED_WORKLOGS, "total": len(worklogs),
                "worklogs": [self.worklog(w, ctx) for w in worklogs[:EMBEDDED_WORKLOGS]]}


_MISSING = object()
STATUS_CYCLE = (0, 1, 2, 3)  # To Do -> In Progress -> In Review -> Done
_ESTIMATES = (None, None, 3600, 7200, 14400, 28800, 57600)
_ENVIRONMENTS = tuple(f"Browser: Firefox {v}\nOS: Ubuntu 24.04 — ünïcødé" for v in range(100, 131))
_COLOURS = ("Red", "Green", "Blue")


def _created_then_id(worklog: Worklog) -> tuple[int, int]:
    return worklog.created, worklog.id


def issue_summary(salt: int) -> str:
    """An issue's generated summary (also shown where it is embedded as a parent, sub-task or link)."""
    return text.SUMMARIES[(salt >> 40) % len(text.SUMMARIES)]  # high salt bits: no Random needed


def _fragment(value: Any) -> orjson.Fragment:
    return orjson.Fragment(orjson.dumps(value))
COMPONENT_SLOTS = 3  # components per project (world.py); membership comes from salt bits so counts are cheap


def component_slots(salt: int) -> list[int]:
    """Which of the project's components an issue belongs to (about one in four each)."""
    return [k for k in range(COMPONENT_SLOTS) if (salt >> (4 * k + 3)) & 3 == 0]


def component_counts(salts, projects, n_projects: int):
    """issueCount per (project, component slot), vectorised over live issues."""
    counts = np.zeros((n_projects, COMPONENT_SLOTS), dtype=np.int64)
    for k in range(COMPONENT_SLOTS):
        member = ((salts >> (4 * k + 3)) & 3) == 0
        counts[:, k] = np.bincount(projects[member], minlength=n_projects)
    return counts


@lru_cache(maxsize=4096)
def _duration(seconds: int) -> str:
    """Jira's pretty duration: `1d 2h 30m` with 8-hour days and 5-day weeks."""
    if not seconds:
        return "0m"
    minutes = seconds // 60
    parts = []
    for unit, size in (("w", 5 * 8 * 60), ("d", 8 * 60), ("h", 60), ("m", 1)):
        if minutes >= size:
            parts.append(f"{minutes // size}{unit}")
            minutes %= size
    return " ".join(parts)


def _parse_ms(value: str) -> int:
    from .timeutil import parse_jira_datetime

    return parse_jira_datetime(value)
