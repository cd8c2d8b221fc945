"""Fixtures of the n8n content end-to-end suite: per n8n version, an instance on PostgreSQL (database
n8n_<dept>), the platform database with the tenant table and the department's login, a stand-in
gateway, and a FEDERATION_HOME whose secrets file already holds the tenant's password."""

from __future__ import annotations

import json
import secrets
import uuid

import pytest

from tests.helpers import Ansible, read_vault_file
from tests.integration.n8n.support import N8N_VERSIONS, FakeGateway, TenantDatabase, start_instance

DEPT = 'finance'
# The department's knowledge, as its spec would give it.
KNOWLEDGE = [{'topic': 'travel budget', 'answer': 'The travel budget is twelve thousand euros a quarter.'},
             {'topic': 'budget', 'answer': 'Budgets are set in January.'}]


class Department(object):
    """Everything one end-to-end run needs, and the outputs of every playbook run for the secret check."""

    def __init__(self, home, tenant_db, instance, gateway, pg):
        self.home = home
        self.tenant_db = tenant_db
        self.n8n = instance
        self.gateway = gateway
        self.pg = pg
        self.ansible = Ansible(home, tenant_db.info)
        self.outputs = []

    @property
    def extra_vars(self):
        return json.dumps({
            'federation_n8n_url': self.n8n.url,
            'federation_gateway_url': self.gateway.url,
            'federation_platform_db_from_n8n': {'host': self.pg.host, 'port': self.pg.port},
        })

    def playbook(self, *args):
        run = self.ansible.playbook('playbooks/n8n_content.yml', '-e', 'dept=' + DEPT, '-e', self.extra_vars, *args)
        self.outputs.append(run.stdout + run.stderr)
        return run

    def secrets(self):
        return read_vault_file(self.home, self.home / 'secrets' / (DEPT + '.yml'))['secrets']

    def store_secret(self, name, value):
        result = self.ansible.module('federation.platform.department_secrets', {
            'department': DEPT, 'path': str(self.home / 'secrets' / (DEPT + '.yml')), 'values': {name: value}})
        assert not result.get('failed'), result


@pytest.fixture(scope='module', params=N8N_VERSIONS)
def department(request, pg, tmp_path_factory):
    home = tmp_path_factory.mktemp('e2e-n8n-home')
    (home / 'vault-password').write_text(secrets.token_urlsafe(24) + '\n')
    tenant_db = TenantDatabase(pg, 'platform_e2e_' + uuid.uuid4().hex[:10])
    n8n_db = 'n8n_' + DEPT
    pg.psql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % n8n_db)
    pg.create_database(n8n_db)
    gateway = FakeGateway()
    instance = None
    try:
        instance = start_instance(request.param, database=dict(pg.conninfo, dbname=n8n_db))
        dept = Department(home, tenant_db, instance, gateway, pg)
        password = 'Tenant-' + secrets.token_urlsafe(12)
        dept.store_secret('tenant_db_password', password)
        # What the api_gateway role mints before the content role runs (the stand-in gateway checks no signature).
        dept.store_secret('gateway_token', 'e2e-gateway-token-' + secrets.token_urlsafe(16))
        tenant_db.add_tenant(dept.ansible, DEPT, password, knowledge=KNOWLEDGE)
        yield dept
    finally:
        if instance is not None:
            instance.server.remove()
        gateway.stop()
        tenant_db.drop()
        pg.psql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % n8n_db)
