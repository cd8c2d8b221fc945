#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: pg_tenant_schema
short_description: Make a department's tenant in the platform database exactly as declared
version_added: 0.1.0
description:
  - Makes the tenant of one department in the platform database, in one transaction, and nothing else.
  - "Login role C(dept_<name>): LOGIN, INHERIT, no SUPERUSER, CREATEDB, CREATEROLE, REPLICATION or BYPASSRLS, no
    expiry, the connection limit O(connection_limit), the timeouts O(timeouts) at login (C(ALTER ROLE ... SET), no
    other setting, none for a single database), member of exactly the group role C(federation_tenants) and of nothing else; nobody
    is a member of it (except the platform admin when it is not a superuser and needs C(SET ROLE) to it). The
    password is compared with the stored SCRAM verifier, recomputed with its salt and iteration count, and set as a
    verifier computed on the controller, so the clear password never reaches the server."
  - "Schema C(dept_<name>) owned by the platform admin; USAGE and CREATE for the tenant role only."
  - "Shared tables in schema C(federation) (C(call_log), C(conversations), C(messages), C(tool_invocations)) with
    a C(tenant) column that defaults to C(current_user), row-level security ENABLED and FORCED, and one generic
    policy per table, C(tenant = current_user) for the group C(federation_tenants). They are created once (platform
    migrations C(0001_shared_tables) and C(0002_no_table_locks), under an advisory lock); on every call their
    isolation (the RLS flags, the only policy, the grants) is checked and put back when it drifted."
  - "The group holds column privileges only on the shared tables (SELECT, INSERT but C(id), UPDATE but C(id) and
    C(tenant)): no table-level privilege, so no tenant can C(LOCK TABLE) a shared table in any mode. A tenant deletes
    its own rows with C(federation.delete_<table>(ids bigint[])), SECURITY DEFINER functions that delete only the
    rows of the session's login role and return how many they deleted."
  - "The platform database: PUBLIC may not connect, create or use temporary tables, nor take advisory locks (the
    platform's runs serialise on them); the group C(federation_tenants) may connect. PUBLIC may not create in schema
    C(public). PUBLIC may not connect to the databases O(closed_databases) either (the server's default databases)."
  - "The platform's own statements on the shared tables wait at most 3 seconds for a lock and then fail, so that a
    tenant's open transaction never makes other departments queue behind them."
  - Versioned migrations (O(migrations)) applied in order, as the tenant role with the tenant schema as search path,
    and recorded with their SHA-256 checksums in C(federation.schema_migrations). An applied migration whose SQL
    changed is refused, never re-applied. A new migration older than the latest applied one is refused.
  - "With O(n8n_database=true): the department's n8n database C(n8n_<name>), owned by its own login role C(n8n_<name>)
    (member of nothing, connection limit O(n8n_connection_limit)), with no privilege for PUBLIC or anyone else. It is created empty, never copied
    from another instance's database. C(CREATE DATABASE) cannot run in a transaction: it runs after the commit."
  - "O(state=absent) disables the department's logins, ends their sessions, writes the backups into O(backup_dir)
    (C(pg_dump) of the schema followed by the tenant's rows in the shared tables and its migration records as a psql
    script; C(pg_dump) custom format of the n8n database), and only then drops rows, schema, roles and the n8n
    database. Without O(backup_dir) it refuses unless O(force=true)."
  - O(state=dump) writes the same backups into O(backup_dir) and removes nothing; with O(disable_logins=true) it first
    disables the department's logins and ends their sessions, so that nothing is written after the backup (what
    deprovisioning does before it removes the department's other pieces). O(state=present) gives the logins back.
  - Concurrent calls for different departments are safe; calls for the same department wait for each other
    (advisory locks).
author:
  - Federation platform team (@federation)
extends_documentation_fragment:
  - federation.platform.postgres
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
      The work runs in the transaction and is rolled back; creating or dropping the n8n database is predicted.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
      Passwords appear only as V(as declared) or V(differs).
    support: full
options:
  department:
    description:
      - The department (2-31 lowercase letters, digits and single hyphens, starting with a letter).
    type: str
    required: true
  state:
    description:
      - V(present) makes the tenant as declared; V(absent) backs it up and removes it; V(dump) backs it up and
        removes nothing.
      - V(dump) reports a change whenever it wrote a backup, and none when the department has nothing in the
        database (no role, schema, migration records or n8n database).
    type: str
    default: present
    choices: [present, absent, dump]
  password:
    description:
      - Password of the login role C(dept_<name>) (the department's secret C(tenant_db_password)).
      - Required with O(state=present). Never returned or logged.
    type: str
  migrations:
    description:
      - The tenant's migrations, rendered, in version order.
      - Each is applied once, inside the call's transaction, as the tenant role with C(search_path) set to the
        tenant schema. It may not end the transaction or change the role.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description:
          - The version and name, e.g. V(0001_initial) (the file name without C(.sql.j2)). Recorded as the version.
        type: str
        required: true
      sql:
        description:
          - The rendered SQL (one or more statements). Its SHA-256 is recorded and compared on later calls.
        type: str
        required: true
  n8n_database:
    description:
      - Whether the department's n8n database C(n8n_<name>) and its login role C(n8n_<name>) are managed too
        (created with O(state=present), backed up and dropped with O(state=absent)).
    type: bool
    default: true
  n8n_password:
    description:
      - Password of the login role C(n8n_<name>) (the department's secret C(n8n_db_password)).
      - Required with O(state=present) and O(n8n_database=true). Never returned or logged.
    type: str
  knowledge:
    description:
      - What the department's assistant answers about its topics (the spec field C(knowledge)). The rows of its
        C(knowledge) table tagged C(spec) are made exactly these, as the tenant; rows the department added itself
        (without the tag) are left alone. Omitted, the table is not touched.
    type: list
    elements: dict
    suboptions:
      topic:
        description: What a question is about (found in the question, case-insensitive; the longest match wins).
        type: str
        required: true
      answer:
        description: The answer.
        type: str
        required: true
  connection_limit:
    description:
      - How many sessions the login role C(dept_<name>) may have at once (the spec field C(database.connections)).
      - A department that opens more gets C(too many connections for role) itself; the others are not affected.
    type: int
    default: 5
  n8n_connection_limit:
    description:
      - How many sessions the login role C(n8n_<name>) may have at once (the spec field C(database.n8n_connections)).
      - n8n keeps a pool of 4 (C(DB_POSTGRESDB_POOL_SIZE) of the AIO image); the rest is room for its boot and
        migrations, and for the old process while a new one starts.
    type: int
    default: 8
  timeouts:
    description:
      - What the login role C(dept_<name>) logs in with (C(ALTER ROLE ... SET)), in milliseconds; what is not given
        takes the platform's default. V(0) (off) is not allowed.
      - A session may still raise its own with C(SET); the next call puts the role's settings back. See the security
        model for what that leaves.
    type: dict
    suboptions:
      statement_timeout:
        description: The longest a statement may run.
        type: int
        default: 30000
      lock_timeout:
        description: The longest a statement waits for a lock.
        type: int
        default: 5000
      idle_in_transaction_session_timeout:
        description: The longest a session may sit idle inside an open transaction before the server ends it.
        type: int
        default: 60000
  closed_databases:
    description:
      - Databases of the server that PUBLIC may not connect to (nor create temporary tables in), so that a
        department's logins reach the platform database and their own n8n database only. Missing ones are skipped.
      - Roles of other applications that need one of them must be granted C(CONNECT) by name.
      - A warning names any other database PUBLIC may still connect to.
    type: list
    elements: str
    default: [postgres, template1]
  reserved_connections:
    description:
      - Connections the platform keeps for itself (provisioning runs, the registry, backups) beside the server's
        C(superuser_reserved_connections). A warning says when the departments' connection limits together with these
        exceed C(max_connections), that is when departments together could keep each other out.
    type: int
    default: 10
  backup_dir:
    description:
      - With O(state=absent) or O(state=dump), the folder (on the host that runs the module) where the backups are
        written, in a sub-folder named after the department (see O(backup_subfolder)), mode 0600 in a 0700 folder.
      - Required with O(state=dump).
    type: path
  backup_subfolder:
    description:
      - Write the backups into a sub-folder of O(backup_dir) named after the department (V(true)), or straight into
        O(backup_dir) (V(false)), for a caller that names the folder itself, such as one folder per deprovisioning run.
    type: bool
    default: true
  disable_logins:
    description:
      - With O(state=dump), disable the logins of C(dept_<name>) and C(n8n_<name>) and end their sessions before the
        backup is taken (committed, so that running sessions see it), and leave them disabled.
      - O(state=absent) always does this before its backup.
    type: bool
    default: false
  force:
    description:
      - With O(state=absent), remove the tenant without a backup when O(backup_dir) is not given.
    type: bool
    default: false
  pg_bin_dir:
    description:
      - Folder holding C(pg_dump) (needed with O(state=absent) and O(backup_dir)).
      - By default C(pg_dump) is looked up on the E(PATH), then in the usual package locations
        (C(/usr/lib/postgresql/<version>/bin), C(/usr/pgsql-<version>/bin), Homebrew), and the first whose major
        version is at least the server's is used.
    type: path
notes:
  - The platform admin (O(login_user)) must be a superuser, or have CREATEROLE, CREATEDB and BYPASSRLS and own the
    platform database. Role names are cluster-wide, so a cluster holds one platform database.
  - Migrations are trusted code of the collection. They run as the tenant so that what they create belongs to it and
    so that nothing the tenant placed in its schema ever runs with the admin's rights; this is not a sandbox for
    their author.
  - Templates may interpolate the validated department names only; free text must never be rendered into SQL.
  - The isolation model, the migrations, the backups and what was measured are described in
    C(docs/tenant-database.md) of the collection.
'''

EXAMPLES = r'''
- name: Tenant of finance with its migrations and its n8n database
  federation.platform.pg_tenant_schema:
    department: finance
    password: "{{ federation_secrets.tenant_db_password }}"
    n8n_password: "{{ federation_secrets.n8n_db_password }}"
    migrations:
      - name: 0001_initial
        sql: "{{ lookup('ansible.builtin.template', 'migrations/tenant/0001_initial.sql.j2') }}"
    login_host: db.internal
    login_password: "{{ platform_db_password }}"

- name: Remove the tenant of finance after backing it up
  federation.platform.pg_tenant_schema:
    department: finance
    state: absent
    backup_dir: /srv/federation/backups

- name: Back up finance into a folder of this run, and keep anyone from writing after the backup
  federation.platform.pg_tenant_schema:
    department: finance
    state: dump
    backup_dir: /srv/federation/backups/finance/20261125T101010Z
    backup_subfolder: false
    disable_logins: true
'''

RETURN = r'''
tenant:
  description: The names of what the department owns in PostgreSQL.
  returned: always
  type: dict
  sample: {schema: dept_finance, role: dept_finance, n8n_database: n8n_finance, n8n_role: n8n_finance}
connections:
  description: With O(state=present), the departments' connection limits against the server's (after this call).
  returned: when O(state=present)
  type: dict
  sample: {max_connections: 300, superuser_reserved_connections: 3, reserved_connections: 10, tenant_roles: 2,
           n8n_roles: 2, limits_sum: 26, unlimited: 0}
migrations_applied:
  description: The migrations this call applied (or would apply, in check mode), in order.
  returned: always
  type: list
  elements: str
  sample: [0002_faq_tags]
backups:
  description: The backup files written by O(state=absent) or O(state=dump) (none in check mode).
  returned: always
  type: list
  elements: str
  sample: [/srv/federation/backups/finance/tenant-20261125T101010123456Z.sql]
rows_removed:
  description: With O(state=absent), how many rows of the tenant each shared table held.
  returned: when O(state=absent)
  type: dict
  sample: {call_log: 12, conversations: 3, messages: 40, tool_invocations: 7}
rows_backed_up:
  description: With O(state=dump), how many rows of the tenant each shared table held when it was backed up.
  returned: when O(state=dump)
  type: dict
  sample: {call_log: 12, conversations: 3, messages: 40, tool_invocations: 7}
queries:
  description: The statements that changed something, with values inlined and passwords as C(%(password)s).
    Migrations appear as their SQL, preceded by C(-- migration <name>).
  returned: always
  type: list
  elements: str
  sample: ["CREATE SCHEMA \"dept_finance\""]
msg:
  description: What happened, in words.
  returned: always
  type: str
  sample: "tenant of department 'finance': schema 'dept_finance' created; 1 migration applied to schema 'dept_finance'"
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.federation.platform.plugins.module_utils._naming import department_name_error, NAME_RULE
from ansible_collections.federation.platform.plugins.module_utils._postgres import DatabaseError, postgres_argument_spec
from ansible_collections.federation.platform.plugins.module_utils._tenant import (
    N8N_ATTRIBUTES, TENANT_ATTRIBUTES, TENANT_TIMEOUTS, TENANTS_GROUP, Tenant, TenantDatabase, TenantError, backup_folder,
    backup_n8n_database, backup_tenant, check_backup_folder, find_pg_binary, server_major, tenant_settings,
    validate_limits, validate_migrations, validate_password)


def present(module, db, tenant):
    p = module.params
    n8n = p['n8n_database']
    before = tenant.state(p['password'], p['n8n_password'], n8n) if module._diff else None
    tenant.ensure_platform()
    tenant.ensure_login_role(tenant.role, p['password'], TENANT_ATTRIBUTES, [TENANTS_GROUP], 'login role',
                             connection_limit=p['connection_limit'], settings=tenant_settings(p['timeouts']))
    tenant.ensure_schema()
    applied = tenant.migrate(p['migrations'])
    knowledge = tenant.sync_knowledge(p['knowledge']) if p['knowledge'] is not None else None
    if n8n:
        tenant.ensure_login_role(tenant.n8n_role, p['n8n_password'], N8N_ATTRIBUTES, [], 'n8n login role',
                                 connection_limit=p['n8n_connection_limit'])
        tenant.ensure_n8n_database()
    after = tenant.state(p['password'], p['n8n_password'], n8n) if module._diff else None
    connections = connection_warnings(module, tenant)
    changed = bool(db.queries) or bool(tenant.pending_database)
    db.finish(changed)
    tenant.committed = changed and not module.check_mode
    if after is not None and tenant.pending_database:
        after['n8n_database'] = dict(owner=tenant.n8n_role, grants={})
    tenant.create_pending_database(module.check_mode)
    result = dict(changed=changed, migrations_applied=applied, backups=[], connections=connections)
    if module._diff:
        if knowledge is not None:
            before['knowledge'], after['knowledge'] = knowledge
        result['diff'] = dict(before=before, after=after)
    return result


def connection_warnings(module, tenant):
    """Warn when departments could keep each other out of the server, or reach databases not theirs (reads only)."""
    budget = tenant.connection_budget()
    budget['reserved_connections'] = module.params['reserved_connections']
    available = budget['max_connections'] - budget['superuser_reserved_connections'] - budget['reserved_connections']
    if budget['unlimited']:
        module.warn('%d department login role(s) on %s have no connection limit: one of them can take every connection '
                    'of the server. Provision those departments again to give them their limit.'
                    % (budget['unlimited'], tenant.db.where))
    elif budget['limits_sum'] > available:
        module.warn('The connection limits of the departments on %s add up to %d, more than the %d the server leaves them '
                    '(max_connections %d - superuser_reserved_connections %d - reserved_connections %d): together, '
                    'departments could keep another out. Raise max_connections, or lower database.connections / '
                    'database.n8n_connections in the departments\' specs.'
                    % (tenant.db.where, budget['limits_sum'], available, budget['max_connections'],
                       budget['superuser_reserved_connections'], budget['reserved_connections']))
    if not tenant.admin_is_superuser:
        module.warn('The platform admin on %s is not a superuser: PUBLIC keeps what it has on the databases %s and may '
                    'take advisory locks in the platform database. Revoke those as a superuser (see the security model).'
                    % (tenant.db.where, ', '.join(tenant.closed_databases)))
    others = tenant.open_databases()
    if others:
        module.warn("Department logins on %s may connect to database(s) %s (PUBLIC has CONNECT). Add them to "
                    'closed_databases, or revoke CONNECT from PUBLIC there.' % (tenant.db.where, ', '.join(others)))
    return budget


def absent(module, db, tenant):
    p = module.params
    n8n = p['n8n_database']
    found = tenant.exists(n8n)
    if not any(found.values()):
        db.finish(False)
        return dict(changed=False, migrations_applied=[], backups=[], rows_removed={})
    if not p['backup_dir'] and not p['force']:
        raise TenantError(
            "Refusing to remove the tenant of department '%s' on %s: no backup was asked for. Set backup_dir (the schema, "
            "the tenant's rows and its n8n database are dumped there first), or force=true to remove it without a backup."
            % (tenant.department, db.where))
    pg_dump = None
    if p['backup_dir']:
        pg_dump = find_pg_binary('pg_dump', server_major(db), p['pg_bin_dir'])
        check_backup_folder(tenant, backup_folder(tenant, p['backup_dir'], p['backup_subfolder']), not module.check_mode)
    before = tenant.state(None, None, n8n) if module._diff else None
    rows = tenant.shared_rows()
    backups = []
    if module.check_mode:
        tenant.drop(n8n)
        db.finish(True)
        if n8n:
            tenant.drop_n8n(True)
    else:
        # 1. Nobody writes while the backup is taken (committed, so running sessions see it).
        tenant.disable_logins(n8n)
        db.conn.commit()
        tenant.committed = True
        # 2. The backups, then 3. the drop; a failure in 2 leaves the logins disabled and nothing dropped.
        if p['backup_dir']:
            backups.extend(write_backups(tenant, p, pg_dump))
        tenant.drop(n8n)
        db.finish(True)
        if n8n:
            tenant.drop_n8n(False)
    result = dict(changed=True, migrations_applied=[], backups=backups, rows_removed=rows)
    if module._diff:
        result['diff'] = dict(before=before, after={})
    return result


def write_backups(tenant, p, pg_dump):
    """The tenant's backup, then its n8n database's; the files written."""
    written = [backup_tenant(tenant, p, pg_dump, p['backup_dir'], p['backup_subfolder'])]
    if p['n8n_database']:
        dump_file = backup_n8n_database(tenant, p, pg_dump, p['backup_dir'], p['backup_subfolder'])
        if dump_file:
            written.append(dump_file)
    return written


def dump(module, db, tenant):
    p = module.params
    n8n = p['n8n_database']
    found = tenant.exists(n8n)
    if not any(found.values()):
        db.finish(False)
        return dict(changed=False, migrations_applied=[], backups=[], rows_backed_up={})
    pg_dump = find_pg_binary('pg_dump', server_major(db), p['pg_bin_dir'])
    check_backup_folder(tenant, backup_folder(tenant, p['backup_dir'], p['backup_subfolder']), not module.check_mode)
    rows = tenant.shared_rows()
    backups = []
    if module.check_mode:
        # Ending sessions cannot be rolled back: check mode only predicts (changed) and writes nothing.
        db.finish(False)
    else:
        if p['disable_logins']:
            # Nobody writes once the backup is taken (committed, so running sessions see it).
            tenant.disable_logins(n8n)
            db.conn.commit()
            tenant.committed = True
        backups = write_backups(tenant, p, pg_dump)
        db.finish(False)
    return dict(changed=True, migrations_applied=[], backups=backups, rows_backed_up=rows)


def main():
    argument_spec = postgres_argument_spec()
    argument_spec.update(
        department=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=['present', 'absent', 'dump']),
        password=dict(type='str', no_log=True),
        migrations=dict(type='list', elements='dict', default=[],
                        options=dict(name=dict(type='str', required=True), sql=dict(type='str', required=True))),
        n8n_database=dict(type='bool', default=True),
        n8n_password=dict(type='str', no_log=True),
        backup_dir=dict(type='path'),
        backup_subfolder=dict(type='bool', default=True),
        disable_logins=dict(type='bool', default=False),
        force=dict(type='bool', default=False),
        pg_bin_dir=dict(type='path'),
        connection_limit=dict(type='int', default=5),
        n8n_connection_limit=dict(type='int', default=8),
        timeouts=dict(type='dict', options=dict(
            (key, dict(type='int', default=value)) for key, value in sorted(TENANT_TIMEOUTS.items()))),
        closed_databases=dict(type='list', elements='str', default=['postgres', 'template1']),
        reserved_connections=dict(type='int', default=10),
        knowledge=dict(type='list', elements='dict', options=dict(topic=dict(type='str', required=True),
                                                                  answer=dict(type='str', required=True))),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[('state', 'dump', ['backup_dir'])])
    p = module.params
    department = p['department']

    problem = department_name_error(department)
    if problem:
        module.fail_json(msg='Invalid department: %s. A department name has %s.' % (problem, NAME_RULE))
    db = TenantDatabase(module)
    tenant = Tenant(db, department, warn=module.warn)
    tenant.closed_databases = tuple(p['closed_databases'])
    try:
        if p['state'] == 'present':
            validate_password(department, tenant.role, 'password', p['password'])
            if p['n8n_database']:
                validate_password(department, tenant.n8n_role, 'n8n_password', p['n8n_password'])
            validate_migrations(department, p['migrations'])
            entries = p['knowledge'] or []
            topics = [entry['topic'] for entry in entries]
            blank = [e for e in entries if not e['topic'].strip() or not e['answer'].strip()]
            if len(set(topics)) != len(topics) or blank:
                raise TenantError("Invalid knowledge for department '%s': every topic once, each with a topic and an "
                                  'answer that are not blank.' % department)
            validate_limits(department, p['connection_limit'], p['n8n_connection_limit'], p['timeouts'],
                            p['closed_databases'])
            if p['reserved_connections'] < 0:
                raise TenantError("Invalid reserved_connections for department '%s': %d. Give a number of connections, "
                                  '0 or more.' % (department, p['reserved_connections']))
        if p['backup_dir'] and not os.path.isabs(p['backup_dir']):
            raise TenantError("Invalid backup_dir for department '%s': %r is not an absolute path. Give an absolute folder."
                              % (department, p['backup_dir']))
        db.connect()
        tenant.begin()
        result = dict(present=present, absent=absent, dump=dump)[p['state']](module, db, tenant)
    except (DatabaseError, TenantError) as exc:
        db.abort()
        module.fail_json(msg=str(exc), changed=tenant.committed, queries=db.queries)
    except OSError as exc:
        db.abort()
        module.fail_json(msg="Failed to write the backup of department '%s' to %s: %s. Nothing was dropped; give a folder "
                             'that can be written and run again.' % (department, p['backup_dir'], exc),
                         changed=tenant.committed, queries=db.queries)
    finally:
        db.close()
    names = dict(schema=tenant.schema, role=tenant.role)
    if p['n8n_database']:
        names.update(n8n_database=tenant.n8n_database, n8n_role=tenant.n8n_role)
    what = '; '.join(tenant.messages) or {'present': 'as declared, nothing to change', 'absent': 'absent already',
                                          'dump': 'nothing to back up'}[p['state']]
    if p['state'] == 'dump' and result['changed']:
        what = ('would be backed up' if module.check_mode else 'backed up to %s' % ', '.join(result['backups'])) + (
            ', logins disabled' if p['disable_logins'] else '')
    if p['state'] == 'absent' and result['changed']:
        what = ('would be removed' if module.check_mode else 'removed') + (
            ' after backing it up to %s' % ', '.join(result['backups']) if result['backups'] else '') + '; ' + what
    result.update(tenant=names, queries=db.queries, msg="tenant of department '%s': %s" % (department, what))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
