# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: no compatibility promise outside federation.platform.
"""A department's tenant in the platform database, made exactly as declared.

What one department gets:

- login role ``dept_<n>``: no superuser, no CREATEROLE/CREATEDB/REPLICATION/BYPASSRLS, member of
  exactly one role, the group ``federation_tenants``, through which it holds its privileges on the
  shared tables; nobody else is a member of it (except the platform admin when it needs SET ROLE);
- schema ``dept_<n>`` owned by the platform admin, USAGE and CREATE for the tenant only;
- its rows in the shared tables of schema ``federation`` (call log, conversations, messages, tool
  invocations): one generic row-level security policy per table, ``tenant = current_user`` for the
  group, ENABLED and FORCED, so a thousand departments add no policy and no grant;
- versioned migrations run *as the tenant* in its schema, recorded with checksums in
  ``federation.schema_migrations``;
- optionally its n8n database ``n8n_<n>``, owned by login role ``n8n_<n>``, reachable by nobody else.

The shared schema itself is platform migration ``0001_shared_tables``, applied once under an advisory
lock; its isolation settings (RLS flags, the single policy, the grants) are checked on every call and
put back when they drifted. Reads cost nothing when all is as declared: no statement that changes
anything is sent, and ``queries`` stays empty.
"""

from __future__ import annotations

import contextlib
import datetime
import glob
import hashlib
import os
import re
import shutil
import subprocess

from ansible_collections.federation.platform.plugins.module_utils._naming import (
    n8n_database, n8n_role, tenant_role, tenant_schema)
from ansible_collections.federation.platform.plugins.module_utils._postgres import (
    Database, DatabaseError, psycopg, sql, _pg_message)
from ansible_collections.federation.platform.plugins.module_utils._scram import password_matches, scram_verifier

SHARED_SCHEMA = 'federation'
TENANTS_GROUP = 'federation_tenants'
MIGRATIONS_TABLE = 'schema_migrations'
PLATFORM_SCOPE = 'federation'
PLATFORM_VERSION = '0001_shared_tables'
# Platform migration 0002: no table-level privilege for the tenants (nothing that lets a tenant LOCK a shared table),
# deletion through SECURITY DEFINER functions that delete the caller's own rows only.
PLATFORM_LOCKS_VERSION = '0002_no_table_locks'
POLICY = 'tenant_isolation'
# The tag of the knowledge rows a department's spec manages (federation.platform.pg_tenant_schema knowledge=...).
KNOWLEDGE_TAG = 'spec'
# What the tenant column of the shared tables may hold: a tenant role's name, nothing else (so the
# group role, or any other role a tenant could SET ROLE to, can never own a row).
TENANT_VALUE_PATTERN = r'^dept_[a-z][a-z0-9_]{0,29}[a-z0-9]$'
MIGRATION_NAME_PATTERN = r'^[0-9]{3,}_[a-z0-9][a-z0-9_]{0,79}$'
MIGRATION_NAME_RULE = ('a version number of at least 3 digits, an underscore and lowercase letters, digits and '
                       'underscores, as in 0001_initial (the file name without .sql.j2)')
SHARED_TABLES = ('conversations', 'messages', 'tool_invocations', 'call_log')  # in foreign-key order
# What a tenant deletes its own rows with (it has no DELETE privilege): federation.<function>(ids bigint[]).
DELETE_FUNCTIONS = {table: 'delete_' + table for table in SHARED_TABLES}
# The advisory lock functions that take or wait for a lock: the platform's own runs serialise on advisory locks of
# the platform database, so nobody else may take them there (a tenant holding one would stall every provisioning).
ADVISORY_LOCK_FUNCTIONS = r'^pg_(try_)?advisory_(xact_)?lock(_shared)?$'
# How long the platform's own statements on the shared tables wait for a lock before they give up (a tenant's open
# transaction must not make every other department queue behind the platform's ALTER TABLE).
PLATFORM_LOCK_TIMEOUT_MS = 3000
# The settings every tenant role logs in with (ALTER ROLE ... SET), in milliseconds, unless the caller says otherwise.
TENANT_TIMEOUTS = dict(statement_timeout=30000, lock_timeout=5000, idle_in_transaction_session_timeout=60000)
# The server's default databases: PUBLIC may not connect to them, so a department's logins reach its own only.
CLOSED_DATABASES = ('postgres', 'template1')

# Column privileges of the tenants' group: INSERT without the id (no probing of other tenants' ids
# through primary-key errors), UPDATE without the id and the tenant.
_COLUMNS = {
    'call_log': ('id', 'tenant', 'call_id', 'caller', 'question', 'answer', 'created_at'),
    'conversations': ('id', 'tenant', 'external_id', 'channel', 'caller', 'started_at', 'ended_at', 'metadata'),
    'messages': ('id', 'tenant', 'conversation_id', 'role', 'content', 'created_at'),
    'tool_invocations': ('id', 'tenant', 'conversation_id', 'message_id', 'tool', 'arguments', 'result', 'status',
                         'duration_ms', 'created_at'),
}

TENANT_ATTRIBUTES = dict(rolsuper=False, rolinherit=True, rolcreaterole=False, rolcreatedb=False, rolcanlogin=True,
                         rolreplication=False, rolbypassrls=False)
# INHERIT: the database owner acts through the implicit role pg_database_owner (which owns schema public).
N8N_ATTRIBUTES = TENANT_ATTRIBUTES
GROUP_ATTRIBUTES = dict(TENANT_ATTRIBUTES, rolinherit=False, rolcanlogin=False)
_ATTRIBUTE_SQL = dict(rolsuper=('SUPERUSER', 'NOSUPERUSER'), rolinherit=('INHERIT', 'NOINHERIT'),
                      rolcreaterole=('CREATEROLE', 'NOCREATEROLE'), rolcreatedb=('CREATEDB', 'NOCREATEDB'),
                      rolcanlogin=('LOGIN', 'NOLOGIN'), rolreplication=('REPLICATION', 'NOREPLICATION'),
                      rolbypassrls=('BYPASSRLS', 'NOBYPASSRLS'))
_PRIVILEGES = frozenset(('SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER', 'USAGE',
                         'CREATE', 'CONNECT', 'TEMPORARY', 'EXECUTE'))
ADMIN_HINT = ('The platform admin (login_user) must be a superuser, or have CREATEROLE, CREATEDB and BYPASSRLS '
              'and own the platform database.')


def _advice(error):
    if isinstance(error, psycopg.errors.InsufficientPrivilege):
        return ADMIN_HINT
    if isinstance(error, psycopg.errors.LockNotAvailable):
        return ('Another session holds a lock on that object (see pg_locks and pg_stat_activity); the platform does not '
                "queue behind it, so that other departments' writes never wait. Run again once it has ended, or end it.")
    return 'Fix the cause and run again: the call converges from where it stopped.'


class TenantError(Exception):
    """Refused before or instead of a change; the message names the department and the fix."""


def checksum(text):
    """The checksum a migration is recorded with: SHA-256 of its rendered text (line ends normalised)."""
    normalised = text.replace('\r\n', '\n').rstrip()
    return hashlib.sha256(normalised.encode('utf-8')).hexdigest()


def validate_migrations(department, migrations):
    """Raise TenantError when a migration name is malformed, repeated or out of order."""
    seen = []
    for index, migration in enumerate(migrations or []):
        name = migration.get('name')
        if not isinstance(name, str) or re.match(MIGRATION_NAME_PATTERN, name) is None:
            raise TenantError("Invalid migration #%d for department '%s': name %r is not allowed. A migration name is %s."
                              % (index + 1, department, name, MIGRATION_NAME_RULE))
        if not isinstance(migration.get('sql'), str) or not migration['sql'].strip():
            raise TenantError("Invalid migration '%s' for department '%s': its SQL is empty. Give the rendered SQL "
                              "of the migration file." % (name, department))
        if '\x00' in migration['sql']:
            raise TenantError("Invalid migration '%s' for department '%s': its SQL contains a NUL character."
                              % (name, department))
        forbidden = forbidden_statement(migration['sql'])
        if forbidden:
            raise TenantError("Invalid migration '%s' for department '%s': it holds a %s statement. A migration runs inside "
                              'the tenant\'s transaction as the tenant: remove transaction control and role changes.'
                              % (name, department, forbidden))
        if name in seen:
            raise TenantError("Invalid migrations for department '%s': '%s' is given twice. Each migration file has "
                              "a name of its own." % (department, name))
        if seen and _version_key(name) <= _version_key(seen[-1]):
            raise TenantError("Invalid migrations for department '%s': '%s' comes after '%s'. Give the migrations in "
                              "version order." % (department, name, seen[-1]))
        seen.append(name)


_TRANSACTION_CONTROL = ('BEGIN', 'START', 'COMMIT', 'END', 'ROLLBACK', 'ABORT', 'SAVEPOINT', 'RELEASE', 'PREPARE')
_TOKENS = re.compile(r"""
    (?P<comment>--[^\n]*|/\*(?:[^*]|\*(?!/))*\*/)       # comments (not nested)
  | (?P<dollar>\$(?P<tag>[A-Za-z_][A-Za-z_0-9]*)?\$)      # start of a dollar-quoted string
  | (?P<string>[EeBbXxNn]?'(?:[^'\\]|''|\\.)*')         # string constants
  | (?P<ident>"(?:[^"]|"")*")                            # quoted identifiers
  | (?P<semicolon>;)
  | (?P<word>[A-Za-z_][A-Za-z_0-9$]*)
  | (?P<other>\S)
""", re.VERBOSE | re.DOTALL)


def statement_heads(text):
    """The first two words of each top-level statement of ``text`` (comments, strings, quoted identifiers and
    dollar-quoted bodies skipped; the bodies of BEGIN ATOMIC functions are not statements)."""
    heads, current, atomic, pos = [], [], 0, 0
    while pos < len(text):
        match = _TOKENS.match(text, pos)
        if match is None:
            pos += 1
            continue
        pos = match.end()
        if match.group('dollar'):
            end = text.find(match.group('dollar'), pos)
            pos = len(text) if end < 0 else end + len(match.group('dollar'))
            current.append('$')
        elif match.group('semicolon'):
            words = [w.upper() for w in current if w != '$']
            if atomic:
                if words[:1] == ['END']:
                    atomic -= 1
            elif words:
                heads.append(tuple(words[:2]))
            current = []
        elif match.group('word'):
            word = match.group('word').upper()
            if current and current[-1].upper() == 'BEGIN' and word == 'ATOMIC':
                if not atomic:
                    heads.append(tuple(w.upper() for w in current if w != '$')[:2])
                atomic += 1
            current.append(match.group('word'))
        elif match.group('string') or match.group('ident') or match.group('other'):
            current.append('$')
    words = [w.upper() for w in current if w != '$']
    if words and not atomic:
        heads.append(tuple(words[:2]))
    return heads


def forbidden_statement(text):
    """A statement a migration may not hold (it would end the transaction or change the role), or None."""
    for head in statement_heads(text):
        if head[0] in _TRANSACTION_CONTROL:
            return ' '.join(head)
        if head in (('RESET', 'ROLE'), ('SET', 'ROLE'), ('RESET', 'SESSION'), ('SET', 'SESSION')):
            return ' '.join(head)
    return None


def _version_key(name):
    number, rest = name.split('_', 1)
    return (int(number), rest)


def validate_password(department, role, option, password):
    if password is None or password == '':
        raise TenantError("Invalid %s for role '%s' of department '%s': it is empty. Give the department's secret "
                          "(the secrets role generates it)." % (option, role, department))
    if '\x00' in password:
        raise TenantError("Invalid %s for role '%s' of department '%s': it contains a NUL character, which "
                          "PostgreSQL cannot store. Generate another one." % (option, role, department))


MAX_CONNECTION_LIMIT = 1000
MAX_TIMEOUT_MS = 86400000  # a day


def validate_limits(department, connection_limit, n8n_connection_limit, timeouts, closed_databases=()):
    """Raise TenantError when a connection limit or a timeout is not a whole number in range."""
    for option, field, value in (('connection_limit', 'connections', connection_limit),
                                 ('n8n_connection_limit', 'n8n_connections', n8n_connection_limit)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONNECTION_LIMIT:
            raise TenantError("Invalid %s for department '%s': %r. Give a whole number of connections from 1 to %d "
                              '(the spec field database.%s).' % (option, department, value, MAX_CONNECTION_LIMIT, field))
    for key, value in sorted((timeouts or {}).items()):
        if key not in TENANT_TIMEOUTS:
            raise TenantError("Invalid timeouts for department '%s': unknown setting %r. Known: %s."
                              % (department, key, ', '.join(sorted(TENANT_TIMEOUTS))))
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TIMEOUT_MS:
            raise TenantError("Invalid timeouts.%s for department '%s': %r. Give milliseconds from 1 to %d (0, which "
                              'turns it off, is not allowed).' % (key, department, value, MAX_TIMEOUT_MS))
    for name in closed_databases or ():
        if not isinstance(name, str) or not name or '\x00' in name:
            raise TenantError("Invalid closed_databases for department '%s': %r is not a database name."
                              % (department, name))


def tenant_settings(timeouts):
    """The settings a tenant role logs in with: the platform's timeouts, overridden by ``timeouts``."""
    return dict(TENANT_TIMEOUTS, **(timeouts or {}))


# -- the shared schema ---------------------------------------------------------------------------------------


def _i(*names):
    return sql.Identifier(*names)


def platform_statements():
    """Platform migration 0001_shared_tables: the shared schema, its tables, the policy and grants."""
    s, g = _i(SHARED_SCHEMA), _i(TENANTS_GROUP)
    tenant = sql.SQL('tenant name NOT NULL DEFAULT current_user CHECK (tenant::text ~ {})').format(
        sql.Literal(TENANT_VALUE_PATTERN))
    out = [
        sql.SQL('CREATE SCHEMA {}').format(s),
        sql.SQL('REVOKE ALL ON SCHEMA {} FROM PUBLIC').format(s),
        sql.SQL('GRANT USAGE ON SCHEMA {} TO {}').format(s, g),
        sql.SQL('CREATE TABLE {}.{} (scope text NOT NULL, version text NOT NULL, checksum text NOT NULL, '
                'applied_at timestamptz NOT NULL DEFAULT now(), applied_by name NOT NULL DEFAULT session_user, '
                'execution_ms integer, PRIMARY KEY (scope, version))').format(s, _i(MIGRATIONS_TABLE)),
        sql.SQL('REVOKE ALL ON {}.{} FROM PUBLIC').format(s, _i(MIGRATIONS_TABLE)),
        sql.SQL('CREATE TABLE {}.conversations (id bigserial PRIMARY KEY, {}, external_id text, '
                "channel text NOT NULL DEFAULT 'voice', caller text, started_at timestamptz NOT NULL DEFAULT now(), "
                "ended_at timestamptz, metadata jsonb NOT NULL DEFAULT '{{}}'::jsonb, UNIQUE (tenant, id), "
                'UNIQUE (tenant, external_id))').format(s, tenant),
        sql.SQL('CREATE INDEX conversations_tenant_started_at_idx ON {}.conversations (tenant, started_at)').format(s),
        sql.SQL('CREATE TABLE {}.messages (id bigserial PRIMARY KEY, {}, conversation_id bigint NOT NULL, '
                "role text NOT NULL CHECK (role IN ('user', 'assistant', 'system', 'tool')), content text NOT NULL, "
                'created_at timestamptz NOT NULL DEFAULT now(), UNIQUE (tenant, id), '
                'FOREIGN KEY (tenant, conversation_id) REFERENCES {}.conversations (tenant, id) ON DELETE CASCADE)'
                ).format(s, tenant, s),
        sql.SQL('CREATE INDEX messages_tenant_conversation_idx ON {}.messages (tenant, conversation_id, created_at)'
                ).format(s),
        sql.SQL('CREATE TABLE {}.tool_invocations (id bigserial PRIMARY KEY, {}, conversation_id bigint, '
                "message_id bigint, tool text NOT NULL, arguments jsonb NOT NULL DEFAULT '{{}}'::jsonb, result jsonb, "
                "status text NOT NULL DEFAULT 'ok' CHECK (status IN ('ok', 'error', 'timeout')), "
                'duration_ms integer CHECK (duration_ms >= 0), created_at timestamptz NOT NULL DEFAULT now(), '
                'FOREIGN KEY (tenant, conversation_id) REFERENCES {}.conversations (tenant, id) ON DELETE CASCADE, '
                'FOREIGN KEY (tenant, message_id) REFERENCES {}.messages (tenant, id) ON DELETE SET NULL (message_id))'
                ).format(s, tenant, s, s),
        sql.SQL('CREATE INDEX tool_invocations_tenant_created_at_idx ON {}.tool_invocations (tenant, created_at)'
                ).format(s),
        sql.SQL('CREATE TABLE {}.call_log (id bigserial PRIMARY KEY, {}, call_id text, caller text, '
                'question text NOT NULL, answer text, created_at timestamptz NOT NULL DEFAULT now())').format(s, tenant),
        sql.SQL('CREATE INDEX call_log_tenant_created_at_idx ON {}.call_log (tenant, created_at)').format(s),
    ]
    for table in SHARED_TABLES:
        out.extend(_table_security(table))
    return out


def _table_security(table):
    s, g, t = _i(SHARED_SCHEMA), _i(TENANTS_GROUP), _i(table)
    columns = _COLUMNS[table]
    insert = [c for c in columns if c != 'id']
    update = [c for c in columns if c not in ('id', 'tenant')]
    return [
        sql.SQL('ALTER TABLE {}.{} ENABLE ROW LEVEL SECURITY').format(s, t),
        sql.SQL('ALTER TABLE {}.{} FORCE ROW LEVEL SECURITY').format(s, t),
        _policy_statement(table),
        sql.SQL('REVOKE ALL ON {}.{} FROM PUBLIC').format(s, t),
        sql.SQL('GRANT SELECT, DELETE ON {}.{} TO {}').format(s, t, g),
        sql.SQL('GRANT INSERT ({}) ON {}.{} TO {}').format(_columns(insert), s, t, g),
        sql.SQL('GRANT UPDATE ({}) ON {}.{} TO {}').format(_columns(update), s, t, g),
        sql.SQL('GRANT USAGE ON SEQUENCE {}.{} TO {}').format(s, _i(table + '_id_seq'), g),
    ]


def _columns(names):
    return sql.SQL(', ').join(_i(n) for n in names)


def _policy_statement(table):
    return sql.SQL('CREATE POLICY {} ON {}.{} AS PERMISSIVE FOR ALL TO {} USING (tenant = current_user) '
                   'WITH CHECK (tenant = current_user)').format(_i(POLICY), _i(SHARED_SCHEMA), _i(table), _i(TENANTS_GROUP))


def _delete_function_body(table):
    # Fixed names only (validated constants): the rows of the logged-in department, whatever role it SET.
    return ('WITH gone AS (DELETE FROM %s.%s WHERE tenant = session_user AND id = ANY (ids) RETURNING 1) '
            'SELECT count(*) FROM gone' % (SHARED_SCHEMA, table))


def platform_locks_statements():
    """Platform migration 0002_no_table_locks.

    ``LOCK TABLE`` needs a table-level privilege (UPDATE, DELETE or TRUNCATE for the strong modes, SELECT for ACCESS
    SHARE); column privileges never allow it. So the tenants' group keeps column privileges only (SELECT on every
    column, INSERT and UPDATE as before) and loses the table-level SELECT and DELETE: no tenant can lock a shared table
    in any mode. It deletes its own rows through ``federation.delete_<table>(ids)``, SECURITY DEFINER functions that
    delete only rows whose tenant is the session's login role.
    """
    s, g = _i(SHARED_SCHEMA), _i(TENANTS_GROUP)
    out = []
    for table in SHARED_TABLES:
        t, f = _i(table), _i(DELETE_FUNCTIONS[table])
        out += [
            sql.SQL('REVOKE SELECT, DELETE ON {}.{} FROM {}').format(s, t, g),
            sql.SQL('GRANT SELECT ({}) ON {}.{} TO {}').format(_columns(_COLUMNS[table]), s, t, g),
            sql.SQL('CREATE FUNCTION {}.{}(ids bigint[]) RETURNS bigint LANGUAGE sql VOLATILE STRICT SECURITY DEFINER '
                    'SET search_path = pg_catalog, pg_temp AS {}').format(s, f, sql.Literal(_delete_function_body(table))),
            sql.SQL('REVOKE ALL ON FUNCTION {}.{}(bigint[]) FROM PUBLIC').format(s, f),
            sql.SQL('GRANT EXECUTE ON FUNCTION {}.{}(bigint[]) TO {}').format(s, f, g),
        ]
    return out


def platform_migrations():
    """[(version, statements)] of the shared schema, in order. Applied ones are never changed: add a new one."""
    return [(PLATFORM_VERSION, platform_statements()), (PLATFORM_LOCKS_VERSION, platform_locks_statements())]


def _platform_text(statements, conn):
    return ';\n'.join(s.as_string(conn) for s in statements)


def _expected_shared_acl():
    """{(kind, object): {grantee: {privileges}}} for the shared objects (owner excluded)."""
    expected = {('schema', SHARED_SCHEMA): {TENANTS_GROUP: {'USAGE'}},
                ('table', '%s.%s' % (SHARED_SCHEMA, MIGRATIONS_TABLE)): {}}
    for table in SHARED_TABLES:
        # No table-level privilege at all: LOCK TABLE is refused in every mode (see platform_locks_statements).
        expected[('table', '%s.%s' % (SHARED_SCHEMA, table))] = {}
        expected[('sequence', '%s.%s_id_seq' % (SHARED_SCHEMA, table))] = {TENANTS_GROUP: {'USAGE'}}
        expected[('function', '%s.%s' % (SHARED_SCHEMA, DELETE_FUNCTIONS[table]))] = {TENANTS_GROUP: {'EXECUTE'}}
    return expected


def _expected_column_acl():
    """{table: {(column, grantee, privilege)}} for the shared tables."""
    expected = {}
    for table, columns in _COLUMNS.items():
        grants = set()
        for column in columns:
            grants.add((column, TENANTS_GROUP, 'SELECT'))
            if column != 'id':
                grants.add((column, TENANTS_GROUP, 'INSERT'))
            if column not in ('id', 'tenant'):
                grants.add((column, TENANTS_GROUP, 'UPDATE'))
        expected['%s.%s' % (SHARED_SCHEMA, table)] = grants
    return expected


# -- the database ------------------------------------------------------------------------------------------


class TenantDatabase(Database):
    """Database with statements bound on the client (for utility statements, which take no parameters), and
    errors that say what to do."""

    def execute(self, query, params=None, secret=(), what=None, client_side=False):
        if not client_side:
            try:
                return super(TenantDatabase, self).execute(query, params, secret, what)
            except DatabaseError as exc:
                raise DatabaseError('%s. %s' % (str(exc).rstrip('.'), _advice(exc.__context__)))
        return self._client_side(query, params, secret, what)

    def rows(self, query, params=None, what=None):
        try:
            return super(TenantDatabase, self).rows(query, params, what)
        except DatabaseError as exc:
            raise DatabaseError('%s. %s' % (str(exc).rstrip('.'), _advice(exc.__context__)))

    def _client_side(self, query, params, secret, what):
        # ALTER/CREATE ROLE take no server-side parameters: the values are bound (quoted) by psycopg on the
        # client; ``queries`` still shows secrets as placeholders.
        self.queries.append(self._render(query, params, secret))
        try:
            with psycopg.ClientCursor(self.conn) as cur:
                cur.execute(query, params)
        except psycopg.Error as exc:
            raise DatabaseError('Failed to %s on %s: %s. %s'
                                % (what or 'run a statement', self.where, _pg_message(exc), _advice(exc)))

    def setting(self, name, value, what):
        """SET LOCAL through set_config (not recorded: it changes nothing outside the transaction)."""
        self.rows(sql.SQL('SELECT pg_catalog.set_config(%s, %s, true)'), (name, value), what=what)


class Tenant(object):
    """The tenant of one department inside one TenantDatabase transaction."""

    def __init__(self, db, department, warn=None):
        self.db = db
        self.department = department
        self.schema = tenant_schema(department)
        self.role = tenant_role(department)
        self.n8n_database = n8n_database(department)
        self.n8n_role = n8n_role(department)
        self.warn = warn or (lambda msg: None)
        self.messages = []
        self.applied = []
        self.admin = None
        self.admin_is_superuser = False
        self.dbname = None
        self.closed_databases = CLOSED_DATABASES  # PUBLIC may not connect to these
        self.pending_database = []  # statements that must run outside the transaction (CREATE DATABASE)
        self.committed = False  # set once a step of a removal was committed
        self._migrations_table = False
        self._authid_readable = None

    # -- session ---------------------------------------------------------------------------------------------

    def begin(self):
        """Pin the search path and serialise runs of the same department."""
        self.db.setting('search_path', 'pg_catalog, pg_temp', 'set the search path')
        me = self.db.row('SELECT current_user::text AS admin, current_database()::text AS dbname, '
                         'r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user', what='identify the admin')
        self.admin, self.dbname, self.admin_is_superuser = me['admin'], me['dbname'], me['rolsuper']
        self.db.advisory_lock('federation.tenant.%s' % self.department)

    # -- reading ---------------------------------------------------------------------------------------------

    def read_role(self, name, members=True):
        """Attributes and memberships of a role (``members=False`` for the group: its members are the tenants)."""
        return self.db.row(sql.SQL(
            'SELECT r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb, r.rolcanlogin, r.rolreplication, '
            'r.rolbypassrls, r.rolconnlimit, (r.rolvaliduntil IS NULL OR r.rolvaliduntil = \'infinity\') AS valid_forever, '
            'ARRAY(SELECT g.rolname::text FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles g ON g.oid = m.roleid '
            '      WHERE m.member = r.oid ORDER BY 1) AS member_of, {} AS members '
            'FROM pg_catalog.pg_roles r WHERE r.rolname = %s').format(
                sql.SQL('ARRAY(SELECT u.rolname::text FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles u '
                        'ON u.oid = m.member WHERE m.roleid = r.oid ORDER BY 1)') if members else sql.SQL("'{}'::text[]")),
            (name,), what="read role '%s'" % name)

    def _password_matches(self, role, password, can_login=True):
        if self._authid_readable is None:
            self._authid_readable = self.db.row(
                "SELECT pg_catalog.has_table_privilege('pg_catalog.pg_authid', 'SELECT') AS ok",
                what='check access to pg_authid')['ok']
        if self._authid_readable:
            stored = self.db.row('SELECT rolpassword FROM pg_catalog.pg_authid WHERE rolname = %s', (role,),
                                 what="read the password verifier of role '%s'" % role)
            return password_matches(stored and stored['rolpassword'], password, role)
        if not can_login:
            return False
        # Without access to the verifiers, the password is what a login with it says.
        p = self.db.module.params
        try:
            psycopg.connect(host=p['login_host'], port=p['login_port'], user=role, password=password,
                            dbname=p['login_db'], sslmode=p['ssl_mode'], connect_timeout=p['connect_timeout']).close()
            return True
        except psycopg.Error:
            return False

    def read_schema(self, name):
        """{'owner', 'grants': {grantee: {privileges}}} of a schema (owner excluded), or None; one query."""
        return self._read_owned(
            'SELECT n.nspowner::regrole::text AS owner, ARRAY(SELECT coalesce(g.rolname::text, \'PUBLIC\') || \':\' || '
            'x.privilege_type FROM pg_catalog.aclexplode(coalesce(n.nspacl, pg_catalog.acldefault(\'n\', n.nspowner))) x '
            'LEFT JOIN pg_catalog.pg_roles g ON g.oid = x.grantee WHERE x.grantee <> n.nspowner) AS grants '
            'FROM pg_catalog.pg_namespace n WHERE n.nspname = %s', name, "read schema '%s'" % name)

    def read_database(self, name):
        """{'owner', 'grants': {grantee: {privileges}}} of a database (owner excluded), or None; one query."""
        return self._read_owned(
            'SELECT d.datdba::regrole::text AS owner, ARRAY(SELECT coalesce(g.rolname::text, \'PUBLIC\') || \':\' || '
            'x.privilege_type FROM pg_catalog.aclexplode(coalesce(d.datacl, pg_catalog.acldefault(\'d\', d.datdba))) x '
            'LEFT JOIN pg_catalog.pg_roles g ON g.oid = x.grantee WHERE x.grantee <> d.datdba) AS grants '
            'FROM pg_catalog.pg_database d WHERE d.datname = %s', name, "read database '%s'" % name)

    def _read_owned(self, query, name, what):
        row = self.db.row(query, (name,), what=what)
        if row is None:
            return None
        grants = {}
        for item in row['grants']:
            grantee, privilege = item.rsplit(':', 1)
            grants.setdefault(grantee, set()).add(privilege)
        return dict(owner=row['owner'], grants=grants)

    def read_migrations(self, scope):
        if not self._migrations_table:  # once it exists it stays for the rest of the transaction
            self._migrations_table = self.db.row(
                'SELECT to_regclass(%s) IS NOT NULL AS ok', ('%s.%s' % (SHARED_SCHEMA, MIGRATIONS_TABLE),),
                what='look up the migrations table')['ok']
            if not self._migrations_table:
                return []
        return self.db.rows(
            sql.SQL('SELECT version, checksum, applied_at FROM {}.{} WHERE scope = %s').format(
                _i(SHARED_SCHEMA), _i(MIGRATIONS_TABLE)), (scope,), what="read the migrations of '%s'" % scope)

    def state(self, password=None, n8n_password=None, n8n=True):
        """What exists now, for the diff (no secret, only whether the password is the declared one)."""
        out = {}
        role = self.read_role(self.role)
        out['role'] = _public_role(role, self._password_matches(self.role, password, role['rolcanlogin'])
                                   if role and password is not None else None)
        if out['role'] is not None:
            out['role']['settings'] = dict((database or '*', config) for database, config in
                                           sorted(self.read_role_settings(self.role).items(), key=lambda i: i[0] or ''))
        schema = self.read_schema(self.schema)
        out['schema'] = schema and dict(owner=schema['owner'], grants=_sorted_acl(schema['grants']))
        out['migrations'] = sorted(m['version'] for m in self.read_migrations(self.schema))
        out['shared_schema'] = sorted(m['version'] for m in self.read_migrations(PLATFORM_SCOPE))
        if n8n:
            role = self.read_role(self.n8n_role)
            out['n8n_role'] = _public_role(role, self._password_matches(self.n8n_role, n8n_password, role['rolcanlogin'])
                                           if role and n8n_password is not None else None)
            database = self.read_database(self.n8n_database)
            out['n8n_database'] = database and dict(owner=database['owner'], grants=_sorted_acl(database['grants']))
        return out

    # -- the shared schema -----------------------------------------------------------------------------------

    def ensure_platform(self):
        """The shared schema, the tenants' group and the platform database's grants, as declared."""
        if not self._platform_drift():
            return
        # Concurrent first runs: one creates, the others wait here and then find it done.
        self.db.advisory_lock('federation.platform')
        # From here on the platform's statements lock shared tables that tenants use: give up after a while rather
        # than let every department's writes queue behind an ALTER TABLE that waits for one tenant's transaction.
        previous = self.db.row("SELECT current_setting('lock_timeout') AS value", what='read the lock timeout')['value']
        self.db.setting('lock_timeout', '%dms' % PLATFORM_LOCK_TIMEOUT_MS, 'bound the lock waits of the platform')
        self._ensure_group()
        records = {m['version']: m for m in self.read_migrations(PLATFORM_SCOPE)}
        for version, statements in platform_migrations():
            text = _platform_text(statements, self.db.conn)
            if version in records:
                if records[version]['checksum'] != checksum(text):
                    raise TenantError(
                        "Failed to check the shared schema '%s' on %s: platform migration '%s' was applied with checksum "
                        '%s and this version of the collection declares %s. Applied migrations are never changed: use the '
                        'collection version that applied it, or add a new platform migration.'
                        % (SHARED_SCHEMA, self.db.where, version, records[version]['checksum'], checksum(text)))
                continue
            if version == PLATFORM_VERSION and self.read_schema(SHARED_SCHEMA) is not None:
                raise TenantError(
                    "Failed to create the shared schema '%s' on %s: the schema exists but has no record of platform "
                    "migration '%s'. Rename or drop the foreign schema '%s', or restore its migrations table."
                    % (SHARED_SCHEMA, self.db.where, version, SHARED_SCHEMA))
            started = datetime.datetime.now()
            for statement in statements:
                self.db.execute(statement, what="apply platform migration '%s' to the shared schema %s" % (version, SHARED_SCHEMA))
            self._record(PLATFORM_SCOPE, version, checksum(text), started)
            self.messages.append("shared schema '%s' created" % SHARED_SCHEMA if version == PLATFORM_VERSION
                                 else "platform migration '%s' applied" % version)
        self._ensure_shared_security()
        self._ensure_database_grants()
        self.db.setting('lock_timeout', previous, 'restore the lock timeout')

    def _platform_drift(self):
        """Whether anything of the shared schema, the group or the database grants differs (reads only)."""
        group = self.read_role(TENANTS_GROUP, members=False)
        if group is None or _attribute_changes(group, GROUP_ATTRIBUTES) or group['member_of']:
            return True
        records = {m['version']: m['checksum'] for m in self.read_migrations(PLATFORM_SCOPE)}
        for version, statements in platform_migrations():
            if records.get(version) != checksum(_platform_text(statements, self.db.conn)):
                return True  # not applied yet, or applied by a collection that declared it otherwise (refused later)
        return bool(self._shared_security_changes()) or bool(self._database_grant_changes())

    def _ensure_group(self):
        group = self.read_role(TENANTS_GROUP, members=False)
        if group is None:
            self.db.execute(sql.SQL('CREATE ROLE {} WITH {}').format(_i(TENANTS_GROUP), _attributes_sql(GROUP_ATTRIBUTES)),
                            what="create the tenants' group role '%s'" % TENANTS_GROUP)
            return
        changes = _attribute_changes(group, GROUP_ATTRIBUTES)
        if changes:
            self.db.execute(sql.SQL('ALTER ROLE {} WITH {}').format(_i(TENANTS_GROUP), _attributes_sql(changes)),
                            what="reset the attributes of the tenants' group role '%s'" % TENANTS_GROUP)
        for other in group['member_of']:
            self.db.execute(sql.SQL('REVOKE {} FROM {}').format(_i(other), _i(TENANTS_GROUP)),
                            what="revoke membership in '%s' from the tenants' group" % other)

    def _shared_security_changes(self):
        """Statements that put the shared tables' isolation back as declared (empty when it is)."""
        if self.read_schema(SHARED_SCHEMA) is None:
            return []
        out = []
        tables = self.db.rows(
            'SELECT c.relname::text AS name, c.relrowsecurity, c.relforcerowsecurity FROM pg_catalog.pg_class c '
            'WHERE c.relnamespace = %s::regnamespace AND c.relname = ANY(%s)', (SHARED_SCHEMA, list(SHARED_TABLES)),
            what='read the shared tables')
        present = {t['name']: t for t in tables}
        policies = self.db.rows(
            'SELECT c.relname::text AS tablename, p.polname::text AS name, p.polcmd::text AS cmd, p.polpermissive, '
            'ARRAY(SELECT r.rolname::text FROM pg_catalog.pg_roles r WHERE r.oid = ANY(p.polroles)) AS roles, '
            '(0 = ANY(p.polroles)) AS to_public, pg_catalog.pg_get_expr(p.polqual, p.polrelid) AS qual, '
            'pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) AS with_check '
            'FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid = p.polrelid '
            'WHERE c.relnamespace = %s::regnamespace', (SHARED_SCHEMA,), what='read the row-level security policies')
        s = _i(SHARED_SCHEMA)
        for table in SHARED_TABLES:
            if table not in present:
                continue  # the migration check reports a missing table
            t = _i(table)
            if not present[table]['relrowsecurity']:
                out.append(sql.SQL('ALTER TABLE {}.{} ENABLE ROW LEVEL SECURITY').format(s, t))
            if not present[table]['relforcerowsecurity']:
                out.append(sql.SQL('ALTER TABLE {}.{} FORCE ROW LEVEL SECURITY').format(s, t))
            ours = False
            for policy in (p for p in policies if p['tablename'] == table):
                if (policy['name'] == POLICY and policy['cmd'] == '*' and policy['polpermissive']
                        and policy['roles'] == [TENANTS_GROUP] and not policy['to_public']
                        and policy['qual'] == '(tenant = CURRENT_USER)' and policy['with_check'] == '(tenant = CURRENT_USER)'):
                    ours = True
                    continue
                # Any other policy widens or changes what a tenant sees: there is exactly one.
                out.append(sql.SQL('DROP POLICY {} ON {}.{}').format(_i(policy['name']), s, t))
            if not ours:
                out.append(_policy_statement(table))
        out.extend(self._shared_acl_changes())
        return out

    def _shared_acl_changes(self):
        out = []
        current = {}
        for row in self.db.rows(
                'SELECT c.relname::text AS name, c.relkind::text AS kind, coalesce(g.rolname::text, \'PUBLIC\') AS grantee, '
                'x.privilege_type AS privilege FROM pg_catalog.pg_class c CROSS JOIN LATERAL pg_catalog.aclexplode('
                "coalesce(c.relacl, pg_catalog.acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::\"char\", "
                'c.relowner))) x LEFT JOIN pg_catalog.pg_roles g ON g.oid = x.grantee '
                "WHERE c.relnamespace = %s::regnamespace AND c.relkind IN ('r', 'S', 'p') AND x.grantee <> c.relowner",
                (SHARED_SCHEMA,), what='read the grants on the shared tables'):
            kind = 'sequence' if row['kind'] == 'S' else 'table'
            current.setdefault((kind, '%s.%s' % (SHARED_SCHEMA, row['name'])), {}).setdefault(
                row['grantee'], set()).add(row['privilege'])
        schema = self.read_schema(SHARED_SCHEMA)
        current[('schema', SHARED_SCHEMA)] = schema['grants']
        existing = set(current)
        existing.update(self._existing_relations())
        for row in self.db.rows(
                'SELECT p.proname::text AS name, ARRAY(SELECT coalesce(g.rolname::text, \'PUBLIC\') || \':\' || x.privilege_type '
                "FROM pg_catalog.aclexplode(coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))) x "
                'LEFT JOIN pg_catalog.pg_roles g ON g.oid = x.grantee WHERE x.grantee <> p.proowner) AS grants '
                'FROM pg_catalog.pg_proc p WHERE p.pronamespace = %s::regnamespace AND p.proname = ANY(%s) '
                "AND p.proargtypes = '1016'::pg_catalog.oidvector",  # (bigint[])
                (SHARED_SCHEMA, list(DELETE_FUNCTIONS.values())), what='read the grants on the delete functions'):
            key = ('function', '%s.%s' % (SHARED_SCHEMA, row['name']))
            existing.add(key)
            for item in row['grants']:
                grantee, privilege = item.rsplit(':', 1)
                current.setdefault(key, {}).setdefault(grantee, set()).add(privilege)
        revoked = set()  # (table, grantee, privilege): a table-level REVOKE takes the column grants with it
        for key, expected in _expected_shared_acl().items():
            if key not in existing:
                continue
            out.extend(_acl_statements(key[0], key[1], current.get(key, {}), expected))
            if key[0] == 'table':
                for grantee, privileges in current.get(key, {}).items():
                    revoked.update((key[1], grantee, p) for p in privileges - expected.get(grantee, set()))
        columns = {}
        for row in self.db.rows(
                'SELECT c.relname::text AS name, a.attname::text AS column, coalesce(g.rolname::text, \'PUBLIC\') AS grantee, '
                'x.privilege_type AS privilege FROM pg_catalog.pg_class c JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid '
                'CROSS JOIN LATERAL pg_catalog.aclexplode(a.attacl) x LEFT JOIN pg_catalog.pg_roles g ON g.oid = x.grantee '
                'WHERE c.relnamespace = %s::regnamespace AND a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped',
                (SHARED_SCHEMA,), what='read the column grants on the shared tables'):
            columns.setdefault('%s.%s' % (SHARED_SCHEMA, row['name']), set()).add(
                (row['column'], row['grantee'], row['privilege']))
        for table, expected in _expected_column_acl().items():
            if ('table', table) not in existing:
                continue
            have = set(c for c in columns.get(table, set()) if (table, c[1], c[2]) not in revoked)
            for column, grantee, privilege in sorted(have - expected):
                out.append(sql.SQL('REVOKE {} ({}) ON {} FROM {}').format(
                    _privilege(privilege), _i(column), _qualified(table), _grantee(grantee)))
            for column, grantee, privilege in sorted(expected - have):
                out.append(sql.SQL('GRANT {} ({}) ON {} TO {}').format(
                    _privilege(privilege), _i(column), _qualified(table), _grantee(grantee)))
        return out

    def _existing_relations(self):
        rows = self.db.rows("SELECT c.relname::text AS name, c.relkind::text AS kind FROM pg_catalog.pg_class c "
                            "WHERE c.relnamespace = %s::regnamespace AND c.relkind IN ('r', 'S', 'p')", (SHARED_SCHEMA,),
                            what='list the shared tables')
        return {('sequence' if r['kind'] == 'S' else 'table', '%s.%s' % (SHARED_SCHEMA, r['name'])) for r in rows}

    def _ensure_shared_security(self):
        changes = self._shared_security_changes()
        for statement in changes:
            self.db.execute(statement, what='restore the isolation of the shared tables in %s' % SHARED_SCHEMA)
        if changes:
            self.messages.append("isolation of the shared tables restored (%d statements)" % len(changes))

    def _database_grant_changes(self):
        """The platform database: PUBLIC may not connect, create or use TEMP; the tenants' group may connect."""
        database = self.read_database(self.dbname)
        out = []
        public = database['grants'].get('PUBLIC', set())
        if public:
            out.append(sql.SQL('REVOKE ALL ON DATABASE {} FROM PUBLIC').format(_i(self.dbname)))
        group = database['grants'].get(TENANTS_GROUP, set())
        if group != {'CONNECT'}:
            if group - {'CONNECT'}:
                out.append(sql.SQL('REVOKE ALL ON DATABASE {} FROM {}').format(_i(self.dbname), _i(TENANTS_GROUP)))
            out.append(sql.SQL('GRANT CONNECT ON DATABASE {} TO {}').format(_i(self.dbname), _i(TENANTS_GROUP)))
        public_schema = self.read_schema('public')
        if public_schema is not None and 'CREATE' in public_schema['grants'].get('PUBLIC', set()):
            out.append(sql.SQL('REVOKE CREATE ON SCHEMA public FROM PUBLIC'))
        if not self.admin_is_superuser:
            return out  # the server's databases and pg_catalog's functions are the bootstrap superuser's (warned)
        # The server's default databases: a department's logins reach the platform database and their own only.
        for name in self.closed_databases:
            other = self.read_database(name)
            if other is not None and other['grants'].get('PUBLIC'):
                out.append(sql.SQL('REVOKE ALL ON DATABASE {} FROM PUBLIC').format(_i(name)))
        # Advisory locks of the platform database serialise the platform's own runs: nobody else may take them.
        for function in self.db.rows(
                'SELECT p.proname::text AS name, pg_catalog.pg_get_function_identity_arguments(p.oid) AS args '
                'FROM pg_catalog.pg_proc p WHERE p.pronamespace = \'pg_catalog\'::regnamespace AND p.proname ~ %s '
                "AND EXISTS (SELECT 1 FROM pg_catalog.aclexplode(coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))) x "
                "            WHERE x.grantee = 0 AND x.privilege_type = 'EXECUTE') ORDER BY 1, 2",
                (ADVISORY_LOCK_FUNCTIONS,), what='read who may take advisory locks'):
            if function['args'] in ('bigint', 'integer, integer'):  # their only signatures: nothing else is spliced in
                out.append(sql.SQL('REVOKE EXECUTE ON FUNCTION pg_catalog.{}({}) FROM PUBLIC').format(
                    _i(function['name']), sql.SQL(function['args'])))
        return out

    def open_databases(self):
        """Databases other than the platform one (and the n8n databases) that PUBLIC may connect to: a department's
        logins can reach them (reads only; the caller warns)."""
        return [r['name'] for r in self.db.rows(
            'SELECT d.datname::text AS name FROM pg_catalog.pg_database d WHERE d.datallowconn AND d.datname <> %s '
            "AND d.datname !~ '^n8n_' AND EXISTS (SELECT 1 FROM pg_catalog.aclexplode(coalesce(d.datacl, "
            "pg_catalog.acldefault('d', d.datdba))) x WHERE x.grantee = 0 AND x.privilege_type = 'CONNECT') ORDER BY 1",
            (self.dbname,), what='list the databases PUBLIC may connect to')]

    def _ensure_database_grants(self):
        for statement in self._database_grant_changes():
            self.db.execute(statement, what="restrict who reaches the platform database '%s'" % self.dbname)

    # -- the department's role and schema --------------------------------------------------------------------

    def ensure_login_role(self, name, password, attributes, member_of, kind, connection_limit=-1, settings=None):
        """A login role with exactly these attributes, connection limit, password and memberships; with ``settings``
        ({name: value}), exactly these settings at login (ALTER ROLE ... SET) and none for one database only."""
        role = self.read_role(name)
        verifier = dict(password=scram_verifier(password))
        if role is None:
            self.db.execute(sql.SQL('CREATE ROLE {} WITH {} CONNECTION LIMIT {} PASSWORD %(password)s').format(
                _i(name), _attributes_sql(attributes), sql.Literal(connection_limit)), verifier, secret=('password',),
                client_side=True, what="create %s '%s'" % (kind, name))
            self.messages.append("%s '%s' created" % (kind, name))
            role = dict(member_of=[], members=[])
        else:
            changes = _attribute_changes(role, attributes)
            if changes:
                self.db.execute(sql.SQL('ALTER ROLE {} WITH {}').format(_i(name), _attributes_sql(changes)),
                                what="reset the attributes of %s '%s'" % (kind, name))
                self.messages.append("attributes of %s '%s' reset" % (kind, name))
            if not role['valid_forever']:
                self.db.execute(sql.SQL("ALTER ROLE {} VALID UNTIL 'infinity'").format(_i(name)),
                                what="clear the expiry of %s '%s'" % (kind, name))
            if role['rolconnlimit'] != connection_limit:
                self.db.execute(sql.SQL('ALTER ROLE {} CONNECTION LIMIT {}').format(_i(name), sql.Literal(connection_limit)),
                                what="set the connection limit of %s '%s'" % (kind, name))
                self.messages.append("connection limit of %s '%s' set to %d" % (kind, name, connection_limit))
            if not self._password_matches(name, password, role['rolcanlogin']):
                self.db.execute(sql.SQL('ALTER ROLE {} PASSWORD %(password)s').format(_i(name)), verifier,
                                secret=('password',), client_side=True, what="set the password of %s '%s'" % (kind, name))
                self.messages.append("password of %s '%s' set" % (kind, name))
        if settings is not None:
            self._ensure_role_settings(name, settings, kind)
        for other in role['member_of']:
            if other not in member_of:
                self.db.execute(sql.SQL('REVOKE {} FROM {}').format(_i(other), _i(name)),
                                what="revoke membership in '%s' from %s '%s'" % (other, kind, name))
                self.messages.append("membership of %s '%s' in '%s' revoked" % (kind, name, other))
        for group in member_of:
            if group not in role['member_of']:
                self.db.execute(sql.SQL('GRANT {} TO {}').format(_i(group), _i(name)),
                                what="grant membership in '%s' to %s '%s'" % (group, kind, name))
        # Nobody is a member of a department's role, except the admin when it needs SET ROLE to it.
        for member in role['members']:
            if member != self.admin:
                self.db.execute(sql.SQL('REVOKE {} FROM {}').format(_i(name), _i(member)),
                                what="revoke membership in %s '%s' from '%s'" % (kind, name, member))
                self.messages.append("membership of '%s' in %s '%s' revoked" % (member, kind, name))

    def read_role_settings(self, name):
        """{database or None: ['name=value', ...]}: what the role logs in with (None: in every database)."""
        rows = self.db.rows(
            'SELECT d.datname::text AS database, s.setconfig FROM pg_catalog.pg_db_role_setting s '
            'LEFT JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase WHERE s.setrole = %s::regrole',
            (name,), what="read the settings of role '%s'" % name) if self.read_role(name, members=False) else []
        return dict((r['database'], sorted(r['setconfig'] or [])) for r in rows)

    def _ensure_role_settings(self, name, settings, kind):
        """The timeouts a tenant logs in with. A tenant may change its own (ALTER ROLE itself SET, also IN DATABASE):
        every run puts them back."""
        current = self.read_role_settings(name)
        want = sorted('%s=%s' % (key, value) for key, value in settings.items())
        r = _i(name)
        for database in sorted(d for d in current if d is not None):
            self.db.execute(sql.SQL('ALTER ROLE {} IN DATABASE {} RESET ALL').format(r, _i(database)),
                            what="reset the settings of %s '%s' in database '%s'" % (kind, name, database))
        have = current.get(None, [])
        if have == want:
            return
        if set(have) - set(want):
            self.db.execute(sql.SQL('ALTER ROLE {} RESET ALL').format(r), what="reset the settings of %s '%s'" % (kind, name))
            have = []
        for key, value in sorted(settings.items()):
            if '%s=%s' % (key, value) not in have:
                self.db.execute(sql.SQL('ALTER ROLE {} SET {} = {}').format(r, _i(key), sql.Literal(value)),
                                what="set %s of %s '%s'" % (key, kind, name))
        self.messages.append("settings of %s '%s' set" % (kind, name))

    def connection_budget(self):
        """The connection limits of all departments' roles against what the server allows (reads only)."""
        row = self.db.row(
            "SELECT current_setting('max_connections')::int AS max_connections, "
            "current_setting('superuser_reserved_connections')::int AS superuser_reserved_connections, "
            "count(*) FILTER (WHERE r.rolname ~ '^dept_')::int AS tenant_roles, "
            "count(*) FILTER (WHERE r.rolname ~ '^n8n_')::int AS n8n_roles, "
            "coalesce(sum(r.rolconnlimit) FILTER (WHERE r.rolconnlimit >= 0), 0)::int AS limits_sum, "
            "count(*) FILTER (WHERE r.rolconnlimit < 0)::int AS unlimited "
            "FROM pg_catalog.pg_roles r WHERE r.rolcanlogin AND NOT r.rolsuper AND r.rolname ~ '^(dept|n8n)_[a-z]'",
            what='read the connection limits of the departments')
        return dict(row)

    def ensure_admin_can_set_role(self, name):
        """The admin runs migrations as the tenant (SET ROLE): a superuser can; others need membership."""
        if self.admin_is_superuser:
            return
        member = self.db.row("SELECT pg_catalog.pg_has_role(current_user, %s, 'MEMBER') AS ok", (name,),
                             what="check membership in role '%s'" % name)['ok']
        if not member:
            self.db.execute(sql.SQL('GRANT {} TO CURRENT_USER').format(_i(name)),
                            what="grant the admin membership in role '%s'" % name)

    def ensure_schema(self):
        schema = self.read_schema(self.schema)
        s = _i(self.schema)
        if schema is None:
            self.db.execute(sql.SQL('CREATE SCHEMA {}').format(s), what="create schema '%s'" % self.schema)
            self.messages.append("schema '%s' created" % self.schema)
            schema = self.read_schema(self.schema)
        elif schema['owner'] != self.admin:
            self.db.execute(sql.SQL('ALTER SCHEMA {} OWNER TO CURRENT_USER').format(s),
                            what="give schema '%s' to the platform admin" % self.schema)
            self.messages.append("owner of schema '%s' reset" % self.schema)
            schema = self.read_schema(self.schema)
        statements = _acl_statements('schema', self.schema, schema['grants'], {self.role: {'USAGE', 'CREATE'}})
        for statement in statements:
            self.db.execute(statement, what="set the grants on schema '%s'" % self.schema)

    # -- migrations ------------------------------------------------------------------------------------------

    def migrate(self, migrations):
        """Apply the migrations not applied yet, in order, as the tenant; refuse changed or out-of-order ones."""
        applied = {m['version']: m for m in self.read_migrations(self.schema)}
        changed = []
        for migration in migrations:
            record = applied.get(migration['name'])
            if record and record['checksum'] != checksum(migration['sql']):
                changed.append("'%s' (applied %s with checksum %s, the file now renders to %s)" % (
                    migration['name'], record['applied_at'].isoformat(timespec='seconds'), record['checksum'][:12],
                    checksum(migration['sql'])[:12]))
        if changed:
            raise TenantError(
                "Failed to migrate schema '%s' of department '%s' on %s: already applied migration%s changed: %s. "
                'An applied migration is never re-run or changed: restore the file as it was, and put the change in a '
                'new migration.' % (self.schema, self.department, self.db.where, 's' if len(changed) > 1 else '',
                                    '; '.join(changed)))
        given = {m['name'] for m in migrations}
        missing = sorted(set(applied) - given, key=_version_key)
        if missing:
            self.warn("Schema '%s' of department '%s' has applied migrations that were not given: %s. They stay applied."
                      % (self.schema, self.department, ', '.join(missing)))
        latest = max(applied, key=_version_key) if applied else None
        pending = [m for m in migrations if m['name'] not in applied]
        for migration in pending:
            if latest and _version_key(migration['name']) < _version_key(latest):
                raise TenantError(
                    "Failed to migrate schema '%s' of department '%s' on %s: migration '%s' is older than '%s', which is "
                    'already applied. Give the new migration a version after %s.'
                    % (self.schema, self.department, self.db.where, migration['name'], latest, latest))
        if pending:
            self.ensure_admin_can_set_role(self.role)
        for migration in pending:
            self._apply(migration)
        if pending:
            self.messages.append('%d migration%s applied to schema \'%s\'' % (len(pending), '' if len(pending) == 1 else 's', self.schema))
        return [m['name'] for m in pending]

    def _apply(self, migration):
        name = migration['name']
        started = datetime.datetime.now()
        # As the tenant, in its schema: what the migration creates belongs to the tenant, and nothing the
        # tenant planted in its schema (a function shadowing a built-in) ever runs with the admin's rights.
        self.db.execute(sql.SQL('SET LOCAL ROLE {}').format(_i(self.role)), what="become role '%s'" % self.role)
        self.db.execute(sql.SQL('SET LOCAL search_path TO {}').format(_i(self.schema)),
                        what="set the search path to '%s'" % self.schema)
        self.db.queries.append('-- migration %s\n%s' % (name, migration['sql']))
        try:
            with self.db.conn.cursor() as cur:
                cur.execute(migration['sql'].encode('utf-8'))
        except psycopg.Error as exc:
            raise TenantError(
                "Failed to apply migration '%s' to schema '%s' of department '%s' on %s: %s. Nothing was committed: "
                'fix the migration file and run again.' % (name, self.schema, self.department, self.db.where, _pg_message(exc)))
        status = self.db.conn.info.transaction_status
        if status != psycopg.pq.TransactionStatus.INTRANS:
            raise TenantError("Failed to apply migration '%s' to schema '%s' of department '%s': it ended the transaction. "
                              'A migration may not COMMIT or ROLLBACK: remove those statements.'
                              % (name, self.schema, self.department))
        who = self.db.row('SELECT current_user::text AS who', what='check the role after a migration')['who']
        if who != self.role:
            raise TenantError("Failed to apply migration '%s' to schema '%s' of department '%s': it changed the role to "
                              "'%s'. A migration runs as the tenant: remove SET ROLE / RESET ROLE from it."
                              % (name, self.schema, self.department, who))
        self.db.execute(sql.SQL('RESET ROLE'), what='return to the admin role')
        self.db.setting('search_path', 'pg_catalog, pg_temp', 'reset the search path')
        self._record(self.schema, name, checksum(migration['sql']), started)

    def _record(self, scope, version, digest, started):
        elapsed = int((datetime.datetime.now() - started).total_seconds() * 1000)
        self.db.execute(
            sql.SQL('INSERT INTO {}.{} (scope, version, checksum, execution_ms) VALUES '
                    '(%(scope)s, %(version)s, %(checksum)s, %(ms)s)').format(_i(SHARED_SCHEMA), _i(MIGRATIONS_TABLE)),
            dict(scope=scope, version=version, checksum=digest, ms=elapsed),
            what="record migration '%s' of '%s'" % (version, scope))

    # -- the department's knowledge --------------------------------------------------------------------------

    def _knowledge_table(self):
        return self.db.row(sql.SQL("SELECT count(*) AS n FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
                                   "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = 'knowledge'"),
                           (self.schema,), what="look for the knowledge table of '%s'" % self.schema)['n'] > 0

    def sync_knowledge(self, entries):
        """Make the knowledge rows the spec manages (tagged KNOWLEDGE_TAG) exactly ``entries`` ([{topic, answer}]),
        as the tenant; rows the department added itself are left alone. Returns (before, after) {topic: answer}."""
        wanted = dict((e['topic'], e['answer']) for e in entries)
        if not self._knowledge_table():
            return {}, wanted   # check mode before the first migration: everything would be added
        table = sql.SQL('{}.knowledge').format(_i(self.schema))
        current, gone, changes = {}, [], 0
        with self.as_tenant():
            for row in self.db.rows(sql.SQL('SELECT id, topic, answer FROM {} WHERE %s = ANY (tags) ORDER BY id').format(table),
                                    (KNOWLEDGE_TAG,), what="read the knowledge of '%s'" % self.schema):
                if row['topic'] in current or row['topic'] not in wanted:
                    gone.append(row['id'])     # the same topic twice, or a topic the spec no longer has
                current.setdefault(row['topic'], row)
            for topic, answer in wanted.items():
                if topic not in current:
                    self.db.execute(sql.SQL('INSERT INTO {} (topic, question, answer, tags) VALUES '
                                            '(%(topic)s, %(topic)s, %(answer)s, ARRAY[%(tag)s])').format(table),
                                    dict(topic=topic, answer=answer, tag=KNOWLEDGE_TAG),
                                    what="add topic '%s' to the knowledge of '%s'" % (topic, self.schema))
                elif current[topic]['answer'] != answer:
                    self.db.execute(sql.SQL('UPDATE {} SET answer = %(answer)s, updated_at = now() WHERE id = %(id)s'
                                            ).format(table), dict(answer=answer, id=current[topic]['id']),
                                    what="change topic '%s' in the knowledge of '%s'" % (topic, self.schema))
                else:
                    continue
                changes += 1
            if gone:
                self.db.execute(sql.SQL('DELETE FROM {} WHERE id = ANY (%(ids)s)').format(table), dict(ids=gone),
                                what="remove %d topic(s) from the knowledge of '%s'" % (len(gone), self.schema))
        changes += len(gone)
        if changes:
            self.messages.append("knowledge of schema '%s' brought to %d topic%s (%d change%s)" % (
                self.schema, len(wanted), '' if len(wanted) == 1 else 's', changes, '' if changes == 1 else 's'))
        before = dict((t, r['answer']) for t, r in current.items())
        return before, wanted

    # -- the n8n database ------------------------------------------------------------------------------------

    def ensure_n8n_database(self):
        """Owner and grants when the database exists; otherwise queue its creation (outside the transaction)."""
        database = self.read_database(self.n8n_database)
        d = _i(self.n8n_database)
        if database is None:
            self.pending_database = [
                sql.SQL('CREATE DATABASE {} OWNER {} TEMPLATE template0').format(d, _i(self.n8n_role)),
                sql.SQL('REVOKE ALL ON DATABASE {} FROM PUBLIC').format(d),
            ]
            return
        if database['owner'] != self.n8n_role:
            self.db.execute(sql.SQL('ALTER DATABASE {} OWNER TO {}').format(d, _i(self.n8n_role)),
                            what="give database '%s' to role '%s'" % (self.n8n_database, self.n8n_role))
            self.messages.append("owner of database '%s' reset" % self.n8n_database)
            database = self.read_database(self.n8n_database)
        for statement in _acl_statements('database', self.n8n_database, database['grants'], {}):
            self.db.execute(statement, what="restrict who reaches database '%s'" % self.n8n_database)

    def create_pending_database(self, check_mode):
        """CREATE DATABASE cannot run in a transaction: after the commit, in autocommit (predicted in check mode)."""
        if not self.pending_database:
            return
        if check_mode:
            for statement in self.pending_database:
                self.db.queries.append(statement.as_string(self.db.conn))
        else:
            self.db.conn.autocommit = True
            for statement in self.pending_database:
                self.db.execute(statement, what="create database '%s' for role '%s'" % (self.n8n_database, self.n8n_role))
        self.messages.append("database '%s' created" % self.n8n_database)

    # -- removal ---------------------------------------------------------------------------------------------

    def exists(self, n8n):
        found = dict(role=self.read_role(self.role) is not None, schema=self.read_schema(self.schema) is not None,
                     migrations=bool(self.read_migrations(self.schema)))
        if n8n:
            found['n8n_role'] = self.read_role(self.n8n_role) is not None
            found['n8n_database'] = self.read_database(self.n8n_database) is not None
        return found

    def shared_rows(self):
        """{table: rows of this tenant}, read as the tenant (so the policy picks them, whatever the admin may bypass)."""
        if self.read_role(self.role) is None or self.read_schema(SHARED_SCHEMA) is None:
            return {}
        counts = {}
        with self.as_tenant():
            for table in SHARED_TABLES:
                counts[table] = self.db.row(sql.SQL('SELECT count(*) AS n FROM {}.{} WHERE tenant = %s').format(
                    _i(SHARED_SCHEMA), _i(table)), (self.role,), what="count the rows of '%s' in %s" % (self.role, table))['n']
        return counts

    @contextlib.contextmanager
    def as_tenant(self):
        """Statements inside run as the tenant's role for the rest of the transaction's block (row-level security
        applies, and what is created belongs to the tenant); the admin's role comes back after."""
        self.ensure_admin_can_set_role(self.role)
        self.db.rows(sql.SQL('SELECT pg_catalog.set_config(%s, %s, true)'), ('role', self.role), what="become role '%s'" % self.role)
        yield
        self.db.rows(sql.SQL('SELECT pg_catalog.set_config(%s, %s, true)'), ('role', 'none'), what='return to the admin role')

    def disable_logins(self, n8n):
        """Before the backup: nobody writes while it is taken (committed, so sessions see it)."""
        roles = [self.role] + ([self.n8n_role] if n8n else [])
        for name in roles:
            role = self.read_role(name)
            if role is not None and role['rolcanlogin']:
                self.db.execute(sql.SQL('ALTER ROLE {} NOLOGIN').format(_i(name)),
                                what="disable logins of role '%s' before its backup" % name)
        self.db.execute(sql.SQL('SELECT count(pg_catalog.pg_terminate_backend(pid)) FROM pg_catalog.pg_stat_activity '
                                'WHERE usename = ANY(%(roles)s) AND pid <> pg_catalog.pg_backend_pid()'),
                        dict(roles=roles), what='end the sessions of %s' % ', '.join(roles))

    def drop(self, n8n):
        """Drop the tenant (rows, migration records, schema, role) inside the transaction."""
        s = _i(SHARED_SCHEMA)
        role = self.read_role(self.role)
        if role is not None and self.read_schema(SHARED_SCHEMA) is not None:
            # As the admin (superuser or BYPASSRLS): tenants hold no DELETE privilege on the shared tables.
            for table in reversed(SHARED_TABLES):
                self.db.execute(sql.SQL('DELETE FROM {}.{} WHERE tenant = %(tenant)s').format(s, _i(table)),
                                dict(tenant=self.role), what="delete the rows of '%s' in %s" % (self.role, table))
        if self.read_migrations(self.schema):
            self.db.execute(sql.SQL('DELETE FROM {}.{} WHERE scope = %(scope)s').format(s, _i(MIGRATIONS_TABLE)),
                            dict(scope=self.schema), what="delete the migration records of '%s'" % self.schema)
        if self.read_schema(self.schema) is not None:
            self.db.execute(sql.SQL('DROP SCHEMA {} CASCADE').format(_i(self.schema)), what="drop schema '%s'" % self.schema)
            self.messages.append("schema '%s' dropped" % self.schema)
        if role is not None:
            self.db.execute(sql.SQL('DROP OWNED BY {}').format(_i(self.role)), what="drop what role '%s' owns" % self.role)
            self.db.execute(sql.SQL('DROP ROLE {}').format(_i(self.role)), what="drop role '%s'" % self.role)
            self.messages.append("role '%s' dropped" % self.role)

    def drop_n8n(self, check_mode):
        """DROP DATABASE runs outside a transaction: after the commit (predicted in check mode)."""
        statements = []
        if self.read_database(self.n8n_database) is not None:
            statements.append(sql.SQL('DROP DATABASE {} WITH (FORCE)').format(_i(self.n8n_database)))
        if self.read_role(self.n8n_role) is not None:
            statements.append(sql.SQL('DROP ROLE {}').format(_i(self.n8n_role)))
        if check_mode:
            self.db.queries.extend(s.as_string(self.db.conn) for s in statements)
        else:
            self.db.conn.rollback()  # end the reads' transaction: DROP DATABASE runs on its own
            self.db.conn.autocommit = True
            for statement in statements:
                self.db.execute(statement, what="drop the n8n database '%s' and its role" % self.n8n_database)
        if statements:
            self.messages.append("n8n database '%s' and role '%s' dropped" % (self.n8n_database, self.n8n_role))


# -- backups -------------------------------------------------------------------------------------------------


def server_major(db):
    return int(db.row("SELECT current_setting('server_version_num')::int / 10000 AS major", what='read the server version')['major'])


def find_pg_binary(name, major, bin_dir=None):
    """The path of ``name`` (pg_dump) whose major version is at least the server's.

    ``bin_dir`` when given, else the PATH, then the usual install locations of PostgreSQL packages
    (Debian/Ubuntu, RHEL/PGDG, Homebrew, source installs), newest first.
    """
    if bin_dir:
        candidates = [os.path.join(bin_dir, name)]
    else:
        candidates = []
        on_path = shutil.which(name)
        if on_path:
            candidates.append(on_path)
        patterns = ['/usr/lib/postgresql/*/bin', '/usr/pgsql-*/bin', '/opt/homebrew/opt/postgresql@*/bin',
                    '/usr/local/opt/postgresql@*/bin', '/usr/local/pgsql/bin']
        found = []
        for pattern in patterns:
            found.extend(glob.glob(os.path.join(pattern, name)))
        candidates.extend(sorted(found, key=_path_version, reverse=True))
    tried = []
    for path in candidates:
        if not os.access(path, os.X_OK):
            tried.append('%s (not found)' % path)
            continue
        version = _binary_major(path)
        if version is not None and version >= major:
            return path
        tried.append('%s (version %s)' % (path, version))
    raise TenantError('Failed to find %s for PostgreSQL %d: tried %s. Install the PostgreSQL %d client tools or set '
                      'pg_bin_dir to their folder.' % (name, major, ', '.join(tried) or 'nothing on PATH', major))


def _path_version(path):
    match = re.search(r'(\d+)', path)
    return int(match.group(1)) if match else 0


def _binary_major(path):
    try:
        out = subprocess.run([path, '--version'], capture_output=True, text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r'\)\s*(\d+)', out) or re.search(r'(\d+)\.', out)
    return int(match.group(1)) if match else None


def _pg_env(params):
    env = dict(os.environ)
    for key in ('PGPASSWORD', 'PGSERVICE', 'PGSERVICEFILE', 'PGPASSFILE', 'PGOPTIONS'):
        env.pop(key, None)
    env.update(PGHOST=params['login_host'], PGPORT=str(params['login_port']), PGUSER=params['login_user'],
               PGSSLMODE=params['ssl_mode'], PGCONNECT_TIMEOUT=str(params['connect_timeout']))
    if params.get('login_password'):
        env['PGPASSWORD'] = params['login_password']
    return env


def _stamp():
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%dT%H%M%S%fZ')


def _private_file(path):
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), 'wb')


def backup_folder(tenant, backup_dir, subfolder=True):
    """The folder the backups of ``tenant`` go to: <backup_dir>/<dept>, or <backup_dir> itself."""
    return os.path.join(backup_dir, tenant.department) if subfolder else backup_dir


def check_backup_folder(tenant, folder, create):
    """Fail before anything changes when ``folder`` cannot take the backups.

    With ``create`` the folder is made (0700) and a file is written to it and removed; without (check
    mode) the nearest existing folder on the way must be a folder this process may write to.
    """
    try:
        if create:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            probe = os.path.join(folder, '.federation-write-test-%d' % os.getpid())
            with _private_file(probe):
                pass
            os.unlink(probe)
            return
        existing = folder
        while not os.path.lexists(existing):
            existing = os.path.dirname(existing)
        if not os.path.isdir(existing) or not os.access(existing, os.W_OK | os.X_OK):
            raise OSError('%s is not a folder this user may write to' % existing)
    except OSError as exc:
        raise TenantError("Failed to prepare the backup folder %s of department '%s': %s. Nothing was changed; give a "
                          'folder that can be written, or remove without a backup.' % (folder, tenant.department, exc))


def backup_tenant(tenant, params, pg_dump, backup_dir, subfolder=True):
    """Write <backup_dir>/<dept>/tenant-<time>.sql (or <backup_dir>/tenant-<time>.sql without ``subfolder``): pg_dump
    of the schema, then the tenant's shared rows as COPY.

    The file is a psql script. Written to a temporary name and renamed once complete, so a file with
    the final name is always a whole backup.
    """
    folder = backup_folder(tenant, backup_dir, subfolder)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    final = os.path.join(folder, 'tenant-%s.sql' % _stamp())
    partial = final + '.partial'
    db = tenant.db
    with _private_file(partial) as out:
        out.write(('-- Federation backup of the tenant of department %s: schema %s and its rows in the shared tables.\n'
                   '-- Restore as the platform admin into a platform database where role %s exists and schema %s does not:\n'
                   '--   psql -v ON_ERROR_STOP=1 -1 -f <this file>, then provision the department again.\n\n'
                   % (tenant.department, tenant.schema, tenant.role, tenant.schema)).encode('utf-8'))
        out.flush()
        if tenant.read_schema(tenant.schema) is not None:
            proc = subprocess.run([pg_dump, '--schema', '"%s"' % tenant.schema, '--no-password', '--dbname', params['login_db']],
                                  stdout=out, stderr=subprocess.PIPE, env=_pg_env(params), timeout=3600, check=False)
            if proc.returncode != 0:
                os.unlink(partial)
                raise TenantError("Failed to back up schema '%s' of department '%s' on %s: pg_dump said: %s. Nothing was "
                                  'dropped; fix the cause and run again.' % (tenant.schema, tenant.department, db.where,
                                                                             proc.stderr.decode('utf-8', 'replace').strip()[-1500:]))
        out.write(('\n-- Rows of %s in the shared tables of schema %s, and its migration records.\n'
                   % (tenant.role, SHARED_SCHEMA)).encode('utf-8'))
        if tenant.read_schema(SHARED_SCHEMA) is not None:
            copies = []
            if tenant.read_role(tenant.role) is not None:
                tenant.ensure_admin_can_set_role(tenant.role)
                copies = [(t, _COLUMNS[t], 'tenant') for t in SHARED_TABLES]
            copies.append((MIGRATIONS_TABLE, ('scope', 'version', 'checksum', 'applied_at', 'applied_by', 'execution_ms'), 'scope'))
            for table, columns, key in copies:
                as_tenant = key == 'tenant'
                if as_tenant:
                    db.rows(sql.SQL('SELECT pg_catalog.set_config(%s, %s, true)'), ('role', tenant.role), what='become the tenant')
                cols = sql.SQL(', ').join(_i(c) for c in columns)
                target = sql.SQL('{}.{}').format(_i(SHARED_SCHEMA), _i(table))
                out.write(sql.SQL('COPY {} ({}) FROM stdin;\n').format(target, cols).as_string(db.conn).encode('utf-8'))
                try:
                    with db.conn.cursor() as cur:
                        with cur.copy(sql.SQL('COPY (SELECT {} FROM {} WHERE {} = %s ORDER BY 1, 2) TO STDOUT').format(
                                cols, target, _i(key)), (tenant.role if as_tenant else tenant.schema,)) as copy:
                            for data in copy:
                                out.write(bytes(data))
                except psycopg.Error as exc:
                    os.unlink(partial)
                    raise TenantError("Failed to back up the rows of '%s' in %s.%s on %s: %s. Nothing was dropped."
                                      % (tenant.role, SHARED_SCHEMA, table, db.where, _pg_message(exc)))
                out.write(b'\\.\n\n')
                if as_tenant:
                    db.rows(sql.SQL('SELECT pg_catalog.set_config(%s, %s, true)'), ('role', 'none'), what='return to the admin role')
        out.flush()
        os.fsync(out.fileno())
    os.rename(partial, final)
    return final


def backup_n8n_database(tenant, params, pg_dump, backup_dir, subfolder=True):
    """Write <backup_dir>/<dept>/n8n-<time>.dump (pg_dump custom format of the whole n8n database)."""
    if tenant.read_database(tenant.n8n_database) is None:
        return None
    folder = backup_folder(tenant, backup_dir, subfolder)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    final = os.path.join(folder, 'n8n-%s.dump' % _stamp())
    partial = final + '.partial'
    with _private_file(partial) as out:
        proc = subprocess.run([pg_dump, '--format', 'custom', '--no-password', '--dbname', tenant.n8n_database],
                              stdout=out, stderr=subprocess.PIPE, env=_pg_env(params), timeout=3600, check=False)
        if proc.returncode != 0:
            os.unlink(partial)
            raise TenantError("Failed to back up database '%s' of department '%s' on %s: pg_dump said: %s. Nothing was "
                              'dropped; fix the cause and run again.' % (tenant.n8n_database, tenant.department,
                                                                         tenant.db.where, proc.stderr.decode('utf-8', 'replace').strip()[-1500:]))
        out.flush()
        os.fsync(out.fileno())
    os.rename(partial, final)
    return final


# -- helpers -------------------------------------------------------------------------------------------------


def _attribute_changes(role, expected):
    return dict((key, value) for key, value in expected.items() if role.get(key) != value)


_ATTRIBUTE_ORDER = ('rolcanlogin', 'rolsuper', 'rolinherit', 'rolcreaterole', 'rolcreatedb', 'rolreplication', 'rolbypassrls')


def _attributes_sql(attributes):
    return sql.SQL(' ').join(sql.SQL(_ATTRIBUTE_SQL[key][0 if attributes[key] else 1])
                             for key in _ATTRIBUTE_ORDER if key in attributes)


def _privilege(name):
    if name not in _PRIVILEGES:
        raise TenantError('Unknown privilege %r in an ACL' % name)
    return sql.SQL(name)


def _grantee(name):
    return sql.SQL('PUBLIC') if name == 'PUBLIC' else _i(name)


def _qualified(dotted):
    schema, name = dotted.split('.', 1)
    return sql.SQL('{}.{}').format(_i(schema), _i(name))


def _acl_statements(kind, name, current, expected):
    """GRANT/REVOKE statements that turn ``current`` {grantee: {privileges}} into ``expected``."""
    target = {'schema': lambda: sql.SQL('SCHEMA {}').format(_i(name)),
              'database': lambda: sql.SQL('DATABASE {}').format(_i(name)),
              'table': lambda: sql.SQL('TABLE {}').format(_qualified(name)),
              'sequence': lambda: sql.SQL('SEQUENCE {}').format(_qualified(name)),
              'function': lambda: sql.SQL('FUNCTION {}(bigint[])').format(_qualified(name))}[kind]()
    out = []
    for grantee in sorted(set(current) | set(expected)):
        have, want = current.get(grantee, set()), expected.get(grantee, set())
        extra, missing = sorted(have - want), sorted(want - have)
        if extra:
            out.append(sql.SQL('REVOKE {} ON {} FROM {}').format(
                sql.SQL(', ').join(_privilege(p) for p in extra), target, _grantee(grantee)))
        if missing:
            out.append(sql.SQL('GRANT {} ON {} TO {}').format(
                sql.SQL(', ').join(_privilege(p) for p in missing), target, _grantee(grantee)))
    return out


def _sorted_acl(grants):
    return dict((grantee, sorted(privileges)) for grantee, privileges in sorted(grants.items()))


def _public_role(role, password_matches):
    if role is None:
        return None
    out = dict((key[3:], role[key]) for key in _ATTRIBUTE_SQL)
    out.update(member_of=role['member_of'], members=role['members'], valid_forever=role['valid_forever'],
               connection_limit=role['rolconnlimit'])
    if password_matches is not None:
        out['password'] = 'as declared' if password_matches else 'differs'
    return out
