"""A department's whole life on the local default: provision.yml, status.yml, deprovision.yml, and provision.yml again.

``ops`` (no spec file: the defaults) is provisioned, reported healthy, refused deprovisioning while no backup can
be written, deprovisioned after a backup (which restores), reported deleted, deprovisioned again without a change,
provisioned again with new secrets, and finally removed without a backup through the explicit override.

The tests of this module run in order on one site (see conftest.py).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import urllib.error
import urllib.request

import psycopg
import pytest

from tests.harness.docker_objects import docker, inspect, wait_healthy
from tests.helpers import query, read_vault_file, recap

DEPT = 'ops'


def run(site, playbook, *args):
    result = site.runner.playbook(playbook, *args, env=site.env)
    site.outputs.append(result.stdout + result.stderr)
    return result


def deprovision(site, *args):
    return run(site, 'deprovision.yml', '-e', 'dept=%s' % DEPT, *args)


def status(site, *args):
    report = site.home / 'reports' / ('status-%s.json' % secrets.token_hex(4))
    result = run(site, 'status.yml', '-e', 'status_report=%s' % report, *args)
    return result, json.loads(report.read_text()) if report.exists() else None


def http(method, url, body=None, headers=None, timeout=15):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=dict({'Content-Type': 'application/json'}, **(headers or {})))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, resp.read().decode(errors='replace')
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors='replace')


def registry(site):
    return query(site.db, 'SELECT state, last_error FROM federation_control.departments WHERE name = %s', (DEPT,))


def history(site):
    return query(site.db, 'SELECT from_state, to_state FROM federation_control.department_transitions '
                          'WHERE department = %s ORDER BY id', (DEPT,))


def names(site, dept=DEPT):
    prefix = site.runner.docker_prefix
    return dict(container='%s-%s-n8n' % (prefix, dept), network='%s-%s' % (prefix, dept), volume='%s-%s-n8n' % (prefix, dept))


def docker_objects(site):
    """Which of the department's container, network and volume exist."""
    n = names(site)
    return dict(container=inspect(n['container']) is not None,
                network=docker('network', 'inspect', n['network'], check=False).returncode == 0,
                volume=docker('volume', 'inspect', n['volume'], check=False).returncode == 0)


def database_objects(site):
    return dict(
        schema=query(site.db, "SELECT count(*) FROM pg_namespace WHERE nspname = 'dept_ops'")[0][0],
        roles=query(site.db, "SELECT count(*) FROM pg_roles WHERE rolname IN ('dept_ops', 'n8n_ops')")[0][0],
        n8n_database=query(site.db, "SELECT count(*) FROM pg_database WHERE datname = 'n8n_ops'")[0][0],
        rows=query(site.db, "SELECT count(*) FROM federation.call_log WHERE tenant = 'dept_ops'")[0][0])


def routed(site):
    record = json.loads((site.home / 'gateway' / 'departments.json').read_text())
    return [d['name'] for d in record['departments']]


def snapshot(site):
    """What a deprovisioning run could change."""
    return dict(
        catalog=query(site.db, "SELECT rolname, rolcanlogin, rolpassword FROM pg_authid ORDER BY 1")
        + query(site.db, "SELECT nspname FROM pg_namespace ORDER BY 1")
        + query(site.db, "SELECT datname FROM pg_database ORDER BY 1")
        + query(site.db, "SELECT name, state, updated_at FROM federation_control.departments ORDER BY 1")
        + query(site.db, "SELECT count(*) FROM federation.call_log"),
        container=(inspect(names(site)['container']) or {}).get('Id'),
        docker=docker_objects(site),
        gateway=(site.home / 'gateway' / 'departments.json').read_text(),
        secrets=(site.home / 'secrets' / ('%s.yml' % DEPT)).read_bytes(),
        backups=sorted(os.listdir(site.home / 'backups')) if (site.home / 'backups').exists() else None)


def decrypt(site, path):
    return read_vault_file(site.home, path)


def backup_folders(site):
    folder = site.home / 'backups' / DEPT
    return sorted(folder.iterdir()) if folder.exists() else []


def proxy(site):
    """The Docker host's reverse proxy, asked for the department's host name."""
    return http('GET', 'http://127.0.0.1:%d/rest/settings' % site.runner.proxy_port,
                headers={'Host': '%s.federation.local:%d' % (DEPT, site.runner.proxy_port)})[0]


@pytest.fixture(scope='module')
def state():
    """What the tests of this module hand on to the next one."""
    return {}


def test_provision_and_status_shows_it_healthy(site, state):
    site.provision(DEPT)
    assert registry(site) == [('active', None)]
    old = site.secrets(DEPT)
    state['secrets'] = old
    db = dict(site.db, user='dept_ops', password=old['tenant_db_password'])
    with psycopg.connect(autocommit=True, **{k: db[k] for k in ('host', 'port', 'user', 'password', 'dbname')}) as conn:
        conn.execute("INSERT INTO federation.call_log (call_id, question, answer) "
                     "VALUES ('lifecycle-1', 'Who is on call tonight?', 'Dana')")

    result, report = status(site)
    assert result.returncode == 0, result.stdout[-4000:]
    assert recap(result.stdout)['changed'] == 0
    row = next(d for d in report['departments'] if d['name'] == DEPT)
    assert (row['state'], row['health'], row['needs_attention']) == ('active', 'healthy', False)
    assert {k: c['ok'] for k, c in row['checks'].items()} == {'n8n': True, 'route': True, 'tenant': True}
    assert row['checks']['n8n']['url'] == site.webhook_base(DEPT).replace('/webhook', '/rest/settings')
    assert row['state_changed_at'] and row['last_error'] is None
    assert report['summary'] == {'total': 1, 'counts': {'healthy': 1}, 'needs_attention': []}
    assert 'DEPARTMENT' in result.stdout and 'healthy' in result.stdout

    checked, dummy = status(site, '--check')
    assert checked.returncode == 0 and recap(checked.stdout)['changed'] == 0


def test_status_fails_when_the_department_is_not_healthy(site):
    container = names(site)['container']
    docker('stop', container)
    try:
        result, report = status(site)
        assert result.returncode != 0
        assert '1 of 1 departments need attention: ops' in result.stdout
        row = report['departments'][0]
        assert row['health'] == 'unhealthy' and row['needs_attention'] is True
        assert row['checks']['n8n']['ok'] is False and row['checks']['tenant']['ok'] is True
    finally:
        docker('start', container)
        wait_healthy(container)


def test_deprovision_of_an_unregistered_department_is_refused(site):
    result = run(site, 'deprovision.yml', '-e', 'dept=nobody')
    assert result.returncode != 0
    assert "Failed to deprovision department 'nobody': it is not registered in the platform registry" in result.stdout
    assert query(site.db, "SELECT count(*) FROM federation_control.departments WHERE name = 'nobody'") == [(0,)]


def test_check_mode_of_deprovision_changes_nothing(site):
    before = snapshot(site)
    result = deprovision(site, '--check', '--diff')
    assert result.returncode == 0, result.stdout[-6000:]
    assert recap(result.stdout)['changed'] > 0, 'the removal is predicted'
    assert snapshot(site) == before
    assert registry(site) == [('active', None)]


def test_deprovision_refuses_when_no_backup_can_be_written(site):
    before = snapshot(site)
    blocker = site.home / 'backups'
    assert not blocker.exists()
    blocker.write_text('a file where the backup folder should be\n')
    try:
        result = deprovision(site)
    finally:
        blocker.unlink()
    assert result.returncode != 0
    output = ' '.join(result.stdout.split())
    assert "Deprovisioning of department 'ops' failed at" in output
    assert 'Nothing of the department was removed: without a backup it is not removed' in output
    assert '-e deprovision_skip_backup=true' in output
    state, error = registry(site)[0]
    assert state == 'failed' and 'Failed to archive the secrets of department' in error
    after = snapshot(site)
    assert {k: after[k] for k in ('container', 'docker', 'gateway', 'secrets')} == \
        {k: before[k] for k in ('container', 'docker', 'gateway', 'secrets')}, 'nothing was removed'
    assert database_objects(site) == dict(schema=1, roles=2, n8n_database=1, rows=1)
    assert query(site.db, "SELECT bool_and(rolcanlogin) FROM pg_roles WHERE rolname IN ('dept_ops', 'n8n_ops')") == [(True,)]

    # A failed department needs attention.
    failed, report = status(site)
    assert failed.returncode != 0 and report['departments'][0]['health'] == 'failed'


def test_deprovision_backs_up_then_removes_everything(site, state):
    token = state['secrets']['gateway_token']
    assert http('POST', site.gateway_url + '/dept/ops/ops/voice', {}, {'Authorization': 'Bearer ' + token})[0] == 403, \
        'before: the token is known to the gateway (a department may not call itself)'
    assert proxy(site) == 200

    result = deprovision(site)
    assert result.returncode == 0, result.stdout[-6000:]
    assert recap(result.stdout)['changed'] > 0
    assert registry(site) == [('deleted', None)]
    assert history(site) == [(None, 'requested'), ('requested', 'provisioning'), ('provisioning', 'active'),
                             ('active', 'deprovisioning'), ('deprovisioning', 'failed'),
                             ('failed', 'deprovisioning'), ('deprovisioning', 'deleted')]

    folders = backup_folders(site)
    assert len(folders) == 1, folders
    backup = folders[0]
    assert "Its backup: %s" % backup in ' '.join(result.stdout.split())
    files = sorted(os.listdir(backup))
    assert [f.split('-')[0] if '-' in f else f for f in files] == ['department.json', 'n8n', 'secrets.yml', 'tenant'], files
    assert files[1].endswith('.dump') and files[3].endswith('.sql')
    assert oct(backup.stat().st_mode & 0o777) == '0o700'
    manifest = json.loads((backup / 'department.json').read_text())
    assert manifest['department'] == DEPT and manifest['spec']['target'] == 'vps' and manifest['logins_disabled'] is True
    assert decrypt(site, backup / 'secrets.yml')['secrets'] == state['secrets'], 'the secrets, still encrypted'
    state['backup'] = backup

    assert docker_objects(site) == dict(container=False, network=False, volume=False)
    assert database_objects(site) == dict(schema=0, roles=0, n8n_database=0, rows=0)
    assert not (site.home / 'secrets' / ('%s.yml' % DEPT)).exists(), 'moved into the backup'
    assert DEPT not in routed(site)
    assert http('POST', site.gateway_url + '/dept/ops/ops/voice', {}, {'Authorization': 'Bearer ' + token})[0] == 401, \
        'the old token is refused'
    assert proxy(site) in (404, 503)


def test_the_backup_restores(site, state):
    backup = state['backup']
    tenant_file = next(backup.glob('tenant-*.sql'))
    n8n_file = next(backup.glob('n8n-*.dump'))
    scratch = 'scratch_%s' % secrets.token_hex(4)
    scratch_n8n = scratch + '_n8n'
    env = dict(os.environ, PGHOST=site.db['host'], PGPORT=str(site.db['port']), PGUSER=site.db['user'],
               PGPASSWORD=site.db['password'])

    def sh(*cmd, stdin=None):
        proc = subprocess.run(list(cmd), env=env, input=stdin, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    with psycopg.connect(autocommit=True, **{k: site.db[k] for k in ('host', 'port', 'user', 'password', 'dbname')}) as conn:
        conn.execute('CREATE DATABASE %s' % scratch)
        conn.execute('CREATE DATABASE %s' % scratch_n8n)
        conn.execute('CREATE ROLE dept_ops')
    try:
        # The shared tables, as the platform database has them, then the tenant's psql script.
        shared = sh(shutil.which('pg_dump'), '--schema-only', '--schema', 'federation', '--dbname', site.db['dbname'])
        sh(shutil.which('psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', scratch, '-f', '-', stdin=shared)
        sh(shutil.which('psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-1', '-d', scratch, '-f', str(tenant_file))
        restored = query(dict(site.db, dbname=scratch), 'SELECT tenant::text, call_id, question, answer FROM federation.call_log')
        assert restored == [('dept_ops', 'lifecycle-1', 'Who is on call tonight?', 'Dana')]
        assert query(dict(site.db, dbname=scratch), "SELECT version FROM federation.schema_migrations WHERE scope = 'dept_ops'") \
            == [('0001_initial',)]
        assert query(dict(site.db, dbname=scratch), "SELECT count(*) FROM pg_namespace WHERE nspname = 'dept_ops'") == [(1,)]

        sh(shutil.which('pg_restore'), '--no-owner', '--no-privileges', '--exit-on-error', '-d', scratch_n8n, str(n8n_file))
        workflows = [r[0] for r in query(dict(site.db, dbname=scratch_n8n), 'SELECT name FROM workflow_entity')]
        assert workflows, "n8n's database came back with the department's workflows"
    finally:
        with psycopg.connect(autocommit=True, **{k: site.db[k] for k in ('host', 'port', 'user', 'password', 'dbname')}) as conn:
            conn.execute('DROP DATABASE IF EXISTS %s WITH (FORCE)' % scratch)
            conn.execute('DROP DATABASE IF EXISTS %s WITH (FORCE)' % scratch_n8n)
            conn.execute('DROP ROLE IF EXISTS dept_ops')


def test_status_shows_it_deleted_and_exits_0(site):
    result, report = status(site)
    assert result.returncode == 0, result.stdout[-4000:]
    row = report['departments'][0]
    assert (row['name'], row['state'], row['health'], row['leftovers']) == (DEPT, 'deleted', 'deleted', [])
    assert {c['detail'] for c in row['checks'].values()} == {'gone'}


def test_deprovision_again_changes_nothing(site):
    checked = deprovision(site, '--check')
    assert checked.returncode == 0 and recap(checked.stdout)['changed'] == 0, checked.stdout[-4000:]
    again = deprovision(site)
    assert again.returncode == 0, again.stdout[-4000:]
    assert recap(again.stdout)['changed'] == 0, again.stdout[-6000:]
    assert 'It was deleted already: nothing was left to remove.' in ' '.join(again.stdout.split())
    assert len(backup_folders(site)) == 1, 'no empty backup folder'
    assert registry(site) == [('deleted', None)]


def test_provisioning_again_gets_new_secrets(site, state):
    site.provision(DEPT)
    assert registry(site) == [('active', None)]
    assert history(site)[-3:] == [('deleted', 'requested'), ('requested', 'provisioning'), ('provisioning', 'active')]
    new = site.secrets(DEPT)
    reused = sorted(name for name in set(new) & set(state['secrets']) if new[name] == state['secrets'][name])
    assert reused == [], 'a department made again reuses none of the deleted one\'s secrets'
    assert database_objects(site)['rows'] == 0, 'a fresh tenant'
    result, report = status(site)
    assert result.returncode == 0 and report['departments'][0]['health'] == 'healthy'
    state['secrets_again'] = new


def test_the_override_removes_without_a_backup(site):
    blocker = site.home / 'backups'
    moved = site.home / 'backups.kept'
    blocker.rename(moved)
    blocker.write_text('a file where the backup folder should be\n')
    try:
        result = deprovision(site, '-e', 'deprovision_skip_backup=true')
    finally:
        blocker.unlink()
        moved.rename(blocker)
    assert result.returncode == 0, result.stdout[-6000:]
    assert registry(site) == [('deleted', None)]
    assert len(backup_folders(site)) == 1, 'no backup was written'
    assert docker_objects(site) == dict(container=False, network=False, volume=False)
    assert database_objects(site) == dict(schema=0, roles=0, n8n_database=0, rows=0)
    kept = list((site.home / 'secrets' / '_removed').glob('%s-*.yml' % DEPT))
    assert len(kept) == 1 and 'its secrets were moved to %s' % kept[0] in ' '.join(result.stdout.split())
    assert not (site.home / 'secrets' / ('%s.yml' % DEPT)).exists()


def test_a_deleted_department_comes_back_from_its_backup(site, state):
    """The restore of docs/operations.md: secrets back, roles, the tenant's script, n8n's database, provision."""
    backup = state['backup']
    env = dict(os.environ, PGHOST=site.db['host'], PGPORT=str(site.db['port']), PGUSER=site.db['user'],
               PGPASSWORD=site.db['password'], PGDATABASE=site.db['dbname'])

    def sh(*cmd):
        proc = subprocess.run(list(cmd), env=env, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr

    shutil.copy2(backup / 'secrets.yml', site.home / 'secrets' / ('%s.yml' % DEPT))
    sh(shutil.which('psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', 'CREATE ROLE dept_ops', '-c', 'CREATE ROLE n8n_ops')
    sh(shutil.which('psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-1', '-f', str(next(backup.glob('tenant-*.sql'))))
    sh(shutil.which('pg_restore'), '--create', '--exit-on-error', '--dbname', site.db['dbname'], str(next(backup.glob('n8n-*.dump'))))

    site.provision(DEPT)
    assert registry(site) == [('active', None)]
    assert site.secrets(DEPT) == state['secrets'], 'the department runs on its old secrets again'
    db = dict(site.db, user='dept_ops', password=state['secrets']['tenant_db_password'])
    with psycopg.connect(**{k: db[k] for k in ('host', 'port', 'user', 'password', 'dbname')}) as conn:
        assert conn.execute('SELECT call_id, answer FROM federation.call_log').fetchall() == [('lifecycle-1', 'Dana')]
    status_code, answer = http('POST', site.webhook_base(DEPT) + '/ops/voice', {'call_id': 'back-1', 'question': 'Anyone there?'})
    assert status_code == 200, answer
    assert query(site.db, "SELECT count(*) FROM federation.call_log WHERE tenant = 'dept_ops'") == [(2,)]
    result, report = status(site)
    assert result.returncode == 0 and report['departments'][0]['health'] == 'healthy'


def test_no_secret_appears_in_any_output(site, state):
    values = {'platform db password': site.db['password'], 'vault password': site.vault_password}
    for key in ('secrets', 'secrets_again'):
        values.update(('%s %s' % (key, name), value) for name, value in state.get(key, {}).items())
    leaks = [name for output in site.outputs for name, value in values.items() if len(value) >= 8 and value in output]
    assert not leaks, 'printed: %s' % sorted(set(leaks))
