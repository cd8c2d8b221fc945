"""Pure parts of the tenant database: SCRAM verifiers, migration checks, the statement scanner, pg_dump lookup."""

from __future__ import annotations

import os

import pytest

from ansible_collections.federation.platform.plugins.module_utils._scram import (
    parse_verifier, password_matches, scram_verifier)
from ansible_collections.federation.platform.plugins.module_utils._tenant import (
    TENANT_TIMEOUTS, TenantError, checksum, find_pg_binary, forbidden_statement, platform_locks_statements,
    platform_migrations, platform_statements, statement_heads, tenant_settings, validate_limits, validate_migrations,
    validate_password)

# Verifiers made by PostgreSQL 15 itself (CREATE ROLE ... PASSWORD '<clear>' with password_encryption scram-sha-256/md5).
SERVER_VERIFIERS = [
    ('pencil', 'vec0', 'SCRAM-SHA-256$4096:8vvsQZix/AFmRFYWSykGTw==$r8fIW/oKyp9VL5hx9nFxZ9xn7kWNieA3dhhTBuYDox0=:'
                       '7JkuRoUV2Uee2xURc3JqUlK9ici5/PNYoSRqIHxY35Q='),
    # SASLprep: the ligature is normalised (NFKC), the no-break space mapped to a space
    ('\ufb01nance\u00a0ünïcødé ☃', 'vec1',
     'SCRAM-SHA-256$4096:TPm/vhigI4+5VRJpkuXDkw==$u4amw9sI9OmcvwhHikhxhta/rm+dkHQ5F/a6paJuAXk=:61jyGxkn2lGtY0KSEbOV4hu9inKW0+6uliMEsI7P3vs='),
    # U+200B is both "non-ASCII space" and "mapped to nothing": PostgreSQL makes it a space
    ("x'; DROP\u200b", 'vec2',
     'SCRAM-SHA-256$4096:Q5VnSjFDzdfLb4ex+3m07g==$xkDPLjQ3quOKdNor/z4sRTnkymm8CH5DzfF91RL9kaw=:rQ3ZMWCZ5oUn53EnU5TwMsPu2oSbC3L779JYM42OaCY='),
    ('pencil', 'vecm', 'md5a6b86ceee453f49dd9381205c1eb6574'),
]


@pytest.mark.parametrize('password,role,stored', SERVER_VERIFIERS)
def test_server_verifiers_are_recognised(password, role, stored):
    assert password_matches(stored, password, role) is True
    assert password_matches(stored, password + ' ', role) is False
    assert password_matches(stored, password[:-1], role) is False


def test_own_verifiers_round_trip_with_a_fresh_salt():
    first, second = scram_verifier('s3cret'), scram_verifier('s3cret')
    assert first != second  # random salt
    assert first.startswith('SCRAM-SHA-256$4096:')
    assert password_matches(first, 's3cret', 'r') and password_matches(second, 's3cret', 'r')
    assert not password_matches(first, 'S3cret', 'r')
    assert scram_verifier('pencil', salt=parse_verifier(SERVER_VERIFIERS[0][2])[1]) == SERVER_VERIFIERS[0][2]


@pytest.mark.parametrize('stored', [None, '', 'plain-text', 'SCRAM-SHA-256$x:y$z', 'SCRAM-SHA-256$4096:!!$a:b', 'md5short'])
def test_unknown_or_broken_verifiers_never_match(stored):
    assert password_matches(stored, 'anything', 'r') is False


def test_checksum_ignores_line_ends_and_trailing_space_only():
    assert checksum('CREATE TABLE a (b int);\n') == checksum('CREATE TABLE a (b int);\r\n\r\n')
    assert checksum('CREATE TABLE a (b int);') != checksum('CREATE TABLE a (b  int);')
    assert len(checksum('x')) == 64


@pytest.mark.parametrize('migrations,message', [
    ([{'name': '0002_b', 'sql': 'x'}, {'name': '0001_a', 'sql': 'x'}], "'0001_a' comes after '0002_b'"),
    ([{'name': '0010_b', 'sql': 'x'}, {'name': '0009_a', 'sql': 'x'}], "'0009_a' comes after '0010_b'"),
    ([{'name': '0001_a', 'sql': 'x'}, {'name': '0001_a', 'sql': 'y'}], "'0001_a' is given twice"),
    ([{'name': '1_a', 'sql': 'x'}], "name '1_a' is not allowed"),
    ([{'name': '0001_A', 'sql': 'x'}], "name '0001_A' is not allowed"),
    ([{'name': "0001_a'--", 'sql': 'x'}], 'is not allowed'),
    ([{'name': '0001_a', 'sql': ''}], 'its SQL is empty'),
    ([{'name': '0001_a', 'sql': 'SELECT 1;\x00'}], 'NUL character'),
    ([{'name': '0001_a', 'sql': 'SELECT 1; COMMIT;'}], 'it holds a COMMIT statement'),
])
def test_bad_migration_lists_are_refused(migrations, message):
    with pytest.raises(TenantError) as error:
        validate_migrations('finance', migrations)
    assert message in str(error.value) and "department 'finance'" in str(error.value)


def test_versions_sort_numerically():
    validate_migrations('finance', [{'name': '0009_a', 'sql': 'x'}, {'name': '0010_a', 'sql': 'x'}, {'name': '0100_a', 'sql': 'x'}])


def test_statement_heads_skip_quotes_comments_and_bodies():
    text = ("-- COMMIT\nCREATE TABLE a (x text DEFAULT 'COMMIT; ROLLBACK', \"y;z\" int); /* BEGIN; */\n"
            "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$ BEGIN COMMIT; RETURN 1; END $body$;\n"
            "CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END;\n"
            "INSERT INTO a VALUES (E'it\\'s; COMMIT'); SET search_path = x")
    assert statement_heads(text) == [
        ('CREATE', 'TABLE'), ('CREATE', 'FUNCTION'), ('CREATE', 'FUNCTION'), ('INSERT', 'INTO'), ('SET', 'SEARCH_PATH')]
    assert forbidden_statement(text) is None
    for bad, head in (('commit', 'COMMIT'), ('SELECT 1;\nEND;', 'END'), ('reset  role', 'RESET ROLE'),
                      ('set session authorization x', 'SET SESSION'), ('SAVEPOINT a', 'SAVEPOINT A'),
                      ('PREPARE TRANSACTION \'x\'', 'PREPARE TRANSACTION')):
        assert forbidden_statement(bad) == head


def test_passwords_must_be_given_and_storable():
    validate_password('finance', 'dept_finance', 'password', 'ok')
    for bad, message in ((None, 'it is empty'), ('', 'it is empty'), ('a\x00b', 'NUL character')):
        with pytest.raises(TenantError) as error:
            validate_password('finance', 'dept_finance', 'password', bad)
        assert message in str(error.value) and "role 'dept_finance' of department 'finance'" in str(error.value)


def test_platform_statements_are_stable():
    """The checksum of platform migration 0001 is recorded: its statements must never change by accident."""
    rendered = [s.as_string(None) for s in platform_statements()]
    assert sum(1 for s in rendered if s.startswith('CREATE POLICY')) == 4
    # Changing the shared schema means a new platform migration, never an edit of 0001 (databases that applied
    # it would refuse the collection).
    assert checksum(';\n'.join(rendered)) == '2ff7f754757cc99f8a89cd5792e2cbc832d58d26eb05911a7cb9994e6f8ee11a'


def test_platform_migration_0002_is_stable_and_leaves_no_table_privilege():
    rendered = [s.as_string(None) for s in platform_locks_statements()]
    assert [version for version, _statements in platform_migrations()] == ['0001_shared_tables', '0002_no_table_locks']
    # Only column grants (LOCK TABLE needs a table-level privilege) and the delete functions keyed on the login role.
    assert not [s for s in rendered if s.startswith('GRANT') and ' (' not in s.split(' ON ')[0] and 'FUNCTION' not in s]
    assert sum(1 for s in rendered if 'SECURITY DEFINER' in s and 'tenant = session_user' in s) == 4
    assert checksum(';\n'.join(rendered)) == '35c05c7bb948b02e1550e954cae4ccf7ef6d9997d26cd819120ede614ce9dcd0'


@pytest.mark.parametrize('args, message', [
    ((0, 8, None), "Invalid connection_limit for department 'finance': 0. Give a whole number of connections from 1 to 1000 "
                   '(the spec field database.connections)'),
    ((5, 1001, None), "Invalid n8n_connection_limit for department 'finance': 1001"),
    ((True, 8, None), "Invalid connection_limit for department 'finance': True"),
    ((5, 8, {'statement_timeout': 0}), "Invalid timeouts.statement_timeout for department 'finance': 0"),
    ((5, 8, {'lock_timeout': '5s'}), "Invalid timeouts.lock_timeout for department 'finance': '5s'"),
    ((5, 8, {'work_mem': 1}), "unknown setting 'work_mem'"),
    ((5, 8, None, ['']), "Invalid closed_databases for department 'finance'"),
])
def test_limits_are_checked_before_connecting(args, message):
    with pytest.raises(TenantError) as error:
        validate_limits('finance', *args)
    assert message in str(error.value)


def test_timeouts_default_to_the_platforms():
    validate_limits('finance', 1, 1000, {'statement_timeout': 86400000}, ['postgres'])
    assert tenant_settings(None) == TENANT_TIMEOUTS
    assert tenant_settings({'lock_timeout': 100}) == dict(TENANT_TIMEOUTS, lock_timeout=100)


def _fake_pg_dump(folder, version):
    folder.mkdir(parents=True)
    path = folder / 'pg_dump'
    path.write_text('#!/bin/sh\necho "pg_dump (PostgreSQL) %s"\n' % version)
    path.chmod(0o755)
    return str(path)


def test_pg_dump_lookup_takes_the_folder_given_and_checks_its_version(tmp_path):
    new = _fake_pg_dump(tmp_path / 'new', '16.4 (Debian 16.4-1)')
    assert find_pg_binary('pg_dump', 15, str(tmp_path / 'new')) == new
    old = _fake_pg_dump(tmp_path / 'old', '13.2')
    with pytest.raises(TenantError) as error:
        find_pg_binary('pg_dump', 15, str(tmp_path / 'old'))
    assert '%s (version 13)' % old in str(error.value) and 'set pg_bin_dir' in str(error.value)
    with pytest.raises(TenantError) as error:
        find_pg_binary('pg_dump', 15, str(tmp_path / 'none'))
    assert 'not found' in str(error.value)


def test_pg_dump_lookup_searches_the_path(tmp_path, monkeypatch):
    found = _fake_pg_dump(tmp_path / 'bin', '15.8')
    monkeypatch.setenv('PATH', str(tmp_path / 'bin') + os.pathsep + os.environ.get('PATH', ''))
    assert find_pg_binary('pg_dump', 15) == found
