"""Fixtures of the tenant database suite: a platform database, the module, logins as a tenant, catalog snapshots.

Role names are cluster-wide: every test removes the roles and n8n databases it created, so the session's
cluster stays as it was for the next test.
"""

from __future__ import annotations

import contextlib
import io
import json
from unittest import mock

import psycopg
import pytest

from tests.helpers import db_args

MODULE = 'federation.platform.pg_tenant_schema'

INITIAL = ("CREATE TABLE settings (key text PRIMARY KEY, value jsonb NOT NULL);\n"
           "INSERT INTO settings VALUES ('greeting', '\"hello\"');\n")


def connect(db, dbname=None, **kwargs):
    settings = dict(host=db['host'], port=db['port'], user=db['user'], password=db['password'],
                    dbname=dbname or db['dbname'], connect_timeout=5)
    settings.update(kwargs)
    return psycopg.connect(**settings)


def superuser_rows(db, query, params=None, dbname=None):
    with connect(db, dbname) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def leftover_names(db):
    """Department roles and n8n databases present in the cluster."""
    roles = {r[0] for r in superuser_rows(db, "SELECT rolname FROM pg_roles WHERE rolname ~ '^(dept|n8n)_'")}
    databases = {r[0] for r in superuser_rows(db, "SELECT datname FROM pg_database WHERE datname ~ '^n8n_'")}
    return roles, databases


# The departments these tests provision (the end-to-end suites provision some of them too).
DEPARTMENTS = ('finance', 'hr', 'legal', 'field_ops')


def remove_departments(db, keep=(set(), set())):
    """Remove the roles and n8n databases of DEPARTMENTS, and any department role or n8n database not in
    ``keep`` (what existed before the test): role names are cluster-wide and outlive the test's database."""
    roles, databases = leftover_names(db)
    ours = {'%s_%s' % (prefix, d) for prefix in ('dept', 'n8n') for d in DEPARTMENTS}
    roles = {r for r in roles if r in ours or r not in keep[0]}
    databases = {d for d in databases if d in ours or d not in keep[1]}
    with connect(db, 'postgres', autocommit=True) as conn:
        for name in sorted(databases):
            conn.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
        others = [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datallowconn").fetchall()]
    if roles:
        quoted = ', '.join('"%s"' % r for r in sorted(roles))
        for dbname in others:
            with connect(db, dbname, autocommit=True) as conn:
                conn.execute('DROP OWNED BY %s' % quoted)
        with connect(db, 'postgres', autocommit=True) as conn:
            conn.execute('DROP ROLE %s' % quoted)


@pytest.fixture
def tenant_db(platform_db):
    """The test's platform database, in a cluster without these tests' department roles before and after."""
    before = leftover_names(platform_db)
    remove_departments(platform_db, before)
    yield platform_db
    remove_departments(platform_db, before)


class TenantModule(object):
    """Runs pg_tenant_schema against the test's platform database.

    In this process by default (the module's own code, from its argument spec to exit_json, a fraction of a
    second a call); ``via='ansible'`` runs it through the ``ansible`` command as a user does.
    """

    def __init__(self, ansible, db):
        self.ansible = ansible
        self.db = db

    def __call__(self, department, check=False, diff=False, via='process', **args):
        args.setdefault('password', 'pw-%s-1' % department)
        args.setdefault('n8n_password', 'n8n-%s-1' % department)
        args.setdefault('migrations', [dict(name='0001_initial', sql=INITIAL)])
        args = dict(db_args(self.db), department=department, **args)
        if via == 'ansible':
            return self.ansible.module(MODULE, args, check=check, diff=diff)
        return run_in_process(args, check, diff)


def run_in_process(args, check=False, diff=False):
    """The module's result when run here with ``args`` (as AnsibleModule reads them from Ansible)."""
    from ansible.module_utils import _internal
    from ansible.module_utils.common import warnings
    from ansible.module_utils.testing import patch_module_args
    from ansible_collections.federation.platform.plugins.modules import pg_tenant_schema

    warnings._global_warnings.clear()  # pylint: disable=protected-access
    warnings._global_deprecations.clear()  # pylint: disable=protected-access
    out = io.StringIO()
    # A module process is not the controller: its warnings go into its result (the test process may also have
    # loaded controller code, which would send them to the display instead).
    with patch_module_args(dict(args, _ansible_check_mode=check, _ansible_diff=diff)), contextlib.redirect_stdout(out), \
            mock.patch.object(_internal, 'is_controller', False):
        try:
            pg_tenant_schema.main()
        except SystemExit:
            pass
    return json.loads(out.getvalue())


@pytest.fixture
def tenant(ansible, tenant_db):
    return TenantModule(ansible, tenant_db)


def login(db, department, password=None, dbname=None, role=None):
    """A connection as the department's tenant role (autocommit)."""
    role = role or 'dept_' + department.replace('-', '_')
    return connect(db, dbname, user=role, password=password or 'pw-%s-1' % department, autocommit=True)


def catalog(db):
    """Everything a call could change: schemas, relations, roles with their verifiers, memberships, databases
    and their grants, policies, RLS flags, ACLs, and the migration records."""
    snapshot = {}
    queries = {
        'namespaces': "SELECT nspname, nspowner::regrole::text, nspacl::text FROM pg_namespace ORDER BY 1",
        'relations': "SELECT c.oid::regclass::text, c.relkind, c.relowner::regrole::text, c.relacl::text, "
                     "c.relrowsecurity, c.relforcerowsecurity FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                     "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') ORDER BY 1",
        'columns': "SELECT attrelid::regclass::text, attname, attacl::text FROM pg_attribute WHERE attacl IS NOT NULL ORDER BY 1, 2",
        'roles': "SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, "
                 "rolbypassrls, rolconnlimit, rolvaliduntil::text, rolpassword FROM pg_authid ORDER BY 1",
        'members': "SELECT roleid::regrole::text, member::regrole::text FROM pg_auth_members ORDER BY 1, 2",
        'databases': "SELECT datname, datdba::regrole::text, datacl::text FROM pg_database ORDER BY 1",
        'policies': "SELECT polrelid::regclass::text, polname, polcmd, polroles::text, pg_get_expr(polqual, polrelid), "
                    "pg_get_expr(polwithcheck, polrelid) FROM pg_policy ORDER BY 1, 2",
        'role_settings': "SELECT setrole::regrole::text, setdatabase, setconfig::text FROM pg_db_role_setting ORDER BY 1, 2",
        'functions': "SELECT oid::regprocedure::text, proowner::regrole::text, proacl::text, prosecdef, md5(prosrc) FROM pg_proc "
                     "WHERE pronamespace = to_regnamespace('federation') OR proacl IS NOT NULL ORDER BY 1",
    }
    for key, query in queries.items():
        snapshot[key] = superuser_rows(db, query)
    if superuser_rows(db, "SELECT to_regclass('federation.schema_migrations')")[0][0]:
        snapshot['migrations'] = superuser_rows(db, 'SELECT scope, version, checksum, applied_at FROM federation.schema_migrations ORDER BY 1, 2')
    return snapshot
