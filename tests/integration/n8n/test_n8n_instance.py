"""federation.platform.n8n_instance against a real n8n (1.x and 2.x)."""

import requests

from tests.integration.n8n.support import OWNER_PASSWORD


def owner_exists(instance):
    settings = requests.get(instance.url + '/rest/settings', timeout=10).json()['data']
    return not settings['userManagement']['showSetupOnFirstLoad']


def test_check_mode_on_a_fresh_instance_predicts_the_bootstrap_and_writes_nothing(n8n):
    boot = n8n.bootstrap
    assert boot['check']['changed'] is True
    assert boot['check']['owner_created'] is True
    assert boot['check']['api_key'] is None
    assert boot['after_check'] == boot['before']
    assert boot['before']['user'] == [] or all(row[1] is None for row in boot['before']['user'])


def test_bootstrap_creates_the_owner_and_a_working_key(n8n):
    real = n8n.bootstrap['real']
    assert real['changed'] is True and real['owner_created'] is True and real['key_created'] is True
    assert real['version'] == n8n.version
    assert real['major'] == n8n.major
    assert owner_exists(n8n)
    assert n8n.api('GET', '/workflows', limit=1).status_code == 200
    assert [row[1] for row in n8n.snapshot()['user_api_keys']] == ['federation']


def test_a_working_stored_key_means_no_change_and_no_login(n8n, run):
    before = n8n.snapshot()
    result = run('n8n_instance', dict(url=n8n.url, owner_email=n8n.owner_email, owner_password=OWNER_PASSWORD,
                                      api_key=n8n.key))
    assert result['changed'] is False, result
    assert result['api_key'] is None
    assert result['version'] == n8n.version and result['major'] == n8n.major
    assert n8n.snapshot() == before
    # Even a wrong password does not matter while the key works: nobody logs in.
    result = run('n8n_instance', dict(url=n8n.url, owner_email=n8n.owner_email, owner_password='Not-The-0ne',
                                      api_key=n8n.key))
    assert result['changed'] is False, result


def test_a_lost_key_is_replaced_and_the_old_one_deleted(n8n, run):
    before = n8n.snapshot()
    checked = run('n8n_instance', dict(url=n8n.url, owner_email=n8n.owner_email, owner_password=OWNER_PASSWORD,
                                       api_key=''), check=True)
    assert checked['changed'] is True and checked['api_key'] is None and checked['owner_created'] is False
    assert n8n.snapshot()['user_api_keys'] == before['user_api_keys']

    old = n8n.key
    result = run('n8n_instance', dict(url=n8n.url, owner_email=n8n.owner_email, owner_password=OWNER_PASSWORD,
                                      api_key='not-a-valid-key'))
    assert result['changed'] is True and result['key_created'] is True and result['owner_created'] is False
    n8n.key = result['api_key']
    assert n8n.key and n8n.key != old
    assert n8n.api('GET', '/workflows', limit=1).status_code == 200
    assert n8n.api('GET', '/workflows', key=old, limit=1).status_code == 401
    assert [row[1] for row in n8n.snapshot()['user_api_keys']] == ['federation']


def test_an_owner_with_another_password_fails_with_the_fix_and_no_secret(n8n, run):
    wrong = 'Wrong-Passw0rd-xyz'
    result = run('n8n_instance', dict(url=n8n.url, owner_email=n8n.owner_email, owner_password=wrong, api_key=''))
    assert result['failed'] is True
    assert result['msg'].startswith('Failed to log in as the owner %s on n8n at %s: ' % (n8n.owner_email, n8n.url))
    assert 'Wrong username or password' in result['msg']          # n8n's own message
    assert 'n8n_owner_password' in result['msg']
    assert wrong not in str(result) and OWNER_PASSWORD not in str(result)


def test_bad_input_fails_before_contacting_n8n(run):
    result = run('n8n_instance', dict(url='http://127.0.0.1:9', owner_email='not-an-email', owner_password='short',
                                      wait_timeout=1))
    assert result['failed'] is True
    assert 'owner_email must be an e-mail address' in result['msg']
    assert 'owner_password must have 8-64 characters' in result['msg']
    assert 'nothing was changed' in result['msg']


def test_an_instance_that_never_answers_times_out_with_a_clear_message(run):
    result = run('n8n_instance', dict(url='http://127.0.0.1:9', owner_email='owner@x.federation.local',
                                      owner_password=OWNER_PASSWORD, wait_timeout=2))
    assert result['failed'] is True
    assert result['msg'].startswith('Failed to reach n8n at http://127.0.0.1:9: its API did not become ready within 2 s')
