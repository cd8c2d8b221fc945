"""Cold provision and re-run of one department on the local default, in seconds per phase.

    .venv/bin/python bench/provision_local.py [--dept finance] [--keep]

Runs with a FEDERATION_HOME, Docker prefix and ports of its own, so it never touches the machine's
own local default; removes what it made unless --keep. Images must exist (scripts/setup builds
them; their build is measured by playbooks/build_images.yml itself). Phases are the roles of the
provisioning run, from the task timings Ansible prints (profile_tasks). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.harness.common import free_port  # noqa: E402
from tests.harness.docker_objects import build_images, remove_prefixed, unique_prefix  # noqa: E402

BIN = Path(sys.executable).parent
TASK_LINE = re.compile(r'^(?P<name>.+?) -+ (?P<seconds>[0-9.]+)s$')


def phases(output: str) -> OrderedDict:
    """Seconds per role (federation.platform.<role> : task) from the TASKS RECAP of a run."""
    totals = OrderedDict()
    recap = output.split('TASKS RECAP', 1)[-1]
    for line in recap.splitlines():
        match = TASK_LINE.match(line.strip())
        if not match:
            continue
        name = match.group('name')
        role = name.split(' : ', 1)[0].replace('federation.platform.', '') if ' : ' in name else 'playbook'
        totals[role] = totals.get(role, 0.0) + float(match.group('seconds'))
    return totals


def run(cmd, env, what):
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=str(REPO), env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit('%s failed:\n%s\n%s' % (what, proc.stdout[-4000:], proc.stderr[-2000:]))
    return elapsed, proc.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--dept', default='finance')
    parser.add_argument('--keep', action='store_true', help='leave the containers and the home folder')
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix='federation-bench-'))
    (home / 'vault-password').write_text(secrets.token_urlsafe(24) + '\n')
    prefix = unique_prefix('fedbench')
    env = dict(os.environ, FEDERATION_HOME=str(home), FEDERATION_DOCKER_PREFIX=prefix, FEDERATION_PLATFORM_DB_MANAGED='true',
               PROFILE_TASKS_TASK_OUTPUT_LIMIT='all',
               FEDERATION_PLATFORM_DB_PORT=str(free_port()), FEDERATION_PROXY_PORT=str(free_port()),
               ANSIBLE_CONFIG=str(REPO / 'ansible.cfg'), ANSIBLE_NOCOLOR='1', PATH='%s:%s' % (BIN, os.environ.get('PATH', '')))
    env.pop('FEDERATION_PLATFORM_DB_HOST', None)
    results = OrderedDict()
    try:
        started = time.monotonic()
        build_images()
        results['images present (cached build check)'] = time.monotonic() - started

        if not (REPO / 'roles' / 'tenant_database').exists():
            # Until the tenant_database role creates n8n's database, make it the way it would.
            start_db = [str(BIN / 'ansible'), 'localhost', '-m', 'ansible.builtin.include_role', '-a',
                        'name=federation.platform.platform_database']
            seconds, _output = run(start_db, env, 'platform database')
            results['platform database container (before the run)'] = seconds
            password = secrets.token_hex(16)
            run([str(BIN / 'ansible'), 'localhost', '-m', 'federation.platform.department_secrets', '-a', json.dumps({
                'department': args.dept, 'path': str(home / 'secrets' / ('%s.yml' % args.dept)),
                'values': {'n8n_db_password': password}})], env, 'secrets')
            import psycopg
            from psycopg import sql
            name = 'n8n_' + args.dept.replace('-', '_')
            conninfo = dict(host='127.0.0.1', port=int(env['FEDERATION_PLATFORM_DB_PORT']), user='federation',
                            password=(home / 'platform-db-password').read_text().strip(), dbname='federation')
            with psycopg.connect(autocommit=True, **conninfo) as conn:
                conn.execute(sql.SQL('CREATE ROLE {} LOGIN PASSWORD {}').format(sql.Identifier(name), sql.Literal(password)))
                conn.execute(sql.SQL('CREATE DATABASE {} OWNER {}').format(sql.Identifier(name), sql.Identifier(name)))

        for label in ('cold provision', 're-run'):
            seconds, output = run([str(BIN / 'ansible-playbook'), 'provision.yml', '-e', 'dept=%s' % args.dept], env, label)
            results[label] = seconds
            for role, role_seconds in phases(output).items():
                results['  %s: %s' % (label, role)] = role_seconds
    finally:
        if not args.keep:
            remove_prefixed(prefix)
            subprocess.run(['rm', '-rf', str(home)], check=False)

    width = max(len(k) for k in results)
    for key, value in results.items():
        print('%-*s %7.1f s' % (width, key, value))


if __name__ == '__main__':
    main()
