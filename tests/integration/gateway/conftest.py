"""A real gateway for the suite: HAProxy started by the api_gateway role, departments backed by echo servers."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

import jwt
import pytest
import requests
import yaml

from tests.harness.common import free_port
from tests.harness.haproxy import EchoServer, echo_haproxy, stop_pidfile
from tests.helpers import Ansible, read_vault_file, recap

# The departments of the suite: who may call whom, and each one's own limit as a caller.
SPECS = {
    'finance': {'callers': ['hr', 'audit', 'ops']},
    'hr': {'callers': ['finance'], 'rate_limit': {'requests': 1000000, 'per_seconds': 1}},
    'audit': {'rate_limit': {'requests': 3, 'per_seconds': 60}},
    'ops': {'callers': ['hr']},
    'legal': {'callers': ['hr']},
    'sales': {'callers': ['hr'], 'rate_limit': {'requests': 10, 'per_seconds': 60}},
    'treasury': {'callers': ['hr']},
}


@dataclass
class Gateway:
    home: Path
    specs: Path
    folder: Path
    port: int
    peer_port: int
    ansible: Ansible
    backends: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return 'http://127.0.0.1:%d' % self.port

    @property
    def master_socket(self) -> Path:
        return self.folder / 'run' / 'master.sock'

    @property
    def pidfile(self) -> Path:
        return self.folder / 'run' / 'haproxy.pid'

    def extra_vars(self, **more) -> str:
        return json.dumps(dict({
            'federation_departments_dir': str(self.specs),
            'api_gateway_dir': str(self.folder),
            'api_gateway_port': self.port,
            'api_gateway_peer_port': self.peer_port,
        }, **more))

    def route(self, dept, backend=None, *args, check=True, env=None, **more):
        """Run playbooks/gateway.yml for ``dept``; returns the finished process."""
        backend = backend or self.backends[dept].address
        run = self.ansible.playbook('playbooks/gateway.yml', '-e', 'dept=%s' % dept, '-e', 'gateway_backend=%s' % backend,
                                    '-e', self.extra_vars(**more), *args, env=env)
        if check:
            assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-3000:]
        return run

    def unroute(self, dept, *args):
        run = self.ansible.playbook('playbooks/gateway.yml', '-e', 'dept=%s' % dept, '-e', 'gateway_state=absent',
                                    '-e', self.extra_vars(), *args)
        assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-3000:]
        return run

    def secrets(self, owner: str) -> dict:
        path = self.home / 'secrets' / ('_platform/gateway.yml' if owner == '_platform' else owner + '.yml')
        return read_vault_file(self.home, path)['secrets']

    def token(self, dept: str) -> str:
        return self.secrets(dept)['gateway_token']

    def signing_key(self) -> str:
        return self.secrets('_platform')['gateway_signing_key']

    def mint(self, key=None, algorithm='ES256', headers=None, **claims) -> str:
        """A token with the given claims, signed with the platform key (or ``key``)."""
        body = {'iss': 'federation-gateway', 'exp': int(time.time()) + 600}
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, key or self.signing_key(), algorithm=algorithm, headers=headers)

    def call(self, path, token=None, method='GET', **kwargs):
        headers = dict(kwargs.pop('headers', {}))
        if token is not None:
            headers['Authorization'] = 'Bearer ' + token
        return requests.request(method, self.url + path, headers=headers, timeout=15, **kwargs)

    def write_spec(self, dept, spec):
        (self.specs / (dept + '.yml')).write_text(yaml.safe_dump(spec))


def _set_up(tmp_path_factory, departments):
    base = tmp_path_factory.mktemp('gateway')
    home = base / 'home'
    home.mkdir(mode=0o700)
    (home / 'vault-password').write_text(secrets.token_urlsafe(24) + '\n')
    specs = base / 'departments'
    specs.mkdir()
    gateway = Gateway(home=home, specs=specs, folder=base / 'gateway', port=free_port(), peer_port=free_port(),
                      ansible=Ansible(home, None))
    for name, spec in SPECS.items():
        gateway.write_spec(name, spec)
    for name in departments:
        gateway.backends[name] = EchoServer(name).start()
    return gateway


@pytest.fixture(scope='session')
def gateway(tmp_path_factory):
    """finance, hr and audit routed through a gateway the role started."""
    gw = _set_up(tmp_path_factory, ['finance', 'hr', 'audit'])
    try:
        for dept in ('finance', 'hr', 'audit'):
            run = gw.route(dept)
            assert recap(run.stdout)['failed'] == 0
        yield gw
    finally:
        stop_pidfile(gw.pidfile)
        for server in gw.backends.values():
            server.stop()


@pytest.fixture
def fast_backends():
    """HAProxy echo backends (fast enough to load the gateway) for ops and legal."""
    server, addresses = echo_haproxy(['ops', 'legal'])
    yield addresses
    server.stop()
