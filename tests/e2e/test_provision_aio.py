"""provision.yml on the local default, as a user runs it: the platform database in its own container,
finance's n8n container healthy on its tenant database; re-runs change nothing; a container that crashes
while the playbook waits for it fails the run at once with its exit code and log, and the next run converges."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.harness.common import free_port
from tests.harness.docker import ensure_engine
from tests.harness.docker_objects import build_images, inspect, remove_prefixed, unique_prefix
from tests.helpers import Ansible, query, recap, stop_gateway


@pytest.fixture
def local_default(fed_home):
    """The local default's settings with a Docker prefix, ports and FEDERATION_HOME of this test's own."""
    ensure_engine()
    build_images()
    prefix = unique_prefix('fede')
    env = {
        'FEDERATION_DOCKER_PREFIX': prefix,
        'FEDERATION_PLATFORM_DB_MANAGED': 'true',
        'FEDERATION_PLATFORM_DB_PORT': str(free_port()),
        'FEDERATION_PROXY_PORT': str(free_port()),
        'FEDERATION_GATEWAY_PORT': str(free_port()),
        'FEDERATION_GATEWAY_PEER_PORT': str(free_port()),
    }
    yield prefix, env
    stop_gateway(fed_home)
    remove_prefixed(prefix)


def ansible_run(fed_home, env, *args):
    return Ansible(fed_home, None).playbook('provision.yml', *args, env=env)


def platform_db(fed_home, env):
    return dict(host='127.0.0.1', port=int(env['FEDERATION_PLATFORM_DB_PORT']), user='federation',
                password=(fed_home / 'platform-db-password').read_text().strip(), dbname='federation')


def settings(port, host=None):
    request = urllib.request.Request('http://127.0.0.1:%d/rest/settings' % port, headers={'Host': host} if host else {})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return resp.status, json.loads(resp.read())


def post_via_proxy(port, path, host):
    request = urllib.request.Request('http://127.0.0.1:%d%s' % (port, path), data=b'{"question": "hello", "forward_to": "hr"}',
                                     headers={'Host': host, 'Content-Type': 'application/json'}, method='POST')
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_provision_brings_up_finance_on_the_local_default_and_converges_after_a_crash(fed_home, local_default):
    prefix, env = local_default
    first = ansible_run(fed_home, env, '-e', 'dept=finance')
    assert first.returncode == 0, first.stdout[-5000:] + first.stderr[-2000:]
    assert recap(first.stdout)['changed'] > 0
    platform = inspect('%s-platform-db' % prefix)
    assert platform['State']['Running'] and platform['Config']['User'] == 'postgres'
    db = platform_db(fed_home, env)
    assert query(db, "SELECT state FROM federation_control.departments WHERE name = 'finance'") == [('active',)]

    name = '%s-finance-n8n' % prefix
    container = inspect(name)
    port = int(container['HostConfig']['PortBindings']['5678/tcp'][0]['HostPort'])
    assert settings(port)[0] == 200
    assert settings(int(env['FEDERATION_PROXY_PORT']), host='finance.federation.local')[0] == 200
    # The assistant's webhook answers the gateway on loopback, never a request through the host's proxy.
    for path in ('/webhook/finance/voice', '//WEBHOOK/finance/voice', '/webhook-test/finance/voice'):
        assert post_via_proxy(int(env['FEDERATION_PROXY_PORT']), path, 'finance.federation.local') == 403, path
    # n8n's tables are in the tenant database n8n_finance of the platform database's container.
    tables = query(dict(db, dbname='n8n_finance'), "SELECT count(*) FROM pg_tables WHERE tablename = 'workflow_entity'")
    assert tables == [(1,)]
    env_of = dict(item.split('=', 1) for item in container['Config']['Env'])
    assert env_of['DB_POSTGRESDB_HOST'] == '%s-platform-db' % prefix and env_of['DB_POSTGRESDB_PORT'] == '5432'
    assert env_of['DB_POSTGRESDB_PASSWORD'] not in first.stdout

    # A container that crashes at once (here: an option Node.js refuses) ends the wait within seconds, with the
    # department, the container, its exit code and its log; the registry records it, and the next run converges.
    broken = ansible_run(fed_home, env, '-e', 'dept=finance', '-e', '{"aio_instance_env": {"NODE_OPTIONS": "--no-such-node-option"}}',
                         '-e', 'aio_instance_health_timeout=600')
    assert broken.returncode != 0, broken.stdout[-4000:]
    assert "Failed to start the container '%s' of department 'finance': it exited with code 9" % name in broken.stdout, \
        broken.stdout[-4000:]
    assert '--no-such-node-option' in broken.stdout
    assert env_of['DB_POSTGRESDB_PASSWORD'] not in broken.stdout
    state, error = query(db, "SELECT state, last_error FROM federation_control.departments WHERE name = 'finance'")[0]
    assert state == 'failed'
    assert "of department 'finance': it exited with code 9" in error

    third = ansible_run(fed_home, env, '-e', 'dept=finance')
    assert third.returncode == 0, third.stdout[-5000:]
    assert recap(third.stdout)['changed'] > 0
    assert inspect(name)['State']['Running']
    assert settings(port)[0] == 200
    assert query(db, "SELECT state FROM federation_control.departments WHERE name = 'finance'") == [('active',)]

    fourth = ansible_run(fed_home, env, '-e', 'dept=finance')
    assert fourth.returncode == 0, fourth.stdout[-5000:]
    assert recap(fourth.stdout)['changed'] == 0, fourth.stdout[-6000:]

    # A controller whose platform database password is not the one the data was made with (a new FEDERATION_HOME
    # on a Docker host used before) is told so at once, with what to do, instead of retrying a refused login.
    (fed_home / 'platform-db-password').write_text('not-the-password-the-data-was-made-with\n')
    wrong = ansible_run(fed_home, env, '-e', 'dept=finance')
    assert wrong.returncode != 0
    assert ("volume %s-platform-db was made with another password than the one this controller holds" % prefix
            in ' '.join(wrong.stdout.split())), wrong.stdout[-4000:]
    assert 'attempts: 30' not in wrong.stdout
