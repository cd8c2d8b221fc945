"""provision.yml with a department that needs OAuth clients: the role oauth_credentials in the run."""

from __future__ import annotations

import json
import re

import pytest

from tests.helpers import query, recap

from .conftest import http, vault_file
from .test_google import service_account_key

SPEC = '''display_name: Sales
oauth_clients:
  - name: crm
    scopes: [calls:read, calls:write]
  - name: drive
    provider: google_service_account
    subject: assistant@example.com
    max_age_days: 90
'''


@pytest.fixture
def platform_db(container_platform_db):
    """Whole departments are provisioned here: their n8n containers must reach the platform database."""
    return container_platform_db


def setup(fed_home, tmp_path):
    specs = tmp_path / 'departments'
    specs.mkdir()
    (specs / 'sales.yml').write_text(SPEC)
    files = fed_home / 'oauth' / 'sales'
    files.mkdir(parents=True)
    key = service_account_key('k1', email='sales-assistant@proj.iam.gserviceaccount.com')
    (files / 'drive.json').write_text(json.dumps(key))
    return specs, key


def test_provision_registers_the_clients_and_reruns_without_change(ansible, platform_db, fed_home, tmp_path, oidc):
    specs, key = setup(fed_home, tmp_path)
    env = {'FEDERATION_OAUTH_REGISTRATION_ENDPOINT': oidc.registration_endpoint,
           'FEDERATION_OAUTH_INITIAL_ACCESS_TOKEN': oidc.initial_access_token}
    extra = ('-e', 'dept=sales', '-e', 'federation_departments_dir=%s' % specs)

    predicted = ansible.playbook('provision.yml', *extra, '--check', env=env)
    assert predicted.returncode == 0, predicted.stdout[-4000:]
    assert recap(predicted.stdout)['changed'] > 0 and not (fed_home / 'secrets' / 'sales.yml').exists()

    first = ansible.playbook('provision.yml', *extra, env=env)
    assert first.returncode == 0, first.stdout[-4000:]
    assert 'OAuth clients at the authorization server, secrets in the vault - sales' in first.stdout
    assert query(platform_db, "SELECT state FROM federation_control.departments WHERE name = 'sales'") == [('active',)]
    stored = vault_file(fed_home, 'sales')
    secrets = stored['secrets']
    assert {'tenant_db_password', 'oauth_crm_client_id', 'oauth_crm_client_secret', 'oauth_crm_registration_access_token',
            'oauth_drive_service_account_key'} <= set(secrets)
    assert json.loads(secrets['oauth_drive_service_account_key'])['private_key_id'] == 'k1'
    status, reg = http('GET', secrets['oauth_crm_registration_client_uri'], token=secrets['oauth_crm_registration_access_token'])
    assert status == 200 and reg['client_name'] == 'federation-sales-crm'

    second = ansible.playbook('provision.yml', *extra, env=env)
    assert second.returncode == 0, second.stdout[-4000:]
    assert recap(second.stdout)['changed'] == 0
    assert vault_file(fed_home, 'sales') == stored

    checked = ansible.playbook('provision.yml', *extra, '--check', '--diff', env=env)
    assert checked.returncode == 0, checked.stdout[-4000:]
    assert recap(checked.stdout)['changed'] == 0

    verbose = ansible.playbook('provision.yml', *extra, '-vvv', env=env)
    assert verbose.returncode == 0
    for text in (first.stdout + first.stderr, verbose.stdout + verbose.stderr):
        for name in ('oauth_crm_client_secret', 'oauth_crm_registration_access_token'):
            assert secrets[name] not in text, name
        assert oidc.initial_access_token not in text
        assert key['private_key'].splitlines()[1] not in text


def test_a_refused_registration_marks_the_department_failed(ansible, platform_db, fed_home, tmp_path, oidc):
    specs, key = setup(fed_home, tmp_path)
    env = {'FEDERATION_OAUTH_REGISTRATION_ENDPOINT': oidc.registration_endpoint,
           'FEDERATION_OAUTH_INITIAL_ACCESS_TOKEN': 'a-token-the-server-never-issued'}
    run = ansible.playbook('provision.yml', '-e', 'dept=sales', '-e', 'federation_departments_dir=%s' % specs, env=env)
    assert run.returncode != 0
    assert "Failed to register OAuth client 'federation-sales-crm' on %s: 401 invalid_token" % oidc.registration_endpoint in run.stdout
    state, error = query(platform_db, "SELECT state, last_error FROM federation_control.departments WHERE name = 'sales'")[0]
    assert state == 'failed' and 'Check the initial access token' in error
    assert 'a-token-the-server-never-issued' not in run.stdout + error

    # Given the right token, a re-run resumes and converges.
    env['FEDERATION_OAUTH_INITIAL_ACCESS_TOKEN'] = oidc.initial_access_token
    again = ansible.playbook('provision.yml', '-e', 'dept=sales', '-e', 'federation_departments_dir=%s' % specs, env=env)
    assert again.returncode == 0, again.stdout[-3000:]
    assert query(platform_db, "SELECT state FROM federation_control.departments WHERE name = 'sales'") == [('active',)]


def test_a_department_without_oauth_clients_skips_the_role(ansible, platform_db, fed_home):
    run = ansible.playbook('provision.yml', '-e', 'dept=hr')   # departments/hr.yml has no oauth_clients
    assert run.returncode == 0, run.stdout[-3000:]
    assert re.search(r'secrets in the vault - hr\] \*+\n(?:[^\n]*\n){1,3}skipping: \[localhost\]', run.stdout), run.stdout[-3000:]
    assert not [k for k in vault_file(fed_home, 'hr')['secrets'] if k.startswith('oauth_')]


def test_provision_and_monitor_with_the_hashi_vault_backend(ansible, platform_db, fed_home, tmp_path, oidc, vault):
    specs, key = setup(fed_home, tmp_path)
    env = {'FEDERATION_OAUTH_REGISTRATION_ENDPOINT': oidc.registration_endpoint,
           'FEDERATION_OAUTH_INITIAL_ACCESS_TOKEN': oidc.initial_access_token,
           'FEDERATION_SECRETS_BACKEND': 'hashi_vault', 'VAULT_ADDR': vault.url, 'VAULT_TOKEN': vault.root_token}
    extra = ('-e', 'dept=sales', '-e', 'federation_departments_dir=%s' % specs)
    first = ansible.playbook('provision.yml', *extra, env=env)
    assert first.returncode == 0, first.stdout[-4000:]
    data = vault.read('secret', 'federation/sales')
    assert {'tenant_db_password', 'n8n_owner_password', 'oauth_crm_client_secret', 'oauth_drive_service_account_key'} <= set(data)
    assert not (fed_home / 'secrets').exists()
    version = vault.current_version('secret', 'federation/sales')

    second = ansible.playbook('provision.yml', *extra, env=env)
    assert second.returncode == 0 and recap(second.stdout)['changed'] == 0, second.stdout[-3000:]
    assert vault.current_version('secret', 'federation/sales') == version

    report = tmp_path / 'report.json'
    run = ansible.playbook('playbooks/monitor_credentials.yml', '-e', '{"monitor_credentials_departments": ["sales"]}',
                           '-e', 'monitor_credentials_report=%s' % report, env=env)
    assert run.returncode == 0, run.stdout[-3000:]
    rows = {r['credential']: r for r in json.loads(report.read_text())['credentials']}
    assert rows['crm']['status'] == 'ok' and rows['crm']['live_check']['ok'] is True
    assert rows['drive']['status'] == 'ok' and 80 < rows['drive']['days_left'] <= 90
    assert vault.root_token not in first.stdout + second.stdout + run.stdout
