"""A throw-away PostgreSQL 15 cluster on loopback.

initdb from the PostgreSQL 15 server binaries, a random free port, password (SCRAM)
authentication for the superuser, fsync off. When run as root the cluster runs as the
unprivileged ``postgres`` user, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .common import HarnessError, free_port, run, wait_for

PG_BIN = Path(os.environ.get('FEDERATION_PG_BIN', '/usr/lib/postgresql/15/bin'))


def _run_as():
    """(uid, gid) to run the server as, or None to run as the current user."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam('postgres')
    except KeyError:
        raise HarnessError('running as root and there is no "postgres" user to run PostgreSQL as; '
                           'install postgresql-15 (scripts/setup does)')
    return entry.pw_uid, entry.pw_gid


def _chown_tree(path: Path, ids):
    if ids is None:
        return
    for root, dirs, files in os.walk(path):
        os.chown(root, *ids)
        for name in dirs + files:
            os.chown(os.path.join(root, name), *ids)


@dataclass
class PostgresServer:
    """A running cluster. ``dsn()`` and ``conninfo`` describe how to reach it as the superuser."""

    base: Path
    port: int = 0
    user: str = 'federation'
    password: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    host: str = '127.0.0.1'
    process: subprocess.Popen | None = None
    daemon: bool = False

    @property
    def datadir(self) -> Path:
        return self.base / 'data'

    @property
    def sockdir(self) -> Path:
        return self.base / 'sock'

    @property
    def logfile(self) -> Path:
        return self.base / 'postgres.log'

    def dsn(self, dbname: str = 'postgres', user: str | None = None, password: str | None = None) -> str:
        return 'host=%s port=%d dbname=%s user=%s password=%s connect_timeout=5' % (
            self.host, self.port, dbname, user or self.user, password if password is not None else self.password)

    @property
    def conninfo(self) -> dict:
        return {'host': self.host, 'port': self.port, 'user': self.user, 'password': self.password}

    def _as_server_user(self):
        ids = _run_as()
        if ids is None:
            return {}
        return {'user': ids[0], 'group': ids[1], 'extra_groups': []}

    def init(self):
        if not (PG_BIN / 'initdb').exists():
            raise HarnessError('PostgreSQL 15 server binaries not found in %s; install postgresql-15 '
                               '(scripts/setup does) or set FEDERATION_PG_BIN' % PG_BIN)
        ids = _run_as()
        self.base.mkdir(parents=True, exist_ok=True)
        self.sockdir.mkdir(exist_ok=True)
        pwfile = self.base / 'pwfile'
        pwfile.write_text(self.password + '\n')
        os.chmod(pwfile, 0o600)
        _chown_tree(self.base, ids)
        run([str(PG_BIN / 'initdb'), '-D', str(self.datadir), '-U', self.user, '--pwfile', str(pwfile),
             '--auth=scram-sha-256', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync'],
            **self._as_server_user())
        pwfile.unlink()

    def start(self, timeout: float = 30):
        if not self.port:
            self.port = free_port()
        if not (self.datadir / 'PG_VERSION').exists():
            self.init()
        args = [str(PG_BIN / 'postgres'), '-D', str(self.datadir), '-p', str(self.port), '-k', str(self.sockdir),
                '-c', 'listen_addresses=%s' % self.host, '-c', 'max_connections=300',
                '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off']
        log = open(self.logfile, 'ab')
        if self.daemon:
            # Detached from this process: it keeps running after the caller exits.
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                            **self._as_server_user())
        else:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, **self._as_server_user())
        wait_for(self._ready, timeout, 'PostgreSQL on %s:%d' % (self.host, self.port), process=self.process,
                 log=self.logfile)
        return self

    def _ready(self):
        # Our own postmaster must report ready: pg_isready alone would also answer for another
        # server that already holds the port.
        pidfile = self.datadir / 'postmaster.pid'
        lines = pidfile.read_text().splitlines() if pidfile.exists() else []
        if len(lines) < 8 or lines[7].strip() != 'ready' or self.process is None or lines[0].strip() != str(self.process.pid):
            return False
        proc = subprocess.run([str(PG_BIN / 'pg_isready'), '-h', self.host, '-p', str(self.port), '-t', '1'],
                              capture_output=True, check=False)
        return proc.returncode == 0

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: smart shutdown
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def remove(self):
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def psql(self, query: str, dbname: str = 'postgres') -> str:
        env = dict(os.environ, PGPASSWORD=self.password)
        proc = run(['psql', '-h', self.host, '-p', str(self.port), '-U', self.user, '-d', dbname,
                    '-v', 'ON_ERROR_STOP=1', '-XAtc', query], env=env)
        return proc.stdout

    def create_database(self, name: str):
        self.psql('CREATE DATABASE "%s"' % name.replace('"', '""'))
        return name


def temporary_postgres() -> PostgresServer:
    """A cluster in a new temporary folder, started."""
    base = Path(tempfile.mkdtemp(prefix='federation-pg-'))
    os.chmod(base, 0o755)
    return PostgresServer(base=base).start()
