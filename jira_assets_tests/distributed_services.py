"""Real services for the distributed tests: a private PostgreSQL cluster, a Redis server, and process groups.

Each service runs from a temporary directory on a free loopback port and is torn down with its process group, so
the tests never touch a system-wide server. When a binary is missing, `ensure_debian_package` installs the Debian
package (CI runs on a fresh machine as root with the package registries reachable); when that is impossible the
caller skips with the reason.

Used by `test_distributed_*.py`, and usable by hand: `python -m jira_assets_tests.distributed_services` starts
Postgres and Redis and prints their URLs until interrupted.
"""
from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator, Mapping, Optional, Sequence


class ServiceUnavailable(RuntimeError):
    """The service cannot be installed or started here; the message says why (tests skip with it)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float, what: str, proc: Optional[subprocess.Popen] = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServiceUnavailable(f"{what} exited with status {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise ServiceUnavailable(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


# ---- Debian packages ----------------------------------------------------------------------------------------


def _apt_install(package: str) -> str:
    """Install a Debian package (as root); returns '' on success or the reason it failed."""
    if os.geteuid() != 0:
        return f"{package} is not installed and this user is not root (apt-get install -y {package})"
    if shutil.which("apt-get") is None:
        return f"{package} is not installed and there is no apt-get on this machine"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
    result = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:  # a fresh machine has no package lists yet
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, text=True, timeout=900)
        result = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        return f"apt-get install {package} failed: {(result.stderr or result.stdout).strip()[-400:]}"
    return ""


def postgres_bin_dir() -> Path:
    """The directory with initdb/pg_ctl (Debian keeps them in /usr/lib/postgresql/<major>/bin, off the PATH)."""

    def find() -> Optional[Path]:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
        if found:
            return Path(found[-1]).parent
        initdb = shutil.which("initdb")
        return Path(os.path.realpath(initdb)).parent if initdb else None

    directory = find()
    if directory is None:
        reason = _apt_install("postgresql")
        directory = find()
        if directory is None:
            raise ServiceUnavailable(reason or "postgresql installed but initdb not found")
    return directory


def redis_server_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        reason = _apt_install("redis-server")
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServiceUnavailable(reason or "redis-server installed but not on the PATH")
    return binary


# ---- process groups -----------------------------------------------------------------------------------------


@dataclass
class Service:
    name: str
    proc: subprocess.Popen
    log_path: Path

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def stop(self, grace: float = 5.0) -> None:
        stop_group(self.proc, grace)


def start_group(name: str, argv: Sequence[str], log_dir: Path, env: Optional[Mapping[str, str]] = None,
                cwd: Optional[str] = None, user: Optional[str] = None) -> Service:
    """Start ``argv`` as the leader of a new process group (stdout+stderr to ``<log_dir>/<name>.log``)."""
    log_path = Path(log_dir) / f"{name}.log"
    handle: IO[bytes] = open(log_path, "ab")
    kwargs = {}
    if user is not None:
        kwargs["user"] = user
    proc = subprocess.Popen(list(argv), stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=dict(env) if env is not None else None, cwd=cwd, start_new_session=True, **kwargs)
    handle.close()
    return Service(name, proc, log_path)


def stop_group(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left of it after ``grace`` seconds."""
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        pgid = proc.pid
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        if not _group_alive(pgid):
            return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


# ---- PostgreSQL ---------------------------------------------------------------------------------------------


@dataclass
class Postgres:
    host: str
    port: int
    username: str
    password: str
    db_name: str

    @property
    def url(self) -> str:
        return f"postgresql://{self.username}:{self.password}@{self.host}:{self.port}/{self.db_name}"

    def env(self) -> dict[str, str]:
        """The variables deploy/dagster.yaml reads."""
        return {"DAGSTER_PG_HOST": self.host, "DAGSTER_PG_PORT": str(self.port), "DAGSTER_PG_USERNAME": self.username,
                "DAGSTER_PG_PASSWORD": self.password, "DAGSTER_PG_DB": self.db_name}


def _unprivileged_user() -> Optional[str]:
    """initdb and postgres refuse to run as root: use Debian's `postgres` account (or `nobody`)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise ServiceUnavailable("running as root without a `postgres` or `nobody` account to run PostgreSQL as")


@contextlib.contextmanager
def postgres_server(db_name: str = "dagster", username: str = "dagster") -> Iterator[Postgres]:
    """A private PostgreSQL cluster (initdb in a temp dir, password auth, loopback only) with one database."""
    bin_dir = postgres_bin_dir()
    user = _unprivileged_user()
    root = Path(tempfile.mkdtemp(prefix="jira-assets-pg-"))
    os.chmod(root, 0o755)  # the postgres account must reach it
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    password = os.urandom(12).hex()
    pwfile = root / "pwfile"
    pwfile.write_text(password + "\n")
    if user is not None:
        entry = pwd.getpwnam(user)
        for path in (root, sockets, pwfile):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    port = free_port()
    run_as = {"user": user} if user is not None else {}
    init = subprocess.run(
        [str(bin_dir / "initdb"), "-D", str(data), "-U", username, f"--pwfile={pwfile}", "--auth=md5",
         "-E", "UTF8", "--no-sync"],
        capture_output=True, text=True, timeout=300, cwd=str(root), **run_as,
    )
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise ServiceUnavailable(f"initdb failed: {(init.stderr or init.stdout).strip()[-600:]}")
    server = start_group(
        "postgres",
        [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(sockets),
         "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=400", "-c", "shared_buffers=64MB",
         "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
        root, cwd=str(root), **run_as,
    )
    try:
        wait_for_port(port, 60, "postgres", server.proc)
        _create_database(Postgres("127.0.0.1", port, username, password, "postgres"), db_name)
        yield Postgres("127.0.0.1", port, username, password, db_name)
    except ServiceUnavailable as exc:
        raise ServiceUnavailable(f"{exc}\n{server.log_tail()}") from None
    finally:
        server.stop(grace=10)
        shutil.rmtree(root, ignore_errors=True)


def _create_database(admin: Postgres, db_name: str) -> None:
    """Create the database, and store the password as MD5: Dagster opens a connection per query (NullPool), and a
    SCRAM-SHA-256 login (4096 PBKDF2 rounds on both ends) then costs a run worker seconds of CPU on a small CI
    machine. A password is still required (pg_hba `md5`), as the deployment's env-var credentials are tested."""
    import psycopg2

    deadline = time.monotonic() + 30
    while True:
        try:
            conn = psycopg2.connect(host=admin.host, port=admin.port, user=admin.username, password=admin.password,
                                    dbname=admin.db_name)
            break
        except psycopg2.OperationalError:  # accepting TCP before it accepts logins
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SET password_encryption = 'md5'")
            cur.execute(f'ALTER ROLE "{admin.username}" PASSWORD %s', (admin.password,))
            cur.execute(f'CREATE DATABASE "{db_name}"')
    finally:
        conn.close()


# ---- Redis --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A private redis-server on a free loopback port, without persistence; yields its redis:// URL."""
    binary = redis_server_binary()
    root = Path(tempfile.mkdtemp(prefix="jira-assets-redis-"))
    port = free_port()
    server = start_group("redis", [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                   "--appendonly", "no", "--dir", str(root), "--protected-mode", "yes"], root)
    try:
        wait_for_port(port, 30, "redis-server", server.proc)
        yield f"redis://127.0.0.1:{port}"
    except ServiceUnavailable as exc:
        raise ServiceUnavailable(f"{exc}\n{server.log_tail()}") from None
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    with postgres_server() as pg, redis_server() as redis_url:
        print(f"postgres: {pg.url}\nredis:    {redis_url}\n(Ctrl-C to stop)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
