"""Fixtures of the n8n suite: one real n8n per version for the whole session (on SQLite), bootstrapped
through the module under test. The tenant table and the stand-in gateway are in support.py (used by
tests/e2e/n8n)."""

from __future__ import annotations

import secrets
import uuid

import pytest

from tests.helpers import Ansible
from tests.integration.n8n.support import N8N_VERSIONS, OWNER_PASSWORD, start_instance


@pytest.fixture(scope='session')
def n8n_home(tmp_path_factory):
    home = tmp_path_factory.mktemp('n8n-home')
    (home / 'vault-password').write_text(secrets.token_urlsafe(24) + '\n')
    return home


@pytest.fixture(scope='session')
def n8n_ansible(n8n_home):
    return Ansible(n8n_home, None)


@pytest.fixture(scope='session', params=N8N_VERSIONS)
def n8n_fresh(request):
    """A fresh n8n of each version (no owner yet), for the whole session."""
    instance = start_instance(request.param)
    yield instance
    instance.server.remove()


@pytest.fixture(scope='session')
def n8n(n8n_fresh, n8n_ansible):
    """The same n8n, bootstrapped through federation.platform.n8n_instance: first in check mode, then for real.

    ``n8n.bootstrap`` keeps what happened (check-mode result, snapshots around it, real result) for
    the tests of the bootstrap itself.
    """
    instance = n8n_fresh
    instance.owner_email = 'owner@n8n-test.federation.local'
    args = dict(url=instance.url, owner_email=instance.owner_email, owner_password=OWNER_PASSWORD, api_key='')
    before = instance.snapshot()
    check = n8n_ansible.module('federation.platform.n8n_instance', args, check=True)
    after_check = instance.snapshot()
    real = n8n_ansible.module('federation.platform.n8n_instance', args)
    assert not real.get('failed'), real
    instance.key = real['api_key']
    instance.bootstrap = dict(before=before, check=check, after_check=after_check, real=real)
    return instance


def unsafe(value):
    """Arguments of an ad-hoc command are templated by Ansible: keep n8n's {{ expressions }} as they are."""
    if isinstance(value, dict):
        return dict((k, unsafe(v)) for k, v in value.items())
    if isinstance(value, list):
        return [unsafe(v) for v in value]
    if isinstance(value, str) and ('{{' in value or '{%' in value):
        return '{% raw %}' + value + '{% endraw %}'
    return value


@pytest.fixture
def run(n8n_ansible):
    """run(module, args, check=False, diff=False) -> the module's result."""
    def runner(module, args, check=False, diff=False):
        return n8n_ansible.module('federation.platform.' + module, unsafe(args), check=check, diff=diff)
    return runner


@pytest.fixture
def unique():
    """A short unique suffix, so tests sharing one n8n never see each other's objects."""
    return uuid.uuid4().hex[:8]
