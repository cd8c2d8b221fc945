"""deprovision.yml on a department with OAuth clients: its oidc client is deleted at a real authorization server
(oidc-provider) and its client secrets leave the store before the store is archived. The department runs on the
fake Railway API, so no n8n is needed."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from tests.helpers import query, read_vault_file, recap

DEPT = 'field-ops'
SPEC = '''display_name: Field Operations
target: railway
tools: [log_call]
oauth_clients:
  - name: crm
    scopes: [calls:read]
'''


def test_oauth_clients_are_deleted_at_the_server(ansible, clean_cluster, fed_home, railway, oidc, tmp_path):
    specs = tmp_path / 'departments'
    specs.mkdir()
    (specs / ('%s.yml' % DEPT)).write_text(SPEC)
    settings = {
        'federation_departments_dir': str(specs),
        'federation_gateway_enabled': False,
        'federation_n8n_content_enabled': False,
        'oauth_credentials_n8n': False,
        'aio_instance_railway_endpoint': railway.url,
        'aio_instance_railway_url_template': railway.edge_template,
        'aio_instance_railway_registry': 'registry.example.test',
        'aio_instance_railway_image_tag': '1.0.0',
        'aio_instance_railway_poll_interval': 0.05,
        'aio_instance_railway_health_delay': 1,
        'aio_instance_railway_health_timeout': 3,
    }
    env = {'RAILWAY_API_TOKEN': railway.token, 'FEDERATION_OAUTH_REGISTRATION_ENDPOINT': oidc.registration_endpoint,
           'FEDERATION_OAUTH_INITIAL_ACCESS_TOKEN': oidc.initial_access_token}

    def run(playbook, *extra):
        return ansible.playbook(playbook, '-e', 'dept=%s' % DEPT, '-e', json.dumps(settings), *extra, env=env)

    provisioned = run('provision.yml')
    assert provisioned.returncode == 0, provisioned.stdout[-5000:]
    secrets = read_vault_file(fed_home, fed_home / 'secrets' / ('%s.yml' % DEPT))['secrets']
    uri, token = secrets['oauth_crm_registration_client_uri'], secrets['oauth_crm_registration_access_token']
    assert oidc_status(uri, token) == 200

    checked = run('deprovision.yml', '--check')
    assert checked.returncode == 0 and recap(checked.stdout)['changed'] > 0, checked.stdout[-5000:]
    assert oidc_status(uri, token) == 200, 'check mode deletes nothing at the server'

    removed = run('deprovision.yml')
    assert removed.returncode == 0, removed.stdout[-5000:]
    assert 'Delete the OAuth clients at the authorization server - field-ops' in removed.stdout
    assert oidc_status(uri, token) in (401, 404), 'the client is gone at the server'
    assert query(clean_cluster, 'SELECT state FROM federation_control.departments WHERE name = %s', (DEPT,)) == [('deleted',)]
    backup = next((fed_home / 'backups' / DEPT).iterdir())
    copied = read_vault_file(fed_home, backup / 'secrets.yml')['secrets']
    assert 'oauth_crm_client_secret' not in copied, 'the archive is the store as the removal left it'
    assert copied['tenant_db_password'] == secrets['tenant_db_password']
    for text in (removed.stdout + removed.stderr, checked.stdout + checked.stderr):
        assert secrets['oauth_crm_client_secret'] not in text and token not in text and oidc.initial_access_token not in text

    again = run('deprovision.yml')
    assert again.returncode == 0 and recap(again.stdout)['changed'] == 0, again.stdout[-5000:]


def oidc_status(uri, token):
    request = urllib.request.Request(uri, headers={'Authorization': 'Bearer ' + token, 'Accept': 'application/json'})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
