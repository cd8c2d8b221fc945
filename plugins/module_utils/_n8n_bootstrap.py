# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: no compatibility promise outside federation.platform.
"""Bootstrap of a fresh n8n instance without its editor: owner account and public-API key.

1. Wait until the API exists (``/rest/settings`` answers JSON and ``/api/v1`` answers JSON; ``/healthz``
   answers seconds earlier).
2. A stored key that works (``GET /api/v1/workflows`` answers 200) means nothing to do: no login, which
   keeps re-runs fast and clear of 2.x's login rate limit (5 a minute per account).
3. Otherwise: ``POST /rest/owner/setup`` on an instance without owner, ``POST /rest/login`` on one with
   an owner; then ``POST /rest/api-keys`` with the wanted scopes among those the owner may grant
   (``GET /rest/api-keys/scopes``; an n8n without scopes gets a key without them), after deleting older
   keys with the same label (n8n keeps labels unique; their value was shown once and never stored).
"""

from __future__ import annotations

import re

from ansible_collections.federation.platform.plugins.module_utils._n8n import (
    BadRequest, N8nError, NotFound, Unauthorized, quote_id)

# What the collection's modules need, and reading executions to diagnose a failed workflow.
DEFAULT_SCOPES = (
    'workflow:create', 'workflow:read', 'workflow:update', 'workflow:delete', 'workflow:list',
    'workflow:activate', 'workflow:deactivate', 'workflow:move',
    'workflowTags:list', 'workflowTags:update',
    'tag:create', 'tag:read', 'tag:update', 'tag:delete', 'tag:list',
    'credential:create', 'credential:read', 'credential:update', 'credential:delete', 'credential:list',
    'credential:move',
    'execution:read', 'execution:list',
)

_PASSWORD_RULE = re.compile(r'^(?=.*\d)(?=.*[A-Z]).{8,64}$')
_EMAIL = re.compile(r'^[^@\s]+@[^@\s]+\.[^@\s]+$')


class BootstrapError(Exception):
    """The bootstrap failed; the message says what to do and carries no secret."""


def input_problems(params):
    problems = []
    if not _EMAIL.match(params.get('owner_email') or ''):
        problems.append('owner_email must be an e-mail address')
    if not _PASSWORD_RULE.match(params.get('owner_password') or ''):
        problems.append('owner_password must have 8-64 characters with at least one digit and one uppercase letter '
                        '(n8n refuses others)')
    label = params.get('api_key_label') or ''
    if not 1 <= len(label) <= 50 or '<' in label or '>' in label:
        problems.append('api_key_label must have 1-50 characters and no HTML')
    return problems


class Bootstrap(object):

    def __init__(self, client, params, check_mode=False):
        self.client = client
        self.params = params
        self.check_mode = check_mode
        self.actions = []
        self.version = None

    def _fail(self, verb, exc, hint):
        return BootstrapError('Failed to %s on %s: %s. %s' % (verb, self.client.where, str(exc).rstrip('.'), hint))

    def key_works(self, key):
        if not key:
            return False
        saved = self.client.api_key
        self.client.api_key = key
        try:
            self.client.api('GET', '/workflows', query={'limit': 1})
            return True
        except Unauthorized:
            return False
        finally:
            self.client.api_key = saved

    def settings(self):
        try:
            return self.client.rest('GET', '/settings') or {}
        except N8nError as exc:
            raise self._fail('read the settings', exc, 'Check that url points at n8n.')

    def run(self):
        p = self.params
        if not self.client.wait_ready(p['wait_timeout']):
            raise BootstrapError('Failed to reach %s: its API did not become ready within %s s (waited for /rest/settings '
                                 'and /api/v1 to answer JSON). Check that n8n runs, the url, and its log.'
                                 % (self.client.where, p['wait_timeout']))
        public = self.settings()
        if (public.get('publicApi') or {}).get('enabled') is False:
            raise BootstrapError('Failed to bootstrap %s: its public API is disabled (N8N_PUBLIC_API_DISABLED). '
                                 'Enable it; the collection manages n8n through it.' % self.client.where)
        needs_owner = bool((public.get('userManagement') or {}).get('showSetupOnFirstLoad'))

        if not needs_owner and self.key_works(p.get('api_key')):
            self.version = self.client.version_from_page()
            return dict(changed=False, api_key=None, owner_created=False, key_created=False,
                        msg='%s has an owner and the stored API key works' % self.client.where)

        if self.check_mode:
            self.version = self.client.version_from_page()
            what = 'create the owner and an API key' if needs_owner else 'create an API key (the stored one %s)' % (
                'does not work' if p.get('api_key') else 'is missing')
            return dict(changed=True, api_key=None, owner_created=needs_owner, key_created=True,
                        msg='would %s on %s' % (what, self.client.where))

        owner_created = False
        if needs_owner:
            try:
                self.client.rest('POST', '/owner/setup', {
                    'email': p['owner_email'], 'firstName': p['owner_first_name'],
                    'lastName': p['owner_last_name'], 'password': p['owner_password']}, retry=False)
                owner_created = True
            except BadRequest as exc:
                if 'already setup' not in exc.message.lower():
                    raise self._fail('create the owner %s' % p['owner_email'], exc,
                                     'Check owner_email and owner_password against n8n\'s rules.')
                self._login()   # someone else won the race, or an owner managed by the environment (2.x)
        else:
            self._login()

        version = (self.client.rest('GET', '/settings') or {}).get('versionCli')
        self.version = version or self.client.version_from_page()
        key = self._create_key()
        return dict(changed=True, api_key=key, owner_created=owner_created, key_created=True,
                    msg='%s: %s' % (self.client.where, 'owner %s and API key created' % p['owner_email']
                                    if owner_created else 'new API key created'))

    def _login(self):
        p = self.params
        try:
            self.client.rest('POST', '/login', {'emailOrLdapLoginId': p['owner_email'], 'password': p['owner_password']},
                             retry=False)
        except Unauthorized as exc:
            raise self._fail('log in as the owner %s' % p['owner_email'], exc,
                             'The instance already has an owner whose password is not owner_password (the secret '
                             'n8n_owner_password): it was set up by someone else, or the secret changed. Reset the owner '
                             'with "n8n user-management:reset" on the instance, or store the right password.')
        except N8nError as exc:
            raise self._fail('log in as the owner %s' % p['owner_email'], exc, 'Check the owner account.')

    def _create_key(self):
        p = self.params
        wanted = list(p.get('api_key_scopes') or DEFAULT_SCOPES)
        scopes = None
        try:
            allowed = self.client.rest('GET', '/api-keys/scopes')
            if isinstance(allowed, list):
                scopes = [s for s in wanted if s in allowed]
        except (NotFound, BadRequest):
            scopes = None   # an n8n without API-key scopes
        except N8nError as exc:
            raise self._fail('read the API-key scopes', exc, 'Check the owner account.')
        try:
            old = self.client.rest('GET', '/api-keys')
        except N8nError:
            old = []
        if isinstance(old, dict):
            old = old.get('items') or []
        # n8n keeps labels unique per user. A key with our label whose value we do not hold is of no use
        # to anyone (the value is shown once, at creation): delete it, then create the new one.
        for entry in old or []:
            if entry.get('label') == p['api_key_label']:
                try:
                    self.client.rest('DELETE', '/api-keys/%s' % quote_id(entry['id']))
                    self.actions.append('deleted the older API key %s' % entry['id'])
                except N8nError as exc:
                    raise self._fail('delete the older API key labelled %s' % p['api_key_label'], exc,
                                     'Delete it in n8n (Settings, n8n API) or choose another api_key_label.')
        body = {'label': p['api_key_label'], 'expiresAt': None}
        if scopes is not None:
            body['scopes'] = scopes
        try:
            created = self.client.rest('POST', '/api-keys', body, retry=False)
        except N8nError as exc:
            raise self._fail('create an API key', exc, 'Check api_key_scopes against what the owner role may grant.')
        key = (created or {}).get('rawApiKey') or (created or {}).get('apiKey')
        if not key:
            raise BootstrapError('Failed to create an API key on %s: the answer carried no key.' % self.client.where)
        self.actions.append('created API key %s' % p['api_key_label'])
        if not self.key_works(key):
            raise BootstrapError('Failed to use the new API key on %s: n8n refused it. Check the n8n log.'
                                 % self.client.where)
        return key
