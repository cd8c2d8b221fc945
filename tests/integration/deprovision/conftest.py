"""Fixtures of the deprovisioning suite: Ansible on the controller, the Vault stand-in, the Railway fake."""

from __future__ import annotations

import psycopg
import pytest
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

from tests.harness.oidc import OidcServer
from tests.harness.railway_fake import RailwayFake
from tests.harness.vault_fake import VaultFake
from tests.helpers import Ansible


@pytest.fixture
def runner(fed_home):
    """Ansible without a platform database (the secrets actions run on the controller only)."""
    return Ansible(fed_home, None)


@pytest.fixture(scope='module')
def oidc():
    """A real OAuth 2.0 authorization server (oidc-provider, on loopback) for this module."""
    server = OidcServer().start()
    yield server
    server.remove()


@pytest.fixture
def vault():
    """A fresh HashiCorp Vault KV v2 stand-in with a 'secret' mount."""
    server = VaultFake().start()
    yield server
    server.stop()


@pytest.fixture
def railway():
    """A fresh fake Railway API with one workspace and an account token (``railway.token``)."""
    with RailwayFake() as fake:
        fake.workspace_id = fake.add_workspace('federation')
        fake.token = fake.account_token()
        yield fake


def decrypt(home, path):
    """The document of an ansible-vault file encrypted with the home's vault password."""
    password = (home / 'vault-password').read_text().strip()
    lib = VaultLib([('default', VaultSecret(password.encode()))])
    return yaml.safe_load(lib.decrypt(path.read_bytes()))


@pytest.fixture
def clean_cluster(platform_db):
    """Role names are cluster-wide: leave no role or n8n database of field-ops (the department these tests use) behind."""
    yield platform_db
    settings = {k: platform_db[k] for k in ('host', 'port', 'user', 'password')}
    with psycopg.connect(dbname='postgres', autocommit=True, **settings) as conn:
        conn.execute('DROP DATABASE IF EXISTS n8n_field_ops WITH (FORCE)')
        for role in ('dept_field_ops', 'n8n_field_ops'):
            if conn.execute('SELECT 1 FROM pg_roles WHERE rolname = %s', (role,)).fetchone():
                with psycopg.connect(dbname=platform_db['dbname'], autocommit=True, **settings) as owner:
                    owner.execute('DROP OWNED BY %s' % role)
                conn.execute('DROP ROLE %s' % role)
