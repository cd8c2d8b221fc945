"""A user-consent credential end to end, with a real n8n and a real authorization server.

oauth_client registers an authorization-code client whose redirect URI is the n8n OAuth callback;
the n8n credential is made from it (the data the role hands to n8n_credential); the monitor reports
it as waiting for consent; a person's sign-in and consent is walked through oidc-provider's own
pages; then n8n holds a token and the monitor reports the consent as given.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urljoin

import pytest
import requests

from ansible_collections.federation.platform.plugins.filter.oauth_n8n_credentials import oauth_n8n_credentials
from tests.harness.n8n import N8nServer
from tests.harness.oidc import OidcServer

from .conftest import vault_file

pytestmark = pytest.mark.slow


@pytest.fixture
def interactive_oidc():
    server = OidcServer(interactive=True).start()
    yield server
    server.remove()


@pytest.fixture
def n8n():
    # N8N_DISABLED_MODULES: the harness default names a 2.x module that 1.x refuses to boot with.
    server = N8nServer(version='1.123.81', env={'N8N_DISABLED_MODULES': ''}).start()
    yield server
    server.remove()


def owner_session(n8n, email, password):
    session = requests.Session()
    resp = session.post(n8n.url + '/rest/owner/setup',
                        json={'email': email, 'firstName': 'Ops', 'lastName': 'Owner', 'password': password}, timeout=30)
    assert resp.status_code == 200, resp.text
    scopes = session.get(n8n.url + '/rest/api-keys/scopes', timeout=30).json()['data']
    key = session.post(n8n.url + '/rest/api-keys', json={'label': 'tests', 'scopes': scopes, 'expiresAt': None},
                       timeout=30).json()['data']['rawApiKey']
    return session, key


def status_of(runner, fed_home, credential):
    result = runner.module('federation.platform.credential_status', dict(
        departments=['ops'], secrets_dir=str(fed_home / 'secrets'), within_days=14))
    rows = [r for r in result['report']['credentials'] if r['credential'] == credential]
    assert len(rows) == 1, result
    return rows[0]


def test_consent_waits_for_a_person_then_is_seen_in_n8n(runner, fed_home, interactive_oidc, n8n):
    path = str(fed_home / 'secrets' / 'ops.yml')
    runner.module('federation.platform.department_secrets',
                  dict(department='ops', path=path, generate={'n8n_owner_password': {'length': 24}}))
    password = vault_file(fed_home, 'ops')['secrets']['n8n_owner_password']
    session, api_key = owner_session(n8n, 'owner@ops.federation.local', password)

    registered = runner.module('federation.platform.oauth_client', dict(
        department='ops', path=path, registration_endpoint=interactive_oidc.registration_endpoint,
        initial_access_token=interactive_oidc.initial_access_token, n8n_url=n8n.url,
        clients=[dict(name='portal', grant_types=['authorization_code'], scopes=['calls:read'])]))
    portal = registered['clients'][0]
    assert registered['changed'] is True and portal['consent_required'] is True
    assert portal['authorization_endpoint'] == interactive_oidc.issuer + '/auth'
    assert "n8n > Credentials > 'oauth-portal'" in portal['next_step']

    # Before the n8n credential exists.
    row = status_of(runner, fed_home, 'portal')
    assert row['status'] == 'consent_pending' and "has no credential 'oauth-portal' yet" in row['detail']
    assert row['redirect_uris'] == [n8n.url + '/rest/oauth2-credential/callback']

    # The n8n credential, as the role makes it.
    secrets = vault_file(fed_home, 'ops')['secrets']
    [credential] = oauth_n8n_credentials(registered['clients'], secrets)
    assert credential['type'] == 'oAuth2Api' and credential['data']['grantType'] == 'authorizationCode'
    created = requests.post(n8n.url + '/api/v1/credentials', json=credential, headers={'X-N8N-API-KEY': api_key}, timeout=30)
    assert created.status_code == 200, created.text
    row = status_of(runner, fed_home, 'portal')
    assert row['status'] == 'consent_pending' and "n8n credential 'oauth-portal' holds no token yet" in row['detail']

    # The person: n8n sends them to the authorization server, they sign in and consent.
    auth = session.get(n8n.url + '/rest/oauth2-credential/auth', params={'id': created.json()['id']}, timeout=30)
    assert auth.status_code == 200, auth.text
    page = session.get(auth.json()['data'], timeout=30)
    for prompt, fields in (('login', {'prompt': 'login', 'login': 'alice', 'password': 'any'}), ('consent', {'prompt': 'consent'})):
        action = re.search(r'<form[^>]+action="([^"]+)"', page.text)
        assert action and ('name="prompt" value="%s"' % prompt) in page.text, page.text[:2000]
        page = session.post(urljoin(page.url, html.unescape(action.group(1))), data=fields, timeout=30)
    assert page.url.startswith(n8n.url + '/rest/oauth2-credential/callback'), page.url
    assert page.status_code == 200, page.text[:1000]

    row = status_of(runner, fed_home, 'portal')
    assert row['status'] == 'ok' and 'consent given' in row['detail'], row
    for value in (secrets['oauth_portal_client_secret'], password):
        assert value not in str(row)
