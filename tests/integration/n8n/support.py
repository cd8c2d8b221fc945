"""What the n8n suites share: real n8n servers per version, the tenant table, a stand-in gateway,
and a look into n8n's own database to prove what changed and what did not.

The conftest.py files of tests/integration/n8n and tests/e2e/n8n import their fixtures from here.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jinja2
import psycopg
import requests
from psycopg import sql

from tests.harness.common import REPO, free_port
from tests.helpers import db_args
from tests.harness.n8n import N8nServer

N8N_VERSIONS = [v for v in os.environ.get('FEDERATION_N8N_VERSIONS', '1.123.81,2.41.1').split(',') if v]

OWNER_PASSWORD = 'Owner-Passw0rd-' + uuid.uuid4().hex[:8]


# -- n8n ------------------------------------------------------------------------------------------

class Instance(object):
    """A running n8n with what the tests know about it: owner, API key, and its database."""

    def __init__(self, server: N8nServer, database: dict | None = None):
        self.server = server
        self.database = database          # PostgreSQL settings when n8n runs on PostgreSQL
        self.key = None
        self.owner_email = None

    @property
    def url(self):
        return self.server.url

    @property
    def major(self):
        return self.server.major

    @property
    def version(self):
        return self.server.version

    def api(self, method, path, body=None, key=None, **params):
        resp = requests.request(method, self.url + '/api/v1' + path, json=body, params=params or None, timeout=30,
                                headers={'X-N8N-API-KEY': key or self.key})
        return resp

    def workflow(self, name):
        """The workflow with this exact name (full definition), or None."""
        resp = self.api('GET', '/workflows', name=name, limit=250)
        resp.raise_for_status()
        found = [w for w in resp.json()['data'] if w['name'] == name]
        assert len(found) <= 1, found
        if not found:
            return None
        return self.api('GET', '/workflows/%s' % found[0]['id']).json()

    def webhook(self, path, body, timeout=30, headers=None):
        return requests.post(self.url + '/webhook/' + path, json=body, timeout=timeout, headers=headers)

    # n8n's own tables: what a write would change --------------------------------------------

    _SNAPSHOT = {
        'workflow_entity': 'SELECT id, name, active, "versionId", "updatedAt", "staticData", nodes FROM workflow_entity ORDER BY id',
        'credentials_entity': 'SELECT id, name, type, data, "updatedAt" FROM credentials_entity ORDER BY id',
        'tag_entity': 'SELECT id, name FROM tag_entity ORDER BY id',
        'workflows_tags': 'SELECT "workflowId", "tagId" FROM workflows_tags ORDER BY 1, 2',
        'webhook_entity': 'SELECT "workflowId", "webhookPath", method FROM webhook_entity ORDER BY 1, 2, 3',
        'user': 'SELECT id, email, password FROM "user" ORDER BY id',
        'user_api_keys': 'SELECT id, label, "apiKey" FROM user_api_keys ORDER BY id',
    }

    def rows(self, query, params=()):
        if self.database:
            with psycopg.connect(host=self.database['host'], port=self.database['port'], user=self.database['user'],
                                 password=self.database['password'], dbname=self.database['dbname']) as conn:
                return [tuple(map(_plain, row)) for row in conn.execute(query.replace('?', '%s'), params).fetchall()]
        path = Path(self.server.base) / '.n8n' / 'database.sqlite'
        conn = sqlite3.connect('file:%s?mode=ro' % path, uri=True, timeout=10)
        try:
            return [tuple(map(_plain, row)) for row in conn.execute(query, params).fetchall()]
        finally:
            conn.close()

    def execute(self, query, params=()):
        """Change n8n's database behind its back (to reproduce states n8n gets into by itself)."""
        if self.database:
            with psycopg.connect(host=self.database['host'], port=self.database['port'], user=self.database['user'],
                                 password=self.database['password'], dbname=self.database['dbname']) as conn:
                conn.execute(query.replace('?', '%s'), params)
            return
        conn = sqlite3.connect(str(Path(self.server.base) / '.n8n' / 'database.sqlite'), timeout=30)
        try:
            conn.execute(query, params)
            conn.commit()
        finally:
            conn.close()

    def snapshot(self):
        """Every row a write request could change, from n8n's own database."""
        return dict((table, self.rows(query)) for table, query in self._SNAPSHOT.items())

    def static_data(self, name):
        rows = self.rows('SELECT "staticData" FROM workflow_entity WHERE name = ?', (name,))
        if not rows or rows[0][0] is None:
            return None
        value = rows[0][0]
        return json.loads(value) if isinstance(value, str) else value

    def credential_rows(self, name):
        return self.rows('SELECT id, type FROM credentials_entity WHERE name = ? ORDER BY id', (name,))


def _plain(value):
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


def start_instance(version, database=None, env=None) -> Instance:
    server = N8nServer(version=version, database=database, env=dict(env or {}))
    try:
        server.start(timeout=300)
    except Exception:
        server.remove()
        raise
    return Instance(server, database)


# -- the tenant table -------------------------------------------------------------------------------

def tenant_migrations(department):
    """The tenant's migrations as provisioning renders them (templates/migrations/tenant)."""
    folder = REPO / 'templates' / 'migrations' / 'tenant'
    name = department.replace('-', '_')
    names = dict(department=department, schema='dept_' + name, role='dept_' + name)
    return [dict(name=path.name[:-len('.sql.j2')], sql=jinja2.Template(path.read_text()).render(**names))
            for path in sorted(folder.glob('*.sql.j2'))]


class TenantDatabase(object):
    """A platform database of its own, with a department's tenant made by federation.platform.pg_tenant_schema: the
    shared tables (call log, conversations, messages, tool invocations) under row-level security, and the tenant's
    schema with its knowledge."""

    def __init__(self, pg, name):
        self.pg = pg
        self.info = dict(pg.conninfo, dbname=name)
        pg.create_database(name)

    def connect(self, **override):
        settings = dict(self.info)
        settings.update(override)
        return psycopg.connect(host=settings['host'], port=settings['port'], user=settings['user'],
                               password=settings['password'], dbname=settings['dbname'], autocommit=True)

    def execute(self, sql, params=None):
        with self.connect() as conn:
            conn.execute(sql, params)

    def add_tenant(self, ansible, department, password, knowledge=None):
        """The tenant of ``department`` as provisioning makes it (no n8n database: the instance has its own)."""
        args = dict(db_args(self.info), department=department, password=password, n8n_database=False,
                    migrations=tenant_migrations(department))
        if knowledge is not None:
            args['knowledge'] = knowledge
        result = ansible.module('federation.platform.pg_tenant_schema', args)
        assert not result.get('failed'), result
        return 'dept_' + department.replace('-', '_')

    def set_password(self, department, password):
        role = 'dept_' + department.replace('-', '_')
        self.execute(sql.SQL('ALTER ROLE {} PASSWORD {}').format(sql.Identifier(role), sql.Literal(password)))

    def calls(self):
        with self.connect() as conn:
            return conn.execute('SELECT id, tenant, call_id, caller, question, answer FROM federation.call_log '
                                'ORDER BY id').fetchall()

    def drop(self):
        self.pg.psql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % self.info['dbname'])


# -- a stand-in for the API gateway ---------------------------------------------------------------------

class FakeGateway(object):
    """A real HTTP server on loopback that records each request and answers as the target department."""

    def __init__(self):
        self.requests = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get('Content-Length') or 0))
                gateway.requests.append({'method': 'POST', 'path': self.path, 'headers': dict(self.headers.items()),
                                         'body': body.decode('utf-8', 'replace')})
                parts = self.path.strip('/').split('/')
                target = parts[1] if len(parts) > 1 else '?'
                try:
                    question = json.loads(body or b'{}').get('question', '')
                except ValueError:
                    question = ''
                out = json.dumps({'answer': '%s answers: %s' % (target, question)}).encode()
                self.send_response(200)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(('127.0.0.1', free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return 'http://127.0.0.1:%d' % self.server.server_address[1]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def wait(check, timeout=20.0, interval=0.25):
    """Call ``check`` until it returns a true value (or the timeout passes); returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)
