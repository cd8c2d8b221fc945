"""The aio_instance role, target vps, against the real Docker engine: over SSH and on localhost."""

from __future__ import annotations

import json
import urllib.request

from tests.harness.docker_objects import health, inspect, wait_healthy
from tests.helpers import recap


def get(url, host=None):
    request = urllib.request.Request(url, headers={'Host': host} if host else {})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return resp.status, resp.read().decode()


def test_role_over_ssh_brings_n8n_up_behind_the_proxy_and_reruns_without_change(role, ssh_host, db_container):
    role.hosts = {'vps1': ssh_host.inventory_host()}
    role.db.create_n8n_database(role.department, role.secrets['n8n_db_password'])

    first = role.run(docker_host='vps1')
    assert first.returncode == 0, first.stdout[-5000:] + first.stderr[-2000:]
    # The Docker work went over SSH to the test host, not through a local connection.
    assert 'localhost -> vps1' in first.stdout
    assert recap(first.stdout)['changed'] > 0

    name = '%s-%s-n8n' % (role.prefix, role.department)
    container = inspect(name)
    assert container['State']['Running']
    assert container['HostConfig']['RestartPolicy']['Name'] == 'unless-stopped'
    assert container['HostConfig']['Memory'] == 1024 ** 3
    assert container['HostConfig']['NanoCpus'] == 10 ** 9
    assert container['Config']['User'] == 'node'
    assert set(container['NetworkSettings']['Networks']) == {'%s-%s' % (role.prefix, role.department)}
    env = dict(item.split('=', 1) for item in container['Config']['Env'])
    assert env['DB_TYPE'] == 'postgresdb'
    assert env['DB_POSTGRESDB_HOST'] == db_container.name
    assert env['DB_POSTGRESDB_DATABASE'] == env['DB_POSTGRESDB_USER'] == 'n8n_ssh_test'
    assert env['WEBHOOK_URL'] == 'http://ssh-test.federation.local:%d/' % role.proxy_port
    for secret in role.secrets.values():
        assert secret not in first.stdout + first.stderr

    # Ready means ready for webhooks: n8n's settings as JSON, straight and through the proxy.
    port = int(container['HostConfig']['PortBindings']['5678/tcp'][0]['HostPort'])
    status, body = get('http://127.0.0.1:%d/rest/settings' % port)
    assert status == 200 and 'data' in json.loads(body)
    status, body = get('http://127.0.0.1:%d/rest/settings' % role.proxy_port, host='ssh-test.federation.local')
    assert status == 200 and 'data' in json.loads(body)
    wait_healthy(name)
    # n8n keeps its tables in its own database in the platform PostgreSQL.
    import psycopg
    with psycopg.connect(**dict(db_container.conninfo, dbname='n8n_ssh_test')) as conn:
        tables = {row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {'workflow_entity', 'credentials_entity', 'user'} <= tables

    second = role.run(docker_host='vps1')
    assert second.returncode == 0, second.stdout[-5000:]
    assert recap(second.stdout)['changed'] == 0, second.stdout[-5000:]
    # The department keeps its port: it is a label of its network.
    assert inspect(name)['HostConfig']['PortBindings']['5678/tcp'][0]['HostPort'] == str(port)
    network = inspect('%s-%s' % (role.prefix, role.department))
    assert network['Labels']['federation.n8n-port'] == str(port)

    checked = role.run(docker_host='vps1', check=True)
    assert checked.returncode == 0, checked.stdout[-5000:]
    assert recap(checked.stdout)['changed'] == 0


def test_unknown_host_names_are_refused_by_the_proxy(role, db_container):
    role.db.create_n8n_database(role.department, role.secrets['n8n_db_password'])
    run = role.run(extra={'aio_instance_health_timeout': 1})  # the proxy alone is what this test looks at
    assert '%s-proxy' % role.prefix in run.stdout
    for host in ('other.federation.local', 'ssh-test.example.org', 'a.ssh-test.federation.local', 'x.federation.local'):
        try:
            get('http://127.0.0.1:%d/' % role.proxy_port, host=host)
            raise AssertionError('the proxy answered for %s' % host)
        except urllib.error.HTTPError as exc:
            assert exc.code in (404, 503), (host, exc.code)


def test_health_timeout_names_department_target_and_last_status(role, db_container):
    # No n8n database: the container waits for it and n8n never answers.
    run = role.run(extra={'aio_instance_health_timeout': 6})
    assert run.returncode != 0
    assert ("Failed to see the container '%s-ssh-test-n8n' of department 'ssh-test' ready within 6 s: it runs, but "
            'http://127.0.0.1:' % role.prefix) in run.stdout
    assert '/rest/settings gave no ready answer; the last one: no HTTP answer (' in run.stdout
    assert 'docker logs %s-ssh-test-n8n' % role.prefix in run.stdout
    for secret in role.secrets.values():
        assert secret not in run.stdout + run.stderr
    assert health('%s-ssh-test-n8n' % role.prefix) in ('starting', 'unhealthy')


def test_a_changed_encryption_key_is_refused_before_anything_changes(role, db_container):
    first = role.run(extra={'aio_instance_health_timeout': 1})
    name = '%s-ssh-test-n8n' % role.prefix
    before = inspect(name)
    assert before is not None, first.stdout[-3000:]

    role.secrets['n8n_encryption_key'] = 'another-key-0123456789abcdef'
    second = role.run(extra={'aio_instance_health_timeout': 1})
    assert second.returncode != 0
    assert ("the secret n8n_encryption_key is not the key the data in volume '%s-ssh-test-n8n' was created with"
            % role.prefix) in second.stdout
    assert 'another-key-0123456789abcdef' not in second.stdout
    assert inspect(name)['Id'] == before['Id']  # the container was left as it was
