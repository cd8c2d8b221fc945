"""Fixtures shared by the unit, integration and end-to-end suites.

Servers are real and start on loopback: a throw-away PostgreSQL 15 cluster for the whole
session, a fresh database in it for each test that needs one, n8n when asked for.
"""

from __future__ import annotations

import secrets
import uuid

import pytest

from tests.harness.docker import engine_running
from tests.harness.docker_objects import PostgresContainer, build_images, remove_prefixed, sweep_stale_networks, unique_prefix
from tests.harness.postgres import temporary_postgres
from tests.harness.railway_fake import RailwayFake
from tests.harness.vault_fake import VaultFake
from tests.helpers import Ansible, stop_gateway


@pytest.fixture(scope='session', autouse=True)
def stale_test_networks():
    """Networks an interrupted earlier run left behind are removed before this one starts."""
    if engine_running():
        sweep_stale_networks()


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
def container_platform_db():
    """A platform database that the departments' n8n containers reach too: PostgreSQL 15 in a container
    of its own (the image the local default runs), published on 127.0.0.1. Tests that provision a
    whole department use it in place of ``platform_db``."""
    prefix = unique_prefix('fepg')
    server = PostgresContainer(prefix=prefix, image=build_images()['postgres']).start()
    yield dict(server.conninfo, container=server.name)
    remove_prefixed(prefix)


@pytest.fixture
def fed_home(tmp_path):
    """A FEDERATION_HOME of its own with a vault password file."""
    home = tmp_path / 'federation-home'
    home.mkdir(mode=0o700)
    (home / 'vault-password').write_text(secrets.token_urlsafe(24) + '\n')
    return home


@pytest.fixture
def ansible(fed_home, platform_db):
    runner = Ansible(fed_home, platform_db)
    yield runner
    stop_gateway(fed_home)
    remove_prefixed(runner.docker_prefix)


@pytest.fixture
def runner(fed_home):
    """Ansible without a platform database, for what runs on the controller only."""
    return Ansible(fed_home, None)


@pytest.fixture
def vault():
    """A fresh HashiCorp Vault KV v2 stand-in with a 'secret' mount."""
    server = VaultFake().start()
    yield server
    server.stop()


@pytest.fixture
def railway():
    """A fresh fake Railway API with one workspace ``federation`` and an account token (``railway.token``)."""
    with RailwayFake() as fake:
        fake.workspace_id = fake.add_workspace('federation')
        fake.token = fake.account_token()
        yield fake
