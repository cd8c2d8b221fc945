"""Fixtures of the OAuth and secrets-backend suites: a real oidc-provider, the Vault stand-in,
a FEDERATION_HOME, and helpers to read what the stores hold."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.harness.oidc import OidcServer
from tests.helpers import read_vault_file


@pytest.fixture(scope='session')
def oidc():
    """The session's authorization server (oidc-provider 8.8.1 on loopback)."""
    server = OidcServer().start()
    yield server
    server.remove()


def vault_file(home, department):
    """What a department's ansible-vault secrets file holds ({department, secrets, metadata})."""
    return read_vault_file(home, home / 'secrets' / ('%s.yml' % department))


def http(method, url, body=None, token=None):
    """(status, JSON) of one request to a harness server."""
    headers = {'Accept': 'application/json'}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers['Content-Type'] = 'application/json'
    if token:
        headers['Authorization'] = 'Bearer ' + token
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, json.loads(raw) if raw else None


def output_of(result):
    """Everything a module result shows, as text (to look for secrets in it)."""
    return json.dumps(result, sort_keys=True)


def verbose_run(runner, module, args, check=False):
    """``ansible localhost -m module -vvv`` as a user runs it: (return code, everything printed)."""
    import subprocess
    from tests.helpers import REPO, VENV_BIN
    cmd = [str(VENV_BIN / 'ansible'), 'localhost', '-m', module, '-a', json.dumps(args), '-vvv']
    if check:
        cmd.append('--check')
    proc = subprocess.run(cmd, cwd=str(REPO), env=runner.env(), capture_output=True, text=True, timeout=300, check=False)
    return proc.returncode, proc.stdout + proc.stderr
