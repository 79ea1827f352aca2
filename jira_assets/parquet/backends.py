"""Where Parquet bytes live: a local folder or an S3 prefix, behind one small interface.

The writer in ``store.py`` only needs four things from a backend, and this module is the single
place that knows how each is done locally and on S3:

- ``begin_replace(dir)`` -> a ``Replacement`` that opens new files for a directory, then either
  ``commit()``s them (they replace the directory's previous files exactly) or ``abort()``s
  (nothing changes at the final paths);
- ``list_dir(dir)`` -> the visible sub-directories and files of a directory;
- ``arrow_filesystem()`` / ``arrow_path(dir)`` -> how pyarrow reads it lazily;
- ``uri(dir)`` -> the user-facing location.

Directories are given as tuples of path segments relative to the backend's base.
"""
from __future__ import annotations

import ctypes
import errno
import io
import os
import shutil
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pyarrow.fs as pafs

try:  # advisory locks tell a live writer's staging directory from a dead one's
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

Segments = Sequence[str]

# S3 multipart parts must be at least 5 MiB (except the last); 8 MiB bounds memory per open file.
S3_PART_SIZE = 8 * 1024 * 1024


class Sink(Protocol):
    """A write-only byte stream for one file; ``close()`` keeps it, ``discard()`` drops it."""

    def write(self, data: bytes) -> int: ...
    def tell(self) -> int: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...
    def discard(self) -> None: ...
    @property
    def closed(self) -> bool: ...


class Replacement(Protocol):
    def open(self, name: str) -> Sink: ...
    def commit(self) -> None: ...
    def abort(self) -> None: ...


@dataclass(frozen=True)
class Listing:
    dirs: list[str]
    files: list[str]


class Backend(Protocol):
    base_uri: str

    def uri(self, segments: Segments) -> str: ...
    def begin_replace(self, segments: Segments) -> Replacement: ...
    def list_dir(self, segments: Segments) -> Listing: ...
    def arrow_filesystem(self) -> pafs.FileSystem: ...
    def arrow_path(self, segments: Segments) -> str: ...


def open_backend(
    base: str,
    *,
    s3_endpoint_url: str | None = None,
    s3_region: str | None = None,
    sse_kms_key_id: str | None = None,
    s3_client=None,
) -> Backend:
    if base.startswith("s3://"):
        return S3Prefix(base, endpoint_url=s3_endpoint_url, region=s3_region,
                        sse_kms_key_id=sse_kms_key_id, client=s3_client)
    if "://" in base and not base.startswith("file://"):
        raise ValueError(f"unsupported storage location {base!r}: use a local folder or s3://bucket/prefix")
    if sse_kms_key_id:
        raise ValueError("sse_kms_key_id applies to s3:// locations only")
    return LocalFolder(base.removeprefix("file://"))


def _is_visible(name: str) -> bool:
    # Staging and replaced directories are hidden the way pyarrow and Hive hide them.
    return not name.startswith((".", "_"))


# --------------------------------------------------------------------------------------------
# Local folder: write into a hidden staging directory, then swap it with the final directory.
# --------------------------------------------------------------------------------------------

STAGING_MARK = ".staging-"
REPLACED_MARK = ".replaced-"


class LocalFolder:
    def __init__(self, base: str) -> None:
        self.root = Path(base).expanduser().absolute()
        self.base_uri = str(self.root)

    def path(self, segments: Segments) -> Path:
        return self.root.joinpath(*segments)

    def uri(self, segments: Segments) -> str:
        return str(self.path(segments))

    def arrow_filesystem(self) -> pafs.FileSystem:
        return pafs.LocalFileSystem()

    def arrow_path(self, segments: Segments) -> str:
        return str(self.path(segments))

    def list_dir(self, segments: Segments) -> Listing:
        dirs, files = [], []
        try:
            entries = list(os.scandir(self.path(segments)))
        except (FileNotFoundError, NotADirectoryError):
            return Listing([], [])
        for entry in entries:
            if _is_visible(entry.name):
                (dirs if entry.is_dir() else files).append(entry.name)
        return Listing(sorted(dirs), sorted(files))

    def begin_replace(self, segments: Segments) -> LocalReplacement:
        target = self.path(segments)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() and not target.is_dir():  # someone's file: the swap below would move it aside and lose it
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(target))
        _clean_up_interrupted_writes(target)
        staging = target.with_name(f".{target.name}{STAGING_MARK}{uuid.uuid4().hex}")
        staging.mkdir()
        return LocalReplacement(target, staging)


class LocalReplacement:
    """New files go to ``.<name>.staging-<uuid>`` beside the target; commit swaps the directories.

    The staging directory sits in the same parent as the target, so the swap is a rename on one
    file system: atomic where the kernel can exchange two directories (Linux ``renameat2``), and
    otherwise two renames a few microseconds apart.
    """

    def __init__(self, target: Path, staging: Path) -> None:
        self.target, self.staging = target, staging
        self._lock_fd = _lock_directory(staging)
        self._sinks: list[LocalFileSink] = []

    def open(self, name: str) -> LocalFileSink:
        sink = LocalFileSink(self.staging / name)
        self._sinks.append(sink)
        return sink

    def commit(self) -> None:
        if any(not sink.closed for sink in self._sinks):
            raise RuntimeError("commit() before every file was closed")
        _fsync_path(self.staging)
        if not self.target.exists():
            os.rename(self.staging, self.target)
        elif _exchange_directories(self.staging, self.target):
            shutil.rmtree(self.staging)  # now holds the previous version
        else:
            replaced = self.target.with_name(f".{self.target.name}{REPLACED_MARK}{uuid.uuid4().hex}")
            os.rename(self.target, replaced)
            os.rename(self.staging, self.target)
            shutil.rmtree(replaced)
        _fsync_path(self.target.parent)
        self._unlock()

    def abort(self) -> None:
        for sink in self._sinks:
            sink.discard()
        shutil.rmtree(self.staging, ignore_errors=True)
        self._unlock()

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


class LocalFileSink(io.FileIO):
    """A local file written through Python, so an OSError keeps its errno (ENOSPC, EACCES)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, "wb")

    def close(self) -> None:
        if not self.closed:
            os.fsync(self.fileno())  # the swap must never publish a file the kernel still buffers
        super().close()

    def discard(self) -> None:
        try:
            super().close()
        except OSError:
            pass


def _clean_up_interrupted_writes(target: Path) -> None:
    """Remove what a killed writer left beside ``target``, restoring a half-swapped directory.

    A staging directory whose lock can be taken belongs to a dead process; one still locked
    belongs to a concurrent writer of the same partition and is left alone.
    """
    for leftover in target.parent.glob(f".{target.name}.*"):
        if REPLACED_MARK in leftover.name:
            if not target.exists():  # killed between the two renames of the fallback swap
                os.rename(leftover, target)
            else:
                shutil.rmtree(leftover, ignore_errors=True)
        elif STAGING_MARK in leftover.name and _is_abandoned(leftover):
            shutil.rmtree(leftover, ignore_errors=True)


def _lock_directory(path: Path) -> int | None:
    if fcntl is None:
        return None
    fd = os.open(path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _is_abandoned(path: Path) -> bool:
    if fcntl is None:
        return True
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing releases the probe's lock


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange_directories(a: Path, b: Path) -> bool:
    """Atomically swap two directories (Linux renameat2); False where that is not supported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except AttributeError:  # glibc older than 2.28, or another libc
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # file system without exchange
        return False
    raise OSError(err, os.strerror(err), str(b))


# --------------------------------------------------------------------------------------------
# S3: every file is a multipart upload, completed only at commit; stale keys are deleted after.
# --------------------------------------------------------------------------------------------


class S3Prefix:
    def __init__(
        self, base: str, *, endpoint_url=None, region=None, sse_kms_key_id=None, client=None
    ) -> None:
        bucket, _, prefix = base.removeprefix("s3://").partition("/")
        if not bucket:
            raise ValueError(f"no bucket in {base!r}: use s3://bucket/prefix")
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.base_uri = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self.endpoint_url, self.region = endpoint_url, region
        self.sse_kms_key_id = sse_kms_key_id
        self._client = client

    @property
    def client(self):
        if self._client is None:  # created lazily: constructing a store must not need credentials
            import boto3
            from botocore.config import Config

            self._client = boto3.session.Session().client(
                "s3", endpoint_url=self.endpoint_url, region_name=self.region,
                config=Config(retries={"mode": "standard", "max_attempts": 5}),
            )
        return self._client

    def key(self, segments: Segments, name: str = "") -> str:
        return "/".join(part for part in (self.prefix, *segments, name) if part)

    def uri(self, segments: Segments) -> str:
        return f"s3://{self.bucket}/{self.key(segments)}/"

    def upload_args(self) -> dict[str, str]:
        """Encryption arguments sent with every object created."""
        if not self.sse_kms_key_id:
            return {}
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.sse_kms_key_id}

    def arrow_filesystem(self) -> pafs.FileSystem:
        endpoint = self.endpoint_url
        injected = self._client.meta.endpoint_url if self._client is not None else None
        if endpoint is None and injected and "amazonaws.com" not in injected:
            endpoint = injected  # an injected client for an S3-compatible store
        region = self.region or self.client.meta.region_name
        return pafs.S3FileSystem(endpoint_override=endpoint, region=region)

    def arrow_path(self, segments: Segments) -> str:
        return f"{self.bucket}/{self.key(segments)}"

    def list_dir(self, segments: Segments) -> Listing:
        prefix = self.key(segments) + "/" if self.key(segments) else ""
        dirs, files = [], []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix, Delimiter="/"
        ):
            dirs += [p["Prefix"][len(prefix):].rstrip("/") for p in page.get("CommonPrefixes", [])]
            files += [o["Key"][len(prefix):] for o in page.get("Contents", [])]
        return Listing(sorted(filter(_is_visible, dirs)), sorted(filter(_is_visible, files)))

    def begin_replace(self, segments: Segments) -> S3Replacement:
        previous = self.list_dir(segments).files  # also fails fast on a missing bucket
        self._abort_interrupted_uploads(segments)
        return S3Replacement(self, segments, previous)

    def _abort_interrupted_uploads(self, segments: Segments) -> None:
        # Uploads of a killed writer are invisible but billed; a new write of the directory
        # supersedes them. (A concurrent writer of the same partition then fails loudly.)
        prefix = self.key(segments) + "/"
        for page in self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=prefix, Delimiter="/"
        ):
            for upload in page.get("Uploads", []):
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )


class S3Replacement:
    """Files are multipart uploads left open until ``commit``: an object appears at its final key
    only when its upload completes, and ``abort`` (or a crash) leaves nothing there."""

    def __init__(self, prefix: S3Prefix, segments: Segments, previous_files: list[str]) -> None:
        self.s3, self.segments = prefix, segments
        self.previous_files = previous_files
        self._sinks: list[S3MultipartSink] = []

    def open(self, name: str) -> S3MultipartSink:
        sink = S3MultipartSink(self.s3, self.s3.key(self.segments, name))
        self._sinks.append(sink)
        return sink

    def commit(self) -> None:
        for sink in self._sinks:
            sink.complete()
        written = {sink.key for sink in self._sinks}
        stale = [self.s3.key(self.segments, name) for name in self.previous_files]
        stale = [key for key in stale if key not in written]
        for start in range(0, len(stale), 1000):  # delete_objects takes at most 1000 keys
            self.s3.client.delete_objects(
                Bucket=self.s3.bucket,
                Delete={"Objects": [{"Key": key} for key in stale[start:start + 1000]], "Quiet": True},
            )

    def abort(self) -> None:
        for sink in self._sinks:
            sink.discard()


class S3MultipartSink:
    """Buffers at most one part in memory and uploads it as soon as it is full."""

    def __init__(self, s3: S3Prefix, key: str) -> None:
        self.s3, self.key = s3, key
        self._buffer = bytearray()
        self._position = 0
        self._parts: list[dict] = []
        self._closed = self._discarded = False
        upload = s3.client.create_multipart_upload(Bucket=s3.bucket, Key=key, **s3.upload_args())
        self._upload_id = upload["UploadId"]

    @property
    def closed(self) -> bool:
        return self._closed

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if self._discarded:
            return len(data)  # a writer finishing after an abort writes into the void
        if self._closed:
            raise ValueError("write to a closed S3 sink")
        self._buffer += data
        self._position += len(data)
        if len(self._buffer) >= S3_PART_SIZE:
            self._upload_part()
        return len(data)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        pass  # parts are uploaded when full; a part below 5 MiB may only be the last one

    def close(self) -> None:
        if not self._closed and not self._discarded:
            if self._buffer or not self._parts:
                self._upload_part()
        self._closed = True

    def _upload_part(self) -> None:
        number = len(self._parts) + 1
        response = self.s3.client.upload_part(
            Bucket=self.s3.bucket, Key=self.key, UploadId=self._upload_id,
            PartNumber=number, Body=bytes(self._buffer),
        )
        self._parts.append({"PartNumber": number, "ETag": response["ETag"]})
        self._buffer = bytearray()

    def complete(self) -> None:
        if not self._closed:
            raise RuntimeError(f"complete() before close() of {self.key}")
        self.s3.client.complete_multipart_upload(
            Bucket=self.s3.bucket, Key=self.key, UploadId=self._upload_id,
            MultipartUpload={"Parts": self._parts},
        )

    def discard(self) -> None:
        if self._discarded:
            return
        self._discarded = True
        self._buffer = bytearray()
        try:
            self.s3.client.abort_multipart_upload(
                Bucket=self.s3.bucket, Key=self.key, UploadId=self._upload_id
            )
        except Exception:  # best effort: the next write of this directory aborts it too
            pass
