"""One paging strategy per Jira response shape.

A strategy is a small immutable object; ``pages(fetch, path, params, body)`` drives ``fetch`` (the client's
single request path, returning decoded JSON) and yields one list of records per page. Nothing accumulates
across pages, so memory does not grow with the number of records.

Shapes (FACTS §4): bare array (ARR), keyed list (KEYED), single object (OBJ), map (MAP), bare array paged
without a total (C02), PageBean (C03, C13), ``{startAt,maxResults,total,<key>}`` pages, offset/limit,
``nextPageToken`` (C05) and ``nextPage`` URLs.

Pages can lie (C13): a record already delivered comes again, or a server ignores the cursor and answers the same
records forever. Given a record identity (``id_field``: a field name, or a function of the record), a strategy
drops repeated records and stops, with a warning, on a page that brings nothing new, so no lie loops forever.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol

from .errors import JiraProtocolError

log = logging.getLogger(__name__)

Records = list[dict[str, Any]]
# what identifies a record within one paged read: a top-level field name, or a function of the record
Identity = str | Callable[[Any], Any] | None
# fetch(method, path_or_url, params, body) -> decoded JSON
Fetch = Callable[[str, str, dict[str, Any] | None, Any], Any]


class Paging(Protocol):
    def pages(
        self, fetch: Fetch, path: str, params: dict[str, Any] | None, body: Any
    ) -> Iterator[Records]: ...


def _method(body: Any) -> str:
    return "GET" if body is None else "POST"


# keys of a paging envelope: a page that has them but lacks its records key is an empty page
PAGE_MARKERS = frozenset({"startAt", "maxResults", "total", "isLast", "nextPageToken", "lastPage",
                          "nextPage"})


def _records(payload: Any, key: str, path: str) -> Records:
    """``payload[key]`` as a list, or a protocol error naming what came instead."""
    if not isinstance(payload, dict):
        raise JiraProtocolError(f"expected an object with {key!r}, got {type(payload).__name__}",
                                endpoint=path)
    if key not in payload and not PAGE_MARKERS & payload.keys():
        # not a page at all (an error object or another API's answer with status 200): never zero rows (C11)
        got = ", ".join(sorted(payload)[:6]) or "{}"
        raise JiraProtocolError(f"expected {key!r} in the response, got {got}", endpoint=path)
    value = payload.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise JiraProtocolError(f"expected {key!r} to be a list, got {type(value).__name__}", endpoint=path)
    return value


class _SeenIds:
    """Drops records an earlier page already delivered (pages that lie, C13)."""

    def __init__(self, identity: Identity, path: str, repeats_expected: bool = False) -> None:
        self.key: Callable[[Any], Any] | None = (
            (lambda record: record.get(identity) if isinstance(record, dict) else None)
            if isinstance(identity, str) else identity
        )
        self.path = path
        self.level = logging.DEBUG if repeats_expected else logging.WARNING
        self._seen: set[Any] = set()

    def new_only(self, records: Records) -> Records:
        if self.key is None:
            return records
        fresh = []
        for record in records:
            record_id = self.key(record)
            if record_id is not None and record_id in self._seen:
                continue
            if record_id is not None:
                self._seen.add(record_id)
            fresh.append(record)
        if len(fresh) < len(records):
            log.log(self.level, "%s: dropped %d record(s) already returned on an earlier page",
                    self.path, len(records) - len(fresh))
        return fresh

    def stalled(self, records: Records, fresh: Records, where: str) -> bool:
        """A non-empty page of nothing but repeats: the server is not advancing, so reading on would loop."""
        if self.key is None or not records or fresh:
            return False
        log.warning("%s: the page at %s repeated only records already returned; stopping", self.path, where)
        return True


@dataclass(frozen=True)
class SinglePage:
    """One request. A bare array, ``payload[record_key]`` (a keyed list), a single object -> ``[obj]``, or
    with ``map_key_field`` a map ``{key: {...}}`` -> one row per key with the key stored under
    ``map_key_field``. ``expect`` ("array" or "object") says which shape the endpoint answers, so that an
    answer of another shape (an error object with status 200, an empty body) is a protocol error, never rows
    that replace a good partition (C11)."""

    record_key: str | None = None
    map_key_field: str | None = None
    method: str | None = None
    expect: str | None = None

    def pages(self, fetch: Fetch, path: str, params: dict[str, Any] | None, body: Any) -> Iterator[Records]:
        payload = fetch(self.method or _method(body), path, params, body)
        if payload is None:
            raise JiraProtocolError("an empty answer where JSON was expected", endpoint=path)
        complaint = _error_object(payload)
        if complaint:
            raise JiraProtocolError(f"an error object instead of data: {complaint}", endpoint=path)
        if self.record_key is not None and self.map_key_field is not None:
            if not isinstance(payload, dict) or self.record_key not in payload:
                raise JiraProtocolError(f"expected {self.record_key!r} in the response", endpoint=path)
            payload = payload[self.record_key]
        elif self.record_key is not None:
            payload = _records(payload, self.record_key, path)
        if self.map_key_field is not None:
            if not isinstance(payload, dict):
                raise JiraProtocolError(f"expected a map, got {type(payload).__name__}", endpoint=path)
            yield [_map_row(self.map_key_field, key, value) for key, value in payload.items()]
            return
        shape = "array" if isinstance(payload, list) else "object" if isinstance(payload, dict) else None
        if shape is None or (self.expect and shape != self.expect):
            raise JiraProtocolError(f"expected a JSON {self.expect or 'array or object'}, got "
                                    f"{type(payload).__name__}", endpoint=path)
        yield payload if isinstance(payload, list) else [payload]


_ERROR_KEYS = frozenset({"errorMessages", "errors", "warningMessages", "status", "message", "code"})


def _error_object(payload: Any) -> str | None:
    """Jira's error collection (or the gateway's {code, message}) answered with a 2xx status."""
    if not isinstance(payload, dict) or not payload or not payload.keys() <= _ERROR_KEYS:
        return None
    messages = payload.get("errorMessages") or []
    errors = payload.get("errors") or {}
    if not (messages or errors or "message" in payload):
        return None
    parts = [str(m) for m in messages] if isinstance(messages, list) else [str(messages)]
    if isinstance(errors, dict):
        parts += [f"{k}: {v}" for k, v in errors.items()]
    if "message" in payload:
        parts.append(str(payload["message"]))
    return "; ".join(parts)[:300] or "no message"


def _map_row(key_field: str, key: str, value: Any) -> dict[str, Any]:
    return {key_field: key, **value} if isinstance(value, dict) else {key_field: key, "value": value}


@dataclass(frozen=True)
class StartAtArray:
    """A bare array paged by ``startAt``/``maxResults`` with no total or ``isLast`` (``/users/search``, C02).

    Stops on an empty page, or on a page shorter than the server's real page size. The server may silently
    cap ``maxResults``, so a short *first* page only teaches the real size; it takes one more (empty)
    request to be sure.
    """

    page_size: int = 50
    id_field: Identity = None

    def pages(self, fetch: Fetch, path: str, params: dict[str, Any] | None, body: Any) -> Iterator[Records]:
        seen = _SeenIds(self.id_field, path)
        start_at = 0
        server_page_size: int | None = None
        while True:
            page_params = {**(params or {}), "startAt": start_at, "maxResults": self.page_size}
            payload = fetch("GET", path, page_params, None)
            if not isinstance(payload, list):
                raise JiraProtocolError(f"expected a JSON array, got {type(payload).__name__}", endpoint=path)
            if not payload:
                return
            fresh = seen.new_only(payload)
            if seen.stalled(payload, fresh, f"startAt={start_at}"):
                return
            yield fresh
            if server_page_size is not None and len(payload) < server_page_size:
                return
            server_page_size = max(server_page_size or 0, len(payload))
            start_at += len(payload)


@dataclass(frozen=True)
class PageBean:
    """``{startAt, maxResults, total, isLast, <values_key>}`` paged by ``startAt``.

    The next ``startAt`` is the *returned* ``startAt + maxResults`` (the server may cap the page size,
    C03). Stops on ``isLast``, or when ``total`` is reached. An empty page before the end is a lie: stop
    with a warning rather than loop (C13). With ``id_field``, records repeated from an earlier page are
    dropped (C13).
    """

    page_size: int = 50
    values_key: str = "values"
    id_field: Identity = None

    def pages(self, fetch: Fetch, path: str, params: dict[str, Any] | None, body: Any) -> Iterator[Records]:
        seen = _SeenIds(self.id_field, path)
        start_at = 0
        while True:
            page_params = {**(params or {}), "startAt": start_at, "maxResults": self.page_size}
            payload = fetch("GET", path, page_params, None)
            records = _records(payload, self.values_key, path)
            fresh = seen.new_only(records)
            if seen.stalled(records, fresh, f"startAt={start_at}"):
                return
            yield fresh
            returned_start = _int(payload.get("startAt"), start_at)
            total = _int(payload.get("total"), None)
            if not records:
                if payload.get("isLast") is False or (total is not None and returned_start < total):
                    log.warning("%s: empty page at startAt=%d although total=%s / isLast=%s; stopping",
                                path, returned_start, total, payload.get("isLast"))
                return
            next_start = returned_start + (_int(payload.get("maxResults"), 0) or len(records))
            if payload.get("isLast") is True or (total is not None and next_start >= total):
                return
            if next_start <= start_at:
                raise JiraProtocolError(f"startAt did not advance past {start_at}", endpoint=path)
            start_at = next_start


class StartAtTotal(PageBean):
    """``{startAt, maxResults, total, <records_key>}`` pages without ``isLast``: comments, worklogs,
    changelogs."""

    def __init__(self, records_key: str, page_size: int = 100, id_field: Identity = None) -> None:
        super().__init__(page_size=page_size, values_key=records_key, id_field=id_field)


@dataclass(frozen=True)
class OffsetLimit:
    """``{offset, limit, total, records}`` (``/auditing/record``). Advances by what came back."""

    records_key: str = "records"
    limit: int = 1000
    id_field: Identity = None

    def pages(self, fetch: Fetch, path: str, params: dict[str, Any] | None, body: Any) -> Iterator[Records]:
        seen = _SeenIds(self.id_field, path)
        offset = 0
        while True:
            payload = fetch("GET", path, {**(params or {}), "offset": offset, "limit": self.limit}, None)
            records = _records(payload, self.records_key, path)
            fresh = seen.new_only(records)
            if seen.stalled(records, fresh, f"offset={offset}"):
                return
            yield fresh
            total = _int(payload.get("total"), None)
            offset = _int(payload.get("offset"), offset) + len(records)
            if not records:
                if total is not None and offset < total:
                    log.warning("%s: empty page at offset=%d although total=%d; stopping",
                                path, offset, total)
                return
            if total is not None and offset >= total:
                return


# Jira may hand out a page with fewer issues than asked, even none, before the end; three empty ones in a row
# with fresh tokens are a server that never ends.
EMPTY_TOKEN_PAGES = 3


@dataclass(frozen=True)
class TokenPages:
    """``nextPageToken`` pages (``/search/jql``, ``/changelog/bulkfetch``). Stops on ``isLast`` or a
    missing token; a token seen before would loop forever, so it is a protocol error (C05)."""

    records_key: str = "issues"
    max_results: int = 100
    method: str = "GET"
    id_field: Identity = None

    def pages(self, fetch: Fetch, path: str, params: dict[str, Any] | None, body: Any) -> Iterator[Records]:
        seen = _SeenIds(self.id_field, path)
        seen_tokens: set[str] = set()
        token: str | None = None
        page_number = empty_pages = 0
        while True:
            if self.method == "POST":
                page_body = {**(body or {}), "maxResults": self.max_results}
                if token:
                    page_body["nextPageToken"] = token
                payload = fetch("POST", path, params, page_body)
            else:
                page_params = {**(params or {}), "maxResults": self.max_results}
                if token:
                    page_params["nextPageToken"] = token
                payload = fetch("GET", path, page_params, None)
            records = _records(payload, self.records_key, path)
            fresh = seen.new_only(records)
            page_number += 1
            if seen.stalled(records, fresh, f"page {page_number}"):
                return
            yield fresh
            token = payload.get("nextPageToken")
            if payload.get("isLast") is True or not token:
                return
            empty_pages = 0 if records else empty_pages + 1
            if empty_pages >= EMPTY_TOKEN_PAGES:  # fresh tokens, nothing on them: a server that never ends
                log.warning("%s: %d empty pages in a row that are not the last; stopping", path, empty_pages)
                return
            if not isinstance(token, str):
                raise JiraProtocolError(f"nextPageToken is {type(token).__name__}, not a string",
                                        endpoint=f"{self.method} {path}")
            if token in seen_tokens:
                raise JiraProtocolError(
                    "nextPageToken repeated an earlier token; stopping instead of looping",
                    endpoint=f"{self.method} {path}",
                )
            seen_tokens.add(token)


@dataclass(frozen=True)
class NextPageUrl:
    """``{values, nextPage, lastPage}`` (``/worklog/updated``, ``/worklog/deleted``): follow ``nextPage``
    until ``lastPage``. ``nextPage`` is an absolute URL on the site host; the client maps it onto its own
    API root. ``since`` is inclusive, so a record on a page boundary comes twice; ``id_field`` drops the
    repeat."""

    values_key: str = "values"
    id_field: Identity = None

    def pages(self, fetch: Fetch, path: str, params: dict[str, Any] | None, body: Any) -> Iterator[Records]:
        seen = _SeenIds(self.id_field, path, repeats_expected=True)
        seen_urls: set[str] = set()
        target, target_params = path, params
        empty_pages = 0
        while True:
            payload = fetch("GET", target, target_params, None)
            records = _records(payload, self.values_key, path)
            yield seen.new_only(records)
            next_url = payload.get("nextPage")
            if payload.get("lastPage") is True or not next_url:
                return
            empty_pages = 0 if records else empty_pages + 1
            if empty_pages >= EMPTY_TOKEN_PAGES:
                log.warning("%s: %d empty pages in a row that are not the last; stopping", path, empty_pages)
                return
            if not isinstance(next_url, str):
                raise JiraProtocolError(f"nextPage is {type(next_url).__name__}, not a URL",
                                        endpoint=f"GET {path}")
            if next_url in seen_urls:
                raise JiraProtocolError("nextPage repeated an earlier URL; stopping instead of looping",
                                        endpoint=f"GET {path}")
            seen_urls.add(next_url)
            target, target_params = next_url, None


def _int(value: Any, default: Any) -> Any:
    return value if isinstance(value, int) and not isinstance(value, bool) else default
