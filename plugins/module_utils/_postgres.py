# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: no compatibility promise outside federation.platform.
"""The PostgreSQL helper every database module of the collection starts from.

One connection, one transaction per module call. In check mode the work is
done for real inside the transaction, read back, and rolled back, so the
module reports an honest ``changed`` without guessing. Every statement that
changes something is recorded in ``queries`` with secrets left as named
placeholders.
"""

from __future__ import annotations

import traceback

from ansible.module_utils.basic import env_fallback, missing_required_lib

PSYCOPG_IMPORT_ERROR = None
try:
    import psycopg
    from psycopg import sql
    from psycopg.rows import dict_row
except ImportError:  # pragma: no cover - depends on the controller's environment
    psycopg = None
    sql = None
    dict_row = None
    PSYCOPG_IMPORT_ERROR = traceback.format_exc()


def postgres_argument_spec():
    """Connection options shared by every database module (see doc fragment federation.platform.postgres)."""
    return dict(
        login_host=dict(type='str', default='localhost', fallback=(env_fallback, ['PGHOST'])),
        login_port=dict(type='int', default=5432, fallback=(env_fallback, ['PGPORT'])),
        login_user=dict(type='str', default='postgres', fallback=(env_fallback, ['PGUSER'])),
        login_password=dict(type='str', no_log=True, fallback=(env_fallback, ['PGPASSWORD'])),
        login_db=dict(type='str', default='federation', fallback=(env_fallback, ['PGDATABASE'])),
        ssl_mode=dict(type='str', default='prefer',
                      choices=['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']),
        connect_timeout=dict(type='int', default=10),
    )


class DatabaseError(Exception):
    """A database step failed; the message says which step and what the server said."""


def _secret_token(name):
    return '__federation_secret_%s__' % name


class Database(object):
    """A connection to the platform database, used for exactly one transaction."""

    def __init__(self, module):
        self.module = module
        self.check_mode = module.check_mode
        self.queries = []
        self.conn = None
        if psycopg is None:
            module.fail_json(msg=missing_required_lib('psycopg (version 3)'), exception=PSYCOPG_IMPORT_ERROR)

    @property
    def where(self):
        p = self.module.params
        return "PostgreSQL %s:%s database '%s'" % (p['login_host'], p['login_port'], p['login_db'])

    def connect(self, dbname=None):
        p = self.module.params
        kwargs = dict(
            host=p['login_host'], port=p['login_port'], user=p['login_user'],
            dbname=dbname or p['login_db'], sslmode=p['ssl_mode'], connect_timeout=p['connect_timeout'],
            application_name='federation.platform', autocommit=False,
        )
        if p.get('login_password'):
            kwargs['password'] = p['login_password']
        try:
            self.conn = psycopg.connect(**kwargs)
        except psycopg.Error as exc:
            raise DatabaseError(
                "Failed to connect to %s as user '%s': %s. Check the login_* options (or the inventory's "
                "platform database settings) and that the server is running."
                % (self.where, p['login_user'], str(exc).strip()))
        return self.conn

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    # -- statements ----------------------------------------------------------------------------

    def _render(self, query, params, secret):
        """The statement as it is shown in ``queries``: values inlined, secrets as %(name)s."""
        shown = dict(params or {})
        for key in secret:
            shown[key] = _secret_token(key)
        cur = psycopg.ClientCursor(self.conn)
        text = cur.mogrify(query, shown or None)
        for key in secret:
            text = text.replace("'%s'" % _secret_token(key), '%%(%s)s' % key)
        return text

    def execute(self, query, params=None, secret=(), what=None):
        """Run a statement that changes something and record it in ``queries``."""
        self.queries.append(self._render(query, params, secret))
        try:
            with self.conn.cursor() as cur:
                cur.execute(query, params)
        except psycopg.Error as exc:
            raise DatabaseError('Failed to %s on %s: %s' % (what or 'run a statement', self.where, _pg_message(exc)))

    def rows(self, query, params=None, what=None):
        """Run a read-only query and return its rows as dicts (not recorded in ``queries``)."""
        try:
            with self.conn.cursor(row_factory=dict_row) as cur:
                cur.execute(query, params)
                return cur.fetchall()
        except psycopg.Error as exc:
            raise DatabaseError('Failed to %s on %s: %s' % (what or 'read', self.where, _pg_message(exc)))

    def row(self, query, params=None, what=None):
        result = self.rows(query, params, what)
        return result[0] if result else None

    def advisory_lock(self, key):
        """Serialise concurrent runs on ``key`` for the rest of this transaction."""
        self.rows(sql.SQL('SELECT pg_advisory_xact_lock(hashtext(%s))'), (key,), what='take the advisory lock %r' % key)

    def finish(self, changed):
        """Commit, or roll back in check mode (and when nothing changed)."""
        if self.conn is None:
            return
        if self.check_mode or not changed:
            self.conn.rollback()
        else:
            self.conn.commit()

    def abort(self):
        if self.conn is not None:
            try:
                self.conn.rollback()
            except psycopg.Error:
                pass


def _pg_message(exc):
    diag = getattr(exc, 'diag', None)
    primary = getattr(diag, 'message_primary', None) if diag else None
    text = primary or str(exc).strip()
    detail = getattr(diag, 'message_detail', None) if diag else None
    hint = getattr(diag, 'message_hint', None) if diag else None
    for extra in (detail, hint):
        if extra:
            text += ' (%s)' % extra
    return text
