"""provision.yml makes the department's tenant database and n8n database, and converges."""

from __future__ import annotations

import psycopg
import pytest
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

from tests.helpers import recap
from tests.integration.tenant.conftest import catalog, connect, leftover_names, remove_departments, superuser_rows


@pytest.fixture
def clean_cluster(platform_db):
    """No finance role or n8n database left in the cluster by an earlier test, nor after this one."""
    before = leftover_names(platform_db)
    remove_departments(platform_db, before)
    yield platform_db
    remove_departments(platform_db, before)


def secrets_of(home, department):
    password = (home / 'vault-password').read_text().strip()
    vault = VaultLib([('default', VaultSecret(password.encode()))])
    return yaml.safe_load(vault.decrypt((home / 'secrets' / ('%s.yml' % department)).read_bytes()))['secrets']


def test_provisioned_finance_tenant(ansible, clean_cluster, fed_home):
    db = clean_cluster
    first = ansible.playbook('provision.yml', '-e', 'dept=finance')
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr
    assert 'Make the tenant database and the n8n database - finance' in first.stdout
    secrets = secrets_of(fed_home, 'finance')

    # Another tenant's row beside finance's: finance must not see it.
    superuser_rows(db, "INSERT INTO federation.call_log (tenant, question) VALUES ('dept_other', 'not yours')")
    with connect(db, user='dept_finance', password=secrets['tenant_db_password'], autocommit=True) as conn:
        conn.execute("INSERT INTO federation.call_log (call_id, caller, question, answer) VALUES ('c-1', 'hr', 'Budget?', '42')")
        assert conn.execute('SELECT tenant, call_id, question FROM federation.call_log').fetchall() == [
            ('dept_finance', 'c-1', 'Budget?')]
        assert conn.execute("SELECT value FROM settings WHERE key = 'department'").fetchall() == [('finance',)]
    with pytest.raises(psycopg.OperationalError, match='password authentication failed'):
        connect(db, user='dept_finance', password=secrets['n8n_db_password'])

    assert superuser_rows(db, "SELECT datdba::regrole::text FROM pg_database WHERE datname = 'n8n_finance'") == [('n8n_finance',)]
    with connect(db, 'n8n_finance', user='n8n_finance', password=secrets['n8n_db_password']) as conn:
        assert conn.execute('SELECT current_database(), current_user').fetchone() == ('n8n_finance', 'n8n_finance')
    with pytest.raises(psycopg.OperationalError, match='permission denied for database'):
        connect(db, 'n8n_finance', user='dept_finance', password=secrets['tenant_db_password'])

    second = ansible.playbook('provision.yml', '-e', 'dept=finance')
    assert second.returncode == 0, second.stdout[-4000:]
    assert recap(second.stdout)['changed'] == 0

    before = catalog(db)
    checked = ansible.playbook('provision.yml', '-e', 'dept=finance', '--check', '--diff')
    assert checked.returncode == 0, checked.stdout[-4000:]
    assert recap(checked.stdout)['changed'] == 0
    assert catalog(db) == before
    for value in secrets.values():
        assert value not in first.stdout + second.stdout + checked.stdout
