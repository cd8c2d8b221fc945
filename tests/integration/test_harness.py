"""The harness starts real servers and fails loudly when it cannot."""

import json
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.harness.common import HarnessError, free_port
from tests.harness.docker import ensure_engine
from tests.harness.n8n import N8nServer
from tests.harness.postgres import PostgresServer


def test_postgres_is_version_15_with_password_auth(pg):
    assert pg.psql('SHOW server_version').startswith('15.')
    assert pg.psql("SELECT count(*) FROM pg_hba_file_rules WHERE auth_method = 'trust'").strip() == '0'


def test_a_postgres_that_cannot_start_raises_with_its_log(pg):
    base = Path(tempfile.mkdtemp(prefix='federation-pg-busy-'))
    base.chmod(0o755)
    busy = PostgresServer(base=base, port=pg.port)  # the port is taken
    with pytest.raises(HarnessError) as exc:
        busy.start(timeout=20)
    assert 'PostgreSQL on 127.0.0.1:%d' % pg.port in str(exc.value)
    busy.remove()


def test_docker_engine_answers():
    version = ensure_engine()
    assert version
    proc = subprocess.run(['docker', 'info', '--format', '{{json .ServerVersion}}'], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and json.loads(proc.stdout) == version


def test_n8n_is_ready_only_when_its_api_answers(tmp_path):
    server = N8nServer(base=tmp_path / 'n8n').start()
    try:
        with urllib.request.urlopen(server.url + '/rest/settings', timeout=5) as resp:
            settings = json.loads(resp.read())
        assert 'userManagement' in settings['data']
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(server.url + '/api/v1/workflows', timeout=5)
        assert exc.value.code == 401
    finally:
        server.remove()


def test_n8n_that_cannot_start_raises_with_its_log(tmp_path):
    nowhere = {'DB_TYPE': 'postgresdb', 'DB_POSTGRESDB_HOST': '127.0.0.1', 'DB_POSTGRESDB_PORT': str(free_port()),
               'DB_POSTGRESDB_CONNECTION_TIMEOUT': '1000'}
    server = N8nServer(base=tmp_path / 'n8n', env=nowhere)
    with pytest.raises(HarnessError) as exc:
        server.start(timeout=40)
    server.remove()
    assert 'n8n %s on' % server.version in str(exc.value)
