"""Storage errors, described in one line that names the location and the cause."""
from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager

_OS_CAUSES = {
    errno.ENOSPC: "disk full (no space left on device)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "folder not writable (permission denied)",
    errno.EPERM: "folder not writable (operation not permitted)",
    errno.EROFS: "folder not writable (read-only file system)",
    errno.EEXIST: "a file is in the way where a folder is needed",
    errno.ENOTDIR: "a file is in the way where a folder is needed",
    errno.EISDIR: "a folder is in the way where a file is needed",
}


class StorageError(Exception):
    """The storage (local folder or S3) refused or failed an operation; the message says why.

    ``transient`` is True when trying again later may work (S3 unreachable, throttled or failing); a missing
    bucket, a denied access, a bad KMS key, a full disk, an unwritable folder or a file in the way need a person."""

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class MissingPartitionsError(StorageError):
    """Partitions were asked for that were never written."""

    def __init__(self, message: str, missing: list[str]) -> None:
        super().__init__(message)
        self.missing = missing


def describe_cause(exc: BaseException) -> str | None:
    """A short human cause for a storage failure, or None when ``exc`` is not one."""
    try:
        import botocore.exceptions as boto
    except ImportError:  # pragma: no cover - boto3 is a dependency, but local use needs no S3
        boto = None
    if boto is not None:
        if isinstance(exc, boto.ClientError):
            return _describe_s3_error(exc)
        if isinstance(exc, boto.NoCredentialsError):
            return "no AWS credentials found"
        if isinstance(exc, boto.EndpointConnectionError):
            return f"cannot connect to the S3 endpoint ({exc})"
        if isinstance(exc, boto.BotoCoreError):
            return str(exc)
    if isinstance(exc, OSError):
        cause = _OS_CAUSES.get(exc.errno)
        if cause is None:
            return str(exc) or type(exc).__name__
        where = f": {exc.filename}" if exc.filename else ""
        return f"{cause}{where}"
    return None


def _describe_s3_error(exc) -> str:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    message = error.get("Message", "") or str(exc)
    if code == "NoSuchBucket":
        bucket = error.get("BucketName")
        named = f" {bucket!r}" if bucket else ""
        return f"bucket{named} does not exist (NoSuchBucket)"
    if code.startswith("KMS") or "kms" in message.lower():  # also AccessDenied on kms:GenerateDataKey
        return f"KMS key is invalid or not usable ({code}: {message})"
    if code in ("AccessDenied", "403", "AllAccessDisabled"):
        return f"access denied ({code}: {message})"
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"):
        return f"invalid AWS credentials ({code})"
    return f"{code}: {message}" if code else message


_TRANSIENT_S3_CODES = {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "Throttling",
                       "RequestTimeTooSkewed", "500", "503"}


def is_transient(exc: BaseException) -> bool:
    """Whether a storage failure may go away by itself (connection trouble, S3 throttling or 5xx)."""
    try:
        import botocore.exceptions as boto
    except ImportError:  # pragma: no cover
        boto = None
    if boto is not None:
        if isinstance(exc, boto.ClientError):
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            return str(error.get("Code", "")) in _TRANSIENT_S3_CODES or status >= 500
        if isinstance(exc, (boto.EndpointConnectionError, boto.ConnectionClosedError, boto.ReadTimeoutError,
                            boto.ConnectTimeoutError)):
            return True
        if isinstance(exc, boto.BotoCoreError):
            return False
    if isinstance(exc, OSError):
        return exc.errno not in _OS_CAUSES and not isinstance(exc, (FileNotFoundError, NotADirectoryError))
    return False


@contextmanager
def storage_errors(action: str, location: str) -> Iterator[None]:
    """Turn storage failures inside the block into one-line ``StorageError``s; let others through.

    Data errors (a bad batch, a producer's own exception) must reach the caller unchanged, so only
    exceptions that ``describe_cause`` recognises are translated.
    """
    try:
        yield
    except StorageError:
        raise
    except Exception as exc:
        cause = describe_cause(exc)
        if cause is None:
            raise
        raise StorageError(f"cannot {action} {location}: {cause}", transient=is_transient(exc)) from exc
