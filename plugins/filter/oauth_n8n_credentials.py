# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json

from ansible.errors import AnsibleFilterError

# n8n credential types (n8n-nodes-base/dist/credentials/*.credentials.js, n8n 1.x and 2.x):
#   oAuth2Api        generic OAuth 2.0: grantType clientCredentials | authorizationCode
#   googleApi        Google service account: email, privateKey, inpersonate + delegatedEmail
#   googleOAuth2Api  Google OAuth 2.0 with user consent (its endpoints are fixed by n8n)
# n8n's public API checks `data` against a JSON schema it derives from the type's fields, and the
# derivation turns "shown when" rules into "required when" ones: serverUrl (a field of dynamic
# registration) is required for every grant, authorizationCode needs the additional-body fields, and
# a Google service account used in HTTP Request nodes needs the notice field httpWarning. The data
# below satisfies that schema (checked against n8n 1.123.81 and 2.41.1); the extra empty fields are
# ignored when the credential is used.
SKIPPED_ACTIONS = ('deleted', 'forgotten', 'absent')


def _secret(secrets, key, client):
    value = secrets.get(key)
    if not value:
        raise AnsibleFilterError("oauth_n8n_credentials: the secrets hold no '%s' for OAuth client '%s'; "
                                 "run federation.platform.oauth_client first" % (key, client))
    return value


def oauth_n8n_credentials(clients, secrets, missing='fail'):
    """n8n credentials {name, type, data} for the clients an oauth_client task reported on."""
    if missing not in ('fail', 'skip'):
        raise AnsibleFilterError("oauth_n8n_credentials: missing must be 'fail' or 'skip', got %r" % (missing,))
    if not isinstance(clients, list) or not isinstance(secrets, dict):
        raise AnsibleFilterError('oauth_n8n_credentials: expects the clients list of an oauth_client result and the '
                                 "department's secrets mapping")
    out = []
    for client in clients:
        if client.get('action') in SKIPPED_ACTIONS:
            continue
        name = client['name']
        prefix = 'oauth_%s_' % name
        provider = client.get('provider', 'oidc')
        if missing == 'skip' and not all(secrets.get(k) for k in _needed(name, provider)):
            continue
        scope = ' '.join(client.get('scopes') or [])
        if provider == 'oidc':
            data = {
                'serverUrl': '',
                'accessTokenUrl': client.get('token_endpoint') or '',
                'clientId': _secret(secrets, prefix + 'client_id', name),
                'clientSecret': _secret(secrets, prefix + 'client_secret', name),
                'scope': scope,
                'authentication': 'body' if client.get('auth_method') == 'client_secret_post' else 'header',
            }
            if 'authorization_code' in (client.get('grant_types') or []):
                data.update(grantType='authorizationCode', authUrl=client.get('authorization_endpoint') or '',
                            authQueryParameters='', sendAdditionalBodyProperties=False, additionalBodyProperties='')
            else:
                data.update(grantType='clientCredentials')
            out.append(dict(name=client['n8n_credential'], type='oAuth2Api', data=data))
        elif provider == 'google_service_account':
            key = json.loads(_secret(secrets, prefix + 'service_account_key', name))
            data = {'email': key['client_email'], 'privateKey': key['private_key'],
                    'inpersonate': bool(client.get('subject')), 'httpNode': bool(scope)}
            if client.get('subject'):
                data['delegatedEmail'] = client['subject']
            if scope:
                data.update(scopes=scope, httpWarning='')
            out.append(dict(name=client['n8n_credential'], type='googleApi', data=data))
        elif provider == 'google_oauth':
            out.append(dict(name=client['n8n_credential'], type='googleOAuth2Api', data={
                'serverUrl': '',
                'clientId': _secret(secrets, prefix + 'client_id', name),
                'clientSecret': _secret(secrets, prefix + 'client_secret', name),
                'scope': scope,
                'sendAdditionalBodyProperties': False,
                'additionalBodyProperties': '',
            }))
        else:
            raise AnsibleFilterError("oauth_n8n_credentials: OAuth client '%s' has unknown provider %r" % (name, provider))
    return out


def _needed(name, provider):
    prefix = 'oauth_%s_' % name
    if provider == 'google_service_account':
        return [prefix + 'service_account_key']
    return [prefix + 'client_id', prefix + 'client_secret']


class FilterModule(object):
    def filters(self):
        return {'oauth_n8n_credentials': oauth_n8n_credentials}
