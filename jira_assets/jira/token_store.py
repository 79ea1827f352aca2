"""Where OAuth tokens live between processes: a local file or an S3 object.

Both stores offer ``read()``, ``write(token_set)`` and ``lock()``. The lock is what makes a refresh
single-flight across processes (file lock) or machines (an S3 lease object); ``write`` is durable before it
returns, because a rotated refresh token that is lost is a grant that is lost (C12).
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Iterator, Protocol
from urllib.parse import urlparse

from .errors import ConfigError, JiraError, JiraServerError


@dataclass(frozen=True)
class TokenSet:
    """One OAuth token pair with its timestamps (epoch seconds). ``repr`` never shows the secrets."""

    access_token: str
    refresh_token: str | None
    expires_at: float
    scope: str = ""
    obtained_at: float = 0.0
    refresh_token_issued_at: float = 0.0
    grant_started_at: float = 0.0

    def __repr__(self) -> str:
        return (
            f"TokenSet(access_token=<hidden>, refresh_token={'<hidden>' if self.refresh_token else None}, "
            f"expires_at={self.expires_at:.0f}, scope={self.scope!r})"
        )

    __str__ = __repr__

    def lifetime(self) -> float:
        return max(0.0, self.expires_at - self.obtained_at)

    def is_fresh(self, now: float, margin: float) -> bool:
        """Usable for at least ``margin`` more seconds (capped at half the token's lifetime, so a short-lived
        token is not considered stale the moment it is issued)."""
        return self.expires_at - min(margin, self.lifetime() / 2) > now

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> TokenSet:
        """Raises InvalidTokenFile naming the first field of the wrong type (never its value: a secret)."""
        if not isinstance(data, dict):
            raise InvalidTokenFile(f"expected a JSON object, found {_json_type(data)}")
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        for name, allowed in _FIELD_TYPES.items():
            if name not in values:
                if name in _REQUIRED:
                    raise InvalidTokenFile(f"no {name}")
                continue
            value = values[name]
            if isinstance(value, bool) or not isinstance(value, allowed):
                raise InvalidTokenFile(f"{name} is {_json_type(value)}")
        return cls(**values)


class InvalidTokenFile(ValueError):
    """A token store's content is not a token set this product wrote."""


_NUMBER = (int, float)
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "access_token": (str,), "refresh_token": (str, type(None)), "expires_at": _NUMBER, "scope": (str,),
    "obtained_at": _NUMBER, "refresh_token_issued_at": _NUMBER, "grant_started_at": _NUMBER,
}
_REQUIRED = ("access_token", "refresh_token", "expires_at")


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null",
             int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)


def invalid_store(where: str, exc: Exception) -> ConfigError:
    detail = str(exc) if isinstance(exc, InvalidTokenFile) else f"not JSON ({type(exc).__name__})"
    return ConfigError(f"token store {where} is not a valid token file: {detail}; run `jira-assets auth login` "
                       "to write a new one (or remove it and set JIRA_REFRESH_TOKEN)")


class TokenStore(Protocol):
    def read(self) -> TokenSet | None: ...

    def write(self, tokens: TokenSet) -> None: ...

    def lock(self, timeout: float | None = None) -> contextlib.AbstractContextManager[None]:
        """Hold the store's lock; raises LockTimeout after ``timeout`` seconds (default: the store's own)."""
        ...

    def describe(self) -> str: ...


class TokenStoreConflict(JiraError):
    """Another writer changed the stored tokens while this one held what it thought was the lock."""

    kind = "Token store changed underneath"


class LockTimeout(JiraError):
    """The token store's lock stayed taken for the whole wait."""

    kind = "Token store busy"


class FileTokenStore:
    """Tokens in a JSON file: mode 0600, atomic replace (temp file + fsync + os.replace) and a sidecar
    ``.lock`` file (filelock) that serialises refreshes of every process on this machine."""

    def __init__(self, path: str | os.PathLike[str], lock_timeout: float = 120.0) -> None:
        # through a symlink to the file it names: replacing the link itself would leave the target (what other
        # readers use) with a spent refresh token, and put the lock beside the link instead of the file
        self.path = Path(os.path.realpath(Path(path).expanduser()))
        self.lock_timeout = lock_timeout

    def describe(self) -> str:
        return f"file {self.path}"

    def read(self) -> TokenSet | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:  # a directory, no permission, a path through a file...
            cause = exc.strerror or type(exc).__name__
            raise ConfigError(f"token store {self.path} cannot be read ({cause}); point JIRA_TOKEN_STORE "
                              "at a file this process may read and write") from None
        try:
            return TokenSet.from_json(json.loads(raw))
        except (ValueError, TypeError) as exc:
            raise invalid_store(str(self.path), exc) from None

    def write(self, tokens: TokenSet) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps(tokens.to_json(), indent=2).encode()
        fd, temp_name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)  # before any secret is written
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp_name, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)
            raise
        _fsync_directory(self.path.parent)  # the rename itself must survive a crash

    @contextlib.contextmanager
    def lock(self, timeout: float | None = None) -> Iterator[None]:
        from filelock import FileLock, Timeout

        wait = self.lock_timeout if timeout is None else timeout
        self.path.parent.mkdir(parents=True, exist_ok=True)
        file_lock = FileLock(str(self.path) + ".lock", timeout=wait)
        try:
            file_lock.acquire(poll_interval=min(0.05, wait / 4 or 0.01))
        except Timeout:
            raise LockTimeout(f"{self.path}.lock stayed locked for {wait:.2f} s") from None
        try:
            yield
        finally:
            file_lock.release()


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform lets a directory be opened
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class S3TokenStore:
    """Tokens in one S3 object, for runs spread over several machines.

    Writes are compare-and-swap: ``IfMatch`` the ETag last read (or ``IfNoneMatch="*"`` when there was
    none), so a writer whose view is stale fails instead of overwriting a newer refresh token. ``lock()``
    is a lease: an object ``<key>.lock`` created with ``IfNoneMatch="*"``; a lease older than
    ``lease_seconds`` (its holder died) is taken over with a conditional write on its ETag, so only one
    waiter wins it, and released with a conditional delete, so a holder whose lease was taken over cannot
    delete its successor's.
    """

    def __init__(
        self,
        bucket: str,
        key: str,
        s3_client_or_endpoint: Any = None,
        *,
        lease_seconds: float = 60.0,
        lock_timeout: float = 120.0,
        poll_seconds: float = 0.05,
        max_poll_seconds: float = 0.5,
        settle_seconds: float = 0.05,
    ) -> None:
        self.bucket = bucket
        self.key = key
        self.lock_key = key + ".lock"
        self.lease_seconds = lease_seconds
        self.lock_timeout = lock_timeout
        self.poll_seconds = poll_seconds
        self.max_poll_seconds = max_poll_seconds
        self.settle_seconds = settle_seconds
        if s3_client_or_endpoint is None or isinstance(s3_client_or_endpoint, str):
            import boto3

            self.s3 = boto3.client("s3", endpoint_url=s3_client_or_endpoint)
        else:
            self.s3 = s3_client_or_endpoint
        self._etag: str | None = None  # ETag of the version last read or written; None = "did not exist"
        self._cached: TokenSet | None = None  # that version's content

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def read(self) -> TokenSet | None:
        with self._s3_errors("read"):
            return self._read()

    def write(self, tokens: TokenSet) -> None:
        with self._s3_errors("write"):
            self._write(tokens)

    @contextlib.contextmanager
    def _s3_errors(self, action: str) -> Iterator[None]:
        """S3 refusing the store (no bucket, access denied, bad credentials, unreadable content) as one line
        naming the store; S3 failing transiently as a retryable error. Never a raw botocore traceback."""
        import botocore.exceptions as boto

        try:
            yield
        except JiraError:
            raise
        except boto.ClientError as exc:
            code = _error_code(exc)
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            message = exc.response.get("Error", {}).get("Message") or code
            text = f"token store {self.describe()}: cannot {action} ({code}: {message})"
            if status >= 500 or code in _TRANSIENT_S3_CODES:
                raise JiraServerError(text) from None
            raise ConfigError(text + "; check JIRA_TOKEN_STORE and the AWS credentials") from None
        except (boto.EndpointConnectionError, boto.ConnectionClosedError, boto.ReadTimeoutError,
                boto.ConnectTimeoutError) as exc:
            raise JiraServerError(f"token store {self.describe()}: cannot {action} ({exc})") from None
        except boto.BotoCoreError as exc:  # no credentials, bad configuration
            raise ConfigError(f"token store {self.describe()}: cannot {action} ({exc})") from None
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"token store {self.describe()} is not a valid token file "
                              f"({type(exc).__name__})") from None

    def _read(self) -> TokenSet | None:
        # A HEAD first: while nobody has refreshed, the ETag is unchanged and the body need not travel again.
        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=self.key)
        except self.s3.exceptions.ClientError as exc:
            if not _is_missing(exc):
                raise
            self._etag, self._cached = None, None
            return None
        if head["ETag"] == self._etag and self._cached is not None:
            return self._cached
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=self.key)
        except self.s3.exceptions.NoSuchKey:
            self._etag, self._cached = None, None
            return None
        try:
            self._cached = TokenSet.from_json(json.loads(response["Body"].read()))
        except (ValueError, TypeError) as exc:
            raise invalid_store(self.describe(), exc) from None
        self._etag = response["ETag"]
        return self._cached

    def _write(self, tokens: TokenSet) -> None:
        condition = {"IfMatch": self._etag} if self._etag else {"IfNoneMatch": "*"}
        try:
            response = self.s3.put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=json.dumps(tokens.to_json()).encode(),
                ContentType="application/json",
                **condition,
            )
        except self.s3.exceptions.ClientError as exc:
            if _is_precondition_failure(exc) or _is_conflict(exc):
                raise TokenStoreConflict(
                    f"{self.describe()} was written by someone else since it was read; not overwriting it"
                ) from None
            raise
        self._etag, self._cached = response["ETag"], tokens

    @contextlib.contextmanager
    def lock(self, timeout: float | None = None) -> Iterator[None]:
        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
        with self._s3_errors("lock"):
            etag = self._acquire_lease(owner, self.lock_timeout if timeout is None else timeout)
        try:
            yield
        finally:
            self._release_lease(etag)

    def _put_lease(self, owner: str, **condition: str) -> str:
        """Write the lease object. The owner in the body makes each lease's ETag unique, which is what the
        conditional take-over and release compare; the expiry is also in metadata so a HEAD can read it."""
        expires_at = f"{time.time() + self.lease_seconds:.3f}"
        response = self.s3.put_object(
            Bucket=self.bucket,
            Key=self.lock_key,
            Body=json.dumps({"owner": owner, "expires_at": expires_at}).encode(),
            Metadata={"owner": owner, "expires-at": expires_at},
            **condition,
        )
        return response["ETag"]

    def _acquire_lease(self, owner: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        pause = self.poll_seconds
        next_expiry_check = 0.0
        while True:
            etag = self._try_create_lease(owner)
            if etag is None and time.monotonic() >= next_expiry_check:
                # A dead holder's lease: checked now and then, not on every poll.
                etag = self._take_over_expired_lease(owner)
                next_expiry_check = time.monotonic() + min(1.0, self.lease_seconds / 4)
            if etag is not None and self._still_ours(etag):
                return etag
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LockTimeout(f"the lease {self.lock_key} stayed taken for {timeout:.2f} s")
            # Back off with jitter: many waiters polling one key would slow down the holder they wait for.
            time.sleep(min(remaining, pause * random.uniform(0.5, 1.5)))
            pause = min(pause * 2, self.max_poll_seconds)

    def _try_create_lease(self, owner: str) -> str | None:
        try:
            return self._put_lease(owner, IfNoneMatch="*")
        except self.s3.exceptions.ClientError as exc:
            if _is_precondition_failure(exc) or _is_conflict(exc):
                return None
            raise

    def _still_ours(self, etag: str) -> bool:
        """Look again after a short pause. S3 evaluates conditional writes atomically, but some S3-compatible
        stores (moto among them) check and write in two steps, so two creators can both be told "yes"; the one
        whose write landed last is the holder. One HEAD per acquisition is cheap insurance for a grant."""
        time.sleep(self.settle_seconds)
        try:
            return self.s3.head_object(Bucket=self.bucket, Key=self.lock_key)["ETag"] == etag
        except self.s3.exceptions.ClientError as exc:
            if _is_missing(exc):
                return False
            raise

    def _take_over_expired_lease(self, owner: str) -> str | None:
        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=self.lock_key)
        except self.s3.exceptions.ClientError as exc:
            if _is_missing(exc):
                return None  # released meanwhile: the next create attempt may win
            raise
        if float(head.get("Metadata", {}).get("expires-at", "0")) > time.time():
            return None
        try:
            return self._put_lease(owner, IfMatch=head["ETag"])
        except self.s3.exceptions.ClientError as exc:
            if _is_precondition_failure(exc) or _is_conflict(exc) or _is_missing(exc):
                return None  # another waiter took it (or it was released) first
            raise

    def _release_lease(self, etag: str) -> None:
        """Delete the lease only if it is still ours (it may have expired and been taken over)."""
        try:
            self.s3.delete_object(Bucket=self.bucket, Key=self.lock_key, IfMatch=etag)
        except self.s3.exceptions.ClientError as exc:
            if not (_is_precondition_failure(exc) or _is_missing(exc) or _is_conflict(exc)):
                raise


_TRANSIENT_S3_CODES = {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "Throttling"}


def _error_code(exc: Any) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _is_precondition_failure(exc: Any) -> bool:
    return _error_code(exc) in {"PreconditionFailed", "412"}


def _is_missing(exc: Any) -> bool:
    return _error_code(exc) in {"404", "NoSuchKey", "NotFound"}


def _is_conflict(exc: Any) -> bool:
    # S3 answers 409 ConditionalRequestConflict when two conditional writes race on one key.
    return _error_code(exc) in {"ConditionalRequestConflict", "409", "OperationAborted"}


def token_store_from_url(url: str | os.PathLike[str], *, s3_endpoint_url: str | None = None) -> TokenStore:
    """``file:///abs/path``, a plain path, or ``s3://bucket/key`` -> a token store."""
    text = os.fspath(url)
    parsed = urlparse(text)
    if parsed.scheme == "s3":
        key = parsed.path.lstrip("/")
        if not parsed.netloc or not key:
            raise ConfigError(f"token store URL {text!r} must look like s3://bucket/key")
        return S3TokenStore(parsed.netloc, key, s3_endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3"))
    if parsed.scheme == "file":
        return FileTokenStore(parsed.path)
    if parsed.scheme == "" or len(parsed.scheme) == 1:  # a plain path (or a Windows drive letter)
        return FileTokenStore(text)
    raise ConfigError(f"unsupported token store {text!r}: use a path, file:///path or s3://bucket/key")


def default_token_store_path() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "jira-assets" / "tokens.json"
