"""playbooks/monitor_credentials.yml: expired, near-expiry, failing and consent-waiting credentials.

The test data is made by the tests: secrets with expiry metadata stored through department_secrets,
a JWT gateway token, and real OAuth clients whose secrets expire at a real authorization server.
"""

from __future__ import annotations

import json
import stat
import time

import jwt
import pytest

from tests.harness.common import free_port
from tests.harness.oidc import OidcServer
from tests.helpers import db_args

from .conftest import vault_file

DAY = 86400


def iso(epoch):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(epoch))


def monitor(ansible, tmp_path, *extra, report=None):
    report = report or tmp_path / 'report.json'
    run = ansible.playbook('playbooks/monitor_credentials.yml', '-e', 'monitor_credentials_report=%s' % report, *extra)
    data = json.loads(report.read_text()) if report.exists() else None
    return run, data


def rows_by_name(report):
    return {(r['department'], r['credential']): r for r in report['credentials']}


def test_expired_and_near_expiry_credentials_fail_the_monitor(ansible, platform_db, fed_home, tmp_path):
    now = time.time()
    # The registry knows hr; the spec files name finance and hr.
    assert ansible.module('federation.platform.department', dict(db_args(platform_db), name='hr'))['changed'] is True
    gateway_token = jwt.encode({'sub': 'finance', 'exp': int(now + 5 * DAY)}, 'test-signing-key-0123456789abcdef0123',
                               algorithm='HS256')
    values = {'partner_api_key': 'partner-key-value-1', 'crm_api_key': 'crm-key-value-2', 'maps_api_key': 'maps-key-value-3',
              'gateway_token': gateway_token}
    stored = ansible.module('federation.platform.department_secrets', dict(
        department='finance', path=str(fed_home / 'secrets' / 'finance.yml'), values=values,
        metadata={'partner_api_key': {'kind': 'api_key', 'expires_at': iso(now - DAY)},
                  'crm_api_key': {'kind': 'api_key', 'expires_at': iso(now + 3 * DAY)},
                  'maps_api_key': {'kind': 'api_key', 'expires_at': iso(now + 100 * DAY)}}))
    assert stored['changed'] is True

    run, report = monitor(ansible, tmp_path, '-e', 'monitor_credentials_days=14')
    assert run.returncode == 2, run.stdout[-4000:]
    assert report is not None and report['needs_action'] is True and report['within_days'] == 14
    rows = rows_by_name(report)
    assert rows[('finance', 'partner_api_key')]['status'] == 'expired'
    assert rows[('finance', 'partner_api_key')]['days_left'] < 0
    assert rows[('finance', 'crm_api_key')]['status'] == 'expiring'
    assert 2.9 < rows[('finance', 'crm_api_key')]['days_left'] <= 3
    assert rows[('finance', 'gateway_token')]['status'] == 'expiring'      # read from the JWT's exp claim
    assert rows[('finance', 'gateway_token')]['kind'] == 'jwt'
    assert rows[('finance', 'maps_api_key')]['status'] == 'ok'
    assert [r['status'] for r in report['credentials']] == ['expired', 'expiring', 'expiring', 'ok']
    assert report['counts'] == {'expired': 1, 'expiring': 2, 'ok': 1}
    assert {d['department']: d['status'] for d in report['departments']} == {'finance': 'read', 'hr': 'no secrets'}
    # The table on screen, worst first, and the failure naming what needs action.
    assert 'EXPIRED' in run.stdout and 'EXPIRING' in run.stdout
    assert run.stdout.index('partner_api_key') < run.stdout.index('maps_api_key')
    assert '3 of 4 credentials in 2 departments need action: finance/partner_api_key expired' in run.stdout
    for value in values.values():
        assert value not in run.stdout + run.stderr and value not in json.dumps(report)

    # With a shorter horizon the near-expiry ones are fine; the expired one still fails the run.
    run, report = monitor(ansible, tmp_path, '-e', 'monitor_credentials_days=2')
    assert run.returncode == 2 and rows_by_name(report)[('finance', 'crm_api_key')]['status'] == 'ok'

    # A department whose credentials are all fine: exit code 0.
    ansible.module('federation.platform.department_secrets', dict(
        department='legal', path=str(fed_home / 'secrets' / 'legal.yml'), values={'k': 'v-legal-1'},
        metadata={'k': {'expires_at': iso(now + 60 * DAY)}}))
    shared = tmp_path / 'shared'
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    run, report = monitor(ansible, tmp_path, '-e', '{"monitor_credentials_departments": ["legal"]}',
                          report=shared / 'legal.json')
    assert run.returncode == 0, run.stdout[-3000:]
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755            # an existing folder keeps its mode
    assert stat.S_IMODE((shared / 'legal.json').stat().st_mode) == 0o600
    assert report['needs_action'] is False and report['counts'] == {'ok': 1}
    assert 'nothing needs action' in run.stdout


@pytest.fixture
def short_lived_oidc():
    server = OidcServer(secret_ttl=4).start()   # clients registered with its expiring token: 4 s secrets
    yield server
    server.remove()


def test_live_checks_catch_an_expired_client_secret_and_a_missing_consent(ansible, fed_home, tmp_path, short_lived_oidc):
    server = short_lived_oidc
    path = str(fed_home / 'secrets' / 'sales.yml')
    files = fed_home / 'oauth' / 'sales'
    files.mkdir(parents=True)
    (files / 'calendar.json').write_text(json.dumps({'web': {'client_id': 'cal-id', 'client_secret': 'cal-secret-value'}}))
    base = dict(department='sales', path=path, registration_endpoint=server.registration_endpoint, token_check=True,
                files_dir=str(files), n8n_url='http://127.0.0.1:%d' % free_port())   # no n8n listens there
    expiring = ansible.module('federation.platform.oauth_client', dict(
        base, initial_access_token=server.expiring_initial_access_token, clients=[dict(name='crm', scopes=['calls:read'])]))
    assert expiring['clients'][0]['token_check']['ok'] is True and expiring['clients'][0]['expires_at']
    lasting = ansible.module('federation.platform.oauth_client', dict(
        base, initial_access_token=server.initial_access_token,
        clients=[dict(name='erp', scopes=['calls:write']), dict(name='calendar', provider='google_oauth')]))
    assert lasting['changed'] is True, lasting
    # The n8n owner's password, which the consent check logs in with.
    ansible.module('federation.platform.department_secrets', dict(department='sales', path=path,
                                                                  generate={'n8n_owner_password': {'length': 24}}))
    time.sleep(5.5)  # the crm secret expires, at the server too

    run, report = monitor(ansible, tmp_path, '-e', '{"monitor_credentials_departments": ["sales"]}')
    assert run.returncode == 2, run.stdout[-3000:]
    rows = rows_by_name(report)
    crm, erp, cal = rows[('sales', 'crm')], rows[('sales', 'erp')], rows[('sales', 'calendar')]
    assert crm['status'] == 'expired' and crm['live_check']['ok'] is False
    assert 'invalid_client' in crm['live_check']['error']            # the server refuses the expired secret
    assert erp['status'] == 'ok' and erp['live_check']['ok'] is True and 'live check ok' in erp['detail']
    assert cal['status'] == 'consent_pending' and 'n8n could not be asked' in cal['detail']
    assert "n8n > Credentials > 'oauth-calendar'" in cal['action']
    secrets = vault_file(fed_home, 'sales')['secrets']
    for name in ('oauth_crm_client_secret', 'oauth_erp_client_secret', 'oauth_erp_registration_access_token',
                 'oauth_calendar_client_secret'):
        assert secrets[name] not in run.stdout + json.dumps(report)

    # Without live checks only what is recorded counts.
    run, report = monitor(ansible, tmp_path, '-e', '{"monitor_credentials_departments": ["sales"], '
                                                   '"monitor_credentials_live_check": false}')
    rows = rows_by_name(report)
    assert rows[('sales', 'crm')]['status'] == 'expired' and 'live_check' not in rows[('sales', 'erp')]
    assert rows[('sales', 'erp')]['status'] == 'unchecked'
