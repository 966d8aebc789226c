"""Run leases: who holds a run, and whether that holder is still alive.

An execution holds its run through a row in ``leases`` (pid, hostname,
execution_id, expires_at). The store's writer thread renews the rows it
holds every third of the lease, so a live process keeps its runs however
long they take, and a dead one lets go:

* on the same host, a holder whose pid no longer exists (or is a zombie)
  is dead at once, so a crashed run can be resumed immediately;
* otherwise the lease expires ``lease_seconds`` after its last renewal.

A pid that was reused by an unrelated process looks alive, but that
process does not renew the lease, so it still expires.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import sys

from wave_executor._core.store_protocol import LeaseHolder

__all__ = [
    "HOSTNAME",
    "holder_alive",
    "live_holder",
    "pid_alive",
    "read_holder",
    "renew",
    "take",
]

HOSTNAME = socket.gethostname()


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists here (a zombie counts as dead)."""
    if pid == os.getpid():
        return True
    if pid <= 0:
        return False
    if sys.platform == "win32":  # pragma: no cover - no cheap check; rely on expiry
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    except OSError:  # pragma: no cover
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """A killed child that its parent has not reaped yet still has a pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False  # no procfs (macOS) or gone meanwhile: trust kill()
    # "pid (comm) S ...": comm may contain spaces and parentheses.
    state = stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3]
    return state in (b"Z", b"X")


def holder_alive(holder: LeaseHolder, now: float) -> bool:
    if holder.expires_at <= now:
        return False
    if holder.hostname == HOSTNAME:
        return pid_alive(holder.pid)
    return True


def read_holder(conn: sqlite3.Connection, run_id: str) -> LeaseHolder | None:
    row = conn.execute(
        "SELECT l.execution_id, l.pid, l.hostname, l.expires_at FROM leases l "
        "JOIN runs r ON r.id = l.run WHERE r.run_id = ?",
        (run_id,),
    ).fetchone()
    if row is None:
        return None
    return LeaseHolder(run_id, row[0], row[1], row[2], row[3])


def live_holder(
    conn: sqlite3.Connection, run_id: str, execution_id: str, now: float
) -> LeaseHolder | None:
    """The holder that keeps ``execution_id`` from taking the run, if any.

    An execution never blocks itself, so taking a lease again is harmless.
    """
    holder = read_holder(conn, run_id)
    if holder is None or holder.execution_id == execution_id or not holder_alive(holder, now):
        return None
    return holder


def take(
    conn: sqlite3.Connection, run: int, execution_id: str, now: float, lease_seconds: float
) -> None:
    """Write the lease row for this process (inside the caller's transaction)."""
    conn.execute(
        "INSERT OR REPLACE INTO leases (run, execution_id, pid, hostname, acquired_at, "
        "expires_at) VALUES (?, ?, ?, ?, ?, ?)",
        (run, execution_id, os.getpid(), HOSTNAME, now, now + lease_seconds),
    )


def renew(
    conn: sqlite3.Connection, held: dict[str, tuple[int, str]], now: float, lease_seconds: float
) -> list[str]:
    """Push back the expiry of every lease in ``held``; return the runs lost meanwhile.

    ``held`` maps run_id -> (the run's row id, execution_id).
    """
    lost = []
    for run_id, (run, execution_id) in held.items():
        cur = conn.execute(
            "UPDATE leases SET expires_at = ? WHERE run = ? AND execution_id = ?",
            (now + lease_seconds, run, execution_id),
        )
        if cur.rowcount == 0:
            lost.append(run_id)
    return lost
