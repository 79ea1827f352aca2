"""Jira's error bodies, raised as exceptions by handlers and turned into responses by the server."""
from __future__ import annotations

from typing import Any, Optional

ADMIN_REQUIRED = "You are not authorized to perform this action. Administrator privileges are required."
NOT_LOGGED_IN = "Client must be authenticated to access this resource."
ISSUE_NOT_FOUND = "Issue does not exist or you do not have permission to see it."
SEARCH_REMOVED = ("The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
                  "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046")
BAD_PAGE_TOKEN = "Invalid format of nextPageToken"


class HttpError(Exception):
    """Any non-2xx answer: status, JSON body and extra headers."""

    def __init__(self, status: int, body: Any, headers: Optional[dict[str, str]] = None):
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body
        self.headers = headers or {}


def jira_error(status: int, *messages: str, errors: Optional[dict[str, str]] = None) -> HttpError:
    """Jira's own ErrorCollection: `{"errorMessages":[...],"errors":{...}}`."""
    return HttpError(status, {"errorMessages": list(messages), "errors": errors or {}})


def gateway_error(message: str = "Unauthorized") -> HttpError:
    """The API gateway's shape (api.atlassian.com), not Jira's."""
    return HttpError(401, {"code": 401, "message": message})


def oauth_error(status: int, error: str, description: str) -> HttpError:
    return HttpError(status, {"error": error, "error_description": description})


def bad_request(*messages: str, errors: Optional[dict[str, str]] = None) -> HttpError:
    return jira_error(400, *messages, errors=errors)


def not_found(message: str) -> HttpError:
    return jira_error(404, message)
