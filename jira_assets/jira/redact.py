"""Keep secrets out of logs and error text.

requests-oauthlib logs whole token requests and responses at DEBUG (bodies with refresh tokens and the client
secret). A logging filter on its loggers rewrites such records before any handler sees them; the same
redaction is applied to response snippets that end up in exception messages.
"""
from __future__ import annotations

import logging
import re
import threading

_SECRET_FIELDS = r"access_token|refresh_token|client_secret|api_token|id_token|code|password|token"
_FIELD_VALUE = re.compile(
    rf"""(?P<name>["']?(?:{_SECRET_FIELDS})["']?\s*[:=]\s*["']?)(?P<value>[^"'&\s,}}]+)""", re.IGNORECASE
)
_AUTH_HEADER = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+")
REDACTED = "<redacted>"

_known_secrets: set[str] = set()
_known_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember a secret value so that it is scrubbed wherever it turns up, whatever the surrounding
    syntax."""
    if value and len(value) >= 6:
        with _known_lock:
            _known_secrets.add(value)


def redact(text: str) -> str:
    text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _FIELD_VALUE.sub(lambda m: m.group("name") + REDACTED, text)
    with _known_lock:
        secrets = sorted(_known_secrets, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def without_userinfo(url: str) -> str:
    """A URL fit for an error message: a `user:password@` part is replaced, whatever else is wrong with it."""
    return _USERINFO.sub(lambda m: m.group(1) + "<credentials>@", redact(url or ""))


def has_userinfo(url: str) -> bool:
    """Whether a URL carries a `user:password@` part (credentials that belong in their own settings)."""
    return bool(_USERINFO.match(url or ""))


_USERINFO = re.compile(r"^(\s*[A-Za-z][A-Za-z0-9+.-]*://)[^/?#@]*@")


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is not ours to fix; drop its arguments rather than leak them
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        return True


# Loggers that see token requests or responses. A filter only applies to records created by its own logger,
# so each one is named.
_NOISY_LOGGERS = ("requests_oauthlib.oauth2_session", "requests_oauthlib", "oauthlib")
_installed = False


def install_log_redaction() -> None:
    global _installed
    if _installed:
        return
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).addFilter(RedactingFilter())
    _installed = True
