"""The 429 back-off shared by every process and machine, not only by the threads of one process.

`ThrottleGate` (retry.py) keeps one "not before" instant per process: after a 429 every thread of that process
waits. A board publishes the instant, so every other process waits too instead of each discovering the throttling
with a 429 of its own:

- ``FileThrottleBoard``: a small file, for the processes of one machine (by default next to the request-budget
  slots, ``$JIRA_REQUEST_BUDGET_DIR/throttled-until``);
- ``S3ThrottleBoard``: one S3 object, for every machine (``JIRA_THROTTLE_BOARD=s3://bucket/key``, next to the S3
  token store). Reads are cached for a second, so a busy process costs S3 one GET a second.

Instants are epoch seconds (``time.time``). A board that cannot be read or written never fails a request: the
process then falls back to its own gate.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Optional, Protocol
from urllib.parse import urlparse

from .budget import ENV_DIR as BUDGET_DIR_ENV
from .errors import ConfigError

log = logging.getLogger(__name__)

ENV_BOARD = "JIRA_THROTTLE_BOARD"
DEFAULT_FILE_NAME = "throttled-until"


class ThrottleBoard(Protocol):
    def publish(self, not_before: float) -> None: ...

    def read(self) -> float: ...

    def describe(self) -> str: ...


class FileThrottleBoard:
    """The instant in a file; writers keep the later of the old and new instant under a lock file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def describe(self) -> str:
        return f"file {self.path}"

    def read(self) -> float:
        try:
            return float(self.path.read_text() or 0)
        except (FileNotFoundError, ValueError):
            return 0.0

    def publish(self, not_before: float) -> None:
        lock_fd = os.open(str(self.path) + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            if not_before <= self.read():
                return
            fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
            with os.fdopen(fd, "w") as handle:
                handle.write(repr(float(not_before)))
            os.replace(temp, self.path)  # readers see the old or the new instant, never half a number
        finally:
            os.close(lock_fd)


class S3ThrottleBoard:
    """The instant in one S3 object ({"not_before": epoch seconds}); reads cached for ``cache_seconds``."""

    def __init__(self, bucket: str, key: str, s3_client_or_endpoint: Any = None, cache_seconds: float = 1.0,
                 clock=time.monotonic) -> None:
        self.bucket, self.key = bucket, key
        self.cache_seconds = cache_seconds
        self.clock = clock
        if s3_client_or_endpoint is None or isinstance(s3_client_or_endpoint, str):
            import boto3

            self.s3 = boto3.client("s3", endpoint_url=s3_client_or_endpoint)
        else:
            self.s3 = s3_client_or_endpoint
        self._lock = threading.Lock()
        self._cached = (0.0, float("-inf"))  # (not_before, read at)

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def _get(self) -> tuple[float, Optional[str]]:
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=self.key)
        except self.s3.exceptions.NoSuchKey:
            return 0.0, None
        try:
            value = float(json.loads(response["Body"].read()).get("not_before", 0))
        except (ValueError, TypeError, AttributeError):
            value = 0.0
        return value, response["ETag"]

    def read(self) -> float:
        with self._lock:
            value, read_at = self._cached
            if self.clock() - read_at < self.cache_seconds:
                return value
        value, _ = self._get()
        with self._lock:
            self._cached = (value, self.clock())
        return value

    def publish(self, not_before: float) -> None:
        body = json.dumps({"not_before": not_before}).encode()
        for _ in range(3):  # compare-and-swap: never replace a later instant by an earlier one
            current, etag = self._get()
            if not_before <= current:
                break
            condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
            try:
                self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=body, ContentType="application/json",
                                   **condition)
                break
            except self.s3.exceptions.ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if code not in {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}:
                    raise
        with self._lock:
            self._cached = (max(not_before, self._cached[0]), self.clock())


def throttle_board_from_url(url: str) -> ThrottleBoard:
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        key = parsed.path.lstrip("/")
        if not parsed.netloc or not key:
            raise ConfigError(f"{ENV_BOARD} {url!r} must look like s3://bucket/key")
        return S3ThrottleBoard(parsed.netloc, key, os.environ.get("AWS_ENDPOINT_URL_S3"))
    if parsed.scheme == "file":
        return FileThrottleBoard(parsed.path)
    if parsed.scheme == "":
        return FileThrottleBoard(url)
    raise ConfigError(f"unsupported {ENV_BOARD} {url!r}: use a path, file:///path or s3://bucket/key")


def throttle_board_from_env() -> Optional[ThrottleBoard]:
    """``JIRA_THROTTLE_BOARD`` if set, else a file in ``JIRA_REQUEST_BUDGET_DIR`` if set, else None."""
    url = os.environ.get(ENV_BOARD, "").strip()
    if url:
        return throttle_board_from_url(url)
    directory = os.environ.get(BUDGET_DIR_ENV, "").strip()
    if directory:
        return FileThrottleBoard(Path(directory) / DEFAULT_FILE_NAME)
    return None


class SafeBoard:
    """A board whose failures are logged once and otherwise ignored (a request never fails because of it)."""

    def __init__(self, board: ThrottleBoard) -> None:
        self.board = board
        self._warned = False

    def describe(self) -> str:
        return self.board.describe()

    def _warn(self, what: str, exc: Exception) -> None:
        if not self._warned:
            self._warned = True
            log.warning("throttle board %s: could not %s (%s); backing off per process only",
                        self.board.describe(), what, type(exc).__name__)

    def read(self) -> float:
        try:
            return self.board.read()
        except Exception as exc:  # noqa: BLE001 - see the class docstring
            self._warn("read", exc)
            return 0.0

    def publish(self, not_before: float) -> None:
        with contextlib.suppress(Exception):
            try:
                self.board.publish(not_before)
            except Exception as exc:  # noqa: BLE001
                self._warn("write", exc)
                raise
