import json
import time

import pytest

from ansible_collections.federation.platform.plugins.filter.oauth_n8n_credentials import oauth_n8n_credentials
from ansible_collections.federation.platform.plugins.module_utils._credentials import (
    credentials_of, evaluate, sort_rows, table)
from ansible_collections.federation.platform.plugins.module_utils._oauth import (
    ClientReconciler, OAuthError, client_metadata, differences, expires_at, jwt_claims, normalize, parse_time)
from ansible.errors import AnsibleFilterError

DAY = 86400.0


def test_metadata_compares_scopes_and_lists_as_sets():
    desired = client_metadata('c', ['client_credentials'], ['b', 'a'], token_endpoint_auth_method='client_secret_basic')
    assert desired == {'client_name': 'c', 'grant_types': ['client_credentials'], 'response_types': [], 'scope': 'b a',
                       'token_endpoint_auth_method': 'client_secret_basic'}
    server = dict(desired, scope='a b', grant_types=['client_credentials'], application_type='web')
    assert differences(desired, server) == []
    assert differences(desired, dict(server, scope='a')) == ['scope']
    assert differences(dict(desired, contacts=['x', 'y']), dict(server, contacts=['y', 'x'])) == []
    assert normalize({'redirect_uris': ['b', 'a', 'a']}) == {'redirect_uris': ['a', 'b']}
    code = client_metadata('c', ['authorization_code', 'refresh_token'], [], ['https://n/cb'])
    assert code['response_types'] == ['code'] and code['redirect_uris'] == ['https://n/cb'] and 'scope' not in code


def test_expiry_and_jwt_helpers():
    assert expires_at(0) is None and expires_at(None) is None
    assert expires_at(1893456000) == '2030-01-01T00:00:00Z'
    assert parse_time('2030-01-01') == parse_time('2030-01-01T00:00:00Z') == 1893456000
    assert parse_time('soon') is None
    jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE4OTM0NTYwMDAsInN1YiI6ImZpbmFuY2UifQ.c2ln'
    assert jwt_claims(jwt) == {'exp': 1893456000, 'sub': 'finance'}
    assert jwt_claims('not.a.jwt') is None and jwt_claims('plain-password') is None


class NoServer(object):
    """A registrar that must not be called: check mode and Google clients never talk to a server."""

    def __getattr__(self, name):
        raise AssertionError('the authorization server was called (%s)' % name)


def oidc_client(**extra):
    client = dict(name='crm', state='present', client_name='federation-finance-crm', grant_types=['client_credentials'],
                  scopes=['calls:read'], redirect_uris=[], token_endpoint_auth_method='client_secret_basic', metadata={},
                  reregister=False, n8n_credential='oauth-crm')
    client.update(extra)
    return client


def test_check_mode_registration_makes_no_call():
    reconciler = ClientReconciler('finance', NoServer(), None, check_mode=True)
    out = reconciler.oidc(oidc_client(), {}, {}, {'token_endpoint': 'https://as/token'})
    assert out.changed is True and out.report['action'] == 'registered' and out.set == {}


def test_a_client_id_without_its_registration_token_is_refused():
    reconciler = ClientReconciler('finance', NoServer(), None, check_mode=False)
    with pytest.raises(OAuthError) as exc:
        reconciler.oidc(oidc_client(), {'oauth_crm_client_id': 'abc'}, {}, {})
    assert 'has a client id in the store but no registration access token' in str(exc.value)


def test_reports_turn_into_n8n_credentials():
    key = {'client_email': 'sa@p.iam.gserviceaccount.com', 'private_key': 'PEM'}
    secrets = {'oauth_crm_client_id': 'id1', 'oauth_crm_client_secret': 's1', 'oauth_sa_service_account_key': json.dumps(key),
               'oauth_cal_client_id': 'id2', 'oauth_cal_client_secret': 's2'}
    clients = [
        dict(name='crm', provider='oidc', action='unchanged', token_endpoint='https://as/token', grant_types=['client_credentials'],
             scopes=['a', 'b'], auth_method='client_secret_post', n8n_credential='oauth-crm'),
        dict(name='sa', provider='google_service_account', action='imported', subject='u@example.com', scopes=[],
             n8n_credential='oauth-sa'),
        dict(name='cal', provider='google_oauth', action='imported', scopes=['s'], n8n_credential='oauth-cal'),
        dict(name='old', provider='oidc', action='deleted', n8n_credential='oauth-old'),
    ]
    crm, sa, cal = oauth_n8n_credentials(clients, secrets)
    assert crm == {'name': 'oauth-crm', 'type': 'oAuth2Api', 'data': {
        'serverUrl': '', 'accessTokenUrl': 'https://as/token', 'clientId': 'id1', 'clientSecret': 's1', 'scope': 'a b',
        'authentication': 'body', 'grantType': 'clientCredentials'}}
    assert sa == {'name': 'oauth-sa', 'type': 'googleApi', 'data': {
        'email': key['client_email'], 'privateKey': 'PEM', 'inpersonate': True, 'httpNode': False,
        'delegatedEmail': 'u@example.com'}}
    assert cal['type'] == 'googleOAuth2Api' and cal['data']['clientId'] == 'id2' and cal['data']['scope'] == 's'
    with pytest.raises(AnsibleFilterError) as exc:
        oauth_n8n_credentials(clients, {})
    assert "the secrets hold no 'oauth_crm_client_id' for OAuth client 'crm'" in str(exc.value)
    assert oauth_n8n_credentials(clients, {}, missing='skip') == []


def test_expiry_statuses_and_the_worst_first_table():
    now = time.time()

    def iso(moment):
        return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(moment))

    metadata = {
        'old_key': {'kind': 'api_key', 'expires_at': iso(now - DAY)},
        'soon_key': {'kind': 'api_key', 'expires_at': iso(now + 3 * DAY)},
        'fine_key': {'kind': 'api_key', 'expires_at': iso(now + 100 * DAY)},
        'oauth_cal_client_secret': {'kind': 'oauth_consent',
                                    'consent': {'required': True, 'redirect_uris': ['https://n/cb'], 'n8n_credential': 'oauth-cal'}},
        'oauth_gone_client_secret': {'kind': 'oauth_client', 'client_name': 'gone'},
    }
    secrets = {k: 'x' for k in metadata if k != 'oauth_gone_client_secret'}
    header = 'eyJhbGciOiJIUzI1NiJ9'
    import base64
    payload = base64.urlsafe_b64encode(json.dumps({'exp': int(now + 5 * DAY)}).encode()).decode().rstrip('=')
    secrets['gateway_token'] = '%s.%s.sig' % (header, payload)
    records = credentials_of('finance', secrets, metadata)
    rows = sort_rows([evaluate('finance', r, now, 14) for r in records])
    status = {r['credential']: r['status'] for r in rows}
    assert status == {'old_key': 'expired', 'gone': 'check_failed', 'soon_key': 'expiring', 'gateway_token': 'expiring',
                      'cal': 'consent_pending', 'fine_key': 'ok'}
    assert [r['status'] for r in rows] == ['expired', 'check_failed', 'expiring', 'expiring', 'consent_pending', 'ok']
    soon = [r for r in rows if r['credential'] == 'soon_key'][0]
    assert 2.9 < soon['days_left'] <= 3.0 and 'expires' in soon['detail']
    cal = [r for r in rows if r['credential'] == 'cal'][0]
    assert 'https://n/cb' in cal['action'] and "n8n > Credentials > 'oauth-cal'" in cal['action']
    granted = evaluate('finance', dict(records[0], expires_at=None, consent={'required': True}), now, 14,
                       live={'consent_granted': True})
    assert granted['status'] == 'ok'
    failed = evaluate('finance', [r for r in records if r['secret'] == 'fine_key'][0], now, 14,
                      live={'ok': False, 'error': '401 invalid_client'})
    assert failed['status'] == 'check_failed' and '401 invalid_client' in failed['detail']
    lines = table(rows)
    assert lines[0].split() == ['DEPARTMENT', 'CREDENTIAL', 'KIND', 'STATUS', 'EXPIRES', 'DETAIL']
    assert 'EXPIRED' in lines[2] and 'old_key' in lines[2]


class OneServer(object):
    """A registrar that answers a registration the way oidc-provider does (secret never expires)."""

    def register(self, name, metadata):
        return dict(metadata, client_id='id-1', client_secret='s-1', client_secret_expires_at=0,
                    registration_access_token='rat-1', registration_client_uri='https://as/reg/id-1')


def test_the_spec_gives_the_expiry_when_the_server_does_not():
    reconciler = ClientReconciler('finance', OneServer(), None, check_mode=False)
    out = reconciler.oidc(oidc_client(expires_at='2030-01-31'), {}, {}, {'token_endpoint': 'https://as/token'})
    assert out.report['expires_at'] == '2030-01-31'
    assert out.metadata['oauth_crm_client_secret']['expires_at'] == '2030-01-31'
    assert out.set == {'oauth_crm_client_id': 'id-1', 'oauth_crm_client_secret': 's-1',
                       'oauth_crm_registration_access_token': 'rat-1', 'oauth_crm_registration_client_uri': 'https://as/reg/id-1'}
    assert 's-1' not in str(out.report) and 'rat-1' not in str(out.report)
