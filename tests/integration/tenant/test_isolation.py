"""Connected as dept_finance, every way we know to reach hr's rows or schema fails or returns nothing.

Each attempt runs in a fresh session of dept_finance. An attempt *got through* when:
- its output (rows, COPY data, notices) shows any of hr's data (every hr value carries HR-SECRET, every hr row
  the tenant dept_hr), or
- hr's data changed (a fingerprint of hr's rows, schema, objects and role, taken as superuser after every attempt), or
- a statement that must be refused (DDL on hr's schema, role changes, bypasses) succeeded, or
- a probe revealed that hr's value exists (a unique-key or foreign-key error that only hr's row could cause).
"""

from __future__ import annotations

import psycopg
import pytest

from tests.integration.tenant.conftest import connect, login, superuser_rows

SHARED = ('call_log', 'conversations', 'messages', 'tool_invocations')
MARKERS = ('HR-SECRET', 'dept_hr')


def seed(db):
    """hr's data: rows in every shared table, objects in its schema; finance's own rows beside them."""
    with login(db, 'hr') as hr:
        conv = hr.execute("INSERT INTO federation.conversations (external_id, caller, metadata) VALUES "
                          "('HR-SECRET-conv', 'HR-SECRET-caller', '{\"k\": \"HR-SECRET-meta\"}') RETURNING id").fetchone()[0]
        msg = hr.execute("INSERT INTO federation.messages (conversation_id, role, content) VALUES (%s, 'user', 'HR-SECRET-msg') "
                         "RETURNING id", (conv,)).fetchone()[0]
        hr.execute("INSERT INTO federation.tool_invocations (conversation_id, message_id, tool, arguments, result) VALUES "
                   "(%s, %s, 'HR-SECRET-tool', '{\"a\": \"HR-SECRET-arg\"}', '\"HR-SECRET-result\"')", (conv, msg))
        call = hr.execute("INSERT INTO federation.call_log (call_id, caller, question, answer) VALUES "
                          "('HR-SECRET-call', 'HR-SECRET-from', 'HR-SECRET-question', 'HR-SECRET-answer') RETURNING id").fetchone()[0]
        hr.execute("CREATE TABLE salaries (who text, amount int); INSERT INTO salaries VALUES ('HR-SECRET-salary', 1)")
        hr.execute("UPDATE settings SET value = '\"HR-SECRET-greeting\"'")
        hr.execute("CREATE VIEW hr_view AS SELECT * FROM federation.call_log")
        hr.execute("CREATE FUNCTION hr_peek() RETURNS SETOF federation.call_log LANGUAGE sql SECURITY DEFINER "
                   "AS 'SELECT * FROM federation.call_log'")
    with login(db, 'finance') as finance:
        fconv = finance.execute("INSERT INTO federation.conversations (external_id) VALUES ('fin-conv') RETURNING id").fetchone()[0]
        finance.execute("INSERT INTO federation.messages (conversation_id, role, content) VALUES (%s, 'user', 'fin-msg')", (fconv,))
        finance.execute("INSERT INTO federation.tool_invocations (conversation_id, tool) VALUES (%s, 'fin-tool')", (fconv,))
        finance.execute("INSERT INTO federation.call_log (question) VALUES ('fin-question')")
    superuser_rows(db, 'ANALYZE federation.call_log, federation.conversations, federation.messages, federation.tool_invocations')
    return dict(conv=conv, msg=msg, call=call)


def fingerprint(db):
    """hr's rows, hr's schema and its objects, hr's role: anything an attempt could have changed."""
    queries = ["SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM federation.%s t "
               "WHERE tenant = 'dept_hr'" % table for table in SHARED]
    queries += [
        "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM dept_hr.salaries t",
        "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM dept_hr.settings t",
        "SELECT nspowner::regrole::text, nspacl::text FROM pg_namespace WHERE nspname = 'dept_hr'",
        "SELECT string_agg(relname || ':' || relowner::regrole::text || ':' || coalesce(relacl::text, ''), ',' ORDER BY relname) "
        "FROM pg_class WHERE relnamespace = 'dept_hr'::regnamespace",
        "SELECT rolpassword, rolcanlogin, rolbypassrls, rolsuper FROM pg_authid WHERE rolname = 'dept_hr'",
        "SELECT string_agg(member::regrole::text || '>' || roleid::regrole::text, ',' ORDER BY 1) FROM pg_auth_members "
        "WHERE roleid = 'dept_hr'::regrole OR member = 'dept_hr'::regrole",
        'SELECT count(*) FROM pg_policy',
    ]
    with connect(db, autocommit=True) as conn:
        return [conn.execute(query).fetchall() for query in queries]


def attempts(ids):
    """(label, kind, statements). kind: read (must show nothing of hr), deny (must fail), probe (must not tell)."""
    conv, call = ids['conv'], ids['call']
    out = []
    for t in SHARED:
        out += [
            ('select all of %s' % t, 'read', ['SELECT * FROM federation.%s' % t]),
            ("select hr's rows of %s" % t, 'read', ["SELECT * FROM federation.%s WHERE tenant = 'dept_hr'" % t]),
            ('count %s' % t, 'read', ["SELECT 'dept_hr' || count(*) FROM federation.%s WHERE tenant = 'dept_hr' HAVING count(*) > 0" % t]),
            ('copy %s out' % t, 'read', ['COPY federation.%s TO STDOUT' % t]),
            ('select %s for update' % t, 'read', ["SELECT * FROM federation.%s WHERE tenant = 'dept_hr' FOR UPDATE" % t]),
            ('set role to the group, select %s' % t, 'read', ['SET ROLE federation_tenants', 'SELECT * FROM federation.%s' % t]),
            ('app settings, select %s' % t, 'read', ["SET app.tenant = 'dept_hr'", "SET app.current_tenant = 'dept_hr'",
                                                     "SELECT 1 FROM set_config('app.tenant_id', 'dept_hr', false)",
                                                     'SELECT * FROM federation.%s' % t]),
            ("delete hr's rows of %s" % t, 'read', ["DELETE FROM federation.%s WHERE tenant = 'dept_hr' RETURNING *" % t]),
            ('delete all rows of %s' % t, 'read', ['DELETE FROM federation.%s RETURNING tenant' % t]),
            ('delete as the group from %s' % t, 'read', ['SET ROLE federation_tenants', 'DELETE FROM federation.%s' % t]),
            ('insert into %s as hr' % t, 'deny', [_insert_as_hr(t, conv)]),
            ('move own row of %s to hr' % t, 'deny', ["UPDATE federation.%s SET tenant = 'dept_hr'" % t]),
            ('truncate %s' % t, 'deny', ['TRUNCATE federation.%s CASCADE' % t]),
            ('disable rls on %s' % t, 'deny', ['ALTER TABLE federation.%s DISABLE ROW LEVEL SECURITY' % t]),
            ('open policy on %s' % t, 'deny', ['CREATE POLICY open ON federation.%s USING (true)' % t]),
            ('drop the policy on %s' % t, 'deny', ['DROP POLICY tenant_isolation ON federation.%s' % t]),
            ('alter the policy on %s' % t, 'deny', ['ALTER POLICY tenant_isolation ON federation.%s USING (true)' % t]),
            ('trigger on %s' % t, 'deny', [
                'CREATE FUNCTION dept_finance.trg() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$',
                'CREATE TRIGGER t BEFORE INSERT ON federation.%s FOR EACH ROW EXECUTE FUNCTION dept_finance.trg()' % t]),
        ]
    out += [
        ("update hr's call log", 'read', ["UPDATE federation.call_log SET answer = 'x' WHERE tenant = 'dept_hr' RETURNING *"]),
        ('update every call log row', 'read', ["UPDATE federation.call_log SET answer = 'x' RETURNING tenant, question"]),
        ("update hr's messages", 'read', ["UPDATE federation.messages SET content = 'x' WHERE id > 0 RETURNING *"]),
        ("update hr's conversation by id", 'read', ['UPDATE federation.conversations SET caller = caller WHERE id = %d RETURNING *' % conv]),
        ("select hr's call by id", 'read', ['SELECT * FROM federation.call_log WHERE id = %d' % call]),
        ('row_security off', 'read', ['SET row_security = off', 'SELECT * FROM federation.call_log']),
        ('set role to hr', 'read', ['SET ROLE dept_hr', 'SELECT * FROM federation.call_log']),
        ('set_config role hr', 'read', ["SELECT 1 FROM set_config('role', 'dept_hr', false)", 'SELECT * FROM federation.call_log']),
        ('session authorization hr', 'read', ['SET SESSION AUTHORIZATION dept_hr', 'SELECT * FROM federation.call_log']),
        ('own view over the call log', 'read', ['CREATE VIEW dept_finance.v AS SELECT * FROM federation.call_log',
                                                'SELECT * FROM dept_finance.v']),
        ('own security-barrier-free view', 'read', ['CREATE VIEW dept_finance.v2 WITH (security_barrier = false) AS '
                                                    'SELECT * FROM federation.messages', 'SELECT * FROM dept_finance.v2']),
        ('own invoker view after set role', 'read', ['CREATE VIEW dept_finance.v3 WITH (security_invoker = true) AS '
                                                     'SELECT * FROM federation.call_log', 'GRANT USAGE ON SCHEMA dept_finance TO federation_tenants',
                                                     'GRANT SELECT ON dept_finance.v3 TO federation_tenants',
                                                     'SET ROLE federation_tenants', 'SELECT * FROM dept_finance.v3']),
        ('own security definer function', 'read', [
            'CREATE FUNCTION dept_finance.peek() RETURNS SETOF federation.call_log LANGUAGE sql SECURITY DEFINER '
            "AS 'SELECT * FROM federation.call_log'", 'SELECT * FROM dept_finance.peek()']),
        ('security definer function called as the group', 'read', [
            'CREATE FUNCTION dept_finance.peek2() RETURNS SETOF federation.conversations LANGUAGE sql SECURITY DEFINER '
            "AS 'SELECT * FROM federation.conversations'", 'GRANT USAGE ON SCHEMA dept_finance TO federation_tenants',
            'SET ROLE federation_tenants', 'SELECT * FROM dept_finance.peek2()']),
        ('function with SET role = dept_hr', 'read', [
            "CREATE FUNCTION dept_finance.as_hr() RETURNS SETOF federation.call_log LANGUAGE sql SET role = 'dept_hr' "
            "AS 'SELECT * FROM federation.call_log'", 'SELECT * FROM dept_finance.as_hr()']),
        ('leaky function in WHERE (call log)', 'read', [
            "CREATE FUNCTION dept_finance.leak(text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS "
            "$$BEGIN RAISE NOTICE 'seen %', $1; RETURN true; END$$",
            'SELECT 1 FROM federation.call_log WHERE dept_finance.leak(question || answer || tenant)']),
        ('leaky function in WHERE (messages)', 'read', [
            "CREATE FUNCTION dept_finance.leak2(text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS "
            "$$BEGIN RAISE NOTICE 'seen %', $1; RETURN true; END$$",
            'SELECT 1 FROM federation.messages WHERE dept_finance.leak2(content)']),
        ('leaky operator in a join', 'read', [
            "CREATE FUNCTION dept_finance.eq(text, text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS "
            "$$BEGIN RAISE NOTICE 'seen % %', $1, $2; RETURN $1 = $2; END$$",
            'CREATE OPERATOR dept_finance.=== (FUNCTION = dept_finance.eq, LEFTARG = text, RIGHTARG = text)',
            'SELECT 1 FROM federation.call_log a JOIN federation.conversations b ON a.caller OPERATOR(dept_finance.===) b.caller']),
        ('pg_stats of the shared tables', 'read', ["SELECT * FROM pg_stats WHERE schemaname = 'federation'"]),
        ("hr's session text in pg_stat_activity", 'read', ['SELECT query FROM pg_stat_activity WHERE pid <> pg_backend_pid()']),
        ('migration records', 'read', ['SELECT * FROM federation.schema_migrations']),
        ("hr's table", 'read', ['SELECT * FROM dept_hr.salaries']),
        ("hr's settings", 'read', ['SELECT * FROM dept_hr.settings']),
        ("hr's search path", 'read', ['SET search_path = dept_hr', 'SELECT * FROM salaries']),
        ("hr's view", 'read', ['SELECT * FROM dept_hr.hr_view']),
        ("hr's security definer function", 'read', ['SELECT * FROM dept_hr.hr_peek()']),
        ("hr's function through the group", 'read', ['SET ROLE federation_tenants', 'SELECT * FROM dept_hr.hr_peek()']),
        ("hr's objects in the catalog", 'read', ["SELECT prosrc FROM pg_proc WHERE proname = 'hr_peek' AND prosrc LIKE '%HR-SECRET%'"]),
        ('large object of a file', 'read', ["SELECT lo_get(lo_import('/etc/hostname'))"]),
        ('read a server file', 'read', ["SELECT pg_read_file('PG_VERSION')"]),
        ('fk to hr conversation', 'deny', ["INSERT INTO federation.messages (conversation_id, role, content) VALUES (%d, 'user', 'x')" % conv]),
        ('fk from own table to shared', 'deny', ['CREATE TABLE dept_finance.ref (c bigint REFERENCES federation.conversations (id))']),
        ('insert with an explicit id', 'deny', ["INSERT INTO federation.call_log (id, question) VALUES (%d, 'x')" % call]),
        ('insert as the group', 'deny', ['SET ROLE federation_tenants', "INSERT INTO federation.call_log (question) VALUES ('x')"]),
        ('copy in as hr', 'deny', ["COPY federation.call_log (tenant, question) FROM PROGRAM 'echo dept_hr,x' WITH (FORMAT csv)"]),
        ('create in hr schema', 'deny', ['CREATE TABLE dept_hr.planted (a int)']),
        ('drop hr table', 'deny', ['DROP TABLE dept_hr.salaries']),
        ('drop hr schema', 'deny', ['DROP SCHEMA dept_hr CASCADE']),
        ('grant self usage on hr schema', 'deny', ['GRANT USAGE ON SCHEMA dept_hr TO dept_finance']),
        ('take hr schema', 'deny', ['ALTER SCHEMA dept_hr OWNER TO dept_finance']),
        ('default privileges in hr schema', 'deny', ['ALTER DEFAULT PRIVILEGES FOR ROLE dept_hr IN SCHEMA dept_hr GRANT SELECT ON TABLES TO dept_finance']),
        ('reassign hr objects', 'deny', ['REASSIGN OWNED BY dept_hr TO dept_finance']),
        ('join hr role', 'deny', ['GRANT dept_hr TO dept_finance']),
        ('hr password', 'deny', ["ALTER ROLE dept_hr PASSWORD 'taken'"]),
        ('hr login off', 'deny', ['ALTER ROLE dept_hr NOLOGIN']),
        ('bypassrls for self', 'deny', ['ALTER ROLE dept_finance BYPASSRLS']),
        ('superuser for self', 'deny', ['ALTER ROLE dept_finance SUPERUSER']),
        ('create role', 'deny', ['CREATE ROLE sneaky LOGIN']),
        ('create database', 'deny', ['CREATE DATABASE sneaky']),
        ('create schema', 'deny', ['CREATE SCHEMA sneaky']),
        ('create in shared schema', 'deny', ['CREATE TABLE federation.planted (a int)']),
        ('create in public', 'deny', ['CREATE TABLE public.planted (a int)']),
        ('temporary table', 'deny', ['CREATE TEMP TABLE planted (a int)']),
        ('extension', 'deny', ['CREATE EXTENSION IF NOT EXISTS dblink']),
        ('event trigger', 'deny', ['CREATE EVENT TRIGGER sneaky ON ddl_command_start EXECUTE FUNCTION dept_finance.trg()']),
        ('unique probe of hr external id', 'probe', ["INSERT INTO federation.conversations (external_id) VALUES ('HR-SECRET-conv')"]),
    ]
    return out


def _insert_as_hr(table, conv):
    return {
        'call_log': "INSERT INTO federation.call_log (tenant, question) VALUES ('dept_hr', 'planted')",
        'conversations': "INSERT INTO federation.conversations (tenant, external_id) VALUES ('dept_hr', 'planted')",
        'messages': "INSERT INTO federation.messages (tenant, conversation_id, role, content) VALUES ('dept_hr', %d, 'user', 'x')" % conv,
        'tool_invocations': "INSERT INTO federation.tool_invocations (tenant, tool) VALUES ('dept_hr', 'planted')",
    }[table]


def run_as_finance(db, statements):
    """(succeeded, shown): whether every statement ran, and everything the session was shown."""
    shown = []
    conn = login(db, 'finance')
    # What RAISE NOTICE prints (the leaky functions all say "seen ..."); the server's own notices name roles, not data.
    conn.add_notice_handler(lambda diag: str(diag.message_primary).startswith('seen') and shown.append(str(diag.message_primary)))
    try:
        with conn:
            for statement in statements:
                with conn.cursor() as cur:
                    if statement.startswith('COPY') and 'TO STDOUT' in statement:
                        with cur.copy(statement) as copy:
                            shown.extend(bytes(data).decode('utf-8', 'replace') for data in copy)
                        continue
                    cur.execute(statement)
                    if cur.description:
                        shown.extend(repr(row) for row in cur.fetchall())
        return True, shown, None
    except psycopg.Error as exc:
        return False, shown, exc


def test_finance_cannot_reach_hr(tenant, tenant_db):
    for department in ('finance', 'hr'):
        assert tenant(department)['changed'] is True
    ids = seed(tenant_db)
    baseline = fingerprint(tenant_db)

    # hr keeps a session open whose last statement text holds a secret.
    hr_session = login(tenant_db, 'hr')
    hr_session.execute("SELECT 'HR-SECRET-activity'")

    results = []
    try:
        for label, kind, statements in attempts(ids):
            ok, shown, error = run_as_finance(tenant_db, statements)
            leaked = [s for s in shown if any(m in s for m in MARKERS)]
            changed = fingerprint(tenant_db) != baseline
            if kind == 'read':
                through = bool(leaked)
            elif kind == 'deny':
                through = ok
            else:  # probe: a unique violation would tell that hr holds this value
                through = isinstance(error, psycopg.errors.UniqueViolation) or bool(leaked)
            through = through or changed
            results.append((label, kind, through, leaked, error))
            if changed:
                baseline = fingerprint(tenant_db)  # count each change once

        # Sessions as other roles: finance into hr's n8n database, hr's role with finance's password, n8n into the platform.
        for label, kwargs in (("finance into hr's n8n database", dict(department='finance', dbname='n8n_hr')),
                              ("hr's role with finance's password", dict(department='finance', role='dept_hr')),
                              ('n8n role of hr into the platform database', dict(department='hr', role='n8n_hr', password='n8n-hr-1'))):
            try:
                login(tenant_db, **kwargs).close()
                results.append((label, 'deny', True, [], None))
            except psycopg.OperationalError as exc:
                results.append((label, 'deny', False, [], exc))
    finally:
        hr_session.close()

    through = [r for r in results if r[2]]
    print('isolation: attempts %d, got through %d' % (len(results), len(through)))
    for label, kind, _through, leaked, error in through:
        print('  GOT THROUGH: %s (%s) %s %s' % (label, kind, leaked[:3], error))
    assert len(results) >= 100
    assert not through, through

    # The attempts were real: finance's own data is reachable the same way (the attempts deleted finance's
    # earlier rows, which finance may do), and hr's data is intact.
    ok, shown, _error = run_as_finance(tenant_db, ["INSERT INTO federation.call_log (question) VALUES ('fin-question')",
                                                   'SELECT question FROM federation.call_log'])
    assert ok and any('fin-question' in s for s in shown)
    assert superuser_rows(tenant_db, "SELECT count(*) FROM federation.call_log WHERE tenant = 'dept_hr'") == [(1,)]
    with login(tenant_db, 'hr') as hr:
        assert hr.execute('SELECT question FROM federation.call_log').fetchall() == [('HR-SECRET-question',)]


@pytest.mark.parametrize('table', SHARED)
def test_the_leak_detector_sees_a_leak(tenant, tenant_db, table):
    """A test that cannot fail proves nothing: without the policy, the same attempts see hr's rows."""
    for department in ('finance', 'hr'):
        tenant(department)
    seed(tenant_db)
    superuser_rows(tenant_db, 'ALTER TABLE federation.%s DISABLE ROW LEVEL SECURITY' % table)
    ok, shown, _error = run_as_finance(tenant_db, ['SELECT * FROM federation.%s' % table])
    assert ok and any('dept_hr' in s for s in shown)
    assert tenant('finance')['changed'] is True  # and the module puts it back
    ok, shown, _error = run_as_finance(tenant_db, ['SELECT * FROM federation.%s' % table])
    assert ok and not any('dept_hr' in s for s in shown)
