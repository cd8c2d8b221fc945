"""Start and stop the harness servers from the shell (setup, molecule, the benchmark).

    python -m tests.harness platform-db start     # the local default's platform database (kept running)
    python -m tests.harness platform-db stop
    python -m tests.harness postgres start STATE  # a throw-away cluster; its settings go to STATE (JSON)
    python -m tests.harness postgres stop STATE
    python -m tests.harness docker                # make sure the Docker engine runs
    python -m tests.harness n8n-install [VERSION] # install n8n into the cache folder
    python -m tests.harness remove-prefixed P     # remove the Docker objects of a test prefix
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from .common import HarnessError
from .docker import ensure_engine
from .n8n import DEFAULT_VERSION, install
from .postgres import PostgresServer

PLATFORM_DB_PORT = 55432


def federation_home() -> Path:
    return Path(os.environ.get('FEDERATION_HOME') or Path.home() / '.federation')


def _pid_alive(datadir: Path) -> int | None:
    pidfile = datadir / 'postmaster.pid'
    if not pidfile.exists():
        return None
    try:
        pid = int(pidfile.read_text().splitlines()[0])
        os.kill(pid, 0)
        return pid
    except (ValueError, IndexError, ProcessLookupError):
        return None


def _stop_pid(pid: int, timeout: float = 30):
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)


def platform_db(action: str):
    home = federation_home()
    # PostgreSQL runs as the unprivileged postgres user when we are root, and cannot enter /root.
    default_dir = '/var/lib/federation/platform-db' if os.geteuid() == 0 else home / 'platform-db'
    base = Path(os.environ.get('FEDERATION_PLATFORM_DB_DIR') or default_dir)
    pwfile = home / 'platform-db-password'
    port = int(os.environ.get('FEDERATION_PLATFORM_DB_PORT', PLATFORM_DB_PORT))
    if action == 'stop':
        pid = _pid_alive(base / 'data')
        if pid:
            _stop_pid(pid)
        print('platform database stopped')
        return
    if action == 'status':
        pid = _pid_alive(base / 'data')
        print('platform database %s (%s)' % ('running' if pid else 'stopped', base))
        return
    base.mkdir(parents=True, exist_ok=True)
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(base, 0o755)
    if not pwfile.exists():
        pwfile.write_text(secrets.token_urlsafe(24) + '\n')
        os.chmod(pwfile, 0o600)
    server = PostgresServer(base=base, port=port, password=pwfile.read_text().strip(), daemon=True)
    if _pid_alive(server.datadir):
        print('platform database already running on 127.0.0.1:%d' % port)
        return
    server.start()
    if server.psql("SELECT 1 FROM pg_database WHERE datname = 'federation'").strip() != '1':
        server.create_database('federation')
    print('platform database running on 127.0.0.1:%d (database federation, user federation, password in %s)'
          % (port, pwfile))


def throwaway_postgres(action: str, state: Path, port: int = 0, password_file: Path | None = None):
    if action == 'start':
        # The cluster lives in a temporary folder the unprivileged server user can enter.
        base = Path(tempfile.mkdtemp(prefix='federation-pg-'))
        os.chmod(base, 0o755)
        server = PostgresServer(base=base, port=port, daemon=True).start()
        server.create_database('federation')
        state.parent.mkdir(parents=True, exist_ok=True)
        state.write_text(json.dumps(dict(server.conninfo, dbname='federation', base=str(base))))
        if password_file:
            password_file.parent.mkdir(parents=True, exist_ok=True)
            password_file.write_text(server.password + '\n')
            os.chmod(password_file, 0o600)
        print(json.dumps(dict(host=server.host, port=server.port, dbname='federation')))
    else:
        if not state.exists():
            return
        info = json.loads(state.read_text())
        pid = _pid_alive(Path(info['base']) / 'data')
        if pid:
            _stop_pid(pid)
        shutil.rmtree(info['base'], ignore_errors=True)
        state.unlink()


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m tests.harness')
    sub = parser.add_subparsers(dest='command', required=True)
    p = sub.add_parser('platform-db')
    p.add_argument('action', choices=['start', 'stop', 'status'])
    p = sub.add_parser('postgres')
    p.add_argument('action', choices=['start', 'stop'])
    p.add_argument('state', type=Path)
    p.add_argument('--port', type=int, default=0)
    p.add_argument('--password-file', type=Path)
    sub.add_parser('docker')
    p = sub.add_parser('remove-prefixed', help='remove the Docker objects labelled federation.prefix=PREFIX')
    p.add_argument('prefix')
    p = sub.add_parser('n8n-install')
    p.add_argument('version', nargs='?', default=DEFAULT_VERSION)
    args = parser.parse_args(argv)
    try:
        if args.command == 'platform-db':
            platform_db(args.action)
        elif args.command == 'postgres':
            throwaway_postgres(args.action, args.state, args.port, args.password_file)
        elif args.command == 'docker':
            print('Docker engine %s running' % ensure_engine())
        elif args.command == 'remove-prefixed':
            from .docker_objects import remove_prefixed
            remove_prefixed(args.prefix)
        elif args.command == 'n8n-install':
            print(install(args.version))
    except HarnessError as exc:
        print('error: %s' % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
