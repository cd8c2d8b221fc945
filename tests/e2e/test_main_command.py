"""`ansible-playbook provision.yml -e dept=...` on the local default, end to end: hr and finance get
their tenant, their n8n container, their route and identity at the gateway and their n8n content;
finance's voice assistant answers, logs the call in its tenant table and asks hr through the gateway.
Re-runs change nothing, check mode changes nothing, rotating finance's database passwords keeps its assistant
working, and no secret is ever printed.

The tests of this module run in order on one site (see conftest.py).
"""

from __future__ import annotations

import json
import re
import stat
import urllib.error
import urllib.request

import psycopg
import pytest

from tests.helpers import query, recap


def post(url, body, headers=None, timeout=30):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method='POST',
                                     headers=dict({'Content-Type': 'application/json'}, **(headers or {})))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b'null')
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors='replace')


def catalog(db):
    """What a run could change in the platform database: schemas, tables, roles, databases, registry rows."""
    snapshot = query(db, "SELECT nspname FROM pg_namespace ORDER BY 1")
    snapshot += query(db, "SELECT relname FROM pg_class WHERE relnamespace NOT IN "
                          "('pg_catalog'::regnamespace, 'information_schema'::regnamespace) ORDER BY 1")
    snapshot += query(db, "SELECT rolname, rolpassword FROM pg_authid ORDER BY 1")
    snapshot += query(db, "SELECT datname FROM pg_database ORDER BY 1")
    snapshot += query(db, "SELECT name, state, spec::text, updated_at FROM federation_control.departments ORDER BY 1")
    return snapshot


def test_first_run_provisions_hr_then_finance(site):
    for dept in ('hr', 'finance'):
        run = site.provision(dept, '-vvv')
        assert recap(run.stdout)['changed'] > 0
        # Progress: every phase is shown with its time.
        assert 'ROLES RECAP' in run.stdout and 'aio_instance' in run.stdout
    rows = query(site.db, 'SELECT name, state, last_error FROM federation_control.departments ORDER BY name')
    assert rows == [('finance', 'active', None), ('hr', 'active', None)]
    for dept in ('hr', 'finance'):
        state = site.container(dept)['State']
        assert state['Running'] and state['Health']['Status'] == 'healthy'


def test_secrets_are_encrypted_and_complete(site):
    path = site.home / 'secrets' / 'finance.yml'
    assert path.read_bytes().startswith(b'$ANSIBLE_VAULT;1.1;AES256')
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert {'tenant_db_password', 'n8n_db_password', 'n8n_encryption_key', 'n8n_owner_password', 'n8n_api_key',
            'gateway_token'} <= set(site.secrets('finance'))


def test_tenant_login_sees_only_its_own_rows(site):
    finance = site.secrets('finance')
    db = dict(site.db, user='dept_finance', password=finance['tenant_db_password'])
    with psycopg.connect(autocommit=True, **{k: db[k] for k in ('host', 'port', 'user', 'password', 'dbname')}) as conn:
        conn.execute("INSERT INTO federation.call_log (call_id, question) VALUES ('direct-1', 'typed by hand')")
        tenants = {row[0] for row in conn.execute('SELECT tenant FROM federation.call_log')}
    assert tenants == {'dept_finance'}
    owner = query(site.db, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'n8n_finance'")
    assert owner == [('n8n_finance',)]


def test_voice_webhook_answers_and_logs_the_call(site):
    status, answer = post(site.webhook_base('finance') + '/finance/voice',
                          {'call_id': 'e2e-1', 'caller': '+4930123', 'question': 'What is the Q3 travel budget?'})
    assert status == 200, answer
    assert answer['call_id'] == 'e2e-1' and answer['department'] == 'finance' and answer['answer']
    logged = query(site.db, "SELECT tenant, question, answer FROM federation.call_log WHERE call_id = 'e2e-1'")
    assert logged == [('dept_finance', 'What is the Q3 travel budget?', answer['answer'])]


def test_finance_asks_hr_through_the_gateway(site):
    status, answer = post(site.webhook_base('finance') + '/finance/voice',
                          {'call_id': 'e2e-2', 'question': 'How many vacation days are left?', 'forward_to': 'hr'})
    assert status == 200, answer
    # hr's assistant answered (the gateway is the only way from finance's n8n to hr's), and finance's
    # assistant passed hr's answer on.
    hr_rows = query(site.db, "SELECT answer FROM federation.call_log WHERE tenant = 'dept_hr' AND call_id = 'e2e-2'")
    assert len(hr_rows) == 1, hr_rows
    assert answer['answer'] == hr_rows[0][0]


def test_the_gateway_refuses_what_it_must(site):
    hr_token = site.secrets('hr')['gateway_token']
    finance_token = site.secrets('finance')['gateway_token']
    body = {'question': 'x'}
    assert post(site.gateway_url + '/dept/hr/hr/voice', body)[0] == 401                   # no token
    assert post(site.gateway_url + '/dept/hr/hr/voice', body,                             # finance -> hr: allowed
                {'Authorization': 'Bearer ' + finance_token})[0] == 200
    assert post(site.gateway_url + '/dept/finance/finance/voice', body,                   # hr -> finance: allowed
                {'Authorization': 'Bearer ' + hr_token})[0] == 200
    assert post(site.gateway_url + '/dept/legal/legal/voice', body,                       # unknown department
                {'Authorization': 'Bearer ' + finance_token})[0] == 404
    assert post(site.gateway_url + '/dept/finance/finance/voice', body,                   # to itself: not listed
                {'Authorization': 'Bearer ' + finance_token})[0] == 403


def test_rerun_changes_nothing(site):
    for dept in ('hr', 'finance'):
        run = site.provision(dept)
        assert recap(run.stdout)['changed'] == 0, run.stdout[-6000:]


def test_check_mode_changes_nothing(site):
    before = catalog(site.db)
    containers = site.container('finance')['Id']
    run = site.provision('finance', '--check', '--diff')
    assert recap(run.stdout)['changed'] == 0, run.stdout[-6000:]
    assert catalog(site.db) == before
    assert site.container('finance')['Id'] == containers


def files_under(folder):
    return sorted((str(path.relative_to(folder)), path.stat().st_mtime_ns) for path in folder.rglob('*'))


def test_check_mode_on_a_new_department_predicts_change_and_writes_nothing(site):
    before, files = catalog(site.db), files_under(site.home)
    run = site.provision('legal', '--check')
    assert recap(run.stdout)['changed'] > 0
    assert catalog(site.db) == before
    # Not even a lock file or a folder beside the secrets.
    assert files_under(site.home) == files
    assert site.container('legal') is None


def changed_tasks(output):
    """The names of the tasks that reported a change."""
    return set(re.findall(r'^TASK \[([^\]]+)\] \**\n(?:(?!TASK \[)[^\n]*\n)*?changed: \[', output, re.M))


def login(site, user, password, dbname):
    return psycopg.connect(host=site.db['host'], port=site.db['port'], dbname=dbname, user=user, password=password,
                           connect_timeout=10)


def test_rotation_refuses_what_cannot_be_rotated_before_any_change(site):
    before = site.secrets('finance')
    for args, says in ((('-e', 'rotate=n8n_encryption_key'), 'rotate names n8n_encryption_key, which cannot be rotated'),
                       (('-e', 'rotate=tenant_db_password,nope'), 'rotate names nope, which cannot be rotated'),
                       (('-e', 'rotate=,'), 'rotate names no credential')):
        run = site.playbook('rotate_credentials.yml', 'finance', *args, check_rc=False)
        assert run.returncode != 0 and "Department 'finance': " + says in run.stdout, run.stdout[-3000:]
        assert recap(run.stdout)['changed'] == 0
    run = site.playbook('rotate_credentials.yml', 'legal', check_rc=False)
    assert run.returncode != 0 and "Department 'legal' is not in the registry" in run.stdout, run.stdout[-3000:]
    assert recap(run.stdout)['changed'] == 0
    assert not (site.home / 'secrets' / 'legal.yml').exists()
    assert site.secrets('finance') == before


def test_rotation_in_check_mode_predicts_what_it_changes_and_changes_nothing(site):
    before, snapshot, container = site.secrets('finance'), catalog(site.db), site.container('finance')['Id']
    run = site.playbook('rotate_credentials.yml', 'finance', '--check', '--diff')
    tasks = changed_tasks(run.stdout)
    assert {"federation.platform.secrets : Keep the department's secrets in its encrypted file - finance",
            'federation.platform.tenant_database : Make the tenant database and the n8n database - finance',
            'federation.platform.aio_instance : Run n8n - %s-finance-n8n' % site.runner.docker_prefix,
            'federation.platform.n8n_content : Credentials - finance'} == tasks, run.stdout[-6000:]
    assert site.secrets('finance') == before
    assert catalog(site.db) == snapshot
    assert site.container('finance')['Id'] == container


def test_rotating_the_database_passwords_keeps_the_assistant_working(site):
    before = site.secrets('finance')
    run = site.playbook('rotate_credentials.yml', 'finance')
    after = site.secrets('finance')
    rotated = {'tenant_db_password', 'n8n_db_password'}
    assert {name for name in after if after[name] != before.get(name)} == rotated
    site.retired.update(('finance %s (retired)' % name, before[name]) for name in rotated)
    assert recap(run.stdout)['changed'] == 4, run.stdout[-6000:]

    for user, name, dbname in (('dept_finance', 'tenant_db_password', site.db['dbname']),
                               ('n8n_finance', 'n8n_db_password', 'n8n_finance')):
        with pytest.raises(psycopg.OperationalError, match='password authentication failed'):
            login(site, user, before[name], dbname)
        login(site, user, after[name], dbname).close()
    # n8n runs on its new database password, and its Postgres credential carries the tenant's new one.
    status, answer = post(site.webhook_base('finance') + '/finance/voice',
                          {'call_id': 'e2e-rotated', 'question': 'Still there after the rotation?'})
    assert status == 200, answer
    assert query(site.db, "SELECT tenant FROM federation.call_log WHERE call_id = 'e2e-rotated'") == [('dept_finance',)]
    assert recap(site.provision('finance').stdout)['changed'] == 0


def test_no_secret_appears_in_any_output(site):
    assert site.outputs, 'the runs above keep their outputs'
    leaks = []
    values = {'platform db password': site.db['password'], 'vault password': site.vault_password}
    values.update(site.retired)
    for dept in ('hr', 'finance'):
        values.update(('%s %s' % (dept, name), value) for name, value in site.secrets(dept).items())
    for output in site.outputs:
        leaks += [name for name, value in values.items() if len(value) >= 8 and value in output]
    assert not leaks, 'printed: %s' % sorted(set(leaks))
