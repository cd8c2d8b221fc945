"""Seconds per phase of the OAuth pieces, against oidc-provider and the Vault stand-in on loopback.

    .venv/bin/python bench/oauth.py [--clients 5] [--departments 10]

Phases: register N clients of one department (one oauth_client call), the same call unchanged, an
update of all of them, the monitor over M departments with live checks, and a department_secrets
call on each backend. Each Ansible call includes Ansible's own start-up (about 1-2 s here).
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import tempfile
import time
from pathlib import Path

# First: makes the repository and the collection importable.
import _paths  # noqa: F401 pylint: disable=unused-import

from tests.harness.oidc import OidcServer  # noqa: E402
from tests.harness.vault_fake import VaultFake  # noqa: E402
from tests.helpers import Ansible  # noqa: E402


def phase(name, func):
    started = time.monotonic()
    result = func()
    print('%-58s %6.2f s' % (name, time.monotonic() - started), flush=True)
    if result.get('failed'):
        raise SystemExit('%s failed: %s' % (name, result.get('msg')))
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--clients', type=int, default=5)
    parser.add_argument('--departments', type=int, default=10)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix='federation-bench-'))
    (home / 'vault-password').write_text(secrets.token_urlsafe(24) + '\n')
    runner = Ansible(home, None)
    started = time.monotonic()
    server = OidcServer().start()
    print('%-58s %6.2f s' % ('oidc-provider start', time.monotonic() - started))
    vault = VaultFake().start()
    try:
        def clients(scopes):
            return [dict(name='c%d' % i, scopes=scopes) for i in range(args.clients)]

        def call(department, scopes):
            return runner.module('federation.platform.oauth_client', dict(
                department=department, path=str(home / 'secrets' / ('%s.yml' % department)),
                registration_endpoint=server.registration_endpoint, initial_access_token=server.initial_access_token,
                token_check=True, clients=clients(scopes)))

        phase('register %d clients with token checks' % args.clients, lambda: call('dept-0', ['calls:read']))
        phase('same call, unchanged', lambda: call('dept-0', ['calls:read']))
        phase('update %d clients (scope added)' % args.clients, lambda: call('dept-0', ['calls:read', 'calls:write']))
        for index in range(1, args.departments):
            call('dept-%d' % index, ['calls:read'])
        departments = ['dept-%d' % i for i in range(args.departments)]
        phase('monitor %d departments, %d live checks' % (args.departments, args.departments * args.clients),
              lambda: runner.module('federation.platform.credential_status', dict(
                  departments=departments, secrets_dir=str(home / 'secrets'))))
        phase('monitor %d departments, no live checks' % args.departments,
              lambda: runner.module('federation.platform.credential_status', dict(
                  departments=departments, secrets_dir=str(home / 'secrets'), live_check=False)))
        phase('department_secrets, file backend (4 generated)', lambda: runner.module(
            'federation.platform.department_secrets', dict(department='bench', path=str(home / 'secrets' / 'bench.yml'),
                                                           generate={'a': {}, 'b': {}, 'c': {}, 'd': {}})))
        phase('department_secrets, hashi_vault backend (4 generated)', lambda: runner.module(
            'federation.platform.department_secrets', dict(department='bench', backend='hashi_vault',
                                                           hashi_vault=dict(url=vault.url, token=vault.root_token),
                                                           generate={'a': {}, 'b': {}, 'c': {}, 'd': {}})))
    finally:
        vault.stop()
        server.remove()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == '__main__':
    main()
