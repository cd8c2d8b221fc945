"""Helpers for the test suites: running Ansible as a user does, reading the database."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

from tests.harness.common import free_port

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


class Ansible(object):
    """Runs ansible and ansible-playbook from the repository, the way a user does."""

    def __init__(self, home: Path, db: dict | None):
        self.home = home
        self.db = db
        # Docker objects of the run (department containers, networks, volumes, the proxy) carry a
        # prefix of their own, so tests never meet each other's or the machine's local default.
        self.docker_prefix = 'fedt' + secrets.token_hex(4)
        # Ports of the run's reverse proxy and API gateway, free ones, so runs side by side never meet.
        self.ports = {}
        # The telephony account's auth token the operator gives (departments with a phone line): one per
        # FEDERATION_HOME, so that every runner of a site gives the same one.
        self.telephony_token = hashlib.sha256(('telephony:%s' % home).encode()).hexdigest()[:32]

    def port(self, name: str) -> int:
        """The free port this runner gives the variable ``name`` (chosen once, then kept)."""
        return int(self.ports.setdefault(name, str(free_port())))

    @property
    def proxy_port(self) -> int:
        return self.port('FEDERATION_PROXY_PORT')

    @property
    def gateway_port(self) -> int:
        return self.port('FEDERATION_GATEWAY_PORT')

    def env(self, extra=None):
        env = dict(os.environ)
        env.update({
            'FEDERATION_HOME': str(self.home),
            'ANSIBLE_CONFIG': str(REPO / 'ansible.cfg'),
            'ANSIBLE_NOCOLOR': '1',
            'ANSIBLE_FORCE_COLOR': '0',
            'PATH': '%s:%s' % (VENV_BIN, env.get('PATH', '')),
            'FEDERATION_DOCKER_PREFIX': self.docker_prefix,
            'FEDERATION_TWILIO_AUTH_TOKEN': self.telephony_token,
        })
        for name in ('FEDERATION_PROXY_PORT', 'FEDERATION_GATEWAY_PORT', 'FEDERATION_GATEWAY_PEER_PORT'):
            env[name] = str(self.port(name))
        if self.db:
            env.update({
                'FEDERATION_PLATFORM_DB_HOST': self.db['host'],
                'FEDERATION_PLATFORM_DB_PORT': str(self.db['port']),
                'FEDERATION_PLATFORM_DB_USER': self.db['user'],
                'FEDERATION_PLATFORM_DB_PASSWORD': self.db['password'],
                'FEDERATION_PLATFORM_DB_NAME': self.db['dbname'],
            })
            if self.db.get('container'):
                # A platform database in a container: department networks are connected to it so
                # the departments' n8n containers reach it.
                env['FEDERATION_PLATFORM_DB_CONTAINER'] = self.db['container']
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


def db_args(db: dict) -> dict:
    """The connection options of the collection's database modules for ``db``."""
    return dict(login_host=db['host'], login_port=db['port'], login_user=db['user'],
                login_password=db['password'], login_db=db['dbname'])


def stop_gateway(home: Path):
    """Stop the API gateway a run started with FEDERATION_HOME ``home`` (its master process)."""
    pidfile = Path(home) / 'gateway' / 'run' / 'haproxy.pid'
    try:
        os.kill(int(pidfile.read_text().split()[0]), signal.SIGTERM)
    except (OSError, ValueError, IndexError):
        pass


def read_vault_file(home: Path, path: Path) -> dict:
    """The document of an ansible-vault file encrypted with the vault password of FEDERATION_HOME ``home``."""
    password = (Path(home) / 'vault-password').read_text().strip()
    return yaml.safe_load(VaultLib([('default', VaultSecret(password.encode()))]).decrypt(Path(path).read_bytes()))


def recap(output: str) -> dict:
    """The PLAY RECAP counters of localhost in an ansible-playbook output."""
    match = re.search(r'localhost\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)', output)
    assert match, output[-3000:]
    return dict(zip(('ok', 'changed', 'unreachable', 'failed'), map(int, match.groups())))


def query(db: dict, sql: str, params=None, **connect):
    """Rows of one query on ``db`` (a dict of host/port/user/password/dbname)."""
    settings = dict(host=db['host'], port=db['port'], user=db['user'], password=db['password'], dbname=db['dbname'])
    settings.update(connect)
    with psycopg.connect(**settings) as conn:
        return conn.execute(sql, params).fetchall()
