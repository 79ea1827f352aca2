"""The route table machinery: one `Route` per Jira operation, with its scopes and permission rules."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Optional
from urllib.parse import parse_qs

import orjson

from .errors import bad_request
from .issues import ViewContext
from .oauth import Principal

PLATFORM = "platform"  # /rest/api/2|3
AGILE = "agile"  # /rest/agile/1.0


@dataclass
class Request:
    method: str
    path: str  # the full path as received (gateway prefix included)
    api_path: str  # path below /rest/api/N or /rest/agile/1.0
    query: dict[str, list[str]]
    raw_body: bytes
    principal: Principal
    api_version: int  # 2 or 3 (agile counts as 2)
    params: dict[str, str] = field(default_factory=dict)
    zone: str = "UTC"

    def arg(self, name: str, default: Optional[str] = None) -> Optional[str]:
        values = self.query.get(name)
        return values[-1] if values else default

    def args(self, name: str) -> list[str]:
        """Every value of a repeated parameter (`projectId=1&projectId=2`)."""
        return self.query.get(name, [])

    def csv(self, name: str) -> list[str]:
        """Comma lists, repeated or not: `expand=a,b&expand=c` -> [a, b, c]."""
        return [part.strip() for value in self.args(name) for part in value.split(",") if part.strip()]

    def json(self) -> dict[str, Any]:
        if not self.raw_body:
            return {}
        try:
            body = orjson.loads(self.raw_body)
        except orjson.JSONDecodeError:
            raise bad_request("Unexpected character in the request body: it is not valid JSON.") from None
        if not isinstance(body, dict):
            raise bad_request("The request body must be a JSON object.")
        return body

    @property
    def user_index(self) -> int:
        return -1 if self.principal.user is None else self.principal.user.index

    @property
    def view(self) -> ViewContext:
        return ViewContext(self.zone, self.user_index)


Handler = Callable[[Any, Request], Any]


@dataclass
class Route:
    method: str
    pattern: str  # e.g. "/issue/{issueIdOrKey}/comment"
    handler: Handler
    #: OAuth scopes a gateway token must hold (all of them)
    scopes: tuple[str, ...] = ("read:jira-work",)
    family: str = PLATFORM
    #: Jira answers 403 "Administrator privileges are required." to everyone else
    admin: bool = False
    #: on bad or missing Basic credentials Jira runs this as anonymous instead of answering 401
    anonymous: bool = False
    #: the response carries rich text that /rest/api/3 turns into ADF
    rich_text: bool = False
    regex: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        self.regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.pattern) + "/?$")

    @property
    def key(self) -> str:
        prefix = "/rest/agile/1.0" if self.family == AGILE else "/rest/api/2"
        return f"{self.method} {prefix}{self.pattern}"


class Router:
    def __init__(self, routes: list[Route]):
        self.routes = routes

    def match(self, family: str, method: str, api_path: str) -> tuple[Optional[Route], dict[str, str], bool]:
        """(route, path params, path exists for another method)."""
        path_exists = False
        for route in self.routes:
            if route.family != family:
                continue
            found = route.regex.match(api_path)
            if found:
                if route.method == method:
                    return route, found.groupdict(), True
                path_exists = True
        return None, {}, path_exists


def parse_query(query_string: str) -> dict[str, list[str]]:
    return parse_qs(query_string, keep_blank_values=True)
