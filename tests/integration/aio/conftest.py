"""Fixtures of the AIO instance suite: Federation's images, a PostgreSQL container standing for the
platform database, an SSH test host, and a Docker prefix per test whose objects are removed after it."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

import pytest
import yaml

from tests.harness.docker import ensure_engine
from tests.harness.docker_objects import PostgresContainer, SshHost, build_images, remove_prefixed, unique_prefix
from tests.harness.common import free_port
from tests.helpers import REPO, VENV_BIN

PLAYBOOK = REPO / 'tests' / 'integration' / 'aio' / 'playbooks' / 'aio_instance.yml'


@pytest.fixture(scope='session')
def images():
    ensure_engine()
    return build_images()


@pytest.fixture
def prefix():
    value = unique_prefix()
    yield value
    remove_prefixed(value)


@pytest.fixture
def db_container(images, prefix):
    return PostgresContainer(prefix=prefix, image=images['postgres']).start()


@pytest.fixture
def ssh_host(images, prefix):
    host = SshHost(prefix=prefix, base_image=images['base']).start()
    yield host
    host.remove()


class RoleRun(object):
    """Runs tests/integration/aio/playbooks/aio_instance.yml for one department."""

    def __init__(self, tmp_path, prefix, db, department='ssh-test'):
        self.tmp_path = tmp_path
        self.prefix = prefix
        self.db = db
        self.department = department
        self.secrets = {'n8n_db_password': secrets.token_hex(16), 'n8n_encryption_key': secrets.token_hex(24)}
        self.hosts = {}
        self.proxy_port = None

    def inventory(self):
        data = {'all': {'children': {
            'federation_controller': {'hosts': {'localhost': {
                'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable}}},
            'federation_docker_hosts': {'hosts': self.hosts},
        }}}
        path = self.tmp_path / 'inventory.yml'
        path.write_text(yaml.safe_dump(data))
        return path

    def run(self, docker_host='localhost', extra=None, check=False):
        self.proxy_port = self.proxy_port or free_port()
        variables = {
            'federation_dept': self.department,
            'federation_department': {'target': 'vps', 'resources': {'memory': '1g', 'cpus': 1.0}},
            'federation_secrets': self.secrets,
            'federation_platform_db': dict(self.db.conninfo),
            'federation_platform_db_container': self.db.name,
            'federation_docker_prefix': self.prefix,
            'federation_docker_host': docker_host,
            'federation_proxy_port': self.proxy_port,
        }
        variables.update(extra or {})
        varfile = self.tmp_path / 'vars.json'
        varfile.write_text(json.dumps(variables))
        cmd = [str(VENV_BIN / 'ansible-playbook'), '-i', str(self.inventory()), str(PLAYBOOK), '-e', '@%s' % varfile]
        if check:
            cmd.append('--check')
        env = {'ANSIBLE_CONFIG': str(REPO / 'ansible.cfg'), 'ANSIBLE_NOCOLOR': '1', 'ANSIBLE_FORCE_COLOR': '0'}
        return subprocess.run(cmd, cwd=str(REPO), env=dict(os.environ, **env), capture_output=True, text=True,
                              timeout=900, check=False)


@pytest.fixture
def role(tmp_path, prefix, db_container):
    return RoleRun(tmp_path, prefix, db_container)
