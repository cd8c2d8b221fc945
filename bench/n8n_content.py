#!/usr/bin/env python
"""n8n content: bootstrap + apply of one department's credentials and workflows, first run and re-run.

    .venv/bin/python bench/n8n_content.py [--versions 1.123.81,2.41.1] [--database sqlite|postgres] [--runs 3]

For each n8n version: a real n8n of its own (tests/harness, removed at the end), a throw-away PostgreSQL
15 cluster with the tenant table, a stand-in gateway, then playbooks/n8n_content.yml for the department
finance (tools log_call and ask_department): the first run (owner, API key, 2 credentials, 3 workflows,
activation, webhook checks), then --runs re-runs (nothing to change) and one check-mode run. The voice
webhook is called once after the first run to show the content works.

Prints the seconds of each phase and of each task of the first run and of a re-run; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import shutil
import tempfile
import time
import uuid
from pathlib import Path

# First: makes the repository and the collection importable.
import _paths  # noqa: F401 pylint: disable=unused-import

from tests.harness.postgres import temporary_postgres  # noqa: E402  (after the path set-up)
from tests.helpers import Ansible, recap  # noqa: E402
from tests.integration.n8n.support import FakeGateway, TenantDatabase, start_instance  # noqa: E402

TASK_LINE = re.compile(r'^(.*?) -+ ([0-9.]+)s$')


def tasks(output):
    """(task, seconds) from the profile_tasks recap."""
    out = []
    recap_at = output.find('TASKS RECAP')
    for line in output[recap_at:].splitlines():
        match = TASK_LINE.match(line.strip())
        if match:
            out.append((match.group(1).replace('federation.platform.n8n_content : ', ''), float(match.group(2))))
    return out


def bench(version, database, runs, pg):
    print('\n== n8n %s on %s' % (version, database))
    home = Path(tempfile.mkdtemp(prefix='bench-n8n-home-'))
    (home / 'vault-password').write_text(secrets.token_urlsafe(24) + '\n')
    tenant_db = TenantDatabase(pg, 'bench_platform_' + uuid.uuid4().hex[:8])
    n8n_db = None
    if database == 'postgres':
        n8n_db = 'n8n_finance_' + uuid.uuid4().hex[:6]
        pg.create_database(n8n_db)
    gateway = FakeGateway()
    instance = None
    try:
        start = time.monotonic()
        instance = start_instance(version, database=dict(pg.conninfo, dbname=n8n_db) if n8n_db else None)
        print('%-44s %6.1f s' % ('n8n boot (until the API answers)', time.monotonic() - start))
        ansible = Ansible(home, tenant_db.info)
        password = 'Tenant-' + secrets.token_urlsafe(12)
        ansible.module('federation.platform.department_secrets', {
            'department': 'finance', 'path': str(home / 'secrets' / 'finance.yml'),
            'values': {'tenant_db_password': password}})
        tenant_db.add_tenant('finance', password)
        extra = json.dumps({'federation_n8n_url': instance.url, 'federation_gateway_url': gateway.url,
                            'federation_platform_db_from_n8n': {'host': pg.host, 'port': pg.port}})

        def play(*args):
            began = time.monotonic()
            run = ansible.playbook('playbooks/n8n_content.yml', '-e', 'dept=finance', '-e', extra, *args)
            took = time.monotonic() - began
            if run.returncode != 0:
                raise SystemExit('playbook failed:\n' + run.stdout[-4000:] + run.stderr[-2000:])
            return took, run

        took, first = play()
        print('%-44s %6.1f s  (changed=%d)' % ('first run: bootstrap + apply', took, recap(first.stdout)['changed']))
        began = time.monotonic()
        answer = instance.webhook('finance/voice', {'call_id': 'bench', 'caller': 'bench', 'question': 'hello?'})
        print('%-44s %6.2f s  (%s)' % ('voice webhook call', time.monotonic() - began, answer.text[:60]))
        again = []
        for dummy in range(runs):
            took, rerun = play()
            again.append(took)
        print('%-44s %6.1f s  (best of %d: %s; changed=%d)' % (
            're-run', min(again), runs, ', '.join('%.1f' % t for t in again), recap(rerun.stdout)['changed']))
        took, checked = play('--check')
        print('%-44s %6.1f s  (changed=%d)' % ('check-mode run', took, recap(checked.stdout)['changed']))
        for label, output in (('first run', first.stdout), ('re-run', rerun.stdout)):
            print('  tasks of the %s:' % label)
            for name, seconds in tasks(output):
                print('    %-62s %5.2f s' % (name[:62], seconds))
    finally:
        if instance is not None:
            instance.server.remove()
        gateway.stop()
        tenant_db.drop()
        if n8n_db:
            pg.psql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % n8n_db)
        shutil.rmtree(home, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument('--versions', default='1.123.81,2.41.1')
    parser.add_argument('--database', choices=['sqlite', 'postgres'], default='postgres')
    parser.add_argument('--runs', type=int, default=3)
    args = parser.parse_args()
    pg = temporary_postgres()
    try:
        for version in [v for v in args.versions.split(',') if v]:
            bench(version, args.database, args.runs, pg)
    finally:
        pg.remove()


if __name__ == '__main__':
    main()
