"""Typed errors that name the cause: endpoint, HTTP status and Jira's own messages.

Every failure of the client surfaces as one of these; nothing is ever turned into an empty result (C11).
Messages never carry a token: they are built from the endpoint path, the status and Jira's error body only.
"""
from __future__ import annotations

from typing import Any, Iterable

from .redact import redact

LOGIN_AGAIN = "run `jira-assets auth login` again"


class ConfigError(ValueError):
    """The configuration is wrong (site URL, missing credentials, unknown token store...)."""


class JiraError(Exception):
    """A request to Jira (or its auth server) failed.

    ``endpoint`` is ``"METHOD /path"`` (no query string, no host), ``status`` the HTTP status (or ``None``
    when no response came back) and ``messages`` Jira's ``errorMessages`` plus ``errors`` rendered as
    ``field: message``.
    """

    kind = "Jira request failed"

    def __init__(
        self,
        message: str | None = None,
        *,
        endpoint: str = "",
        status: int | None = None,
        messages: Iterable[str] = (),
        hint: str = "",
    ) -> None:
        self.endpoint = endpoint
        self.status = status
        # Jira's and the auth server's texts are untrusted: one that echoes a credential must not carry it on
        self.messages = [redact(str(m)) for m in messages if m]
        self.hint = hint
        self.message = redact(message) if message else (
            "; ".join(self.messages) or (f"HTTP {status}" if status else "no response"))
        super().__init__(self._one_line())

    def _one_line(self) -> str:
        where = f"{self.endpoint} -> {self.status}" if self.status else self.endpoint
        text = f"{self.kind} ({where}): {self.message}" if where else f"{self.kind}: {self.message}"
        unsaid = [m for m in self.messages if m not in self.message]
        if unsaid:
            text += f" [Jira: {'; '.join(unsaid)}]"
        return text + (f" — {self.hint}" if self.hint else "")

    def __reduce__(self):  # picklable across processes (Dagster's multiprocess executor)
        return (_rebuild, (type(self), self.message, self.endpoint, self.status, self.messages, self.hint))


def _rebuild(cls, message, endpoint, status, messages, hint):
    return cls(message, endpoint=endpoint, status=status, messages=messages, hint=hint)


class JiraBadRequest(JiraError):
    kind = "Jira rejected the request"


class JiraAuthError(JiraError):
    kind = "Jira authentication failed"


class JiraScopeError(JiraError):
    kind = "OAuth scope missing"


class JiraPermissionError(JiraError):
    kind = "Jira permission missing"


class JiraNotFound(JiraError):
    kind = "Not found in Jira"


class JiraGone(JiraError):
    kind = "Jira endpoint removed"


class JiraRateLimited(JiraError):
    kind = "Rate limited by Jira"


class JiraServerError(JiraError):
    kind = "Jira server error"


class JiraProtocolError(JiraError):
    kind = "Unexpected response from Jira"


def messages_from_body(body: Any) -> list[str]:
    """Jira's error texts from any of its error shapes, in order.

    ErrorCollection ``{"errorMessages": [...], "errors": {field: msg}}``, the gateway's ``{"code",
    "message"}``, bulk ``{"errors": [{"message": ...}]}`` and OAuth's ``{"error", "error_description"}``.
    """
    if not isinstance(body, dict):
        return []
    found: list[str] = []
    for text in body.get("errorMessages") or []:
        found.append(str(text))
    errors = body.get("errors")
    if isinstance(errors, dict):
        found.extend(f"{field}: {text}" for field, text in errors.items())
    elif isinstance(errors, list):
        found.extend(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors)
    if body.get("message"):
        found.append(str(body["message"]))
    if body.get("error"):
        description = body.get("error_description")
        found.append(f"{body['error']}: {description}" if description else str(body["error"]))
    return found
