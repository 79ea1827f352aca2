"""Changes over time: update and delete issues, add/update/delete worklogs (for incremental-sync tests).

Every change is stamped with the simulator clock (or an explicit `at`), bumps what Jira bumps, and
appends what Jira appends (changelog histories, /worklog/updated and /worklog/deleted entries).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional, Union

import orjson

from .clock import to_epoch_ms
from .issues import Worklog, change_item
from .jira_site import JiraSite
from .world import DONE_STATUS, PRIORITIES, STATUSES

Instant = Union[int, float, str, datetime, None]
IssueRef = Union[int, str]


class Mutator:
    def __init__(self, site: JiraSite):
        self.site = site
        self.store = site.store

    def _at(self, at: Instant) -> int:
        return self.site.clock.now_ms() if at is None else to_epoch_ms(at)

    def _issue(self, issue: IssueRef) -> int:
        idx = self.store.find(str(issue))
        if idx is None:
            raise KeyError(f"no live issue {issue!r}")
        return idx

    def _user(self, account_id: Optional[str]) -> int:
        if account_id is None:
            return -1
        user = self.site.world.users_by_account.get(account_id)
        if user is None:
            raise KeyError(f"no user with accountId {account_id!r}")
        return user.index

    # --- issues -----------------------------------------------------------------------------------
    def update_issue(self, issue: IssueRef, at: Instant = None, author: Optional[str] = None, **changes: Any) -> int:
        """Change fields of an issue; bumps `updated` and appends one changelog history. Returns the new updated ms.

        Convenience keys: `status` and `priority` (name or id), `assignee` (accountId or None),
        `labels` (list), `summary`, `description`; any other field id takes a raw Jira JSON value.
        With no changes at all, only `updated` moves (as a touch would).
        """
        store, world = self.store, self.site.world
        with store.lock:
            idx = self._issue(issue)
            when = self._at(at)
            view = store.view(idx)
            col = store.col
            items: list[dict[str, Any]] = []
            overrides = store.overrides.setdefault(idx, {})
            current = orjson.loads(orjson.dumps(  # plain values (shared parts are pre-serialized fragments)
                self.site.renderer.field_values(view, tuple(changes), self.site.admin_view())))
            for field, value in changes.items():
                if field == "status":
                    new = _choice_index(STATUSES, value, "status")
                    items.append(change_item("status", "jira", STATUSES[view.status][0], STATUSES[view.status][1],
                                       STATUSES[new][0], STATUSES[new][1]))
                    col["status"][idx] = new
                    done = new == DONE_STATUS
                    col["resolution"][idx] = 0 if done else -1
                    col["resolved"][idx] = when if done else 0
                elif field == "priority":
                    new = _choice_index(PRIORITIES, value, "priority")
                    items.append(change_item("priority", "jira", PRIORITIES[view.priority][0], PRIORITIES[view.priority][1],
                                       PRIORITIES[new][0], PRIORITIES[new][1]))
                    col["priority"][idx] = new
                elif field == "assignee":
                    new = self._user(value)
                    old = view.assignee
                    items.append(change_item("assignee", "jira", _account(world, old), _display(world, old),
                                       _account(world, new), _display(world, new)))
                    col["assignee"][idx] = new
                elif field == "labels":
                    old_labels = store.labels_of(view.labels)
                    col["labels"][idx] = store.label_mask(value)
                    items.append(change_item("labels", "jira", None, " ".join(old_labels), None, " ".join(value)))
                else:
                    if field not in store.field_by_id:
                        raise KeyError(f"unknown field {field!r}")
                    old = current.get(field)
                    overrides[field] = value
                    kind = "custom" if field.startswith("customfield_") else "jira"
                    items.append(change_item(field, kind, None, _as_string(old), None, _as_string(value)))
            col["updated"][idx] = when
            if items:  # a pure touch moves `updated` but leaves no history
                store.extra_histories.setdefault(idx, []).append(
                    {"id": store.next_history_id(), "author": self._user(author) if author else 0,
                     "created": when, "items": items})
            store.version += 1
            return when

    def delete_issue(self, issue: IssueRef, at: Instant = None) -> None:
        """Delete an issue: gone from search and every endpoint; its worklogs appear in /worklog/deleted."""
        store = self.store
        with store.lock:
            idx = self._issue(issue)
            when = self._at(at)
            view = store.view(idx)
            store.col["deleted"][idx] = True
            store.deleted_at[idx] = when
            store.version += 1
        self.site.add_audit(when, "issue management", "Issue deleted", "ISSUE", view.key, str(view.id))

    # --- worklogs ---------------------------------------------------------------------------------
    def add_worklog(self, issue: IssueRef, seconds: int = 3600, started: Instant = None, comment: str = "",
                    author: Optional[str] = None, at: Instant = None) -> int:
        """Log work on an issue (this also bumps the issue's `updated`). Returns the new worklog id."""
        store = self.store
        with store.lock:
            idx = self._issue(issue)
            when = self._at(at)
            user = self._user(author) if author else 0
            worklog = Worklog(id=store.next_worklog_id(), issue=idx, author=user, update_author=user,
                              started=self._at(started) if started is not None else when - seconds * 1000,
                              created=when, updated=when, seconds=int(seconds), comment=comment)
            store.add_worklog_record(worklog)
            store.col["updated"][idx] = max(int(store.col["updated"][idx]), when)
            store.version += 1
            return worklog.id

    def update_worklog(self, worklog_id: int, at: Instant = None, **changes: Any) -> None:
        """Edit a worklog (`seconds`, `comment`, `started`); moves it in /worklog/updated, not the issue."""
        store = self.store
        with store.lock:
            worklog = store.worklog(int(worklog_id))
            if worklog is None or worklog.deleted_ms:
                raise KeyError(f"no live worklog {worklog_id}")
            allowed = {"seconds", "comment", "started"}
            unknown = set(changes) - allowed
            if unknown:
                raise KeyError(f"cannot change {sorted(unknown)}; allowed: {sorted(allowed)}")
            update = dict(changes)
            if "started" in update:
                update["started"] = to_epoch_ms(update["started"])
            update["updated"] = self._at(at)
            store.worklog_overrides.setdefault(worklog.id, {}).update(update)
            store.version += 1

    def delete_worklog(self, worklog_id: int, at: Instant = None) -> None:
        store = self.store
        with store.lock:
            worklog = store.worklog(int(worklog_id))
            if worklog is None or worklog.deleted_ms:
                raise KeyError(f"no live worklog {worklog_id}")
            store.worklog_deleted_at[worklog.id] = self._at(at)
            store.version += 1


def _choice_index(choices: tuple, value: Any, what: str) -> int:
    for index, choice in enumerate(choices):
        if str(value).lower() in (choice[0].lower(), choice[1].lower()):
            return index
    raise KeyError(f"unknown {what} {value!r}")


def _account(world: Any, index: int) -> Optional[str]:
    return None if index < 0 else world.users[index].account_id


def _display(world: Any, index: int) -> Optional[str]:
    return None if index < 0 else world.users[index].display_name


def _as_string(value: Any) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, dict):
        return str(value.get("value") or value.get("name") or value.get("displayName") or value)
    if isinstance(value, list):
        return ", ".join(_as_string(v) or "" for v in value)
    return str(value)

