"""The page shapes Jira uses, in one place: every paged route goes through these helpers.

Each helper applies the server-side cap on `maxResults` and **echoes the capped value**, the way Jira
does, and consults the "lying pages" injector so any PageBean route can be made to misbehave (C13).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence
from urllib.parse import urlencode

from .errors import bad_request


@dataclass
class PageRequest:
    start_at: int
    max_results: int  # already capped


def read_page_params(query: dict[str, list[str]], default: int, cap: int, start_key: str = "startAt",
                     size_key: str = "maxResults") -> PageRequest:
    """`startAt`/`maxResults` from a query string, validated and capped."""
    start_at = _int_param(query, start_key, 0)
    max_results = _int_param(query, size_key, default)
    if start_at < 0:
        raise bad_request(f"The '{start_key}' parameter must not be negative.")
    if max_results < 0:
        raise bad_request(f"The '{size_key}' parameter must not be negative.")
    return PageRequest(start_at, min(max_results, cap))


def _int_param(query: dict[str, list[str]], key: str, default: int) -> int:
    values = query.get(key)
    if not values or values[-1] == "":
        return default
    try:
        return int(values[-1])
    except ValueError:
        raise bad_request(f"The value '{values[-1]}' is not valid for the '{key}' parameter.") from None


@dataclass
class Lie:
    """A scripted misbehaviour of one paged route (case C13)."""

    #: PageBean `total` reported larger than the truth by this much; pages past the end come back empty
    inflate_total: int = 0
    #: every page after the first starts with this many records of the previous page again
    repeat_previous: int = 0
    #: token pages (/search/jql): hand back the same nextPageToken the client sent
    repeat_token: bool = False
    #: every page holds the first page's records while echoing the cursor asked for (a server ignoring it)
    restart: bool = False


def lied_start(start: int, lie: Optional[Lie]) -> int:
    """Where a page really starts when its route is made to lie."""
    if lie is None:
        return start
    if lie.restart:
        return 0
    if lie.repeat_previous and start > 0:
        return max(0, start - lie.repeat_previous)
    return start


def _inflated(total: int, lie: Optional[Lie]) -> int:
    return total + (lie.inflate_total if lie else 0)


def page_bean(values: Sequence[Any], page: PageRequest, self_url: str, params: Optional[dict[str, Any]] = None,
              with_links: bool = True, lie: Optional[Lie] = None) -> dict[str, Any]:
    """A PageBean: `{self, nextPage, maxResults, startAt, total, isLast, values}`.

    Agile boards/sprints omit the links (`with_links=False`), like Jira Software does.
    """
    start = lied_start(page.start_at, lie)
    chunk = list(values[start:start + page.max_results]) if page.max_results else []
    reported_total = _inflated(len(values), lie)
    is_last = page.start_at + len(chunk) >= reported_total or (not chunk and not (lie and lie.inflate_total))
    if lie and lie.inflate_total and page.start_at < reported_total:
        is_last = False
    body: dict[str, Any] = {}
    extra = {k: v for k, v in (params or {}).items() if v is not None}
    if with_links:
        body["self"] = f"{self_url}?{urlencode({**extra, 'startAt': page.start_at, 'maxResults': page.max_results})}"
        if not is_last:
            body["nextPage"] = (f"{self_url}?"
                                f"{urlencode({**extra, 'startAt': page.start_at + page.max_results, 'maxResults': page.max_results})}")
    body.update({"maxResults": page.max_results, "startAt": page.start_at, "total": reported_total,
                 "isLast": is_last, "values": chunk})
    return body


def start_at_page(values: Sequence[Any], page: PageRequest, records_key: str,
                  extra: Optional[dict[str, Any]] = None, lie: Optional[Lie] = None) -> dict[str, Any]:
    """The older page object `{startAt, maxResults, total, <records_key>}` (comments, worklogs); no isLast."""
    start = lied_start(page.start_at, lie)
    chunk = list(values[start:start + page.max_results]) if page.max_results else []
    body = {"startAt": page.start_at, "maxResults": page.max_results, "total": _inflated(len(values), lie),
            records_key: chunk}
    if extra:
        body.update(extra)
    return body


def array_page(values: Sequence[Any], page: PageRequest, lie: Optional[Lie] = None) -> list[Any]:
    """A bare JSON array paged by startAt/maxResults with no total (/users/search)."""
    start = lied_start(page.start_at, lie)
    return list(values[start:start + page.max_results])


def offset_limit(values: Sequence[Any], offset: int, limit: int, records_key: str,
                 lie: Optional[Lie] = None) -> dict[str, Any]:
    """`{offset, limit, total, records}` (/auditing/record)."""
    start = lied_start(offset, lie)
    return {"offset": offset, "limit": limit, "total": _inflated(len(values), lie),
            "records": list(values[start:start + limit])}


LieLookup = Callable[[str], Optional[Lie]]
