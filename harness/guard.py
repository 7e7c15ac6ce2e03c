"""Process isolation with a wall-clock deadline: one bad job cannot stall or kill a sweep.
Over 300 lines: fork, the shared-memory log and the parent's deadline loop are one protocol, read together.

Applied by ``harness.job.run_job`` (the other guard, the memory estimate, is ``harness.memory``):

* **Process isolation with a wall-clock deadline** (``run_isolated``). Each
  repeat (solver construction, setup, solve, timing check) runs in a child
  process forked from the job process *after* the problem is built and
  *before* the solver is set up. The child streams every recorded checkpoint
  row back through a pipe; the parent waits on the pipe with a deadline
  (``job_timeout_s``) and SIGKILLs the child when it passes. A solver stuck in
  C code (a LAPACK call, a deadlock, a ``time.sleep``) cannot be interrupted by
  a Python exception, but it can always be killed. A child that crashes
  (segfault) or is OOM-killed is reported the same way, with the rows it
  recorded before. A message already in the pipe when the deadline passes (a
  repeat that finished just in time) is read before the child is killed, so
  such a race is recorded as the repeat's result, never lost.

  What the isolation does to timing: the solve clock lives in the child, rows
  are written from inside ``Monitor._record`` while the solve clock is paused,
  and the parent sleeps in ``poll`` meanwhile (no CPU). The parent's own work
  per repeat (progress bar, unpickling the result, building its trace) happens
  while the child waits for an acknowledgement (``ack``), never while it is
  timed: on 2 cores it made later repeats of short solves up to 2x slower than
  the first. And a freshly forked
  child is *cold*: its first solve pays one-off costs (first calls into
  SciPy/torch code paths, memory pages touched for the first time,
  copy-on-write faults on inherited pages) that a warm process does not; CG's
  first iteration at n = 40 measured 0.6-2.4 ms against 0.1-0.3 ms warm. The
  runner therefore runs an untimed warm-up solve after every setup
  (``harness.runner.warm_up``), so the first repeat in a child is timed like
  the later ones (benchmarks/bench_core.py prints the ratio). ``fork`` shares
  the parent's memory copy-on-write, so the problem is not copied or pickled.
  The parent never touches CUDA (a CUDA context does not survive ``fork``): the
  environment record, which asks torch for the GPU model, is taken in a child
  too. Should anything in the parent have initialised CUDA anyway (a caller
  that imported and used torch.cuda or CuPy), ``run_isolated`` refuses to fork
  (``fork_refusal``) and the job is recorded as an error saying so.

Where ``fork`` does not exist (Windows) or ``isolate=false``, repeats run in
the job process.
"""

from __future__ import annotations

import ctypes
import gc
import math
import mmap
import os
import pickle
import signal
import struct
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any


def fork_available() -> bool:
    return hasattr(os, "fork") and sys.platform != "win32"


CUDA_ERROR_NOT_INITIALIZED = 3


def cuda_initialised() -> bool:
    """True once this process has initialised the CUDA driver: a forked child could not use the GPU.

    Asks the driver itself (``cuCtxGetCurrent`` answers CUDA_ERROR_NOT_INITIALIZED before
    ``cuInit``), and only if ``libcuda`` is already loaded, so the question initialises nothing.
    """
    try:
        lib = ctypes.CDLL("libcuda.so.1", mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
    except OSError:
        return False  # the driver library is not loaded: nothing can have initialised it
    ctx = ctypes.c_void_p()
    return lib.cuCtxGetCurrent(ctypes.byref(ctx)) != CUDA_ERROR_NOT_INITIALIZED


FORK_REFUSED = ("refused to fork: this process has already initialised CUDA, which a forked solver process "
                "cannot use; run GPU jobs from a fresh process (python -m harness.run), or set isolate=false")


def fork_refusal() -> str | None:
    """Why forking a solver process here would be unsafe, or None."""
    return FORK_REFUSED if cuda_initialised() else None


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """The child was stopped from outside (Ctrl-C, kill, scancel, preemption), not by its own fault.

    Nothing is recorded for such a job, so that ``resume`` runs it again; and,
    being a KeyboardInterrupt, it stops the sweep like Ctrl-C does.
    """


@dataclass
class ChildOutcome:
    """What came back from a child: its return value, or why there is none."""

    kind: str                      # done | raised | timeout | died
    value: Any = None              # the function's return value (kind == "done")
    message: str = ""              # why there is no value
    events: list[tuple[str, Any]] = field(default_factory=list)  # the pipe's events, in order
    tail: list[tuple[str, Any]] = field(default_factory=list)    # quiet events since the last restart
    wall_s: float = float("nan")   # fork to exit, as seen by the parent
    maxrss_mib: float | None = None  # the child's peak resident memory


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _die_with_parent() -> None:
    """Linux: SIGKILL this (child) process if its parent dies, so no orphan keeps computing."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class SharedLog:
    """An append-only log of pickled records in anonymous shared memory (inherited by ``fork``).

    The child appends records without a system call and without waking the
    parent (which would compete with the solver for a core while its clock
    runs); the parent reads them whenever it likes, also after the child was
    killed. Layout: a header (end offset, offset of the last record), then
    records of (4-byte length, pickle). ``reset`` empties it (one log per repeat).
    """

    HEADER = struct.Struct("qq")
    LENGTH = struct.Struct("I")

    def __init__(self, size: int = 8 << 20):
        self.mm = mmap.mmap(-1, size)  # MAP_SHARED | MAP_ANONYMOUS; pages are allocated when touched
        self.reset()

    def reset(self) -> None:
        self.HEADER.pack_into(self.mm, 0, self.HEADER.size, -1)

    def append(self, record: Any) -> bool:
        data = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
        end, _ = self.HEADER.unpack_from(self.mm, 0)
        stop = end + self.LENGTH.size + len(data)
        if stop > len(self.mm):
            return False  # full: the record still reaches the parent with the repeat's result
        self.LENGTH.pack_into(self.mm, end, len(data))
        self.mm[end + self.LENGTH.size:stop] = data
        self.HEADER.pack_into(self.mm, 0, stop, end)  # published only once complete
        return True

    def _at(self, offset: int) -> tuple[Any, int]:
        (n,) = self.LENGTH.unpack_from(self.mm, offset)
        start = offset + self.LENGTH.size
        return pickle.loads(self.mm[start:start + n]), start + n

    def records(self) -> list[Any]:
        end, _ = self.HEADER.unpack_from(self.mm, 0)
        out, offset = [], self.HEADER.size
        while offset < end:
            record, offset = self._at(offset)
            out.append(record)
        return out

    def last(self) -> tuple[int, Any]:
        """(offset, record) of the newest record, (-1, None) if none; a torn read gives (-1, None)."""
        _, last = self.HEADER.unpack_from(self.mm, 0)
        if last < 0:
            return -1, None
        try:
            return last, self._at(last)[0]
        except Exception:  # noqa: BLE001 - the child was writing: try again next time
            return -1, None

    def close(self) -> None:
        self.mm.close()


def _child_main(fn: Callable[[Callable[[str, Any], None]], Any], conn: Connection, log: SharedLog,
                quiet: tuple[str, ...], restart_on: str | None, ack: tuple[str, ...] = (),
                ack_fd: int | None = None) -> None:
    """Body of the forked child; never returns."""
    code = 0
    try:
        _die_with_parent()
        for sig in STOP_SIGNALS:  # stop at once when told to; the parent decides what it means
            signal.signal(sig, signal.SIG_DFL)

        def emit(kind: str, payload: Any = None) -> None:
            if kind in quiet:
                log.append((kind, payload))
                return
            if kind == restart_on:
                log.reset()
            conn.send((kind, payload))
            if kind in ack and ack_fd is not None:
                os.read(ack_fd, 1)  # wait until the parent has handled it (b"" if the parent is gone)

        value = fn(emit)
        conn.send(("__done__", value))
    except BaseException as exc:  # noqa: BLE001 - everything must reach the parent as one message
        try:
            frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
            where = f" ({Path(frame.filename).name}:{frame.lineno})" if frame else ""
            conn.send(("__raised__", f"{type(exc).__name__}: {exc}{where}"))
        except BaseException:  # noqa: BLE001 - e.g. the parent is gone
            code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def run_isolated(fn: Callable[[Callable[[str, Any], None]], Any], *, timeout_s: float | None,
                 on_event: Callable[[str, Any], None] | None = None, restart_on: str | None = None,
                 quiet: tuple[str, ...] = ("row",), tick_s: float = 0.5,
                 ack: tuple[str, ...] = ()) -> ChildOutcome:
    """Run ``fn(emit)`` in a forked child; kill it after ``timeout_s`` seconds.

    ``emit(kind, payload)`` (picklable payload) hands an event to the parent:
    ``on_event`` sees it, and ``ChildOutcome.events`` keeps it. Events of a
    ``quiet`` kind (checkpoint rows, emitted while a solve runs) go to a
    ``SharedLog`` instead of the pipe, so they never wake the parent: it looks
    at the newest one every ``tick_s`` (``on_event`` then sees it, e.g. for a
    progress bar) and ``ChildOutcome.tail`` holds all of them since the last
    ``restart_on`` event, also when the child was killed. An event of kind
    ``restart_on`` restarts the clock (one deadline per repeat). After emitting
    an event of an ``ack`` kind the child waits until ``on_event`` has handled
    it, so that the parent's work on it (building a repeat's trace, logging)
    never competes for a core with the child's next timed solve. ``fn``'s
    return value must be picklable.
    """
    if (refusal := fork_refusal()) is not None:
        raise RuntimeError(refusal)
    log = SharedLog()
    r, w = os.pipe()
    ack_r, ack_w = os.pipe()  # parent -> child: "handled" for events of an ``ack`` kind
    t0 = time.monotonic()
    gc.freeze()  # the child's garbage collector leaves the inherited objects alone: fewer copy-on-write faults
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        os.close(ack_w)
        _child_main(fn, Connection(w, readable=False), log, quiet, restart_on, ack, ack_r)
    gc.unfreeze()
    os.close(w)
    os.close(ack_r)
    conn = Connection(r, writable=False)
    out = ChildOutcome("died")
    deadline = math.inf if timeout_s is None else t0 + timeout_s
    seen = -1
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 and not conn.poll(0):  # a message that came in time (a result) is read first
                os.kill(pid, signal.SIGKILL)
                out.kind = "timeout"
                out.message = f"no result after {timeout_s:g} s (job_timeout_s={timeout_s:g}), killed"
                break
            if not conn.poll(max(0.0, min(remaining, tick_s))):
                if on_event is not None:
                    offset, newest = log.last()
                    if offset >= 0 and offset != seen:
                        seen = offset
                        on_event(*newest)
                continue
            try:
                kind, payload = conn.recv()
            except (EOFError, OSError, pickle.UnpicklingError):
                break  # the child exited without a result; its status says why
            if kind == "__done__":
                out.kind, out.value = "done", payload
                break
            if kind == "__raised__":
                out.kind, out.message = "raised", payload
                break
            out.events.append((kind, payload))
            if kind == restart_on and timeout_s is not None:
                deadline = time.monotonic() + timeout_s
                seen = -1
            if on_event is not None:
                on_event(kind, payload)
            if kind in ack:
                try:
                    os.write(ack_w, b"1")
                except BrokenPipeError:  # the child is gone (killed, crashed): its status says why
                    pass
    except BaseException:
        os.kill(pid, signal.SIGKILL)  # Ctrl-C or an error in on_event: never leave the child running
        raise
    finally:
        conn.close()
        os.close(ack_w)
        _, status, usage = os.wait4(pid, 0)
        out.wall_s = time.monotonic() - t0
        out.maxrss_mib = usage.ru_maxrss / 1024  # KiB on Linux
        try:
            out.tail = log.records()
        except Exception:  # noqa: BLE001 - a record torn by the kill: keep what precedes it
            out.tail = []
        log.close()
    if out.kind == "died":
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            if sig in STOP_SIGNALS:
                raise Interrupted(f"solver process stopped by {_signal_name(sig)}; nothing recorded")
            hint = " (out of memory? the kernel's OOM killer sends SIGKILL)" if sig == signal.SIGKILL else ""
            out.message = f"solver process killed by {_signal_name(sig)}{hint}"
        else:
            out.message = f"solver process exited with code {os.WEXITSTATUS(status)} without a result"
    return out


# The environment record, taken without touching CUDA in this process

_ENVIRONMENT: dict[str, dict] = {}  # per-process cache: one child per process asks torch about the GPU


def environment_isolated(isolate: bool = True) -> dict:
    """``harness.environment.environment()``, computed in a forked child when ``isolate``.

    Asking torch for the GPU model creates a CUDA context, which forked
    children cannot use; so the job process must never do it itself.
    """
    from harness.environment import environment

    if not (isolate and fork_available()) or cuda_initialised():  # already initialised: asking costs nothing
        return environment()
    if "env" not in _ENVIRONMENT:
        out = run_isolated(lambda emit: environment(), timeout_s=120)
        _ENVIRONMENT["env"] = out.value if out.kind == "done" else {"environment_error": out.message}
    return _ENVIRONMENT["env"]
