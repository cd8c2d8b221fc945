"""Injection strings through every parameter of pg_tenant_schema: refused before anything changes, or used literally."""

from __future__ import annotations

import os

import psycopg

from tests.hostile_names import HOSTILE_NAMES
from tests.integration.tenant.conftest import catalog, login, superuser_rows

# Values that are fine as passwords or paths, and poison if they ever reached SQL or a shell unquoted.
INJECTIONS = [
    "x'; DROP TABLE federation.call_log; --",
    'a"b; DROP ROLE dept_finance; --',
    '$$; DROP SCHEMA federation CASCADE; $$',
    "\\'; SELECT pg_sleep(30); --",
    "E'\\x27 OR 1=1",
    '%(password)s %s {} {0}',
    '$(touch pwned) `touch pwned` | touch pwned; touch pwned',
    "ünïcødé ☃ 'quoted' \"double\"",
    'tab\tnewline\nreturn\r',
    '{{ 7 * 7 }} {% raw %}',
    'x' * 300,
]


def test_hostile_department_names_are_refused_before_anything_changes(tenant, tenant_db):
    before = catalog(tenant_db)

    results = [(name, tenant(name)) for name in HOSTILE_NAMES]
    for name, result in results:
        assert result.get('failed'), 'accepted %r' % name
        assert result['msg'].startswith('Invalid department: ') and 'A department name has 2-31 characters' in result['msg']
    assert len(results) >= 40
    assert catalog(tenant_db) == before


def test_hostile_passwords_are_used_literally_and_never_shown(tenant, tenant_db):
    for index, value in enumerate(INJECTIONS):
        n8n_value = value[::-1] + str(index)
        result = tenant('finance', password=value, n8n_password=n8n_value)
        assert not result.get('failed'), result['msg']
        assert result['changed'] is True
        shown = str(result)
        assert value not in shown and n8n_value not in shown
        with login(tenant_db, 'finance', value) as conn:
            assert conn.execute('SELECT current_user').fetchone() == ('dept_finance',)
        assert tenant('finance', password=value, n8n_password=n8n_value)['changed'] is False
    assert superuser_rows(tenant_db, "SELECT count(*) FROM pg_roles WHERE rolname ~ '^(dept|n8n)_finance$'") == [(2,)]
    assert superuser_rows(tenant_db, "SELECT to_regclass('federation.call_log') IS NOT NULL") == [(True,)]
    assert not os.path.exists('pwned')

    before = catalog(tenant_db)
    nul = tenant('finance', password='a\x00b')
    assert nul['failed'] and 'contains a NUL character' in nul['msg']
    assert catalog(tenant_db) == before


def test_hostile_migration_names_options_and_paths(tenant, tenant_db, tmp_path):
    tenant('finance')
    before = catalog(tenant_db)
    for value in INJECTIONS + ["0002_x'; DROP TABLE x; --", '0002_X', '0002_../../etc']:
        result = tenant('finance', migrations=[dict(name=value, sql='SELECT 1')])
        assert result['failed'] and 'is not allowed. A migration name is' in result['msg'], value
    for option, value in (('state', 'present; DROP SCHEMA federation'), ('n8n_database', "yes'; --"), ('force', '1; --')):
        result = tenant('finance', **{option: value})
        assert result['failed'], (option, value)
    for value in ("x'; DROP DATABASE postgres; --", 'a"b'):
        result = tenant('finance', login_db=value)
        assert result['failed'] and 'Failed to connect to PostgreSQL' in result['msg']
    assert catalog(tenant_db) == before

    # Paths go to pg_dump and the file system as they are, never through a shell.
    odd = tmp_path / "back'ups $(touch pwned) ; `id`"
    removed = tenant('finance', state='absent', backup_dir=str(odd))
    assert not removed.get('failed'), removed['msg']
    assert all(path.startswith(str(odd / 'finance')) for path in removed['backups'])
    assert all(os.path.getsize(path) > 0 for path in removed['backups'])
    assert not (tmp_path / 'pwned').exists() and not os.path.exists('pwned')
    tenant('finance')
    hostile_bin = tenant('finance', state='absent', backup_dir=str(tmp_path / 'b'), pg_bin_dir="/nonexistent'; touch pwned #")
    assert hostile_bin['failed'] and 'Failed to find pg_dump' in hostile_bin['msg']
    assert not os.path.exists('pwned')
    with login(tenant_db, 'finance') as conn:  # the failed removal left the tenant in place
        conn.execute("INSERT INTO federation.call_log (question) VALUES ('still here')")
    try:
        login(tenant_db, 'finance', 'wrong')
        raise AssertionError('logged in with a wrong password')
    except psycopg.OperationalError:
        pass
