#!/usr/bin/env python
"""Tenant scale: create N department tenants, then roll one new migration over all of them.

    .venv/bin/python bench/tenant_scale.py [--tenants 1000] [--workers 2] [--ansible-sample 3]

Runs against a throw-away PostgreSQL 15 cluster of its own (tests/harness), removed at the end. Each tenant
is made by the module's own entry point (federation.platform.pg_tenant_schema main(), in worker processes),
exactly as one Ansible task would run it, minus Ansible's per-task overhead, which is measured separately
with --ansible-sample (that many calls through the `ansible` command). The n8n databases are left out
(one database per department is a separate cost: about 7 MB and one CREATE DATABASE each).

Prints the seconds of each phase; nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
from unittest import mock
import os
import subprocess
import sys
import time
from multiprocessing import Pool
from pathlib import Path

from _paths import REPO  # first: makes the repository and the collection importable

import jinja2  # noqa: E402  (after the path set-up)

from tests.harness.postgres import temporary_postgres  # noqa: E402

TEMPLATES = REPO / 'templates' / 'migrations' / 'tenant'
BENCH_MIGRATION = dict(name='0002_bench_sources', sql=(
    'ALTER TABLE knowledge ADD COLUMN source text;\n'
    'CREATE INDEX knowledge_tags_idx ON knowledge USING gin (tags);\n'
    "INSERT INTO settings (key, value) VALUES ('bench', 'true');\n"))

_CONN = None


def department(index):
    return 'bench-%04d' % index


def rendered_migrations(name):
    sql_name = name.replace('-', '_')
    names = dict(department=name, schema='dept_' + sql_name, role='dept_' + sql_name,
                 n8n_database='n8n_' + sql_name, n8n_role='n8n_' + sql_name)
    out = []
    for path in sorted(TEMPLATES.glob('*.sql.j2')):
        out.append(dict(name=path.name[:-len('.sql.j2')], sql=jinja2.Template(path.read_text()).render(**names)))
    return out


def run_module(args):
    """The module's main() with ``args``, in this process; returns its result."""
    from ansible.module_utils import _internal
    from ansible.module_utils.common import warnings
    from ansible.module_utils.testing import patch_module_args
    from ansible_collections.federation.platform.plugins.modules import pg_tenant_schema

    warnings._global_warnings.clear()  # pylint: disable=protected-access
    out = io.StringIO()
    with patch_module_args(args), contextlib.redirect_stdout(out), mock.patch.object(_internal, 'is_controller', False):
        try:
            pg_tenant_schema.main()
        except SystemExit:
            pass
    return json.loads(out.getvalue())


def _init(conninfo):
    global _CONN  # pylint: disable=global-statement
    _CONN = conninfo


def provision(job):
    index, extra = job
    name = department(index)
    migrations = rendered_migrations(name) + extra
    result = run_module(dict(_CONN, department=name, password='bench-password-%d' % index, n8n_database=False,
                             migrations=migrations))
    if result.get('failed'):
        raise RuntimeError('%s: %s' % (name, result['msg']))
    return result['changed']


def phase(label, pool, jobs):
    started = time.monotonic()
    changed = sum(1 for c in pool.imap_unordered(provision, jobs, chunksize=8) if c)
    seconds = time.monotonic() - started
    print('%-44s %8.1f s  (%5.1f ms per tenant, %d changed)' % (label, seconds, 1000 * seconds / len(jobs), changed),
          flush=True)
    return seconds


def ansible_sample(conninfo, count):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / 'ansible.cfg'), ANSIBLE_STDOUT_CALLBACK='ansible.builtin.json',
               ANSIBLE_LOAD_CALLBACK_PLUGINS='1')
    started = time.monotonic()
    for index in range(count):
        name = 'sample-%d' % index
        args = dict(conninfo, department=name, password='sample-password', n8n_database=False,
                    migrations=rendered_migrations(name))
        proc = subprocess.run([str(Path(sys.executable).parent / 'ansible'), 'localhost', '-m',
                               'federation.platform.pg_tenant_schema', '-a', json.dumps(args)],
                              cwd=str(REPO), env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(proc.stdout[-2000:] + proc.stderr[-2000:])
    seconds = time.monotonic() - started
    label = '%d tenants through the ansible command' % count
    print('%-44s %8.1f s  (%5.0f ms per call)' % (label, seconds, 1000 * seconds / count), flush=True)


def catalog_size(server, dbname):
    query = ("SELECT (SELECT count(*) FROM pg_roles WHERE rolname LIKE 'dept_%'), (SELECT count(*) FROM pg_namespace "
             "WHERE nspname LIKE 'dept_%'), (SELECT count(*) FROM pg_policy), (SELECT count(*) FROM pg_class), "
             "pg_size_pretty(pg_database_size(current_database()))")
    return server.psql(query, dbname=dbname).strip().split('|')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--tenants', type=int, default=1000)
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--ansible-sample', type=int, default=3)
    args = parser.parse_args(argv)

    server = temporary_postgres()
    try:
        server.create_database('federation')
        conninfo = dict(login_host=server.host, login_port=server.port, login_user=server.user,
                        login_password=server.password, login_db='federation')
        print('PostgreSQL 15 on %s:%d, %d tenants, %d worker processes'
              % (server.host, server.port, args.tenants, args.workers), flush=True)
        total = time.monotonic()
        with Pool(args.workers, initializer=_init, initargs=(conninfo,)) as pool:
            indexes = range(1, args.tenants + 1)
            phase('create %d tenants (role, schema, 0001)' % args.tenants, pool, [(i, []) for i in indexes])
            phase('roll 0002 over %d tenants' % args.tenants, pool, [(i, [BENCH_MIGRATION]) for i in indexes])
            phase('converge again, nothing to change', pool, [(i, [BENCH_MIGRATION]) for i in indexes])
        if args.ansible_sample:
            ansible_sample(conninfo, args.ansible_sample)
        roles, schemas, policies, relations, size = catalog_size(server, 'federation')
        print('catalog: %s tenant roles, %s tenant schemas, %s row-level security policies, %s relations, database %s'
              % (roles, schemas, policies, relations, size))
        print('total %.1f s' % (time.monotonic() - total))
    finally:
        server.remove()


if __name__ == '__main__':
    main()
