"""federation.platform.pg_tenant_schema against a real PostgreSQL 15: create, converge, check mode, drift, migrations."""

from __future__ import annotations

import time

import psycopg
import pytest

from tests.integration.n8n.support import tenant_migrations
from tests.integration.tenant.conftest import INITIAL, catalog, connect, login, superuser_rows


def test_check_mode_predicts_and_leaves_the_catalog_unchanged(tenant, tenant_db):
    before = catalog(tenant_db)
    result = tenant('finance', check=True, diff=True, via='ansible')
    assert result['changed'] is True, result
    assert result['migrations_applied'] == ['0001_initial']
    assert 'CREATE DATABASE "n8n_finance" OWNER "n8n_finance" TEMPLATE template0' in result['queries']
    assert result['diff']['before']['role'] is None
    assert result['diff']['after']['role']['member_of'] == ['federation_tenants']
    assert result['diff']['after']['n8n_database'] == {'owner': 'n8n_finance', 'grants': {}}
    assert catalog(tenant_db) == before


def test_create_then_converge_without_ddl(tenant, tenant_db, pg):
    first = tenant('finance', diff=True, via='ansible')
    assert first['changed'] is True, first
    assert first['tenant'] == dict(schema='dept_finance', role='dept_finance', n8n_database='n8n_finance', n8n_role='n8n_finance')
    creates = [q for q in first['queries'] if q.startswith('CREATE ROLE "dept_finance"')]
    assert creates == ['CREATE ROLE "dept_finance" WITH LOGIN NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOREPLICATION '
                       'NOBYPASSRLS CONNECTION LIMIT 5 PASSWORD %(password)s']
    text = '\n'.join(first['queries'])
    assert 'pw-finance-1' not in text and 'n8n-finance-1' not in text and 'SCRAM-SHA-256' not in text
    assert first['diff']['after']['role']['password'] == 'as declared'

    # The clear password never reached the server: it holds a SCRAM verifier computed on the controller.
    stored = superuser_rows(tenant_db, "SELECT rolpassword FROM pg_authid WHERE rolname = 'dept_finance'")[0][0]
    assert stored.startswith('SCRAM-SHA-256$4096:')

    # The tenant logs in with its secret and writes the call log without naming the tenant column.
    with login(tenant_db, 'finance') as conn:
        conn.execute("INSERT INTO federation.call_log (call_id, caller, question, answer) VALUES ('c1', 'hr', 'q?', 'a.')")
        assert conn.execute('SELECT tenant, question FROM federation.call_log').fetchall() == [('dept_finance', 'q?')]
        assert conn.execute('SELECT value FROM settings').fetchall() == [('hello',)]
        assert conn.execute("SELECT tableowner FROM pg_tables WHERE schemaname = 'dept_finance'").fetchall() == [('dept_finance',)]

    # The n8n database belongs to its own role, which reaches nothing else.
    assert superuser_rows(tenant_db, "SELECT datdba::regrole::text FROM pg_database WHERE datname = 'n8n_finance'") == [('n8n_finance',)]
    with connect(tenant_db, 'n8n_finance', user='n8n_finance', password='n8n-finance-1', autocommit=True) as conn:
        conn.execute('CREATE TABLE workflow_entity (id text PRIMARY KEY)')  # what n8n's own migrations do
    with pytest.raises(psycopg.OperationalError, match='permission denied for database'):
        connect(tenant_db, user='n8n_finance', password='n8n-finance-1')
    with pytest.raises(psycopg.OperationalError, match='permission denied for database'):
        login(tenant_db, 'finance', dbname='n8n_finance')

    # Second call: nothing to change, and no DDL reaches the server (its log records every DDL statement).
    superuser_rows(tenant_db, 'ALTER DATABASE "%s" SET log_statement = \'ddl\'' % tenant_db['dbname'])
    log_size = pg.logfile.stat().st_size
    snapshot = catalog(tenant_db)
    again = tenant('finance', diff=True, via='ansible')
    assert again['changed'] is False, again
    assert again['queries'] == []
    assert again['migrations_applied'] == []
    assert again['diff']['before'] == again['diff']['after']
    assert catalog(tenant_db) == snapshot
    time.sleep(0.3)
    with open(pg.logfile, 'rb') as log:
        log.seek(log_size)
        logged = log.read().decode('utf-8', 'replace')
    assert 'statement:' not in logged and 'execute <unnamed>:' not in logged, logged

    # And a check-mode call on the converged tenant predicts nothing.
    checked = tenant('finance', check=True, via='ansible')
    assert checked['changed'] is False and checked['queries'] == []
    assert catalog(tenant_db) == snapshot

    # The server's log did see DDL when there was some: the proof above can fail.
    tenant('finance', password='pw-finance-2')
    with open(pg.logfile, 'rb') as log:
        log.seek(log_size)
        assert 'ALTER ROLE "dept_finance" PASSWORD' in log.read().decode('utf-8', 'replace')


def test_password_change_is_detected_and_set_without_showing_it(tenant, tenant_db):
    tenant('finance')
    changed = tenant('finance', password='pw-finance-2', diff=True)
    assert changed['changed'] is True
    assert changed['queries'] == ['ALTER ROLE "dept_finance" PASSWORD %(password)s']
    assert changed['diff']['before']['role']['password'] == 'differs'
    assert changed['diff']['after']['role']['password'] == 'as declared'
    login(tenant_db, 'finance', 'pw-finance-2').close()
    with pytest.raises(psycopg.OperationalError, match='password authentication failed'):
        login(tenant_db, 'finance', 'pw-finance-1')
    assert tenant('finance', password='pw-finance-2')['changed'] is False

    # A password the tenant set itself is put back.
    with login(tenant_db, 'finance', 'pw-finance-2') as conn:
        conn.execute("ALTER ROLE dept_finance PASSWORD 'chosen-by-tenant'")
    assert tenant('finance', password='pw-finance-2')['changed'] is True
    login(tenant_db, 'finance', 'pw-finance-2').close()


def test_migrations_are_versioned_checksummed_and_never_reapplied(tenant, tenant_db):
    tenant('finance')
    second = dict(name='0002_faq', sql='CREATE TABLE faq (id int PRIMARY KEY, q text);')
    result = tenant('finance', migrations=[dict(name='0001_initial', sql=INITIAL), second])
    assert result['changed'] is True and result['migrations_applied'] == ['0002_faq']
    assert result['queries'][0] == 'SET LOCAL ROLE "dept_finance"'
    assert '-- migration 0002_faq\n' + second['sql'] in result['queries']
    records = superuser_rows(tenant_db, "SELECT version, length(checksum), applied_by FROM federation.schema_migrations "
                                        "WHERE scope = 'dept_finance' ORDER BY 1")
    assert records == [('0001_initial', 64, tenant_db['user']), ('0002_faq', 64, tenant_db['user'])]
    assert tenant('finance', migrations=[dict(name='0001_initial', sql=INITIAL), second])['changed'] is False

    # A changed migration is refused, naming it; nothing is applied.
    before = catalog(tenant_db)
    edited = dict(second, sql=second['sql'] + '\nALTER TABLE faq ADD COLUMN a text;')
    third = dict(name='0003_more', sql='CREATE TABLE more (id int);')
    refused = tenant('finance', migrations=[dict(name='0001_initial', sql=INITIAL), edited, third])
    assert refused['failed'] is True
    assert "already applied migration changed: '0002_faq' (applied " in refused['msg']
    assert 'restore the file as it was, and put the change in a new migration' in refused['msg']
    assert catalog(tenant_db) == before

    # Line-end differences are not changes.
    crlf = dict(second, sql=second['sql'].replace('\n', '\r\n') + '\r\n')
    assert tenant('finance', migrations=[dict(name='0001_initial', sql=INITIAL), crlf])['changed'] is False

    # A new migration older than an applied one is refused.
    older = tenant('finance', migrations=[dict(name='0001_initial', sql=INITIAL), dict(name='0001_zzz', sql='SELECT 1'),
                                          second])
    assert older['failed'] and "migration '0001_zzz' is older than '0002_faq'" in older['msg']

    # A migration that was applied but is no longer given stays, with a warning.
    dropped = tenant('finance', migrations=[dict(name='0001_initial', sql=INITIAL)])
    assert dropped['changed'] is False
    assert '0002_faq' in str(dropped.get('warnings')), dropped

    # Malformed lists are refused before anything runs.
    for bad, message in ((
            [dict(name='0002_faq', sql='SELECT 1'), dict(name='0001_initial', sql=INITIAL)], "'0001_initial' comes after '0002_faq'"),
            ([dict(name='0001_a', sql='SELECT 1'), dict(name='0001_a', sql='SELECT 2')], "'0001_a' is given twice"),
            ([dict(name='initial', sql='SELECT 1')], "name 'initial' is not allowed"),
            ([dict(name='0001_a', sql='  ')], 'its SQL is empty')):
        result = tenant('finance', migrations=bad)
        assert result['failed'] and message in result['msg'], result['msg']
    assert catalog(tenant_db) == before


def test_a_failing_or_escaping_migration_commits_nothing(tenant, tenant_db):
    before = catalog(tenant_db)
    broken = tenant('finance', migrations=[dict(name='0001_initial', sql=INITIAL), dict(name='0002_bad', sql='CREATE TABLE (;')])
    assert broken['failed'] is True
    assert "Failed to apply migration '0002_bad' to schema 'dept_finance' of department 'finance'" in broken['msg']
    assert 'syntax error' in broken['msg'] and 'Nothing was committed' in broken['msg']
    assert catalog(tenant_db) == before  # not even the role or the shared schema

    # Statements that would end the transaction or leave the tenant's role are refused before anything runs ...
    for text, head in (('CREATE TABLE a (b int);\nCOMMIT;\nCREATE TABLE x (a int);', 'COMMIT'),
                       ('RESET ROLE; CREATE TABLE public.owned_by_admin (a int);', 'RESET ROLE'),
                       ("select 1; /* ; */ set role federation_tenants", 'SET ROLE'),
                       ('ROLLBACK', 'ROLLBACK'), ('begin; select 1', 'BEGIN')):
        refused = tenant('finance', migrations=[dict(name='0001_x', sql=text)])
        assert refused['failed'] and 'it holds a %s statement' % head in refused['msg'], refused['msg']
    # ... and one that slips through (here hidden in a function) is caught after it ran, before the commit.
    hidden = ("CREATE FUNCTION escape() RETURNS void LANGUAGE plpgsql AS $x$ BEGIN EXECUTE 'RESET ROLE'; END $x$; "
              'SELECT escape(); CREATE TABLE public.owned_by_admin (a int);')
    escape = tenant('finance', migrations=[dict(name='0001_x', sql=hidden)])
    assert escape['failed'], escape
    assert "it changed the role to '%s'" % tenant_db['user'] in escape['msg'] or 'permission denied' in escape['msg'], escape['msg']
    # Strings, comments and function bodies may say COMMIT.
    fine = ("CREATE TABLE notes (t text DEFAULT 'COMMIT; ROLLBACK'); -- COMMIT\n"
            'CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;\n'
            'CREATE TABLE "commit;" (a int);')
    assert tenant('finance', migrations=[dict(name='0001_x', sql=fine)])['changed'] is True
    superuser_rows(tenant_db, 'DROP SCHEMA dept_finance CASCADE')
    superuser_rows(tenant_db, "DELETE FROM federation.schema_migrations WHERE scope = 'dept_finance'")
    before = catalog(tenant_db)
    admin = tenant('finance', migrations=[dict(name='0001_x', sql='CREATE ROLE sneaky;')])
    assert admin['failed'] and 'permission denied to create role' in admin['msg']
    assert catalog(tenant_db) == before


def test_drift_of_the_isolation_is_put_back(tenant, tenant_db):
    tenant('finance')
    tenant('hr')
    for statement in (
            'ALTER TABLE federation.call_log NO FORCE ROW LEVEL SECURITY',
            'ALTER TABLE federation.messages DISABLE ROW LEVEL SECURITY',
            'CREATE POLICY open_door ON federation.call_log FOR SELECT TO federation_tenants USING (true)',
            'ALTER POLICY tenant_isolation ON federation.conversations USING (true)',
            'GRANT TRUNCATE, REFERENCES ON federation.call_log TO federation_tenants',
            'GRANT SELECT ON federation.schema_migrations TO PUBLIC',
            'GRANT INSERT (id) ON federation.call_log TO federation_tenants',
            'GRANT CREATE ON SCHEMA federation TO PUBLIC',
            'GRANT TEMPORARY ON DATABASE "%s" TO PUBLIC' % tenant_db['dbname'],
            'ALTER ROLE dept_finance BYPASSRLS CREATEDB CONNECTION LIMIT 3',
            'GRANT dept_hr TO dept_finance',
            'GRANT USAGE ON SCHEMA dept_hr TO dept_finance',
            'ALTER ROLE federation_tenants LOGIN',
            'GRANT SELECT, UPDATE, DELETE ON federation.messages TO federation_tenants',
            'GRANT EXECUTE ON FUNCTION federation.delete_call_log(bigint[]) TO PUBLIC',
            'GRANT EXECUTE ON FUNCTION pg_advisory_lock(bigint) TO PUBLIC',
            'GRANT CONNECT ON DATABASE postgres TO PUBLIC',
            'ALTER ROLE dept_finance IN DATABASE "%s" SET lock_timeout = 0' % tenant_db['dbname'],
            'ALTER ROLE dept_finance SET statement_timeout = 0',
            'ALTER ROLE dept_finance SET work_mem = \'1GB\''):
        superuser_rows(tenant_db, statement)
    repaired = tenant('finance')
    assert repaired['changed'] is True, repaired
    queries = '\n'.join(repaired['queries'])
    for expected in ('ALTER TABLE "federation"."call_log" FORCE ROW LEVEL SECURITY',
                     'ALTER TABLE "federation"."messages" ENABLE ROW LEVEL SECURITY',
                     'DROP POLICY "open_door" ON "federation"."call_log"',
                     'DROP POLICY "tenant_isolation" ON "federation"."conversations"',
                     'REVOKE REFERENCES, TRUNCATE ON TABLE "federation"."call_log" FROM "federation_tenants"',
                     'REVOKE SELECT ON TABLE "federation"."schema_migrations" FROM PUBLIC',
                     'REVOKE INSERT ("id") ON "federation"."call_log" FROM "federation_tenants"',
                     'REVOKE CREATE ON SCHEMA "federation" FROM PUBLIC',
                     'ALTER ROLE "dept_finance" WITH NOCREATEDB NOBYPASSRLS',
                     'ALTER ROLE "dept_finance" CONNECTION LIMIT 5',
                     'REVOKE DELETE, SELECT, UPDATE ON TABLE "federation"."messages" FROM "federation_tenants"',
                     'REVOKE EXECUTE ON FUNCTION "federation"."delete_call_log"(bigint[]) FROM PUBLIC',
                     'REVOKE EXECUTE ON FUNCTION pg_catalog."pg_advisory_lock"(bigint) FROM PUBLIC',
                     'REVOKE ALL ON DATABASE "postgres" FROM PUBLIC',
                     'ALTER ROLE "dept_finance" IN DATABASE "%s" RESET ALL' % tenant_db['dbname'],
                     'ALTER ROLE "dept_finance" RESET ALL',
                     'ALTER ROLE "dept_finance" SET "statement_timeout" = 30000',
                     'REVOKE "dept_hr" FROM "dept_finance"',
                     'ALTER ROLE "federation_tenants" WITH NOLOGIN'):
        assert expected in queries, expected
    # hr's own schema grant is repaired by hr's run
    assert tenant('hr')['queries'] == ['REVOKE USAGE ON SCHEMA "dept_hr" FROM "dept_finance"']
    assert tenant('finance')['changed'] is False
    assert tenant('hr')['changed'] is False
    policies = superuser_rows(tenant_db, "SELECT schemaname || '.' || tablename, policyname, qual FROM pg_policies ORDER BY 1")
    assert policies == [('federation.call_log', 'tenant_isolation', '(tenant = CURRENT_USER)'),
                        ('federation.conversations', 'tenant_isolation', '(tenant = CURRENT_USER)'),
                        ('federation.messages', 'tenant_isolation', '(tenant = CURRENT_USER)'),
                        ('federation.tool_invocations', 'tenant_isolation', '(tenant = CURRENT_USER)')]


def test_a_shared_schema_applied_otherwise_is_refused(tenant, tenant_db):
    tenant('finance')
    superuser_rows(tenant_db, "UPDATE federation.schema_migrations SET checksum = 'abc' WHERE scope = 'federation'")
    result = tenant('finance')
    assert result['failed'] is True
    assert "platform migration '0001_shared_tables' was applied with checksum abc" in result['msg']
    assert 'add a new platform migration' in result['msg']
    superuser_rows(tenant_db, "DELETE FROM federation.schema_migrations WHERE scope = 'federation'")
    result = tenant('finance')
    assert result['failed'] and "the schema exists but has no record of platform migration '0001_shared_tables'" in result['msg']


def test_many_departments_share_one_policy_per_table(tenant, tenant_db):
    for department in ('finance', 'hr', 'field-ops'):
        assert tenant(department)['changed'] is True
    assert superuser_rows(tenant_db, 'SELECT count(*) FROM pg_policy') == [(4,)]
    acl = superuser_rows(tenant_db, "SELECT relacl::text FROM pg_class WHERE oid = 'federation.call_log'::regclass")[0][0]
    assert 'dept_' not in acl  # grants go to the group, not to each department
    with login(tenant_db, 'field-ops') as conn:
        conn.execute("INSERT INTO federation.call_log (question) VALUES ('q')")
        assert conn.execute('SELECT tenant FROM federation.call_log').fetchall() == [('dept_field_ops',)]


def test_missing_password_and_bad_department_fail_before_connecting(tenant, tenant_db):
    before = catalog(tenant_db)
    result = tenant('finance', password='')
    assert result['failed'] and "Invalid password for role 'dept_finance' of department 'finance': it is empty" in result['msg']
    result = tenant('finance', n8n_password=None)
    assert result['failed'] and "Invalid n8n_password for role 'n8n_finance'" in result['msg']
    result = tenant('Finance')
    assert result['failed'] and result['msg'].startswith('Invalid department:')
    assert catalog(tenant_db) == before
    down = tenant('finance', login_port=1)
    assert down['failed'] and 'Failed to connect to PostgreSQL' in down['msg']
    assert tenant_db['password'] not in str(down)


def test_an_unprivileged_admin_is_told_what_it_needs(tenant, tenant_db):
    tenant('finance')
    before = catalog(tenant_db)
    result = tenant('hr', login_user='dept_finance', login_password='pw-finance-1')
    assert result['failed'] is True
    assert 'permission denied' in result['msg']
    assert 'The platform admin (login_user) must be a superuser, or have CREATEROLE, CREATEDB and BYPASSRLS' in result['msg']
    assert 'pw-finance-1' not in str(result)
    assert catalog(tenant_db) == before


def test_without_n8n_database(tenant, tenant_db):
    result = tenant('finance', n8n_database=False, n8n_password=None)
    assert result['changed'] is True and 'n8n_database' not in result['tenant']
    assert superuser_rows(tenant_db, "SELECT count(*) FROM pg_roles WHERE rolname = 'n8n_finance'") == [(0,)]


def test_the_specs_knowledge_is_kept_exactly_and_the_tenants_own_rows_stay(tenant, tenant_db):
    migrations = tenant_migrations('finance')
    hours = {'topic': 'opening hours', 'answer': 'Nine to five.'}
    payroll = {'topic': 'payroll', 'answer': 'On the last day of the month.'}
    created = tenant('finance', migrations=migrations, knowledge=[hours, payroll])
    assert created['changed'] is True

    def rows():
        with login(tenant_db, 'finance') as conn:
            return conn.execute('SELECT topic, answer, tags FROM dept_finance.knowledge ORDER BY topic').fetchall()

    assert rows() == [('opening hours', 'Nine to five.', ['spec']), ('payroll', 'On the last day of the month.', ['spec'])]
    assert tenant('finance', migrations=migrations, knowledge=[hours, payroll])['changed'] is False

    # The tenant's own row stays; a changed answer is one UPDATE, a topic gone one DELETE; check mode only predicts.
    with login(tenant_db, 'finance') as conn:
        conn.execute("INSERT INTO dept_finance.knowledge (topic, question, answer) VALUES ('parking', 'parking', 'Level 2.')")
    later = {'topic': 'opening hours', 'answer': 'Eight to four.'}
    predicted = tenant('finance', check=True, diff=True, migrations=migrations, knowledge=[later])
    assert predicted['changed'] is True
    assert predicted['diff']['before']['knowledge'] == {'opening hours': 'Nine to five.', 'payroll': 'On the last day of the month.'}
    assert predicted['diff']['after']['knowledge'] == {'opening hours': 'Eight to four.'}
    assert len(rows()) == 3
    changed = tenant('finance', migrations=migrations, knowledge=[later])
    assert [q.split()[0] for q in changed['queries']] == ['UPDATE', 'DELETE']
    assert rows() == [('opening hours', 'Eight to four.', ['spec']), ('parking', 'Level 2.', [])]
    # Without the option the table is not touched.
    assert tenant('finance', migrations=migrations)['changed'] is False
    assert len(rows()) == 2
