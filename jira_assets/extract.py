"""Run a catalog entry against Jira and stream its rows as Arrow batches. No Dagster import.

`extract(obj, client, ...)` returns a lazy `RecordBatchStream`: nothing is fetched until the IO manager
pulls the first batch, and a page of records flows to Parquet without the table ever being in memory.
Each kind of endpoint has one extractor below; `JiraObject.extractor` names it.
"""
from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import functools
import logging
import threading
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

import orjson
import pyarrow as pa
import pyarrow.dataset as ds

from jira_assets.arrow import RecordConverter, to_epoch_ms
from jira_assets.catalog import ARRAY, JiraObject
from jira_assets.issue_schema import issue_converter
from jira_assets.jira.errors import JiraError, JiraProtocolError
from jira_assets.jira.paging import PageBean, SinglePage, StartAtTotal, TokenPages
from jira_assets.parquet.store import scan_errors
from jira_assets.parquet.stream import RecordBatchStream

log = logging.getLogger(__name__)

API = "/rest/api/2"
PERMISSION_MAP = SinglePage("permissions", map_key_field="key")  # {"permissions": {KEY: {...}, ...}}
CHILD_READ_BATCH = 1_000  # issues read back at a time by the child tables
CHILD_PAGE_ROWS = 2_000  # child rows per Arrow batch
ID_LIST_PAGE = 5_000  # issues per /search/jql page when only ids are asked for (FACTS §3.1)


@dataclass(frozen=True)
class Window:
    """A half-open UTC time window [start, end)."""

    start: dt.datetime
    end: dt.datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("window bounds must be timezone-aware (UTC)")
        if self.end <= self.start:
            raise ValueError(f"empty window: {self.start.isoformat()} .. {self.end.isoformat()}")

    @functools.cached_property  # read for every issue of the window
    def start_ms(self) -> int:
        return to_epoch_ms(self.start.isoformat())

    @functools.cached_property
    def end_ms(self) -> int:
        return to_epoch_ms(self.end.isoformat())

    def contains_ms(self, ms: int) -> bool:
        return self.start_ms <= ms < self.end_ms


@dataclass(frozen=True)
class ExtractSettings:
    """How hard to push Jira, and which issues are in scope."""

    issue_page_size: int = 100
    window_splits: int = 1  # search pages of one window fetched concurrently (1 = one page after another)
    child_workers: int = 4  # concurrent per-issue/per-parent requests
    overlap_minutes: int = 5  # re-read before the window start; rows are then filtered to the window
    projects: tuple[str, ...] = ()  # project keys or ids; empty = every visible project
    jql_filter: Optional[str] = None  # extra JQL AND-ed to the window
    extra: dict = field(default_factory=dict)
    # jira_assets.scope.FieldPolicy: issue fields dropped/masked/renamed before anything is converted
    policy: Any = None


class ExtractionError(RuntimeError):
    """The object could not be extracted; the message names the cause."""


# --------------------------------------------------------------------------------------------------
# concurrency: bounded fan-out that yields results as they complete, never holding more than a few
# --------------------------------------------------------------------------------------------------


def bounded_map(fn: Callable[[Any], Any], items: Iterable[Any], workers: int,
                inline: Optional[Callable[[Any], bool]] = None) -> Iterator[tuple[Any, Any]]:
    """(item, fn(item) or the exception) pairs as they finish; at most 2×workers are pending at once.

    Items for which `inline(item)` is true are computed in the caller's thread: handing cheap work (an issue
    whose embedded children are complete) to a pool costs more than doing it.
    """
    workers = max(1, workers)
    if workers == 1:
        for item in items:
            yield item, _call(fn, item)
        return
    with cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="jira-fetch") as pool:
        pending: dict[cf.Future, Any] = {}

        def finished(block: bool) -> Iterator[tuple[Any, Any]]:
            if block:
                done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            else:
                done = [f for f in pending if f.done()]
            for future in done:
                item = pending.pop(future)
                exc = future.exception()
                yield item, (exc if exc is not None else future.result())

        for item in items:
            if inline is not None and inline(item):
                yield item, _call(fn, item)
            else:
                pending[pool.submit(fn, item)] = item
                while len(pending) >= 2 * workers:
                    yield from finished(block=True)
            if pending:
                yield from finished(block=False)
        while pending:
            yield from finished(block=True)


def _call(fn: Callable[[Any], Any], item: Any) -> Any:
    try:
        return fn(item)
    except Exception as exc:  # noqa: BLE001 - handed to the caller, which decides
        return exc


def interleave(generators: Sequence[Callable[[], Iterator[Any]]], workers: int) -> Iterator[Any]:
    """Run several page generators on threads and yield their items as they come (bounded queue)."""
    if len(generators) <= 1 or workers <= 1:  # nothing to run side by side (a day without issues: none)
        for make in generators:
            yield from make()
        return
    import queue

    # One page waits at most: every producer blocked on put() holds a decoded page too (~7 MB for 100 issues)
    out: "queue.Queue[tuple[str, Any]]" = queue.Queue(maxsize=1)
    stop = threading.Event()

    def run(make: Callable[[], Iterator[Any]]) -> None:
        try:
            if stop.is_set():  # queued behind the workers when the consumer stopped: send nothing
                return
            for item in make():
                if stop.is_set():
                    return
                out.put(("item", item))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            out.put(("error", exc))
        finally:
            out.put(("done", None))

    with cf.ThreadPoolExecutor(max_workers=min(workers, len(generators)), thread_name_prefix="jira-window") as pool:
        for make in generators:
            pool.submit(run, make)
        remaining = len(generators)
        try:
            while remaining:
                kind, value = out.get()
                if kind == "done":
                    remaining -= 1
                elif kind == "error":
                    raise value
                else:
                    yield value
        finally:
            stop.set()
            while remaining:  # unblock producers so the pool can shut down
                kind, _ = out.get()
                remaining -= kind == "done"


# --------------------------------------------------------------------------------------------------
# extractors
# --------------------------------------------------------------------------------------------------


class _Run:
    """State shared by one extraction: the client, the counters that end up as metadata."""

    def __init__(self, obj: JiraObject, client: Any, settings: ExtractSettings) -> None:
        self.obj, self.client, self.settings = obj, client, settings
        self.child_errors: list[dict] = []
        self.counters: dict[str, int] = {}
        self._stats_before = _stats_dict(client)

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def child_failed(self, what: str, exc: JiraError) -> None:
        self.child_errors.append({"child": what, "status": getattr(exc, "status", None), "error": str(exc)})
        log.warning("%s: %s failed: %s", self.obj.name, what, exc)

    def metadata(self, converter: RecordConverter) -> dict:
        after = _stats_dict(self.client)
        meta = {f"jira/{k}": round(after[k] - self._stats_before.get(k, 0), 3) for k in after}
        meta["jira/endpoint"] = self.obj.path
        meta.update({f"jira/{k}": v for k, v in self.counters.items()})
        if self.child_errors:
            meta["jira/child_errors"] = self.child_errors
        meta.update(converter.metadata())
        if self.settings.policy is not None:
            meta.update(self.settings.policy.metadata())
        return meta


def _stats_dict(client: Any) -> dict:
    stats = client.stats
    return {
        "requests": getattr(stats, "requests", 0),
        "retries": getattr(stats, "retries", 0),
        "throttled_seconds": float(getattr(stats, "throttled_seconds", 0.0)),
    }


def _identified(run: _Run, paging: Any) -> Any:
    """The object's paging, told how to recognise a record that a lying page repeats (C13)."""
    if getattr(paging, "id_field", False) is None:
        return replace(paging, id_field=run.obj.record_identity)
    return paging


def _stream(run: _Run, converter: RecordConverter, pages: Iterable[Sequence[Any]]) -> RecordBatchStream:
    return RecordBatchStream(converter.schema, converter.batches(pages), metadata=lambda: run.metadata(converter))


def _pages(run: _Run) -> RecordBatchStream:
    obj = run.obj
    converter = RecordConverter(obj.columns)
    pages = run.client.iter_pages(obj.path, _identified(run, obj.paging), params=dict(obj.params) or None)
    if obj.record_transform:
        pages = ([obj.record_transform(r) for r in page] for page in pages)
    return _stream(run, converter, pages)


def _permissions(run: _Run) -> RecordBatchStream:
    """/mypermissions needs the keys to ask about; they come from /permissions (every key there is)."""
    converter = RecordConverter(run.obj.columns)

    def pages() -> Iterator[list]:
        keys = sorted(row["key"] for row in run.client.records(f"{API}/permissions", PERMISSION_MAP))
        for start in range(0, len(keys), 50):  # keep the query string short
            chunk = keys[start : start + 50]
            yield run.client.records(run.obj.path, PERMISSION_MAP, params={"permissions": ",".join(chunk)})

    return _stream(run, converter, pages())


def _audit_window(run: _Run, window: Window) -> RecordBatchStream:
    converter = RecordConverter(run.obj.columns)
    params = {"from": _iso_utc(window.start), "to": _iso_utc(window.end)}

    def pages() -> Iterator[list]:
        for page in run.client.iter_pages(run.obj.path, _identified(run, run.obj.paging), params=params):
            yield [r for r in page if _in_window(r.get("created"), window)]

    return _stream(run, converter, pages())


def _iso_utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _in_window(value: Any, window: Window) -> bool:
    try:
        return window.contains_ms(to_epoch_ms(value))
    except Exception:  # noqa: BLE001 - a record without a usable timestamp is kept, not dropped
        return True


def issue_jql(window: Window, settings: ExtractSettings, ids: Sequence[int] = ()) -> str:
    """Epoch milliseconds, never date literals: literals are read in the user's time zone (C01). `ids` narrows
    the window's search to those issues (one page of a window fetched by ids)."""
    start_ms = window.start_ms - settings.overlap_minutes * 60_000
    clauses = [f"updated >= {start_ms}", f"updated < {window.end_ms}", *scope_clauses(settings)]
    if ids:
        clauses.append("id in (" + ", ".join(str(i) for i in ids) + ")")
    return " AND ".join(clauses) + " ORDER BY updated ASC, id ASC"


def scope_clauses(settings: ExtractSettings, with_filter: bool = True) -> list[str]:
    """The user's scope as JQL conditions: the projects, then (unless left out) the extra filter."""
    clauses = []
    if settings.projects:
        clauses.append("project in (" + ", ".join(_jql_value(p) for p in settings.projects) + ")")
    if settings.jql_filter and with_filter:
        clauses.append(f"({settings.jql_filter})")
    return clauses


def _jql_value(value: str) -> str:
    return value if value.isdigit() else '"' + value.replace('"', '\\"') + '"'


def _issues(run: _Run, window: Window) -> RecordBatchStream:
    settings = run.settings
    policy = settings.policy
    if policy is not None:  # resolved against /field when the scope was checked
        fields = list(policy.site_fields)
        converter = issue_converter(fields, dropped=policy.dropped, masked=policy.masked_columns,
                                    renames=dict(policy.renames))
    else:
        fields = run.client.records(f"{API}/field", ARRAY)
        converter = issue_converter(fields)
    seen: set[int] = set()  # an issue that moves while the window is paged can come twice; keep one row
    lock = threading.Lock()

    def search(ids: Sequence[int] = ()) -> Iterator[list]:
        body = {
            "jql": issue_jql(window, settings, ids),
            "fields": policy.request_fields() if policy is not None else ["*all"],
            "expand": "changelog",
            "maxResults": settings.issue_page_size,
        }
        # the page size is the paging strategy's (it sets maxResults on every page), so the setting goes there
        paging = replace(run.obj.paging, max_results=settings.issue_page_size, id_field="id")
        yield from run.client.iter_pages(f"{API}/search/jql", paging, body=body)

    def window_ids() -> list[int]:
        body = {"jql": issue_jql(window, settings), "fields": ["id"]}
        paging = replace(run.obj.paging, max_results=ID_LIST_PAGE, id_field="id")
        return [_issue_id(issue) for page in run.client.iter_pages(f"{API}/search/jql", paging, body=body)
                for issue in page]

    def fetched() -> Iterator[list]:
        if settings.window_splits <= 1:
            return search()
        # Atlassian's advice for the token-paged search (FACTS §3.1): list the ids, then fetch the details in
        # parallel. Every request is then a full page and the workers share them evenly; sub-windows of time
        # would hold uneven counts and each end in a part-empty page.
        size = settings.issue_page_size
        ids = window_ids()
        chunks = [ids[i:i + size] for i in range(0, len(ids), size)]
        return interleave([functools.partial(search, chunk) for chunk in chunks], workers=settings.window_splits)

    def pages() -> Iterator[list]:
        for page in fetched():
            kept = []
            for issue in page:
                issue_id = _issue_id(issue)
                updated = (issue.get("fields") or {}).get("updated")
                if updated is not None and not _in_window(updated, window):
                    run.count("issues_outside_window")
                    continue
                with lock:
                    if issue_id in seen:
                        run.count("duplicate_issues_dropped")
                        continue
                    seen.add(issue_id)
                kept.append(policy.issue(issue) if policy is not None else issue)
            yield kept

    return _stream(run, converter, pages())


# ---- children of issues, completed from their own endpoints only where Jira truncated them (C06) ----


def _issue_id(issue: Any) -> int:
    """An issue of a search page must carry a numeric id: it is the key of every row built from it."""
    value = issue.get("id") if isinstance(issue, dict) else None
    number = _int_or_none(value)
    if number is not None:
        return number
    found = "an issue with no id" if value is None else f"an issue whose id is {type(value).__name__} {value!r:.40}"
    raise JiraProtocolError(f"{found} on a search page", endpoint=f"POST {API}/search/jql")


def _issue_rows(upstream: Optional[ds.Dataset], column: str) -> Iterator[tuple[str, Any]]:
    if upstream is None:
        raise ExtractionError("the issues of this partition must be materialized first")
    for batch in _small_batches(upstream, ["id", column]):
        for issue_id, page_json in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist()):
            yield str(issue_id), (orjson.loads(page_json) if page_json else None)


def _small_batches(dataset: ds.Dataset, columns: list[str]) -> Iterator[pa.RecordBatch]:
    """`dataset.to_batches(columns)` one Parquet row group at a time, in small batches: the scanner's own
    read-ahead decodes many row groups at once (~200 MB of a 20 000-issue partition's changelog JSON), and each
    batch becomes Python strings at once."""
    with scan_errors(dataset):
        for fragment in dataset.get_fragments():
            pieces = fragment.split_by_row_group() if hasattr(fragment, "split_by_row_group") else [fragment]
            for piece in pieces:
                yield from piece.to_batches(schema=dataset.schema, columns=columns, batch_size=CHILD_READ_BATCH,
                                            use_threads=False)


def _complete(run: _Run, issue_id: str, page: Optional[dict], list_key: str, endpoint: str, paging: Any,
              clean: Optional[Callable[[list], list]] = None) -> list:
    """The embedded list when it is complete, else every item from the issue's own endpoint.

    Embedded lists were stored already cleaned by the field policy; fetched ones go through `clean`.
    """
    embedded, complete = _embedded(page, list_key)
    if complete:
        return embedded
    run.count("issues_paged_for_children")
    items: list = []
    for chunk in run.client.iter_pages(endpoint.format(issue_id=issue_id), paging):
        items.extend(chunk)
    return clean(items) if clean is not None else items


def _embedded(page: Any, list_key: str) -> tuple[list, bool]:
    """An issue's embedded child list, and whether it is complete. A total that is not a number (or a list
    that is not a list) says nothing: the issue's own endpoint is read instead."""
    page = page if isinstance(page, dict) else {}
    embedded = page.get(list_key) or []
    if not isinstance(embedded, list):
        return [], False
    total = page.get("total", len(embedded))
    return embedded, isinstance(total, int) and not isinstance(total, bool) and total <= len(embedded)


def _children(run: _Run, upstream: Optional[ds.Dataset], source_column: str, list_key: str,
              paging: Any, to_rows: Callable[[str, list], list],
              clean: Optional[Callable[[list], list]] = None) -> Iterator[list]:
    """Rows of many issues per page (one Arrow batch per issue would cost more than the rows themselves); only
    issues whose embedded list is truncated go to the pool of `child_workers`."""
    def fetch(item: tuple[str, Any]) -> list:
        issue_id, page = item
        return to_rows(issue_id, _complete(run, issue_id, page, list_key, run.obj.path, paging, clean))

    def complete(item: tuple[str, Any]) -> bool:
        return _embedded(item[1], list_key)[1]

    buffer: list = []
    for (issue_id, _), rows in bounded_map(fetch, _issue_rows(upstream, source_column), run.settings.child_workers,
                                           inline=complete):
        if isinstance(rows, JiraError) and rows.status == 404:  # deleted since the issue was stored
            run.child_failed(f"issue {issue_id}", rows)
            continue
        if isinstance(rows, BaseException):
            raise rows
        buffer.extend(rows)
        if len(buffer) >= CHILD_PAGE_ROWS:
            yield buffer
            buffer = []
    if buffer:
        yield buffer


def _comment_rows(issue_id: str, comments: list) -> list:
    return [{**c, "issue_id": issue_id} for c in comments if isinstance(c, dict)]


def _changelog_rows(issue_id: str, histories: list) -> list:
    rows = []
    for history in histories:
        if not isinstance(history, dict):
            continue
        for index, item in enumerate(history.get("items") or []):
            if not isinstance(item, dict):
                continue
            rows.append({
                **item,
                "issue_id": issue_id,
                "history_id": history.get("id"),
                "item_index": index,
                "author": history.get("author"),
                "created": history.get("created"),
            })
    return rows


def _issue_children(run: _Run, upstream: Optional[ds.Dataset]) -> RecordBatchStream:
    converter = RecordConverter(run.obj.columns)
    policy = run.settings.policy
    if run.obj.name == "issue_comments":
        clean = (lambda items: [policy.comment(c) for c in items]) if policy is not None else None
        pages = _children(run, upstream, "comments_json", "comments", StartAtTotal("comments", 100, id_field="id"),
                          _comment_rows, clean)
    elif run.obj.name == "issue_changelogs":
        clean = policy.histories if policy is not None else None
        pages = _children(run, upstream, "changelog_json", "histories", PageBean(100, id_field="id"),
                          _changelog_rows, clean)
    else:
        raise ExtractionError(f"{run.obj.name} is not a child of issues")
    return _stream(run, converter, pages)


# ---- worklogs: ids from /worklog/updated, bodies from POST /worklog/list -------------------------------


def _changed_ids(run: _Run, window: Window, id_key: str) -> Iterator[list]:
    """Ids changed inside the window from a `since`-paged change feed (sorted by updatedTime).

    `since` is inclusive, so an entry at a page boundary comes back on the next page: each id is kept once.
    """
    seen: set = set()
    for page in run.client.iter_pages(run.obj.path, run.obj.paging, params={"since": window.start_ms}):
        fresh = []
        for entry in page:
            if not isinstance(entry, dict) or entry.get(id_key) is None:
                run.count("unreadable_feed_entries")
                continue
            at = _int_or_none(entry.get("updatedTime"))
            if at is None:  # asked for `since` the window's start: kept rather than lost, and counted
                run.count("feed_entries_without_time")
            elif not window.contains_ms(at):
                continue
            if entry.get(id_key) in seen:
                run.count("duplicate_feed_entries_dropped")
                continue
            seen.add(entry.get(id_key))
            fresh.append(entry)
        yield fresh
        last = _int_or_none(page[-1].get("updatedTime")) if page and isinstance(page[-1], dict) else None
        if last is not None and last >= window.end_ms:
            return  # the feed is ordered: nothing later can fall inside the window


def _int_or_none(value: Any) -> Optional[int]:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _worklogs(run: _Run, window: Window) -> RecordBatchStream:
    """The feed is site-wide: with a scope, only worklogs of issues inside it are kept (Jira decides, by JQL)."""
    converter = RecordConverter(run.obj.columns)
    policy = run.settings.policy
    scope = scope_clauses(run.settings)
    in_scope: dict[str, bool] = {}

    def keep(worklogs: list) -> list:
        if scope:
            unknown = sorted({str(w.get("issueId")) for w in worklogs} - set(in_scope), key=int)
            for start in range(0, len(unknown), 500):
                chunk = unknown[start : start + 500]
                jql = " AND ".join([f"id in ({', '.join(chunk)})", *scope])
                body = {"jql": jql, "fields": ["id"], "maxResults": 5000}
                ids_only = TokenPages("issues", 5000, method="POST", id_field="id")
                found = {str(i["id"]) for page in run.client.iter_pages(f"{API}/search/jql", ids_only, body=body)
                         for i in page}
                in_scope.update({issue_id: issue_id in found for issue_id in chunk})
            kept = [w for w in worklogs if in_scope.get(str(w.get("issueId")))]
            if len(kept) < len(worklogs):
                run.count("worklogs_outside_scope", len(worklogs) - len(kept))
            worklogs = kept
        return [policy.worklog(w) for w in worklogs] if policy is not None else worklogs

    def pages() -> Iterator[list]:
        for changed in _changed_ids(run, window, "worklogId"):
            ids = [int(v["worklogId"]) for v in changed]
            for start in range(0, len(ids), 1000):
                asked = ids[start : start + 1000]
                found = run.client.post_json(f"{API}/worklog/list", {"ids": asked}) or []
                if len(found) < len(asked):  # deleted since the feed listed them, or hidden: counted, not silent
                    run.count("worklogs_not_returned", len(asked) - len(found))
                yield keep(found)

    return _stream(run, converter, pages())


def _worklog_deletions(run: _Run, window: Window) -> RecordBatchStream:
    converter = RecordConverter(run.obj.columns)
    return _stream(run, converter, _changed_ids(run, window, "worklogId"))


# ---- per-parent endpoints -------------------------------------------------------------------------------


def _parent_ids(upstream: Optional[ds.Dataset], column: str, parent: str) -> list:
    if upstream is None:
        raise ExtractionError(f"{parent} must be materialized first for the same capture date")
    return sorted({v for v in upstream.to_table(columns=[column]).column(0).to_pylist() if v is not None}, key=str)


def _parent_specific(error: JiraError) -> bool:
    """A 4xx about one parent (gone, forbidden, feature off) is recorded and skipped (C08); a 5xx, a 429 or an
    unreadable answer that outlived the client's retries says nothing about the parent and fails the step,
    or the snapshot would succeed with that parent's rows silently missing."""
    return error.status is not None and 400 <= error.status < 500 and error.status != 429


def _fan_out(run: _Run, upstream: Optional[ds.Dataset]) -> RecordBatchStream:
    """One paged endpoint per parent; one failing parent is recorded, not fatal (C08)."""
    obj = run.obj
    spec = obj.fan_out or {}
    converter = RecordConverter(obj.columns)
    skip_status = spec.get("skip_status")

    def fetch(parent_id: Any) -> list:
        items: list = []
        for page in run.client.iter_pages(obj.path.format(id=parent_id), _identified(run, obj.paging)):
            items.extend({**r, "_parent_id": parent_id} for r in page)
        return items

    def pages() -> Iterator[list]:
        parents = _parent_ids(upstream, spec.get("id", "id"), spec["parent"])
        failures = 0
        merged: dict[Any, dict] = {}
        for parent_id, result in bounded_map(fetch, parents, run.settings.child_workers):
            if isinstance(result, JiraError):
                if skip_status and result.status == skip_status:  # e.g. kanban boards have no sprints
                    run.count("parents_without_children")
                    continue
                if not _parent_specific(result):  # Jira down or throttled: a retry of the step, not a hole
                    raise result
                failures += 1
                run.child_failed(f"{spec['parent']} {parent_id}", result)
                continue
            if isinstance(result, BaseException):
                raise result
            if obj.name == "sprints":  # a sprint shared by boards is one row that lists them all
                for sprint in result:
                    row = merged.setdefault(sprint["id"], {**sprint, "board_ids": []})
                    row["board_ids"].append(int(sprint.pop("_parent_id")))
                continue
            for r in result:
                r.pop("_parent_id", None)
            yield result
        if parents and failures == len(parents):
            raise ExtractionError(
                f"every {spec['parent']} request for {obj.name} failed; first error: {run.child_errors[0]['error']}"
            )
        if merged:
            for row in merged.values():
                row.pop("_parent_id", None)
                row["board_ids"].sort()
            yield list(merged.values())

    return _stream(run, converter, pages())


def _scheme_associations(run: _Run, upstream: Optional[ds.Dataset]) -> RecordBatchStream:
    """projectId repeated (never comma-joined), at most 100 a call (C14); one row per project."""
    obj = run.obj
    converter = RecordConverter(obj.columns)
    spec = obj.fan_out or {}

    def pages() -> Iterator[list]:
        project_ids = _parent_ids(upstream, spec.get("id", "id"), spec["parent"])
        for page in run.client.iter_chunked(obj.path, spec["param"], project_ids, chunk=spec.get("chunk", 100),
                                            paging=obj.paging):
            rows = []
            for value in page:
                scheme = value.get("workflowScheme") or {}
                for project_id in value.get("projectIds") or []:
                    rows.append({
                        "project_id": str(project_id),
                        "workflow_scheme_id": scheme.get("id"),
                        "workflow_scheme_name": scheme.get("name"),
                        "default_workflow": scheme.get("defaultWorkflow"),
                        "workflowScheme": scheme,
                    })
            yield rows

    return _stream(run, converter, pages())


# Every extractor takes (run, window, upstream); JiraObject.extractor names one of them.
EXTRACTORS: dict[str, Callable[[_Run, Optional[Window], Optional[ds.Dataset]], RecordBatchStream]] = {
    "pages": lambda run, window, upstream: _pages(run),
    "permissions": lambda run, window, upstream: _permissions(run),
    "audit_window": lambda run, window, upstream: _audit_window(run, window),
    "issues": lambda run, window, upstream: _issues(run, window),
    "issue_children": lambda run, window, upstream: _issue_children(run, upstream),
    "worklogs": lambda run, window, upstream: _worklogs(run, window),
    "worklog_deletions": lambda run, window, upstream: _worklog_deletions(run, window),
    "fan_out": lambda run, window, upstream: _fan_out(run, upstream),
    "scheme_associations": lambda run, window, upstream: _scheme_associations(run, upstream),
}


def extract(
    obj: JiraObject,
    client: Any,
    *,
    window: Optional[Window] = None,
    upstream: Optional[ds.Dataset] = None,
    settings: ExtractSettings = ExtractSettings(),
) -> RecordBatchStream:
    """A lazy stream of the object's rows (for incremental objects, those of `window`)."""
    if obj.incremental and window is None:
        raise ExtractionError(f"{obj.name} is incremental: a time window is required")
    try:
        extractor = EXTRACTORS[obj.extractor]
    except KeyError:
        raise ExtractionError(f"unknown extractor {obj.extractor!r} for {obj.name}") from None
    return extractor(_Run(obj, client, settings), window, upstream)
