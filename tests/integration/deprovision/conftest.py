"""Fixtures of the deprovisioning suite: a real authorization server, and a cluster left without field-ops's roles."""

from __future__ import annotations

import psycopg
import pytest

from tests.harness.oidc import OidcServer


@pytest.fixture(scope='module')
def oidc():
    """A real OAuth 2.0 authorization server (oidc-provider, on loopback) for this module."""
    server = OidcServer().start()
    yield server
    server.remove()


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
