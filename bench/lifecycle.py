"""status.yml and deprovision.yml on the local default, in seconds per run and per phase.

    .venv/bin/python bench/lifecycle.py [--departments 2] [--keep]

Provisions the departments (bench1, bench2, ...; not measured here: see bench/provision_local.py), then times
status.yml, deprovision.yml in check mode, deprovision.yml of the first department (with its roles from the task
timings Ansible prints), deprovision.yml again (nothing left), and status.yml once more. Runs with a
FEDERATION_HOME, Docker prefix and ports of its own, and removes what it made unless --keep. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import signal
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
    """Seconds per role (federation.platform.<role> : task) from the TASKS RECAP of a run; 'playbook' for its own tasks."""
    totals = OrderedDict()
    for line in output.split('TASKS RECAP', 1)[-1].split('ROLES RECAP', 1)[0].splitlines():
        match = TASK_LINE.match(line.strip())
        if not match or match.group('name') == 'total':
            continue
        name = match.group('name')
        role = name.split(' : ', 1)[0].replace('federation.platform.', '') if ' : ' in name else 'playbook'
        totals[role] = totals.get(role, 0.0) + float(match.group('seconds'))
    return totals


def run(cmd, env, what, ok=(0,)):
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=str(REPO), env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if proc.returncode not in ok:
        sys.exit('%s failed:\n%s\n%s' % (what, proc.stdout[-4000:], proc.stderr[-2000:]))
    return elapsed, proc.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--departments', type=int, default=2)
    parser.add_argument('--keep', action='store_true', help='leave the containers and the home folder')
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix='federation-bench-'))
    (home / 'vault-password').write_text(secrets.token_urlsafe(24) + '\n')
    prefix = unique_prefix('fedbench')
    env = dict(os.environ, FEDERATION_HOME=str(home), FEDERATION_DOCKER_PREFIX=prefix, FEDERATION_PLATFORM_DB_MANAGED='true',
               PROFILE_TASKS_TASK_OUTPUT_LIMIT='all',
               FEDERATION_PLATFORM_DB_PORT=str(free_port()), FEDERATION_PROXY_PORT=str(free_port()),
               FEDERATION_GATEWAY_PORT=str(free_port()), FEDERATION_GATEWAY_PEER_PORT=str(free_port()),
               ANSIBLE_CONFIG=str(REPO / 'ansible.cfg'), ANSIBLE_NOCOLOR='1', PATH='%s:%s' % (BIN, os.environ.get('PATH', '')))
    env.pop('FEDERATION_PLATFORM_DB_HOST', None)
    departments = ['bench%d' % (i + 1) for i in range(args.departments)]
    playbook = str(BIN / 'ansible-playbook')
    results = OrderedDict()
    try:
        build_images()
        for dept in departments:
            run([playbook, 'provision.yml', '-e', 'dept=%s' % dept], env, 'provisioning %s' % dept)

        results['status.yml, %d departments healthy' % len(departments)] = run([playbook, 'status.yml'], env, 'status')[0]
        results['deprovision.yml --check'] = run([playbook, 'deprovision.yml', '-e', 'dept=bench1', '--check'], env, 'check')[0]
        seconds, output = run([playbook, 'deprovision.yml', '-e', 'dept=bench1'], env, 'deprovision')
        results['deprovision.yml'] = seconds
        for role, role_seconds in phases(output).items():
            results['  deprovision: %s' % role] = role_seconds
        results['deprovision.yml again (nothing left)'] = run([playbook, 'deprovision.yml', '-e', 'dept=bench1'], env, 're-run')[0]
        results['status.yml, one deleted'] = run([playbook, 'status.yml'], env, 'status')[0]
    finally:
        if not args.keep:
            pidfile = home / 'gateway' / 'run' / 'haproxy.pid'
            if pidfile.exists():
                try:
                    os.kill(int(pidfile.read_text().split()[0]), signal.SIGTERM)
                except (ValueError, ProcessLookupError):
                    pass
            remove_prefixed(prefix)
            subprocess.run(['rm', '-rf', str(home)], check=False)

    width = max(len(k) for k in results)
    for key, value in results.items():
        print('%-*s %7.1f s' % (width, key, value))


if __name__ == '__main__':
    main()
