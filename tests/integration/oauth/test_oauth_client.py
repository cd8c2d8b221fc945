"""federation.platform.oauth_client against a real authorization server (npm oidc-provider 8.8.1)."""

from __future__ import annotations

import json

from tests.harness.common import free_port

from .conftest import http, output_of, vault_file, verbose_run

MODULE = 'federation.platform.oauth_client'


def client_args(home, server, **clients):
    return dict(department='finance', path=str(home / 'secrets' / 'finance.yml'),
                registration_endpoint=server.registration_endpoint,
                initial_access_token=server.initial_access_token, token_check=True,
                clients=[dict(name=name, **options) for name, options in clients.items()])


def test_register_rerun_update_token_check_and_delete(runner, fed_home, oidc):
    args = client_args(fed_home, oidc, crm=dict(scopes=['calls:read'], metadata={'contacts': ['ops@example.com']}))
    printed = []

    # Check mode predicts the registration and changes nothing, here or at the server.
    checked = runner.module(MODULE, args, check=True, diff=True)
    printed.append(output_of(checked))
    assert checked['changed'] is True and checked['clients'][0]['action'] == 'registered'
    assert checked['clients'][0]['client_id'] is None
    assert not (fed_home / 'secrets' / 'finance.yml').exists()

    first = runner.module(MODULE, args, diff=True)
    printed.append(output_of(first))
    assert first['changed'] is True, first
    crm = first['clients'][0]
    assert crm['action'] == 'registered' and crm['client_name'] == 'federation-finance-crm'
    assert crm['token_check']['ok'] is True and crm['token_check']['scope'] == 'calls:read'
    assert crm['token_check']['audience'] == oidc.resource          # a JWT access token from the resource server
    assert crm['token_endpoint'] == oidc.token_endpoint             # discovered from the issuer
    assert first['diff']['before'] == {'crm': {}}
    assert first['diff']['after']['crm']['client_id'] == crm['client_id']

    stored = vault_file(fed_home, 'finance')
    secrets = stored['secrets']
    assert secrets['oauth_crm_client_id'] == crm['client_id']
    assert secrets['oauth_crm_registration_client_uri'] == '%s/reg/%s' % (oidc.issuer, crm['client_id'])
    assert len(secrets['oauth_crm_client_secret']) > 40 and len(secrets['oauth_crm_registration_access_token']) > 20
    meta = stored['metadata']['oauth_crm_client_secret']
    assert meta['kind'] == 'oauth_client' and meta['token_endpoint'] == oidc.token_endpoint
    assert 'expires_at' not in meta                                  # client_secret_expires_at 0: never
    # The server holds what was registered.
    status, reg = http('GET', secrets['oauth_crm_registration_client_uri'], token=secrets['oauth_crm_registration_access_token'])
    assert status == 200 and reg['scope'] == 'calls:read' and reg['contacts'] == ['ops@example.com']

    # Unchanged: no write at the server, none in the store.
    before = (fed_home / 'secrets' / 'finance.yml').read_bytes()
    again = runner.module(MODULE, args)
    printed.append(output_of(again))
    assert again['changed'] is False and again['clients'][0]['action'] == 'unchanged'
    assert again['clients'][0]['client_id'] == crm['client_id']
    assert (fed_home / 'secrets' / 'finance.yml').read_bytes() == before
    # Scope order carries no meaning.
    args['clients'][0]['scopes'] = ['calls:read']
    assert runner.module(MODULE, args, check=True)['changed'] is False

    # Update: check mode first, then for real. The full metadata goes out (contacts survive a scope change),
    # and the registration access token the server rotates replaces the old one in the store.
    args['clients'][0]['scopes'] = ['calls:write', 'calls:read']
    predicted = runner.module(MODULE, args, check=True)
    assert predicted['changed'] is True and predicted['clients'][0]['differences'] == ['scope']
    assert vault_file(fed_home, 'finance') == stored
    updated = runner.module(MODULE, args, diff=True)
    printed.append(output_of(updated))
    entry = updated['clients'][0]
    assert updated['changed'] is True and entry['action'] == 'updated' and entry['before'] == {'scope': 'calls:read'}
    assert entry['client_id'] == crm['client_id'] and entry['rotated_registration_access_token'] is True
    assert entry['token_check']['ok'] is True and set(entry['token_check']['scope'].split()) == {'calls:read', 'calls:write'}
    new = vault_file(fed_home, 'finance')['secrets']
    assert new['oauth_crm_client_secret'] == secrets['oauth_crm_client_secret']
    assert new['oauth_crm_registration_access_token'] != secrets['oauth_crm_registration_access_token']
    assert http('GET', new['oauth_crm_registration_client_uri'], token=secrets['oauth_crm_registration_access_token'])[0] == 401
    status, reg = http('GET', new['oauth_crm_registration_client_uri'], token=new['oauth_crm_registration_access_token'])
    assert status == 200 and reg['contacts'] == ['ops@example.com'] and set(reg['scope'].split()) == {'calls:read', 'calls:write'}
    assert runner.module(MODULE, args)['changed'] is False

    # Delete: the client is gone at the server and its secrets from the store.
    args['clients'][0]['state'] = 'absent'
    assert runner.module(MODULE, args, check=True)['changed'] is True
    assert 'oauth_crm_client_id' in vault_file(fed_home, 'finance')['secrets']
    deleted = runner.module(MODULE, args)
    printed.append(output_of(deleted))
    assert deleted['changed'] is True and deleted['clients'][0]['action'] == 'deleted'
    assert http('GET', new['oauth_crm_registration_client_uri'], token=new['oauth_crm_registration_access_token'])[0] == 401
    remaining = vault_file(fed_home, 'finance')
    assert not [k for k in remaining['secrets'] if k.startswith('oauth_crm_')]
    assert 'oauth_crm_client_secret' not in (remaining.get('metadata') or {})
    assert runner.module(MODULE, args)['changed'] is False

    # Nothing secret was shown on the way.
    for text in printed:
        for value in (secrets['oauth_crm_client_secret'], secrets['oauth_crm_registration_access_token'],
                      new['oauth_crm_registration_access_token'], oidc.initial_access_token):
            assert value not in text


def test_verbose_output_shows_no_secret(runner, fed_home, oidc):
    args = client_args(fed_home, oidc, billing=dict(scopes=['calls:read']))
    outputs = []
    for attempt in range(2):
        rc, text = verbose_run(runner, MODULE, args)
        assert rc == 0, text[-3000:]
        outputs.append(text)
    secrets = vault_file(fed_home, 'finance')['secrets']
    assert 'oauth_billing_client_id' in secrets
    for text in outputs:
        for name in ('oauth_billing_client_secret', 'oauth_billing_registration_access_token'):
            assert secrets[name] not in text, name
        assert oidc.initial_access_token not in text
        assert (fed_home / 'vault-password').read_text().strip() not in text


def test_wrong_initial_access_token_is_a_clear_error(runner, fed_home, oidc):
    args = client_args(fed_home, oidc, crm=dict(scopes=['calls:read']))
    args['initial_access_token'] = 'not-the-token-the-server-gave-out'
    result = runner.module(MODULE, args)
    assert result['failed'] is True
    assert result['msg'].startswith("Failed to register OAuth client 'federation-finance-crm' on %s: 401 invalid_token"
                                    % oidc.registration_endpoint), result['msg']
    assert 'Check the initial access token' in result['msg']
    assert 'not-the-token-the-server-gave-out' not in output_of(result)
    assert not (fed_home / 'secrets' / 'finance.yml').exists()


def test_initial_access_token_from_the_environment(runner, fed_home, oidc):
    args = client_args(fed_home, oidc, crm=dict(scopes=['calls:read']))
    del args['initial_access_token']
    missing = runner.module(MODULE, args)
    assert missing['failed'] is True and '400 invalid_request (no access token provided)' in missing['msg']
    result = runner.module(MODULE, args, env={'FEDERATION_OAUTH_INITIAL_ACCESS_TOKEN': oidc.initial_access_token})
    assert result['changed'] is True and result['clients'][0]['token_check']['ok'] is True


def test_server_down_is_a_clear_error(runner, fed_home):
    port = free_port()  # nothing listens there
    args = dict(department='finance', path=str(fed_home / 'secrets' / 'finance.yml'),
                registration_endpoint='http://127.0.0.1:%d/reg' % port, initial_access_token='some-token-value',
                clients=[dict(name='crm', scopes=['calls:read'])])
    result = runner.module(MODULE, args)
    assert result['failed'] is True
    assert result['msg'].startswith("Failed to register OAuth client 'federation-finance-crm' on http://127.0.0.1:%d/reg: "
                                    "the authorization server cannot be reached" % port), result['msg']
    assert 'Connection refused' in result['msg'] and 'nothing was changed' in result['msg']
    assert 'some-token-value' not in output_of(result)
    assert not (fed_home / 'secrets' / 'finance.yml').exists()


def test_bad_input_fails_before_anything_changes(runner, fed_home, oidc):
    args = client_args(fed_home, oidc, **{'Bad-Name': dict(), 'web': dict(grant_types=['authorization_code'])})
    args['clients'].append(dict(name='sa', provider='google_service_account', subject='not-an-email'))
    result = runner.module(MODULE, args)
    assert result['failed'] is True
    msg = result['msg']
    assert msg.startswith('Invalid OAuth clients: ') and msg.endswith('Nothing was changed.')
    assert "OAuth client 'Bad-Name' of department 'finance': the name must be 1-40 lowercase letters" in msg
    assert "OAuth client 'web' of department 'finance': the authorization_code grant needs redirect URIs" in msg
    assert "subject 'not-an-email' is not an e-mail address" in msg
    assert not (fed_home / 'secrets' / 'finance.yml').exists()


def test_a_client_deleted_at_the_server_needs_reregister(runner, fed_home, oidc):
    args = client_args(fed_home, oidc, crm=dict(scopes=['calls:read']))
    first = runner.module(MODULE, args)
    old_id = first['clients'][0]['client_id']
    secrets = vault_file(fed_home, 'finance')['secrets']
    assert http('DELETE', secrets['oauth_crm_registration_client_uri'], token=secrets['oauth_crm_registration_access_token'])[0] == 204

    refused = runner.module(MODULE, args)
    assert refused['failed'] is True
    assert ("Failed to read OAuth client 'federation-finance-crm' (client_id %s) of department 'finance'" % old_id) in refused['msg']
    assert 'Set reregister: true' in refused['msg']
    assert vault_file(fed_home, 'finance')['secrets'] == secrets

    args['clients'][0]['reregister'] = True
    again = runner.module(MODULE, args)
    entry = again['clients'][0]
    assert again['changed'] is True and entry['action'] == 'reregistered' and entry['client_id'] != old_id
    assert entry['token_check']['ok'] is True
    assert vault_file(fed_home, 'finance')['secrets']['oauth_crm_client_id'] == entry['client_id']


def test_a_failing_token_check_fails_after_storing(runner, fed_home, oidc):
    args = client_args(fed_home, oidc, crm=dict(scopes=['calls:read']))
    args['resource'] = 'urn:federation:no-such-api'
    result = runner.module(MODULE, args)
    assert result['failed'] is True
    assert "OAuth client 'federation-finance-crm' of department 'finance' is registered, but a client credentials token " \
           "request on %s failed: 400 invalid_target" % oidc.token_endpoint in result['msg']
    assert result['clients'][0]['token_check']['ok'] is False
    # The registration is kept: the next run finds it.
    assert 'oauth_crm_registration_access_token' in vault_file(fed_home, 'finance')['secrets']
    del args['resource']
    assert runner.module(MODULE, args)['changed'] is False


def test_a_secret_that_expires_is_recorded(runner, fed_home, oidc):
    args = client_args(fed_home, oidc, crm=dict(scopes=['calls:read']))
    args['initial_access_token'] = oidc.expiring_initial_access_token  # the server sets client_secret_expires_at
    result = runner.module(MODULE, args)
    expiry = result['clients'][0]['expires_at']
    assert expiry and expiry.endswith('Z')
    assert vault_file(fed_home, 'finance')['metadata']['oauth_crm_client_secret']['expires_at'] == expiry


def test_oauth_client_stores_in_hashi_vault(runner, fed_home, oidc, vault):
    args = client_args(fed_home, oidc, crm=dict(scopes=['calls:read']))
    del args['path']
    args.update(backend='hashi_vault', hashi_vault=dict(url=vault.url, token=vault.root_token))
    first = runner.module(MODULE, args)
    assert first['changed'] is True and first['secrets_path'].startswith("Vault %s (KV v2 mount 'secret'" % vault.url)
    data = vault.read('secret', 'federation/finance')
    assert data['oauth_crm_client_id'] == first['clients'][0]['client_id']
    assert json.loads(data['_federation_metadata'])['oauth_crm_client_secret']['kind'] == 'oauth_client'
    assert vault.current_version('secret', 'federation/finance') == 1
    again = runner.module(MODULE, args)
    assert again['changed'] is False and vault.current_version('secret', 'federation/finance') == 1
    assert vault.root_token not in output_of(first) + output_of(again)
    assert not (fed_home / 'secrets').exists()
