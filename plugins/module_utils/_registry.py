# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: no compatibility promise outside federation.platform.
"""The department registry: provisioning state machine kept in the platform's control schema."""

from __future__ import annotations

import json

from ansible_collections.federation.platform.plugins.module_utils._naming import DEPARTMENT_NAME_PATTERN
from ansible_collections.federation.platform.plugins.module_utils._postgres import sql

CONTROL_SCHEMA = 'federation_control'

STATES = ('requested', 'provisioning', 'active', 'failed', 'deprovisioning', 'deleted')

# Legal transitions: from -> the states it may move to. A department that is
# not registered yet (None) can only be requested.
TRANSITIONS = {
    None: ('requested',),
    'requested': ('provisioning', 'deprovisioning'),
    'provisioning': ('active', 'failed'),
    'active': ('provisioning', 'deprovisioning', 'failed'),
    'failed': ('provisioning', 'deprovisioning'),
    'deprovisioning': ('deleted', 'failed'),
    'deleted': ('requested',),
}


class IllegalTransition(Exception):
    pass


def check_transition(department, current, target):
    """Raise IllegalTransition naming both states when current -> target is not allowed."""
    if current == target:
        return
    allowed = TRANSITIONS[current]
    if target not in allowed:
        raise IllegalTransition(
            "Illegal state transition for department '%s': %s -> %s. From %s it may go to: %s."
            % (department, current or '(not registered)', target, current or '(not registered)', ', '.join(allowed)))


def _ddl():
    schema = sql.Identifier(CONTROL_SCHEMA)
    states = sql.SQL(', ').join(sql.Literal(s) for s in STATES)
    return [
        sql.SQL('CREATE SCHEMA IF NOT EXISTS {}').format(schema),
        sql.SQL(
            'CREATE TABLE IF NOT EXISTS {}.departments ('
            ' name text PRIMARY KEY CHECK (name ~ {pattern}),'
            ' state text NOT NULL CHECK (state IN ({states})),'
            " spec jsonb NOT NULL DEFAULT '{{}}'::jsonb,"
            ' last_error text,'
            ' created_at timestamptz NOT NULL DEFAULT now(),'
            ' updated_at timestamptz NOT NULL DEFAULT now(),'
            ' state_changed_at timestamptz NOT NULL DEFAULT now())'
        ).format(schema, pattern=sql.Literal(DEPARTMENT_NAME_PATTERN), states=states),
        sql.SQL(
            'CREATE TABLE IF NOT EXISTS {}.department_transitions ('
            ' id bigserial PRIMARY KEY,'
            ' department text NOT NULL REFERENCES {}.departments (name) ON DELETE CASCADE,'
            ' from_state text,'
            ' to_state text NOT NULL,'
            ' error text,'
            ' at timestamptz NOT NULL DEFAULT clock_timestamp())'
        ).format(schema, schema),
    ]


class Registry(object):
    """Reads and moves departments through the state machine inside one Database transaction."""

    def __init__(self, db):
        self.db = db

    def ensure_schema(self):
        """Create the control schema once; a second call runs no DDL."""
        present = self.db.row(
            "SELECT to_regclass(%s) AS departments, to_regclass(%s) AS transitions",
            ('%s.departments' % CONTROL_SCHEMA, '%s.department_transitions' % CONTROL_SCHEMA),
            what='look up the control schema')
        if present['departments'] and present['transitions']:
            return False
        self.db.advisory_lock('federation_control.schema')
        for statement in _ddl():
            self.db.execute(statement, what='create the control schema %s' % CONTROL_SCHEMA)
        return True

    def exists(self):
        present = self.db.row("SELECT to_regclass(%s) AS departments",
                              ('%s.departments' % CONTROL_SCHEMA,), what='look up the control schema')
        return bool(present['departments'])

    def get(self, name, lock=False):
        if not self.exists():
            return None
        query = sql.SQL('SELECT name, state, spec, last_error, created_at, updated_at, state_changed_at '
                        'FROM {}.departments WHERE name = %s').format(sql.Identifier(CONTROL_SCHEMA))
        if lock:
            query = query + sql.SQL(' FOR UPDATE')
        row = self.db.row(query, (name,), what="read department '%s'" % name)
        return _public(row) if row else None

    def list(self):
        if not self.exists():
            return []
        rows = self.db.rows(sql.SQL('SELECT name, state, spec, last_error, created_at, updated_at, state_changed_at '
                                    'FROM {}.departments ORDER BY name').format(sql.Identifier(CONTROL_SCHEMA)),
                            what='list departments')
        return [_public(r) for r in rows]

    def history(self, name):
        if not self.exists():
            return []
        rows = self.db.rows(sql.SQL('SELECT from_state, to_state, error, at FROM {}.department_transitions '
                                    'WHERE department = %s ORDER BY id').format(sql.Identifier(CONTROL_SCHEMA)),
                            (name,), what="read the history of department '%s'" % name)
        return [dict(r, at=r['at'].isoformat()) for r in rows]

    def insert(self, name, spec):
        self.db.execute(
            sql.SQL("INSERT INTO {}.departments (name, state, spec) VALUES (%(name)s, 'requested', %(spec)s)")
            .format(sql.Identifier(CONTROL_SCHEMA)),
            {'name': name, 'spec': json.dumps(spec or {}, sort_keys=True)},
            what="register department '%s'" % name)
        self._record(name, None, 'requested', None)

    def transition(self, name, current, target, error=None):
        check_transition(name, current, target)
        self.db.execute(
            sql.SQL('UPDATE {}.departments SET state = %(state)s, last_error = %(error)s, '
                    'updated_at = now(), state_changed_at = now() WHERE name = %(name)s')
            .format(sql.Identifier(CONTROL_SCHEMA)),
            {'state': target, 'error': error, 'name': name},
            what="move department '%s' from %s to %s" % (name, current, target))
        self._record(name, current, target, error)

    def set_error(self, name, error):
        self.db.execute(
            sql.SQL('UPDATE {}.departments SET last_error = %(error)s, updated_at = now() WHERE name = %(name)s')
            .format(sql.Identifier(CONTROL_SCHEMA)),
            {'error': error, 'name': name}, what="record the error of department '%s'" % name)
        self._record(name, 'failed', 'failed', error)

    def set_spec(self, name, spec):
        self.db.execute(
            sql.SQL('UPDATE {}.departments SET spec = %(spec)s, updated_at = now() WHERE name = %(name)s')
            .format(sql.Identifier(CONTROL_SCHEMA)),
            {'spec': json.dumps(spec, sort_keys=True), 'name': name},
            what="update the spec of department '%s'" % name)

    def _record(self, name, from_state, to_state, error):
        self.db.execute(
            sql.SQL('INSERT INTO {}.department_transitions (department, from_state, to_state, error) '
                    'VALUES (%(name)s, %(from_state)s, %(to_state)s, %(error)s)').format(sql.Identifier(CONTROL_SCHEMA)),
            {'name': name, 'from_state': from_state, 'to_state': to_state, 'error': error},
            what="record a transition of department '%s'" % name)


def _public(row):
    out = dict(row)
    for key in ('created_at', 'updated_at', 'state_changed_at'):
        if out.get(key) is not None:
            out[key] = out[key].isoformat()
    return out
