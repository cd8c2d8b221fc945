"""One department misbehaves in the database; another keeps writing, and only the first gets the errors.

finance (the misbehaving department) holds or asks for locks on the shared tables, opens connections up to its limit
and beyond, runs a statement that never ends, leaves a transaction open and tries the server's other databases, while
hr writes its call log and conversation rows without a pause. Every hr write is timed; the longest is printed per
phase. The sanity bound asserted (BOUND) is far above what was measured and far below how long finance holds on
(HOLD), so a write that waited for finance would fail the test.
"""

from __future__ import annotations

import re
import sys
import threading
import time

import psycopg
import pytest

from tests.integration.tenant.conftest import catalog, connect, login, superuser_rows

HOLD = 12.0    # seconds finance would hold a lock or a transaction if nothing stopped it
BOUND = 6.0    # generous sanity bound on one hr write (measured: see the printed table)
FINANCE = dict(connection_limit=3, n8n_connection_limit=4,
               timeouts=dict(statement_timeout=1500, lock_timeout=1000, idle_in_transaction_session_timeout=1500))


class Writer(object):
    """hr's steady writes (a conversation, a message and a call log row each time), timed, in a thread of its own."""

    def __init__(self, db):
        self.conn = login(db, 'hr')
        self.samples = []  # (phase, seconds)
        self.errors = []
        self.phase = 'warm-up'
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                with self.conn.transaction():
                    conv = self.conn.execute("INSERT INTO federation.conversations (caller) VALUES ('hr-caller') "
                                             'RETURNING id').fetchone()[0]
                    self.conn.execute("INSERT INTO federation.messages (conversation_id, role, content) VALUES "
                                      "(%s, 'user', 'hr-msg')", (conv,))
                    self.conn.execute("INSERT INTO federation.call_log (question) VALUES ('hr-question')")
                    self.conn.execute("UPDATE federation.call_log SET answer = 'hr-answer' WHERE id = "
                                      '(SELECT max(id) FROM federation.call_log)')
            except psycopg.Error as exc:
                self.errors.append((self.phase, repr(exc)))
            self.samples.append((self.phase, time.monotonic() - started))
            time.sleep(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(30)
        self.conn.close()

    def during(self, phase, action):
        """Run ``action`` (finance's misbehaviour) while hr writes; return what it returned."""
        self.phase = phase
        count = len(self.samples)
        try:
            return action()
        finally:
            deadline = time.monotonic() + 5
            while len(self.samples) < count + 3 and time.monotonic() < deadline:
                time.sleep(0.05)  # a few writes of hr inside every phase, even a phase that failed at once

    def report(self):
        phases = []
        for phase, seconds in self.samples:
            if phase not in [name for name, _values in phases]:
                phases.append((phase, []))
            dict(phases)[phase].append(seconds)
        print('hr writes while finance misbehaves (conversation + message + call log row, one transaction each):')
        print('  %-58s %6s %9s %9s' % ('phase', 'writes', 'max ms', 'mean ms'))
        for phase, values in phases:
            print('  %-58s %6d %9.1f %9.1f' % (phase, len(values), max(values) * 1000, sum(values) / len(values) * 1000))
        return dict((phase, max(values)) for phase, values in phases)


def _fails(conn, statement, error):
    with pytest.raises(error):
        conn.execute(statement)


def _without_timing(queries):
    """The statements, sorted, without the execution time a migration record carries."""
    return sorted(re.sub(r", [0-9]+\)$", ', <ms>)', q) if 'schema_migrations' in q else q for q in queries)


def _later(seconds, action):
    """Run ``action`` after ``seconds`` unless cancelled (the safety net that ends finance's hold)."""
    timer = threading.Timer(seconds, action)
    timer.daemon = True
    timer.start()
    return timer


def test_one_department_cannot_slow_down_another(tenant, tenant_db):
    assert tenant('finance', **FINANCE)['changed'] is True
    assert tenant('hr')['changed'] is True
    with login(tenant_db, 'finance') as conn:
        conn.execute("INSERT INTO federation.call_log (question) VALUES ('fin-question')")
    hr_call = superuser_rows(tenant_db, "SELECT max(id) FROM federation.call_log WHERE tenant = 'dept_hr'")
    dbname = tenant_db['dbname']

    with Writer(tenant_db) as hr:
        time.sleep(0.5)

        def table_locks():
            # Every lock mode, on every shared table: no table-level privilege, so LOCK TABLE is refused outright.
            with login(tenant_db, 'finance') as conn:
                for table in ('call_log', 'conversations', 'messages', 'tool_invocations'):
                    for mode in ('ACCESS EXCLUSIVE', 'EXCLUSIVE', 'SHARE ROW EXCLUSIVE', 'SHARE', 'ACCESS SHARE'):
                        with pytest.raises(psycopg.errors.InsufficientPrivilege):
                            with conn.transaction():
                                conn.execute('LOCK TABLE federation.%s IN %s MODE' % (table, mode))
                    for statement in ('TRUNCATE federation.%s' % table, 'DELETE FROM federation.%s' % table,
                                      'VACUUM FULL federation.%s' % table,
                                      'CREATE INDEX ON federation.%s (created_at)' % table,
                                      'ALTER TABLE federation.%s ADD COLUMN x int' % table):
                        try:
                            conn.execute(statement)
                        except psycopg.errors.InsufficientPrivilege:
                            pass  # VACUUM only warns ("skipping"), and takes no lock on a table it may not vacuum
        hr.during('LOCK TABLE in every mode, TRUNCATE, DELETE, VACUUM FULL, DDL', table_locks)

        def advisory_locks():
            # The platform's runs serialise on advisory locks: holding hr's would stall hr's provisioning.
            with login(tenant_db, 'finance') as conn:
                for statement in ("SELECT pg_advisory_lock(hashtext('federation.tenant.hr'))",
                                  "SELECT pg_try_advisory_lock(hashtext('federation.platform'))",
                                  'SELECT pg_advisory_xact_lock(1, 2)', 'SELECT pg_advisory_lock_shared(42)'):
                    _fails(conn, statement, psycopg.errors.InsufficientPrivilege)
            assert tenant('hr')['changed'] is False  # hr's provisioning run goes through
        hr.during('advisory locks of the platform', advisory_locks)

        def row_locks():
            # FOR UPDATE / the delete function reach finance's own rows only; the transaction is then left open.
            conn = login(tenant_db, 'finance')
            conn.autocommit = False
            locked = conn.execute('SELECT tenant FROM federation.call_log FOR UPDATE').fetchall()
            assert locked == [('dept_finance',)]
            assert conn.execute('SELECT federation.delete_call_log(%s::bigint[])', ([hr_call[0][0]],)).fetchone() == (0,)
            conn.execute("UPDATE federation.call_log SET answer = 'held'")
            safety = _later(HOLD, conn.cancel)
            time.sleep(FINANCE['timeouts']['idle_in_transaction_session_timeout'] / 1000 + 1.5)
            with pytest.raises(psycopg.errors.IdleInTransactionSessionTimeout):
                conn.execute('SELECT 1')
            safety.cancel()
            conn.close()
        hr.during('rows locked FOR UPDATE, transaction left open', row_locks)

        def endless_statement():
            with login(tenant_db, 'finance') as conn:
                started = time.monotonic()
                _fails(conn, 'SELECT pg_sleep(%d)' % HOLD, psycopg.errors.QueryCanceled)
                assert time.monotonic() - started < HOLD / 2
                # What remains: a session may raise its own statement_timeout. It still blocks nobody.
                conn.execute('SET statement_timeout = 0')
                conn.execute('SELECT count(*) FROM federation.call_log, pg_sleep(2)')
        hr.during('statement that never ends (then with statement_timeout = 0)', endless_statement)

        def connections():
            opened, refused = [], None
            try:
                for _attempt in range(60):  # far more than its limit, towards the server's
                    try:
                        opened.append(login(tenant_db, 'finance'))
                    except psycopg.OperationalError as exc:
                        refused = exc
                        break
                assert len(opened) == FINANCE['connection_limit'], len(opened)
                assert 'too many connections for role "dept_finance"' in str(refused)
                with login(tenant_db, 'hr') as other:  # hr still gets in
                    other.execute('SELECT 1')
            finally:
                for conn in opened:
                    conn.close()
        hr.during('connections up to its limit and beyond', connections)

        def other_databases():
            for database in ('postgres', 'template1'):
                with pytest.raises(psycopg.OperationalError, match='permission denied for database'):
                    login(tenant_db, 'finance', dbname=database)
            with pytest.raises(psycopg.OperationalError, match='permission denied for database'):
                connect(tenant_db, 'postgres', user='n8n_hr', password='n8n-hr-1')
        hr.during("the server's other databases", other_databases)
        worst = hr.report()

    assert hr.errors == [], hr.errors
    assert len(hr.samples) > 20
    assert max(worst.values()) < BOUND, worst
    assert superuser_rows(tenant_db, "SELECT count(*) FROM federation.call_log WHERE tenant = 'dept_hr' AND "
                                     "answer = 'hr-answer'")[0][0] > 10
    assert superuser_rows(tenant_db, 'SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database '
                                     "WHERE d.datname = %s AND l.locktype = 'advisory'", (dbname,)) == [(0,)]


def test_the_platform_does_not_queue_others_behind_an_open_transaction(tenant, tenant_db):
    """The one place left where a tenant's transaction meets a strong lock: the platform's own ALTER TABLE when it
    repairs drift. It waits 3 s at most, then fails and says why; hr's writes wait at most that long."""
    tenant('finance', **FINANCE)
    tenant('hr')
    superuser_rows(tenant_db, 'ALTER TABLE federation.call_log NO FORCE ROW LEVEL SECURITY')  # drift to repair
    finance = login(tenant_db, 'finance')
    finance.autocommit = False
    finance.execute('SET idle_in_transaction_session_timeout = 0')  # a tenant may lift its own timeout
    finance.execute('SELECT count(*) FROM federation.call_log')    # ACCESS SHARE, held while idle
    safety = _later(HOLD, finance.cancel)
    try:
        with Writer(tenant_db) as hr:
            time.sleep(0.3)
            result = hr.during('platform repairs drift while finance idles in a transaction', lambda: tenant('hr'))
            worst = hr.report()
    finally:
        safety.cancel()
        finance.close()
    assert result['failed'] is True
    assert 'lock timeout' in result['msg'] and 'Another session holds a lock' in result['msg'], result['msg']
    assert hr.errors == [], hr.errors
    assert max(worst.values()) < BOUND, worst
    repaired = tenant('hr')  # once finance's transaction has ended
    assert repaired['changed'] is True
    assert 'ALTER TABLE "federation"."call_log" FORCE ROW LEVEL SECURITY' in repaired['queries']


def test_an_older_tenant_converges_and_check_mode_predicts_it(tenant, tenant_db):
    """A department provisioned before the limits: table-level SELECT and DELETE, no 0002 record, no limits or
    timeouts, the server's databases open, advisory locks for anyone. One run converges; check mode predicts it."""
    tenant('finance')
    for table in ('call_log', 'conversations', 'messages', 'tool_invocations'):
        superuser_rows(tenant_db, 'REVOKE SELECT ON federation.%s FROM federation_tenants' % table)
        superuser_rows(tenant_db, 'GRANT SELECT, DELETE ON federation.%s TO federation_tenants' % table)
        superuser_rows(tenant_db, 'DROP FUNCTION federation.delete_%s(bigint[])' % table)
    for statement in ("DELETE FROM federation.schema_migrations WHERE version = '0002_no_table_locks'",
                      'ALTER ROLE dept_finance CONNECTION LIMIT -1', 'ALTER ROLE n8n_finance CONNECTION LIMIT -1',
                      'ALTER ROLE dept_finance RESET ALL', 'GRANT CONNECT, TEMPORARY ON DATABASE postgres TO PUBLIC',
                      'GRANT CONNECT, TEMPORARY ON DATABASE template1 TO PUBLIC',
                      'GRANT EXECUTE ON FUNCTION pg_advisory_lock(bigint), pg_try_advisory_xact_lock(integer, integer) '
                      'TO PUBLIC'):
        superuser_rows(tenant_db, statement)
    with login(tenant_db, 'finance') as conn:
        with conn.transaction():
            conn.execute('LOCK TABLE federation.call_log IN ACCESS EXCLUSIVE MODE')  # what an old tenant could do
        login(tenant_db, 'finance', dbname='postgres').close()

    before = catalog(tenant_db)
    predicted = tenant('finance', check=True, diff=True)
    assert predicted['changed'] is True
    assert catalog(tenant_db) == before
    applied = tenant('finance', diff=True)
    assert applied['changed'] is True
    assert _without_timing(applied['queries']) == _without_timing(predicted['queries'])
    assert "platform migration '0002_no_table_locks' applied" in applied['msg']
    assert applied['diff']['after']['role']['connection_limit'] == 5
    settings = ['idle_in_transaction_session_timeout=60000', 'lock_timeout=5000', 'statement_timeout=30000']
    assert applied['diff']['after']['role']['settings'] == {'*': settings}
    again = tenant('finance')
    assert again['changed'] is False and again['queries'] == []
    assert tenant('finance', check=True)['changed'] is False

    with login(tenant_db, 'finance') as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
            conn.execute('LOCK TABLE federation.call_log IN ACCESS EXCLUSIVE MODE')
        _fails(conn, "SELECT pg_advisory_lock(1)", psycopg.errors.InsufficientPrivilege)
        assert conn.execute("SELECT current_setting('statement_timeout')").fetchone() == ('30s',)
    with pytest.raises(psycopg.OperationalError, match='permission denied for database'):
        login(tenant_db, 'finance', dbname='postgres')
    assert superuser_rows(tenant_db, "SELECT rolconnlimit FROM pg_roles WHERE rolname = 'n8n_finance'") == [(8,)]


PLAY = '''
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/federation.platform.postgres:
      login_host: "{{ lookup('env', 'FEDERATION_PLATFORM_DB_HOST') }}"
      login_port: "{{ lookup('env', 'FEDERATION_PLATFORM_DB_PORT') | int }}"
      login_user: "{{ lookup('env', 'FEDERATION_PLATFORM_DB_USER') }}"
      login_password: "{{ lookup('env', 'FEDERATION_PLATFORM_DB_PASSWORD') }}"
      login_db: "{{ lookup('env', 'FEDERATION_PLATFORM_DB_NAME') }}"
  tasks:
    - name: The spec
      federation.platform.department_spec:
        name: finance
        specs_dir: "{{ specs_dir }}"
    - name: The tenant
      ansible.builtin.include_role:
        name: federation.platform.tenant_database
      vars:
        federation_home: "{{ specs_dir }}"
        federation_secrets: {tenant_db_password: pw-finance-1, n8n_db_password: n8n-finance-1}
'''


def test_the_spec_gives_the_limits_through_the_role(ansible, tenant_db, tmp_path):
    (tmp_path / 'finance.yml').write_text('database:\n  connections: 7\n  n8n_connections: 9\n')
    (tmp_path / 'play.yml').write_text(PLAY)
    run = ansible.playbook(str(tmp_path / 'play.yml'), '-i', 'localhost,', '-c', 'local', '-e', 'specs_dir=%s' % tmp_path,
                           '-e', 'ansible_python_interpreter=%s' % sys.executable)
    assert run.returncode == 0, run.stdout + run.stderr
    assert superuser_rows(tenant_db, "SELECT rolname, rolconnlimit FROM pg_roles WHERE rolname IN ('dept_finance', "
                                     "'n8n_finance') ORDER BY 1") == [('dept_finance', 7), ('n8n_finance', 9)]
    assert superuser_rows(tenant_db, "SELECT setconfig FROM pg_db_role_setting WHERE setrole = 'dept_finance'::regrole") == [
        (['idle_in_transaction_session_timeout=60000', 'lock_timeout=5000', 'statement_timeout=30000'],)]
