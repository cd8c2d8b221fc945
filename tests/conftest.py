"""Fixtures shared by the unit, integration and end-to-end suites.

Servers are real and start on loopback: a throw-away PostgreSQL 15 cluster for the whole
session, a fresh database in it for each test that needs one, n8n when asked for.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# The collection is importable as ansible_collections.federation.platform (scripts/setup links it).
sys.path.insert(0, str(REPO / '.collections'))

from tests.harness.postgres import temporary_postgres  # noqa: E402

VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope='session')
def pg():
    """The session's PostgreSQL 15 cluster (superuser connection info in ``pg.conninfo``)."""
    server = temporary_postgres()
    yield server
    server.remove()


@pytest.fixture
def platform_db(pg):
    """A fresh, empty platform database for one test: a dict of host/port/user/password/dbname."""
    name = 'platform_' + uuid.uuid4().hex[:12]
    pg.create_database(name)
    yield dict(pg.conninfo, dbname=name)
    pg.psql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)


@pytest.fixture
def fed_home(tmp_path):
    """A FEDERATION_HOME of its own with a vault password file."""
    home = tmp_path / 'federation-home'
    home.mkdir(mode=0o700)
    (home / 'vault-password').write_text(secrets.token_urlsafe(24) + '\n')
    return home


class Ansible(object):
    """Runs ansible and ansible-playbook from the repository, the way a user does."""

    def __init__(self, home: Path, db: dict | None):
        self.home = home
        self.db = db

    def env(self, extra=None):
        env = dict(os.environ)
        env.update({
            'FEDERATION_HOME': str(self.home),
            'ANSIBLE_CONFIG': str(REPO / 'ansible.cfg'),
            'ANSIBLE_NOCOLOR': '1',
            'ANSIBLE_FORCE_COLOR': '0',
            'PATH': '%s:%s' % (VENV_BIN, env.get('PATH', '')),
        })
        if self.db:
            env.update({
                'FEDERATION_PLATFORM_DB_HOST': self.db['host'],
                'FEDERATION_PLATFORM_DB_PORT': str(self.db['port']),
                'FEDERATION_PLATFORM_DB_USER': self.db['user'],
                'FEDERATION_PLATFORM_DB_PASSWORD': self.db['password'],
                'FEDERATION_PLATFORM_DB_NAME': self.db['dbname'],
            })
        env.update(extra or {})
        return env

    def playbook(self, playbook='provision.yml', *args, env=None, timeout=900):
        cmd = [str(VENV_BIN / 'ansible-playbook'), playbook] + list(args)
        return subprocess.run(cmd, cwd=str(REPO), env=self.env(env), capture_output=True, text=True,
                              timeout=timeout, check=False)

    def module(self, module, args, check=False, diff=False, env=None):
        """Run one module on localhost; returns its result dict."""
        cmd = [str(VENV_BIN / 'ansible'), 'localhost', '-m', module, '-a', json.dumps(args)]
        if check:
            cmd.append('--check')
        if diff:
            cmd.append('--diff')
        env = self.env(dict({'ANSIBLE_STDOUT_CALLBACK': 'ansible.builtin.json', 'ANSIBLE_LOAD_CALLBACK_PLUGINS': '1'}, **(env or {})))
        proc = subprocess.run(cmd, cwd=str(REPO), env=env, capture_output=True, text=True, timeout=300, check=False)
        try:
            # The JSON document comes first; the timing callback may print after it.
            data = json.JSONDecoder().raw_decode(proc.stdout[proc.stdout.index('{'):])[0]
        except ValueError:
            raise AssertionError('ansible did not answer JSON (rc %d):\n%s\n%s' % (proc.returncode, proc.stdout, proc.stderr))
        return data['plays'][0]['tasks'][0]['hosts']['localhost']


@pytest.fixture
def ansible(fed_home, platform_db):
    return Ansible(fed_home, platform_db)


def db_args(db: dict) -> dict:
    """The connection options of the collection's database modules for ``db``."""
    return dict(login_host=db['host'], login_port=db['port'], login_user=db['user'],
                login_password=db['password'], login_db=db['dbname'])
