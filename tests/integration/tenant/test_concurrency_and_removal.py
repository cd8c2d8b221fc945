"""Concurrent provisioning, and removal only after a backup (which restores)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration.tenant.conftest import catalog, connect, login, superuser_rows


def _waiting_for_lock(db):
    return superuser_rows(db, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")[0][0]


def test_departments_provisioned_concurrently_both_succeed(tenant, tenant_db):
    # Hold the platform lock so that both runs are inside the first-run path at the same time, then let go.
    holder = connect(tenant_db, autocommit=True)
    holder.execute("SELECT pg_advisory_lock(hashtext('federation.platform'))")
    with ThreadPoolExecutor(max_workers=3) as pool:
        # Separate processes, as separate ansible-playbook runs would be.
        futures = [pool.submit(tenant, d, via='ansible') for d in ('finance', 'hr', 'legal')]
        deadline = time.monotonic() + 120
        while _waiting_for_lock(tenant_db) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _waiting_for_lock(tenant_db) == 3, 'the three runs never met at the lock'
        holder.execute("SELECT pg_advisory_unlock(hashtext('federation.platform'))")
        results = [f.result() for f in futures]
    holder.close()
    for result in results:
        assert not result.get('failed'), result['msg']
        assert result['changed'] is True
    creators = [r for r in results if "shared schema 'federation' created" in r['msg']]
    assert len(creators) == 1
    assert superuser_rows(tenant_db, 'SELECT count(*) FROM pg_policy') == [(4,)]
    for department in ('finance', 'hr', 'legal'):
        with login(tenant_db, department) as conn:
            conn.execute("INSERT INTO federation.call_log (question) VALUES ('q')")

    # The same department twice at once: one makes the change, the other waits and finds nothing to do.
    with ThreadPoolExecutor(max_workers=2) as pool:
        twice = list(pool.map(lambda _: tenant('finance', password='pw-finance-2', via='ansible'), range(2)))
    assert sorted(r['changed'] for r in twice) == [False, True], twice
    assert all(not r.get('failed') for r in twice)


def _seed(db):
    with login(db, 'finance') as conn:
        conv = conn.execute("INSERT INTO federation.conversations (external_id) VALUES ('fin-conv') RETURNING id").fetchone()[0]
        conn.execute("INSERT INTO federation.messages (conversation_id, role, content) VALUES (%s, 'user', 'fin-msg')", (conv,))
        conn.execute("INSERT INTO federation.call_log (question, answer) VALUES ('fin-question', E'tab\\there')")
        conn.execute("INSERT INTO settings VALUES ('budget', '42')")
    with login(db, 'hr') as conn:
        conn.execute("INSERT INTO federation.call_log (question) VALUES ('hr-question')")
    with connect(db, 'n8n_finance', user='n8n_finance', password='n8n-finance-1', autocommit=True) as conn:
        conn.execute("CREATE TABLE settings (key text PRIMARY KEY, value text); INSERT INTO settings VALUES ('k', 'n8n-value')")


def test_absent_backs_up_first_and_the_backup_restores(tenant, tenant_db, tmp_path):
    tenant('finance')
    tenant('hr')
    _seed(tenant_db)
    backups = tmp_path / 'backups'

    before = catalog(tenant_db)
    refused = tenant('finance', state='absent')
    assert refused['failed'] is True
    assert refused['msg'].startswith("Refusing to remove the tenant of department 'finance'")
    assert 'Set backup_dir' in refused['msg'] and 'force=true' in refused['msg']
    checked = tenant('finance', state='absent', backup_dir=str(backups), check=True, diff=True)
    assert checked['changed'] is True and checked['backups'] == []
    assert 'DROP ROLE "dept_finance"' in checked['queries'] and 'DROP DATABASE "n8n_finance" WITH (FORCE)' in checked['queries']
    assert checked['diff']['after'] == {}
    assert catalog(tenant_db) == before
    assert not backups.exists()

    removed = tenant('finance', state='absent', backup_dir=str(backups))
    assert removed["changed"] is True, removed.get("msg") or removed
    assert removed['rows_removed'] == {'call_log': 1, 'conversations': 1, 'messages': 1, 'tool_invocations': 0}
    tenant_file, n8n_file = removed['backups']
    assert os.path.dirname(tenant_file) == str(backups / 'finance')
    assert stat.S_IMODE(os.stat(tenant_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(backups / 'finance').st_mode) == 0o700
    text = open(tenant_file, encoding='utf-8').read()
    assert 'CREATE TABLE dept_finance.settings' in text
    assert 'COPY "federation"."call_log"' in text and 'fin-question' in text and 'hr-question' not in text
    assert 'dept_finance\t0001_initial' in text
    assert not [f for f in os.listdir(backups / 'finance') if f.endswith('.partial')]

    assert superuser_rows(tenant_db, "SELECT count(*) FROM pg_roles WHERE rolname IN ('dept_finance', 'n8n_finance')") == [(0,)]
    assert superuser_rows(tenant_db, "SELECT count(*) FROM pg_namespace WHERE nspname = 'dept_finance'") == [(0,)]
    assert superuser_rows(tenant_db, "SELECT count(*) FROM pg_database WHERE datname = 'n8n_finance'") == [(0,)]
    assert superuser_rows(tenant_db, "SELECT tenant::text, question FROM federation.call_log") == [('dept_hr', 'hr-question')]
    assert superuser_rows(tenant_db, "SELECT count(*) FROM federation.schema_migrations WHERE scope = 'dept_finance'") == [(0,)]
    assert tenant('finance', state='absent', backup_dir=str(backups))['changed'] is False

    # Restore: the role first, then the script, then provision again; no migration runs twice.
    psql = shutil.which('psql')
    superuser_rows(tenant_db, 'CREATE ROLE dept_finance')
    env = dict(os.environ, PGPASSWORD=tenant_db['password'])
    proc = subprocess.run([psql, '-h', tenant_db['host'], '-p', str(tenant_db['port']), '-U', tenant_db['user'], '-d',
                           tenant_db['dbname'], '-X', '-v', 'ON_ERROR_STOP=1', '-1', '-q', '-f', tenant_file],
                          env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    again = tenant('finance')
    assert again['changed'] is True and again['migrations_applied'] == []
    with login(tenant_db, 'finance') as conn:
        assert conn.execute('SELECT question, answer FROM federation.call_log').fetchall() == [('fin-question', 'tab\there')]
        assert conn.execute("SELECT value FROM settings WHERE key = 'budget'").fetchall() == [(42,)]
        assert conn.execute('SELECT content FROM federation.messages').fetchall() == [('fin-msg',)]
    pg_restore = shutil.which('pg_restore')
    listing = subprocess.run([pg_restore, '--list', n8n_file], capture_output=True, text=True, check=True).stdout
    assert 'TABLE public settings n8n_finance' in listing


def test_absent_with_force_and_no_backup(tenant, tenant_db):
    tenant('hr')
    removed = tenant('hr', state='absent', force=True)
    assert removed['changed'] is True and removed['backups'] == []
    assert superuser_rows(tenant_db, "SELECT count(*) FROM pg_roles WHERE rolname IN ('dept_hr', 'n8n_hr')") == [(0,)]


def test_a_failed_backup_drops_nothing(tenant, tenant_db, tmp_path):
    tenant('finance')
    fake = tmp_path / 'bin'
    fake.mkdir()
    (fake / 'pg_dump').write_text('#!/bin/sh\nif [ "$1" = --version ]; then echo "pg_dump (PostgreSQL) 99.0"; exit 0; fi\n'
                                  'echo "could not connect: simulated" >&2; exit 1\n')
    (fake / 'pg_dump').chmod(0o755)
    failed = tenant('finance', state='absent', backup_dir=str(tmp_path / 'b'), pg_bin_dir=str(fake))
    assert failed['failed'] is True
    assert "Failed to back up schema 'dept_finance' of department 'finance'" in failed['msg']
    assert 'simulated' in failed['msg'] and 'Nothing was dropped' in failed['msg']
    assert superuser_rows(tenant_db, "SELECT count(*) FROM pg_namespace WHERE nspname = 'dept_finance'") == [(1,)]
    assert not list((tmp_path / 'b' / 'finance').iterdir())
    # Logins were disabled for the backup; provisioning again gives them back.
    assert tenant('finance')['changed'] is True
    login(tenant_db, 'finance').close()

    missing = tenant('finance', state='absent', backup_dir=str(tmp_path / 'b'), pg_bin_dir=str(tmp_path / 'nowhere'))
    assert missing['failed'] and 'Failed to find pg_dump for PostgreSQL 15' in missing['msg'] and 'pg_bin_dir' in missing['msg']


@pytest.mark.parametrize('relative', ['backups', '../backups'])
def test_relative_backup_dir_is_refused(tenant, tenant_db, relative):
    tenant('hr', n8n_database=False, n8n_password=None)
    result = tenant('hr', state='absent', backup_dir=relative, n8n_database=False)
    assert result['failed'] and "Invalid backup_dir for department 'hr'" in result['msg'] and 'is not an absolute path' in result['msg']
    assert superuser_rows(tenant_db, "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'dept_hr'") == [(True,)]
