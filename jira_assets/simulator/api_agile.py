"""Jira Software agile endpoints (/rest/agile/1.0): boards and sprints, pages capped at 50 (AGILE.md)."""
from __future__ import annotations

from typing import Any

from .errors import bad_request, not_found
from .jira_site import JiraSite
from .paging import page_bean, read_page_params
from .routes import Request
from .world import Board

AGILE_CAP = 50
NO_SPRINTS = "The board does not support sprints"


def _page(site: JiraSite, req: Request, values: list[Any]) -> dict[str, Any]:
    page = read_page_params(req.query, AGILE_CAP, AGILE_CAP)
    return page_bean(values, page, "", with_links=False, lie=site.disruptor.lie_for(req.path))


def _board(site: JiraSite, req: Request) -> Board:
    board_id = req.params["boardId"]
    board = site.world.boards_by_id.get(int(board_id)) if board_id.isdigit() else None
    if board is None:
        raise not_found("Board does not exist or you do not have permission to see it.")
    return board


def boards(site: JiraSite, req: Request) -> dict[str, Any]:
    records = site.snapshot("boards")
    types = set(req.csv("type"))
    if types:
        records = [b for b in records if b.get("type") in types]
    name = (req.arg("name") or "").lower()
    if name:
        records = [b for b in records if name in b.get("name", "").lower()]
    project = req.arg("projectKeyOrId")
    if project:
        records = [b for b in records if project in (str(b.get("location", {}).get("projectId")),
                                                     b.get("location", {}).get("projectKey"))]
    order = req.arg("orderBy")
    if order:
        if order.lstrip("+-") != "name":
            raise bad_request(f"Invalid orderBy value: '{order}'.")
        records = sorted(records, key=lambda b: b.get("name", ""), reverse=order.startswith("-"))
    return _page(site, req, records)


def board_get(site: JiraSite, req: Request) -> dict[str, Any]:
    return site.world.board_record(_board(site, req))


def board_sprints(site: JiraSite, req: Request) -> dict[str, Any]:
    """Closed, then active, then future; kanban and team-managed simple boards answer 400."""
    if "sprints" in site.replayed:
        return _page(site, req, site.snapshot("sprints"))
    board = _board(site, req)
    if board.type != "scrum":
        raise bad_request(NO_SPRINTS)
    sprints = [site.world.sprint_record(s) for s in site.world.board_sprints(board)]
    states = set(req.csv("state"))
    if states:
        sprints = [s for s in sprints if s["state"] in states]
    return _page(site, req, sprints)


def sprint_get(site: JiraSite, req: Request) -> dict[str, Any]:
    sprint_id = req.params["sprintId"]
    sprint = next((s for s in site.world.sprints if str(s.id) == sprint_id), None)
    if sprint is None:
        raise not_found("Sprint does not exist or you do not have permission to see it.")
    return site.world.sprint_record(sprint)


def board_projects(site: JiraSite, req: Request) -> dict[str, Any]:
    board = _board(site, req)
    projects = [] if board.project is None else [
        site.world.project_record(site.world.projects[board.project], set())]
    return _page(site, req, projects)
