"""The local default, as a user has it after scripts/setup, for the end-to-end suite.

One ``Site`` per test module: a FEDERATION_HOME with its vault password, the platform database in a
container of its own (the departments' n8n containers reach it), Docker objects under a prefix of the
module's own, the API gateway on free ports. Provisioning is slow (n8n boots in each department's
container), so a module provisions once and its tests look at the result from several sides.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from tests.harness.docker_objects import PostgresContainer, build_images, inspect, remove_prefixed, unique_prefix
from tests.helpers import Ansible, read_vault_file, stop_gateway


class Site(object):
    def __init__(self, home: Path, db: dict, runner: Ansible, env: dict):
        self.home = home
        self.db = db
        self.runner = runner
        self.env = env
        self.outputs = []      # every playbook output, for the secret check
        self.retired = {}      # secrets replaced by a rotation (name -> old value), for the secret check too

    def playbook(self, playbook, dept, *args, check_rc=True):
        run = self.runner.playbook(playbook, '-e', 'dept=%s' % dept, *args, env=self.env)
        self.outputs.append(run.stdout + run.stderr)
        if check_rc:
            assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
        return run

    def provision(self, dept, *args, check_rc=True):
        return self.playbook('provision.yml', dept, *args, check_rc=check_rc)

    def secrets(self, dept):
        return read_vault_file(self.home, self.home / 'secrets' / ('%s.yml' % dept))['secrets']

    @property
    def telephony_token(self):
        return self.runner.telephony_token

    @property
    def vault_password(self):
        return (self.home / 'vault-password').read_text().strip()

    def container(self, dept):
        return inspect('%s-%s-n8n' % (self.runner.docker_prefix, dept))

    def webhook_base(self, dept):
        """http://127.0.0.1:<published port>/webhook of the department's n8n."""
        ports = self.container(dept)['NetworkSettings']['Ports']['5678/tcp']
        return 'http://127.0.0.1:%s/webhook' % ports[0]['HostPort']

    @property
    def gateway_url(self):
        return "http://127.0.0.1:%d" % self.runner.gateway_port


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    home = tmp_path_factory.mktemp('site') / 'federation-home'
    home.mkdir(mode=0o700)
    (home / 'vault-password').write_text(secrets.token_urlsafe(24) + '\n')
    prefix = unique_prefix('fepg')
    database = PostgresContainer(prefix=prefix, image=build_images()['postgres']).start()
    db = dict(database.conninfo, container=database.name)
    runner = Ansible(home, db)
    site = Site(home, db, runner, {})
    yield site
    stop_gateway(home)
    remove_prefixed(runner.docker_prefix)
    remove_prefixed(prefix)
