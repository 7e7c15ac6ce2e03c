"""One run at a time per results folder: an exclusive lock file with the owner's PID and start time.

``FolderLock(folder).acquire()`` creates ``folder/.harness.lock`` (and the
folder), takes an exclusive ``flock`` on it for as long as the run lasts and
writes the owner's PID, host, start time and command into it. A second run
into the same folder finds the flock taken and is refused with one line naming
the owner (``FolderBusy``). The kernel drops a flock when its process dies, so a
lock left by a killed run is stale by construction: the next run takes it over
(and says so). As a second line of defence, for file systems where ``flock`` is
a no-op, a lock whose recorded PID is alive on this host with the same process
start time is treated as held even if the flock was granted.

A lock covers its whole folder: a run is also refused when a live run owns a
folder above its own (a single job pointed into a running sweep's job folder)
or below it (a sweep into a folder where a job is running), so whichever keys
put Hydra there (``hydra.sweep.dir``, ``hydra.sweep.subdir``, ``hydra.run.dir``,
``resume=``), no two runs write into one tree at once.

On release the lock file is removed, and so are the folders ``acquire``
created if nothing else was put in them (a refused or failed run leaves no
trace).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
from datetime import datetime
from pathlib import Path

LOCK_NAME = ".harness.lock"


class FolderBusy(RuntimeError):
    """Another live run owns the folder."""


def _proc_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused PID apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def describe(owner: dict) -> str:
    host = owner.get("host")
    where = f" on {host}" if host and host != socket.gethostname() else ""
    return f"PID {owner.get('pid', '?')}{where}, started {owner.get('started', '?')}"


class FolderLock:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder).expanduser().absolute()
        self.path = self.folder / LOCK_NAME
        self.fd: int | None = None
        self.created: list[Path] = []
        self.stale: dict | None = None  # the dead owner whose lock was taken over, if any

    # ------------------------------------------------------------------ acquire / release
    def acquire(self) -> FolderLock:
        self._make_folder()
        for _ in range(5):  # retried only if the file was replaced between open and flock
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = self._read(fd)
                os.close(fd)
                self.release_folders()
                raise FolderBusy(f"{self.folder} is in use by another run ({describe(owner)}); wait for it to "
                                 f"finish, or use another folder") from None
            try:
                same_file = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same_file = False
            if not same_file:  # the previous owner removed it after we opened it: try again
                os.close(fd)
                continue
            previous = self._read(fd)
            if previous and self._held_elsewhere(previous):  # flock is a no-op on this file system
                os.close(fd)
                self.release_folders()
                raise FolderBusy(f"{self.folder} is in use by another run ({describe(previous)}); wait for it "
                                 f"to finish, or use another folder")
            self.stale = previous or None
            self._write(fd)
            self.fd = fd
            nested = self._nested_owner()
            if nested is not None:
                where, owner = nested
                self.release()
                relation = "is inside" if where in self.folder.parents else "holds"
                raise FolderBusy(f"{self.folder} {relation} {where}, which another run is using ({describe(owner)}); "
                                 f"wait for it to finish, or use another folder")
            return self
        raise FolderBusy(f"{self.folder}: could not take its lock (it keeps being replaced)")

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # unlink first, then unlock: a waiter re-checks the inode
        finally:
            os.close(self.fd)
            self.fd = None
        self.release_folders()

    def release_folders(self) -> None:
        """Remove the folders acquire() created, deepest first, while they are empty."""
        for folder in reversed(self.created):
            try:
                folder.rmdir()
            except OSError:
                break
        self.created = []

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    # ------------------------------------------------------------------ helpers
    def _make_folder(self) -> None:
        missing, p = [], self.folder
        while not p.exists() and p != p.parent:
            missing.append(p)
            p = p.parent
        self.folder.mkdir(parents=True, exist_ok=True)
        self.created = list(reversed(missing))  # outermost first

    def _nested_owner(self) -> tuple[Path, dict] | None:
        """(folder, owner) of a live run that owns a folder above or below this one, or None."""
        for parent in self.folder.parents:
            owner = self._live(parent / LOCK_NAME)
            if owner is not None:
                return parent, owner
        for root, dirs, files in os.walk(self.folder):
            dirs[:] = [d for d in dirs if not d.startswith(".")]  # .hydra, .git, .venv: no results there
            if LOCK_NAME in files and Path(root) != self.folder:
                owner = self._live(Path(root) / LOCK_NAME)
                if owner is not None:
                    return Path(root), owner
        return None

    @classmethod
    def _live(cls, path: Path) -> dict | None:
        """The owner recorded in the lock file ``path`` if a live run holds it, else None."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return cls._read(fd) or {}
            fcntl.flock(fd, fcntl.LOCK_UN)
            owner = cls._read(fd)
            return owner if owner and cls._held_elsewhere(owner) else None  # flock may be a no-op here
        finally:
            os.close(fd)

    @staticmethod
    def _read(fd: int) -> dict:
        try:
            data = os.pread(fd, 1 << 16, 0)
            return json.loads(data.decode()) if data.strip() else {}
        except (OSError, ValueError):
            return {}

    def _write(self, fd: int) -> None:
        me = {"pid": os.getpid(), "host": socket.gethostname(), "proc_start": _proc_start(os.getpid()),
              "started": datetime.now().astimezone().isoformat(timespec="seconds"),
              "command": " ".join(sys.argv)}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        os.fsync(fd)

    @staticmethod
    def _held_elsewhere(owner: dict) -> bool:
        pid = owner.get("pid")
        if not isinstance(pid, int) or pid == os.getpid():
            return False
        if owner.get("host") not in (None, socket.gethostname()):
            return False  # another host: its flock would have refused us if it were held
        start = owner.get("proc_start")
        return _alive(pid) and (start is None or start == _proc_start(pid))


__all__ = ["LOCK_NAME", "FolderBusy", "FolderLock", "describe"]
