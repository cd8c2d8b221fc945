"""What the local-default benchmarks share: a FEDERATION_HOME, Docker prefix and ports of their own (so a run
never touches the machine's own local default), running a playbook, the seconds per role of a run, the table."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict
from pathlib import Path

from _paths import REPO

from tests.harness.common import free_port  # noqa: E402
from tests.harness.docker_objects import remove_prefixed, unique_prefix  # noqa: E402
from tests.helpers import stop_gateway  # noqa: E402

BIN = Path(sys.executable).parent
PLAYBOOK = str(BIN / 'ansible-playbook')
_RECAP_LINE = re.compile(r'^(?P<name>.+?) -+ (?P<seconds>[0-9.]+)s$')


class LocalDefault(object):
    """A throw-away local default: ``env`` for ansible-playbook; ``remove()`` stops its gateway and removes
    its containers, networks, volumes and home."""

    def __init__(self):
        self.home = Path(tempfile.mkdtemp(prefix='federation-bench-'))
        (self.home / 'vault-password').write_text(secrets.token_urlsafe(24) + '\n')
        self.prefix = unique_prefix('fedbench')
        self.env = dict(os.environ, FEDERATION_HOME=str(self.home), FEDERATION_DOCKER_PREFIX=self.prefix,
                        FEDERATION_PLATFORM_DB_MANAGED='true', PROFILE_TASKS_TASK_OUTPUT_LIMIT='all',
                        FEDERATION_PLATFORM_DB_PORT=str(free_port()), FEDERATION_PROXY_PORT=str(free_port()),
                        FEDERATION_GATEWAY_PORT=str(free_port()), FEDERATION_GATEWAY_PEER_PORT=str(free_port()),
                        ANSIBLE_CONFIG=str(REPO / 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
                        PATH='%s:%s' % (BIN, os.environ.get('PATH', '')))
        self.env.pop('FEDERATION_PLATFORM_DB_HOST', None)

    def playbook(self, *args, what=None, ok=(0,)):
        """(seconds, stdout) of ansible-playbook with ``args``; exits with its output when it fails."""
        started = time.monotonic()
        proc = subprocess.run([PLAYBOOK] + list(args), cwd=str(REPO), env=self.env, capture_output=True, text=True,
                              check=False)
        elapsed = time.monotonic() - started
        if proc.returncode not in ok:
            sys.exit('%s failed:\n%s\n%s' % (what or ' '.join(args), proc.stdout[-4000:], proc.stderr[-2000:]))
        return elapsed, proc.stdout

    def remove(self):
        stop_gateway(self.home)
        remove_prefixed(self.prefix)
        subprocess.run(['rm', '-rf', str(self.home)], check=False)


def phases(output: str) -> OrderedDict:
    """Seconds per role from the ROLES RECAP of a run (profile_roles); tasks outside a role are listed by their
    action, and ``total`` is the sum."""
    totals = OrderedDict()
    for line in output.split('ROLES RECAP', 1)[-1].splitlines():
        match = _RECAP_LINE.match(line.strip())
        if match:
            name = match.group('name').replace('federation.platform.', '')
            totals[name] = totals.get(name, 0.0) + float(match.group('seconds'))
    return totals


def report(results: OrderedDict):
    width = max(len(k) for k in results)
    for key, value in results.items():
        print('%-*s %7.1f s' % (width, key, value))
