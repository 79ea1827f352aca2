"""Issue endpoints: /search/jql (token pages), issues, comments, changelog, worklogs and their feeds."""
from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np
import orjson

from .errors import BAD_PAGE_TOKEN, ISSUE_NOT_FOUND, SEARCH_REMOVED, bad_request, jira_error, not_found
from .issues import FieldSelection, select_fields
from .jira_site import JiraSite
from .jql import UNBOUNDED, JqlError, Query, parse
from .paging import lied_start, page_bean, read_page_params, start_at_page
from .routes import Request
from .timeutil import MS_PER_MINUTE

SEARCH_DEFAULT_PAGE = 50
SEARCH_CAP_WITH_FIELDS = 100
SEARCH_CAP_IDS_ONLY = 5000
WORKLOG_FEED_PAGE = 1000


# --- /search/jql -------------------------------------------------------------------------------------

def _parse_jql(jql: str) -> Query:
    try:
        query = parse(jql)
    except JqlError as error:
        raise bad_request(str(error)) from None
    if not query.bounded:
        raise bad_request(UNBOUNDED)
    return query


def _matches(site: JiraSite, req: Request, jql: str, query: Query) -> np.ndarray:
    """Matching issue indices; value errors (unknown project, bad date) are 400s like parse errors."""
    try:
        return site.search(jql, query, req.user_index, req.zone)
    except JqlError as error:
        raise bad_request(str(error)) from None


def _encode_token(digest: str, offset: int) -> str:
    raw = orjson.dumps({"q": digest, "o": offset})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str, digest: str) -> int:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        if data["q"] != digest or not isinstance(data["o"], int) or data["o"] < 0:
            raise ValueError
        return data["o"]
    except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise bad_request(BAD_PAGE_TOKEN) from None


def _list_param(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value]
    raise bad_request("Invalid request payload. Refer to the REST API documentation and try again.")


def _int(value: Any, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad_request(f"The value '{value}' is not valid for the '{name}' parameter.") from None


def search_jql(site: JiraSite, req: Request) -> dict[str, Any]:
    if req.method == "POST":
        body = req.json()
        jql, token = body.get("jql") or "", body.get("nextPageToken")
        max_results = _int(body.get("maxResults"), "maxResults", SEARCH_DEFAULT_PAGE)
        fields, expand = _list_param(body.get("fields")), _list_param(body.get("expand"))
    else:
        jql, token = req.arg("jql", "") or "", req.arg("nextPageToken")
        max_results = _int(req.arg("maxResults"), "maxResults", SEARCH_DEFAULT_PAGE)
        fields, expand = req.args("fields"), req.args("expand")
    expand_set = {e.strip() for value in expand for e in value.split(",") if e.strip()}
    query = _parse_jql(jql)
    selection = select_fields(fields, site.store.catalog, default="id")
    cap = SEARCH_CAP_IDS_ONLY if selection.ids_only and "changelog" not in expand_set else SEARCH_CAP_WITH_FIELDS
    max_results = max(1, min(max_results, cap))
    digest = site.digest(jql)
    offset = _decode_token(token, digest) if token else 0
    lie = site.disruptor.lie_for(req.path)
    served = lied_start(offset, lie)
    matches = _matches(site, req, jql, query)
    chunk = matches[served:served + max_results]
    if not (lie and lie.restart):  # a server ignoring the token still hands out the next one
        offset = served
    issues = site.encoded_issues(chunk, selection, req.view, expand_set)
    next_offset = offset + len(chunk)
    is_last = next_offset >= len(matches)
    response: dict[str, Any] = {"issues": issues}
    if not is_last:
        response["nextPageToken"] = token if (lie and lie.repeat_token and token) else _encode_token(digest, next_offset)
    response["isLast"] = is_last
    _names_and_schema(site, response, selection, expand_set)
    return response


def _names_and_schema(site: JiraSite, response: dict[str, Any], selection: FieldSelection, expand: set[str]) -> None:
    fields = [site.store.field_by_id[f] for f in selection.fields if f in site.store.field_by_id]
    if "names" in expand:
        response["names"] = {f.id: f.name for f in fields}
    if "schema" in expand:
        response["schema"] = {f.id: f.schema for f in fields if f.schema is not None}


def approximate_count(site: JiraSite, req: Request) -> dict[str, Any]:
    jql = req.json().get("jql") or ""
    query = _parse_jql(jql)
    return {"count": int(len(_matches(site, req, jql, query)))}


def search_removed(site: JiraSite, req: Request) -> Any:
    raise jira_error(410, SEARCH_REMOVED)


# --- one issue and its children ----------------------------------------------------------------------

def _issue_index(site: JiraSite, req: Request) -> int:
    idx = None if req.principal.anonymous else site.find_issue(req.params["issueIdOrKey"])
    if idx is None:
        raise not_found(ISSUE_NOT_FOUND)
    return idx


def issue_get(site: JiraSite, req: Request) -> dict[str, Any]:
    idx = _issue_index(site, req)
    selection = select_fields(req.args("fields"), site.store.catalog, default="*all")
    expand = set(req.csv("expand"))
    record = site.render_issue(idx, selection, req.view, expand)
    _names_and_schema(site, record, selection, expand)
    return record


def issue_bulkfetch(site: JiraSite, req: Request) -> dict[str, Any]:
    body = req.json()
    wanted = _list_param(body.get("issueIdsOrKeys"))
    if not wanted:
        raise bad_request("issueIdsOrKeys must not be empty.")
    if len(wanted) > 100:
        raise bad_request("The number of issueIdsOrKeys must be between 1 and 100.")
    selection = select_fields(_list_param(body.get("fields")), site.store.catalog, default="*navigable")
    expand = {e for value in _list_param(body.get("expand")) for e in value.split(",") if e}
    found = set()
    if not req.principal.anonymous:
        found = {idx for idx in (site.find_issue(w) for w in wanted) if idx is not None}
    issues = site.encoded_issues(sorted(found), selection, req.view, expand)
    response = {"expand": "schema,names", "issues": issues, "issueErrors": []}
    _names_and_schema(site, response, selection, expand)
    return response


def issue_comments(site: JiraSite, req: Request) -> dict[str, Any]:
    idx = _issue_index(site, req)
    order = req.arg("orderBy") or "created"
    if order not in ("created", "-created", "+created"):
        raise bad_request(f"Invalid orderBy value '{order}'. Valid values are: created, -created, +created.")
    page = read_page_params(req.query, 100, 100)
    comments = site.comments(idx, req.view, rendered="renderedBody" in req.csv("expand"))
    if order == "-created":
        comments.reverse()
    return start_at_page(comments, page, "comments", lie=site.disruptor.lie_for(req.path))


def issue_changelog(site: JiraSite, req: Request) -> dict[str, Any]:
    idx = _issue_index(site, req)
    page = read_page_params(req.query, 100, 100)
    return page_bean(site.histories(idx, req.view), page, f"{site.world.api}/issue/{req.params['issueIdOrKey']}/changelog",
                     lie=site.disruptor.lie_for(req.path))


def issue_changelog_list(site: JiraSite, req: Request) -> dict[str, Any]:
    idx = _issue_index(site, req)
    ids = req.json().get("changelogIds")
    if not isinstance(ids, list) or not ids:
        raise bad_request("changelogIds must be a non-empty list.")
    wanted = {str(i) for i in ids}
    histories = [h for h in site.histories(idx, req.view)[:] if h["id"] in wanted]
    return {"startAt": 0, "maxResults": len(histories), "total": len(histories), "histories": histories}


def changelog_bulkfetch(site: JiraSite, req: Request) -> dict[str, Any]:
    """Token-paged changelogs of up to 1000 issues, oldest history first, then by issue id."""
    body = req.json()
    wanted = _list_param(body.get("issueIdsOrKeys"))
    if not wanted or len(wanted) > 1000:
        raise bad_request("The number of issueIdsOrKeys must be between 1 and 1000.")
    field_ids = set(_list_param(body.get("fieldIds")))
    if len(field_ids) > 10:
        raise bad_request("The number of fieldIds must be at most 10.")
    max_results = max(1, min(_int(body.get("maxResults"), "maxResults", 1000), 10000))
    digest = site.digest(*sorted(wanted), *sorted(field_ids))
    offset = _decode_token(body["nextPageToken"], digest) if body.get("nextPageToken") else 0
    entries = []
    for idx in sorted({i for i in (site.find_issue(w) for w in wanted) if i is not None}) if not req.principal.anonymous else []:
        for history in site.store.histories_of(site.store.view(idx)):
            items = [i for i in history["items"] if not field_ids or i["fieldId"] in field_ids]
            if items:
                entries.append((history["created"], idx, {**history, "items": items}))
    entries.sort(key=lambda e: (e[0], e[1], e[2]["id"]))
    chunk = entries[offset:offset + max_results]
    grouped: list[dict[str, Any]] = []
    for _created, idx, history in chunk:
        issue_id = str(site.store.view(idx).id)
        if not grouped or grouped[-1]["issueId"] != issue_id:
            grouped.append({"issueId": issue_id, "changeHistories": []})
        rendered = site.renderer.history(history, req.view)
        grouped[-1]["changeHistories"].append(rendered)
    response: dict[str, Any] = {"issueChangeLogs": grouped}
    if offset + len(chunk) < len(entries):
        response["nextPageToken"] = _encode_token(digest, offset + len(chunk))
    return response


def issue_worklogs(site: JiraSite, req: Request) -> dict[str, Any]:
    idx = _issue_index(site, req)
    page = read_page_params(req.query, 5000, 5000)
    after = _int(req.arg("startedAfter"), "startedAfter", 0)
    before = _int(req.arg("startedBefore"), "startedBefore", 0)
    worklogs = site.worklogs(idx, req.view, started_after=after, started_before=before)
    return start_at_page(worklogs, page, "worklogs", lie=site.disruptor.lie_for(req.path))


# --- worklog feeds -------------------------------------------------------------------------------------

def _feed(site: JiraSite, req: Request, deleted: bool) -> dict[str, Any]:
    """/worklog/updated and /worklog/deleted: 1000 per page, `since` inclusive, the last minute hidden."""
    since = _int(req.arg("since"), "since", 0)
    horizon = site.clock.now_ms() - MS_PER_MINUTE
    ids, stamps = site.worklog_feed(deleted)  # sorted by (timestamp, id)
    first, end = int(np.searchsorted(stamps, since)), int(np.searchsorted(stamps, horizon))
    chosen = range(first, max(first, min(end, first + WORKLOG_FEED_PAGE)))
    last_page = end - first <= WORKLOG_FEED_PAGE
    until = int(stamps[chosen[-1]]) if len(chosen) else since
    name = "deleted" if deleted else "updated"
    base = f"{site.world.api}/worklog/{name}"
    response: dict[str, Any] = {
        "values": [{"worklogId": int(ids[i]), "updatedTime": int(stamps[i]), "properties": []} for i in chosen],
        "since": since, "until": until, "self": f"{base}?since={since}",
    }
    if not last_page:
        response["nextPage"] = f"{base}?since={until}"
    response["lastPage"] = last_page
    return response


def worklogs_updated(site: JiraSite, req: Request) -> dict[str, Any]:
    return _feed(site, req, deleted=False)


def worklogs_deleted(site: JiraSite, req: Request) -> dict[str, Any]:
    return _feed(site, req, deleted=True)


def worklog_list(site: JiraSite, req: Request) -> list[dict[str, Any]]:
    ids = req.json().get("ids")
    if not isinstance(ids, list) or not ids:
        raise bad_request("ids must not be empty.")
    if len(ids) > 1000:
        raise bad_request("The number of worklog ids must be between 1 and 1000.")
    try:
        wanted = sorted({int(i) for i in ids})
    except (TypeError, ValueError):
        raise bad_request("Worklog ids must be numbers.") from None
    if req.principal.anonymous:
        return []
    return site.worklogs_by_id(wanted, req.view)
