"""Atlassian Document Format for /rest/api/3: plain v2 strings become ADF documents."""
from __future__ import annotations

from typing import Any, Optional


def to_adf(text: Optional[str]) -> Optional[dict[str, Any]]:
    """A v2 string as Jira's v3 sends it: one paragraph per blank-line block, hardBreak per newline."""
    if text is None:
        return None
    blocks = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        content: list[dict[str, Any]] = []
        for index, line in enumerate(block.split("\n")):
            if index:
                content.append({"type": "hardBreak"})
            if line:
                content.append({"type": "text", "text": line})
        blocks.append({"type": "paragraph", "content": content})
    return {"type": "doc", "version": 1, "content": blocks}


def adf_to_text(doc: Any) -> Any:
    """The inverse, used when v3 clients send ADF or when replaying v3 recordings as v2."""
    if not isinstance(doc, dict) or doc.get("type") != "doc":
        return doc

    def walk(node: dict[str, Any]) -> str:
        kind = node.get("type")
        if kind == "text":
            return node.get("text", "")
        if kind == "hardBreak":
            return "\n"
        return "".join(walk(child) for child in node.get("content", []))

    return "\n\n".join(walk(block) for block in doc.get("content", []))


RICH_ISSUE_FIELDS = ("description", "environment")


def to_v3(body: Any, textarea_fields: frozenset[str]) -> Any:
    """Convert a v2 response body in place to v3: issue rich-text fields, comment bodies and worklog
    comments become ADF. Other `description`s (projects, statuses, ...) stay plain strings, as in Jira."""
    if isinstance(body, list):
        for item in body:
            to_v3(item, textarea_fields)
    elif isinstance(body, dict):
        fields = body.get("fields")
        if isinstance(fields, dict) and "key" in body:
            for name in RICH_ISSUE_FIELDS + tuple(textarea_fields):
                if isinstance(fields.get(name), str):
                    fields[name] = to_adf(fields[name])
        if "author" in body and isinstance(body.get("body"), str):
            body["body"] = to_adf(body["body"])
        if "timeSpentSeconds" in body and isinstance(body.get("comment"), str):
            body["comment"] = to_adf(body["comment"])
        for value in body.values():
            if isinstance(value, (dict, list)):
                to_v3(value, textarea_fields)
    return body
