# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os
import re

from ansible.errors import AnsibleActionFail
from ansible.module_utils.basic import env_fallback
from ansible.parsing.vault import AnsibleVaultError
from ansible.plugins.action import ActionBase

from ansible_collections.federation.platform.plugins.module_utils._naming import validate_department_name
from ansible_collections.federation.platform.plugins.module_utils._oauth import (
    CLIENT_NAME_RE, PROVIDERS, ClientReconciler, Http, OAuthError, Registrar, discover, main_secret,
    n8n_redirect_uri, parse_oauth_client_file, parse_service_account_key, parse_time, token_request)
from ansible_collections.federation.platform.plugins.module_utils._secrets import StoreError, update
from ansible_collections.federation.platform.plugins.plugin_utils._secret_store import open_store, store_argument_spec

CLIENT_OPTIONS = dict(
    name=dict(type='str', required=True),
    provider=dict(type='str', default='oidc', choices=list(PROVIDERS)),
    state=dict(type='str', default='present', choices=['present', 'absent']),
    client_name=dict(type='str'),
    grant_types=dict(type='list', elements='str', default=['client_credentials']),
    scopes=dict(type='list', elements='str', default=[]),
    redirect_uris=dict(type='list', elements='str', default=[]),
    token_endpoint_auth_method=dict(type='str', default='client_secret_basic',
                                    choices=['client_secret_basic', 'client_secret_post', 'none']),
    metadata=dict(type='dict', default={}),
    token_check=dict(type='bool'),
    reregister=dict(type='bool', default=False),
    n8n_credential=dict(type='str'),
    key_file=dict(type='path'),
    subject=dict(type='str'),
    client_file=dict(type='path'),
    client_id=dict(type='str'),
    client_secret=dict(type='str', no_log=True),
    expires_at=dict(type='str'),
    max_age_days=dict(type='int'),
)

_EMAIL_RE = re.compile(r'^[^@\s]+@[^@\s]+\.[^@\s]+$')


class ActionModule(ActionBase):
    """Register and manage a department's OAuth clients; their secrets go to the department's store only."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        spec = store_argument_spec()
        spec.update(
            department=dict(type='str', required=True),
            clients=dict(type='list', elements='dict', required=True, options=CLIENT_OPTIONS),
            registration_endpoint=dict(type='str'),
            initial_access_token=dict(type='str', no_log=True,
                                      fallback=(env_fallback, ['FEDERATION_OAUTH_INITIAL_ACCESS_TOKEN'])),
            issuer=dict(type='str'),
            token_endpoint=dict(type='str'),
            resource=dict(type='str'),
            token_check=dict(type='bool', default=False),
            n8n_url=dict(type='str'),
            n8n_public_url=dict(type='str'),
            files_dir=dict(type='path'),
            validate_certs=dict(type='bool', default=True),
            timeout=dict(type='int', default=30),
        )
        validation, args = self.validate_argument_spec(argument_spec=spec)
        department = str(args['department'])
        try:
            validate_department_name(department)
        except ValueError as exc:
            raise AnsibleActionFail('Invalid department: %s' % exc)
        secrets_to_hide = [args.get('initial_access_token'), (args.get('hashi_vault') or {}).get('token')]
        secrets_to_hide += [c.get('client_secret') for c in args['clients']]

        try:
            clients, inputs = self._clients(department, args)
        except OAuthError as exc:
            raise AnsibleActionFail(str(exc))

        http = Http(timeout=args['timeout'], validate_certs=args['validate_certs'])
        registrar = Registrar(http, args['registration_endpoint'], args['initial_access_token'])
        reconciler = ClientReconciler(department, registrar, http, self._task.check_mode)
        store = open_store(self._loader, args, department)
        reports, before, after = [], {}, {}
        changed = False
        failure = None
        store.lock(write=not self._task.check_mode)
        try:
            try:
                snapshot = store.load()
            except (AnsibleVaultError, ValueError) as exc:
                raise AnsibleActionFail("Failed to read the secrets of department '%s' from %s: %s. Check the vault "
                                        "password; the file was left as it is." % (department, store.describe(), exc))
            except StoreError as exc:
                raise AnsibleActionFail(str(exc))
            secrets, metadata = snapshot.secrets, snapshot.metadata
            self._check_stored_inputs(department, clients, inputs, secrets)
            endpoints = None
            for client in clients:
                provider = client['provider']
                if provider == 'oidc':
                    if endpoints is None:
                        endpoints = self._endpoints(args, http, clients)
                    outcome = reconciler.oidc(client, secrets, metadata, endpoints)
                elif provider == 'google_service_account':
                    outcome = reconciler.google_service_account(client, secrets, metadata, inputs.get(client['name']))
                else:
                    outcome = reconciler.google_oauth(client, secrets, metadata, inputs.get(client['name']))
                key = main_secret(client['name'], provider)
                before[client['name']] = metadata.get(key) or {}
                after[client['name']] = outcome.metadata.get(key, metadata.get(key)) or {}
                if outcome.writes and not self._task.check_mode:
                    # Saved at once, client by client: a server that handed out a new registration access
                    # token has already forgotten the old one.
                    try:
                        dummy, saved, saved_meta = update(store, lambda snap, o=outcome: o.apply(snap.secrets, snap.metadata))
                    except (StoreError, OSError, AnsibleVaultError, ValueError) as exc:
                        raise AnsibleActionFail(
                            "OAuth client '%s' of department '%s' was %s on the server, but its secrets could not be "
                            "stored in %s: %s. Fix the store and run again%s." % (
                                client['name'], department, outcome.report.get('action'), store.describe(), exc,
                                '; the registration access token the server returned is lost, so set reregister: true'
                                if outcome.report.get('rotated_registration_access_token') else ''))
                    if saved is not None:
                        secrets, metadata = saved, saved_meta
                elif outcome.writes:
                    applied = outcome.apply(secrets, metadata)
                    if applied:
                        secrets, metadata = applied
                changed = changed or outcome.report['changed']
                reports.append(outcome.report)
                if self._wants_token_check(client, args) and client['state'] == 'present':
                    outcome.report['token_check'] = self._token_check(client, args, http, secrets, outcome.report)
                    if not outcome.report['token_check'].get('ok') and not outcome.report['token_check'].get('skipped'):
                        failure = failure or (
                            "OAuth client '%s' of department '%s' is %s, but a client credentials token request on %s "
                            "failed: %s. Check the client's scopes against what the server allows."
                            % (client['client_name'], department, outcome.report.get('action'),
                               outcome.report['token_check'].get('token_endpoint'),
                               outcome.report['token_check'].get('error')))
        except OAuthError as exc:
            raise AnsibleActionFail(_scrub(str(exc), secrets_to_hide))
        finally:
            store.unlock()

        result.update(
            changed=changed,
            clients=reports,
            secrets_path=store.describe(),
            msg=_summary(department, reports),
        )
        if self._task.diff:
            result['diff'] = dict(before=before, after=after, before_header='%s (before)' % store.describe(),
                                  after_header='%s (after)' % store.describe())
        if failure:
            result.update(failed=True, msg=_scrub(failure, secrets_to_hide))
        return result

    def _clients(self, department, args):
        """Validated clients, and the files they name read in; every problem reported before anything changes."""
        problems, clients, inputs, seen = [], [], {}, set()
        n8n_public = args.get('n8n_public_url') or args.get('n8n_url')
        for raw in args['clients']:
            client = dict(raw)
            name = client['name']
            where = "OAuth client '%s' of department '%s'" % (name, department)
            if not CLIENT_NAME_RE.match(name or ''):
                problems.append("%s: the name must be 1-40 lowercase letters, digits and underscores, starting with a "
                                "letter" % where)
                continue
            if name in seen:
                problems.append('%s is listed twice' % where)
            seen.add(name)
            client['client_name'] = client.get('client_name') or 'federation-%s-%s' % (department, name.replace('_', '-'))
            client['n8n_credential'] = client.get('n8n_credential') or 'oauth-%s' % name.replace('_', '-')
            client['n8n_url'] = args.get('n8n_url')
            if client.get('token_endpoint_auth_method') == 'none' and client['provider'] == 'oidc' \
                    and 'client_credentials' in client['grant_types']:
                problems.append("%s: the client_credentials grant needs a client secret; use token_endpoint_auth_method "
                                "client_secret_basic or client_secret_post" % where)
            if client.get('expires_at') and parse_time(client['expires_at']) is None:
                problems.append("%s: expires_at %r is not a date; write it as 2030-01-31 or 2030-01-31T00:00:00Z"
                                % (where, client['expires_at']))
            if client.get('max_age_days') is not None and not 0 < client['max_age_days'] <= 3650:
                problems.append('%s: max_age_days must be from 1 to 3650' % where)
            provider = client['provider']
            if provider == 'oidc' and client['state'] == 'present':
                if not args.get('registration_endpoint'):
                    problems.append("%s: no registration endpoint; set federation_oauth_registration_endpoint (the "
                                    "authorization server's RFC 7591 endpoint)" % where)
                if 'authorization_code' in client['grant_types'] and not client['redirect_uris']:
                    if n8n_public:
                        client['redirect_uris'] = [n8n_redirect_uri(n8n_public)]
                    else:
                        problems.append('%s: the authorization_code grant needs redirect URIs, and no n8n URL is known to '
                                        'derive its OAuth callback from; set redirect_uris or n8n_url' % where)
            if provider == 'google_service_account' and client.get('subject') and not _EMAIL_RE.match(client['subject']):
                problems.append('%s: subject %r is not an e-mail address (the Workspace user to act as)'
                                % (where, client['subject']))
            if provider == 'google_oauth':
                client['redirect_uri'] = n8n_redirect_uri(n8n_public) if n8n_public else None
            if args.get('files_dir') and provider != 'oidc':
                option = 'key_file' if provider == 'google_service_account' else 'client_file'
                client[option] = client.get(option) or os.path.join(args['files_dir'], name + '.json')
            if client['state'] == 'present':
                path = client.get('key_file') if provider == 'google_service_account' else (
                    client.get('client_file') if provider == 'google_oauth' else None)
                if path and os.path.exists(path):
                    try:
                        with open(path) as handle:
                            text = handle.read()
                    except OSError as exc:
                        problems.append('%s: %s cannot be read: %s' % (where, path, exc.strerror))
                        text = None
                    if text is not None:
                        try:
                            if provider == 'google_service_account':
                                parse_service_account_key(text, path)
                                inputs[name] = text
                            else:
                                inputs[name] = parse_oauth_client_file(text, path)
                        except OAuthError as exc:
                            problems.append('%s: %s' % (where, exc))
            clients.append(client)
        if problems:
            raise OAuthError('Invalid OAuth clients: %s. Nothing was changed.' % '; '.join(problems))
        return clients, inputs

    def _check_stored_inputs(self, department, clients, inputs, secrets):
        """Google clients need their file the first time; say so for all of them at once."""
        missing = []
        for client in clients:
            if client['state'] != 'present' or client['name'] in inputs:
                continue
            if client['provider'] == 'google_service_account' and main_secret(client['name'], client['provider']) not in secrets:
                missing.append("'%s' needs its service-account JSON key at %s" % (client['name'], client.get('key_file') or '(no key_file given)'))
            if client['provider'] == 'google_oauth' and 'oauth_%s_client_id' % client['name'] not in secrets \
                    and not client.get('client_id'):
                missing.append("'%s' needs its OAuth client JSON at %s" % (client['name'], client.get('client_file') or '(no client_file given)'))
        if missing:
            raise AnsibleActionFail(
                "OAuth clients of department '%s' cannot be set up yet: %s. Google clients are made in the Google Cloud "
                "console; download the JSON there and put it at that path. Nothing was changed." % (department, '; '.join(missing)))

    def _endpoints(self, args, http, clients):
        """The token and authorization endpoints, given or discovered (a read, also done in check mode)."""
        endpoints = dict(token_endpoint=args.get('token_endpoint'), authorization_endpoint=None)
        needs_auth = any('authorization_code' in c['grant_types'] for c in clients if c['provider'] == 'oidc')
        if endpoints['token_endpoint'] and not needs_auth:
            return endpoints
        issuer = args.get('issuer')
        if not issuer and args.get('registration_endpoint'):
            parts = re.match(r'^(https?://[^/]+)', args['registration_endpoint'])
            issuer = parts.group(1) if parts else None
        if not issuer:
            return endpoints
        try:
            found = discover(http, issuer)
        except OAuthError:
            if args.get('issuer'):
                raise
            return endpoints
        endpoints['token_endpoint'] = endpoints['token_endpoint'] or found.get('token_endpoint')
        endpoints['authorization_endpoint'] = found.get('authorization_endpoint')
        return endpoints

    def _wants_token_check(self, client, args):
        wanted = client['token_check'] if client.get('token_check') is not None else args['token_check']
        return bool(wanted) and client['provider'] == 'oidc' and 'client_credentials' in client['grant_types']

    def _token_check(self, client, args, http, secrets, report):
        endpoint = report.get('token_endpoint')
        if self._task.check_mode:
            return dict(skipped=True, reason='check mode')
        if not endpoint:
            return dict(ok=False, token_endpoint=None,
                        error='no token endpoint is known: set token_endpoint or issuer')
        prefix = 'oauth_%s_' % client['name']
        facts = token_request(http, endpoint, secrets.get(prefix + 'client_id'), secrets.get(prefix + 'client_secret'),
                              scope=' '.join(client['scopes']) or None, resource=args.get('resource'),
                              auth_method=client['token_endpoint_auth_method'])
        facts['token_endpoint'] = endpoint
        return facts


def _scrub(text, secrets):
    for value in secrets:
        if value and len(value) >= 4:
            text = text.replace(value, '********')
    return text


def _summary(department, reports):
    if not reports:
        return "department '%s' has no OAuth clients" % department
    return "OAuth clients of department '%s': %s" % (
        department, ', '.join('%s %s' % (r['name'], r.get('action', 'unchanged')) for r in reports))
