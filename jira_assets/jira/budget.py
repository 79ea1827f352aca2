"""A machine-wide cap on requests in flight, shared by every process (Dagster runs each step in its own
process).

``RequestBudget(directory, slots)`` keeps ``slots`` lock files; a request holds one of them (an exclusive,
non-blocking ``flock``) while it is on the wire. The kernel releases a dead process's locks, so a crash never
leaks a slot.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import random
import time
from pathlib import Path
from typing import Iterator

from .errors import ConfigError

ENV_DIR = "JIRA_REQUEST_BUDGET_DIR"
ENV_SLOTS = "JIRA_REQUEST_BUDGET"


class RequestBudget:
    def __init__(self, directory: str | os.PathLike[str], slots: int, poll_seconds: float = 0.005) -> None:
        if slots < 1:
            raise ConfigError(f"request budget needs at least 1 slot, got {slots}")
        self.directory = Path(directory)
        self.slots = slots
        self.poll_seconds = poll_seconds
        self.directory.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_env(cls) -> RequestBudget | None:
        """The budget named by ``JIRA_REQUEST_BUDGET_DIR`` + ``JIRA_REQUEST_BUDGET``, or None when unset."""
        directory = os.environ.get(ENV_DIR)
        if not directory:
            return None
        raw = os.environ.get(ENV_SLOTS, "8")
        try:
            slots = int(raw)
        except ValueError:
            raise ConfigError(f"{ENV_SLOTS} must be an integer, got {raw!r}") from None
        return cls(directory, slots)

    @contextlib.contextmanager
    def slot(self) -> Iterator[int]:
        """Hold one slot for the duration of the block; waits while all slots are taken."""
        fd, index = self._acquire()
        try:
            yield index
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _acquire(self) -> tuple[int, int]:
        while True:
            # Start at a random slot so waiters do not all contend for slot 0.
            first = random.randrange(self.slots)
            for step in range(self.slots):
                index = (first + step) % self.slots
                fd = os.open(self.directory / f"slot-{index}.lock", os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                return fd, index
            time.sleep(self.poll_seconds)
