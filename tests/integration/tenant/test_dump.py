"""state: dump - the backups of state: absent, taken without removing anything (the first step of deprovisioning)."""

from __future__ import annotations

import os
import stat
import subprocess
import shutil

import psycopg
import pytest

from tests.integration.tenant.conftest import catalog, connect, login, superuser_rows


def _seed(db):
    with login(db, 'finance') as conn:
        conn.execute("INSERT INTO federation.call_log (question, answer) VALUES ('fin-question', 'fin-answer')")
    with login(db, 'hr') as conn:
        conn.execute("INSERT INTO federation.call_log (question) VALUES ('hr-question')")
    with connect(db, 'n8n_finance', user='n8n_finance', password='n8n-finance-1', autocommit=True) as conn:
        conn.execute("CREATE TABLE settings (key text PRIMARY KEY, value text); INSERT INTO settings VALUES ('k', 'n8n-value')")


def test_dump_writes_the_backups_into_the_folder_given_and_removes_nothing(tenant, tenant_db, tmp_path):
    tenant('finance')
    tenant('hr')
    _seed(tenant_db)
    folder = tmp_path / 'backups' / 'finance' / '20261125T101010Z'

    before = catalog(tenant_db)
    checked = tenant('finance', state='dump', backup_dir=str(folder), backup_subfolder=False, disable_logins=True, check=True)
    assert checked['changed'] is True and checked['backups'] == []
    assert checked['rows_backed_up'] == {'call_log': 1, 'conversations': 0, 'messages': 0, 'tool_invocations': 0}
    assert catalog(tenant_db) == before, 'check mode changes nothing, not even the logins'
    assert not (tmp_path / 'backups').exists()

    dumped = tenant('finance', state='dump', backup_dir=str(folder), backup_subfolder=False)
    assert dumped['changed'] is True, dumped
    tenant_file, n8n_file = dumped['backups']
    assert os.path.dirname(tenant_file) == os.path.dirname(n8n_file) == str(folder), 'no department sub-folder'
    assert sorted(os.listdir(folder)) == sorted(os.path.basename(f) for f in dumped['backups'])
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tenant_file).st_mode) == 0o600
    text = open(tenant_file, encoding='utf-8').read()
    assert 'fin-question' in text and 'hr-question' not in text
    listing = subprocess.run([shutil.which('pg_restore'), '--list', n8n_file], capture_output=True, text=True, check=True).stdout
    assert 'TABLE public settings n8n_finance' in listing
    assert catalog(tenant_db) == before, 'a dump without disable_logins changes nothing in the database'
    assert dumped['msg'].startswith("tenant of department 'finance': backed up to ")

    # With the default layout the files go to <backup_dir>/<dept>/.
    default = tenant('hr', state='dump', backup_dir=str(tmp_path / 'flat'), n8n_database=False)
    assert [os.path.dirname(f) for f in default['backups']] == [str(tmp_path / 'flat' / 'hr')]


def test_dump_with_disable_logins_leaves_nobody_writing(tenant, tenant_db, tmp_path):
    tenant('finance')
    session = login(tenant_db, 'finance')
    dumped = tenant('finance', state='dump', backup_dir=str(tmp_path / 'b'), disable_logins=True)
    assert dumped['changed'] is True
    assert 'ALTER ROLE "dept_finance" NOLOGIN' in dumped['queries'] and 'logins disabled' in dumped['msg']
    with pytest.raises(psycopg.OperationalError):
        session.execute('SELECT 1')  # its session was ended before the backup
    with pytest.raises(psycopg.OperationalError):
        login(tenant_db, 'finance')
    assert superuser_rows(tenant_db, "SELECT rolcanlogin FROM pg_roles WHERE rolname IN ('dept_finance', 'n8n_finance')") \
        == [(False,), (False,)]
    assert superuser_rows(tenant_db, "SELECT count(*) FROM pg_namespace WHERE nspname = 'dept_finance'") == [(1,)]
    # Provisioning again gives the logins back.
    assert tenant('finance')['changed'] is True
    login(tenant_db, 'finance').close()


def test_dump_of_a_department_with_nothing_in_the_database_changes_nothing(tenant, tenant_db, tmp_path):
    nothing = tenant('legal', state='dump', backup_dir=str(tmp_path / 'b'))
    assert nothing['changed'] is False and nothing['backups'] == []
    assert nothing['msg'] == "tenant of department 'legal': nothing to back up"
    assert not (tmp_path / 'b').exists()


def test_a_folder_that_cannot_be_written_fails_before_anything_changes(tenant, tenant_db, tmp_path):
    tenant('finance')
    blocker = tmp_path / 'backups'
    blocker.write_text('a file where the backup folder should be\n')
    before = catalog(tenant_db)
    for check in (True, False):
        failed = tenant('finance', state='dump', backup_dir=str(blocker / 'finance' / 'now'), backup_subfolder=False,
                        disable_logins=True, check=check)
        assert failed['failed'] is True, failed
        assert failed['msg'].startswith("Failed to prepare the backup folder %s of department 'finance'" % (blocker / 'finance' / 'now'))
        assert 'Nothing was changed' in failed['msg']
        assert catalog(tenant_db) == before, 'the logins stay enabled'
    # state: absent refuses the same way, before it disables any login.
    refused = tenant('finance', state='absent', backup_dir=str(blocker))
    assert refused['failed'] is True and 'Failed to prepare the backup folder' in refused['msg']
    assert catalog(tenant_db) == before


def test_dump_needs_a_backup_dir(tenant, tenant_db):
    result = tenant('finance', state='dump')
    assert result['failed'] is True and 'backup_dir' in result['msg']
