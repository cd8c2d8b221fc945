# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: no compatibility promise outside federation.platform.
"""OAuth 2.0 clients: RFC 7591 dynamic registration, RFC 7592 management, token requests, and
the credentials of providers without a registration endpoint (Google).

Nothing here prints or returns a secret in a message: errors carry the server's error code and
description, never a request body or a header.
"""

from __future__ import annotations

import base64
import datetime
import json
import re
import socket
import threading
import time
from urllib.error import HTTPError, URLError
from urllib.parse import quote_plus, urlencode, urlsplit

from ansible.module_utils.urls import Request, make_context

try:
    from cryptography.hazmat.primitives import serialization
    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - the controller's requirements include it
    HAS_CRYPTOGRAPHY = False

CLIENT_NAME_RE = re.compile(r'^[a-z][a-z0-9_]{0,39}$')
PROVIDERS = ('oidc', 'google_service_account', 'google_oauth')
# Fields a registration answer carries that are secret, or that the server manages itself.
SECRET_FIELDS = ('client_secret', 'registration_access_token')
SERVER_FIELDS = ('client_id', 'client_secret', 'registration_access_token', 'registration_client_uri',
                 'client_id_issued_at', 'client_secret_expires_at')
# Metadata fields whose values are sets: order carries no meaning.
SET_FIELDS = ('grant_types', 'response_types', 'redirect_uris', 'post_logout_redirect_uris', 'contacts',
              'request_uris', 'default_acr_values')
N8N_CALLBACK_PATH = '/rest/oauth2-credential/callback'


class OAuthError(Exception):
    """A failure to show as it is: it names the client, the server and the fix, never a secret."""


class Unreachable(OAuthError):
    pass


class Response(object):
    def __init__(self, status, text, headers=None):
        self.status = status
        self.text = text
        self.headers = headers or {}
        try:
            self.json = json.loads(text) if text else None
        except ValueError:
            self.json = None

    def said(self):
        """What the server said, in words fit for an error message (no secrets are echoed by servers)."""
        body = self.json if isinstance(self.json, dict) else {}
        error = body.get('error')
        if error:
            description = body.get('error_description')
            return '%s %s%s' % (self.status, error, ' (%s)' % description if description else '')
        if body.get('errors'):
            return '%s %s' % (self.status, '; '.join(str(e) for e in body['errors']))
        text = (self.text or '').strip().replace('\n', ' ')
        return '%s %s' % (self.status, text[:200] if text else 'with an empty answer')


class Http(object):
    """A small JSON/form client over Ansible's urls.Request; answers every status, raises Unreachable.

    One TLS context serves every request: building one loads the CA bundle, which costs more than a
    request on loopback.
    """

    def __init__(self, timeout=30, validate_certs=True, ca_path=None):
        self.timeout = timeout
        self.validate_certs = validate_certs
        self.ca_path = ca_path
        self._context = None
        self._lock = threading.Lock()

    def _tls(self):
        with self._lock:
            if self._context is None:
                self._context = make_context(cafile=self.ca_path, validate_certs=self.validate_certs)
            return self._context

    def request(self, method, url, json_body=None, form=None, bearer=None, basic=None, headers=None):
        headers = dict({'Accept': 'application/json'}, **(headers or {}))
        data = None
        if json_body is not None:
            data = json.dumps(json_body)
            headers['Content-Type'] = 'application/json'
        elif form is not None:
            data = urlencode(form)
            headers['Content-Type'] = 'application/x-www-form-urlencoded'
        if bearer:
            headers['Authorization'] = 'Bearer %s' % bearer
        elif basic:
            # RFC 6749 2.3.1: both parts form-encoded before they are joined.
            pair = '%s:%s' % (quote_plus(basic[0]), quote_plus(basic[1]))
            headers['Authorization'] = 'Basic %s' % base64.b64encode(pair.encode('utf-8')).decode('ascii')
        try:
            resp = Request().open(method, url, data=data, headers=headers, timeout=self.timeout,
                                  validate_certs=self.validate_certs, follow_redirects='none',
                                  context=self._tls())
            return Response(resp.getcode(), resp.read().decode('utf-8', 'replace'), resp.headers)
        except HTTPError as exc:
            try:
                text = exc.read().decode('utf-8', 'replace')
            except Exception:  # a body that cannot be read is an empty body
                text = ''
            return Response(exc.code, text, exc.headers)
        except (URLError, socket.timeout, ConnectionError, OSError) as exc:
            reason = getattr(exc, 'reason', None) or exc
            raise Unreachable('%s cannot be reached: %s' % (_origin(url), reason))


def _origin(url):
    parts = urlsplit(url)
    return '%s://%s' % (parts.scheme, parts.netloc)


def normalize(metadata):
    """Client metadata in a form where equal meaning compares equal."""
    out = {}
    for key, value in (metadata or {}).items():
        if key == 'scope' and isinstance(value, str):
            value = ' '.join(sorted(set(value.split())))
        elif key in SET_FIELDS and isinstance(value, list):
            value = sorted(set(value))
        out[key] = value
    return out


def differences(desired, current):
    """Names of the fields of ``desired`` whose value the server does not hold."""
    want, have = normalize(desired), normalize(current)
    return sorted(k for k in want if want[k] != have.get(k))


def public(metadata):
    """Metadata without its secrets."""
    return dict((k, v) for k, v in (metadata or {}).items() if k not in SECRET_FIELDS)


def client_metadata(client_name, grant_types, scopes, redirect_uris=None, token_endpoint_auth_method=None, extra=None):
    """The full metadata of a client: everything the server should hold, since an update resets the rest."""
    metadata = dict(extra or {})
    metadata['client_name'] = client_name
    metadata['grant_types'] = list(grant_types)
    metadata['response_types'] = ['code'] if 'authorization_code' in grant_types else []
    if 'implicit' in grant_types:
        metadata['response_types'] = sorted(set(metadata['response_types']) | {'token'})
    if scopes:
        metadata['scope'] = ' '.join(scopes)
    if redirect_uris:
        metadata['redirect_uris'] = list(redirect_uris)
    if token_endpoint_auth_method:
        metadata['token_endpoint_auth_method'] = token_endpoint_auth_method
    return metadata


def expires_at(epoch):
    """ISO 8601 UTC text of a secret's expiry, or None for 0 / missing (never expires)."""
    if not epoch:
        return None
    moment = datetime.datetime.fromtimestamp(int(epoch), tz=datetime.timezone.utc)
    return moment.strftime('%Y-%m-%dT%H:%M:%SZ')


class Registrar(object):
    """RFC 7591 registration and RFC 7592 management of clients at one authorization server."""

    def __init__(self, http, registration_endpoint, initial_access_token=None):
        self.http = http
        self.endpoint = registration_endpoint
        self.initial_access_token = initial_access_token

    def _call(self, verb, name, where, method, url, **kwargs):
        try:
            return self.http.request(method, url, **kwargs)
        except Unreachable as exc:
            raise Unreachable("Failed to %s OAuth client '%s' on %s: the authorization server %s. Check the URL "
                              "(federation_oauth_registration_endpoint) and that the server is up; nothing was changed "
                              "there." % (verb, name, where, str(exc).split(' ', 1)[1]))

    def register(self, name, metadata):
        resp = self._call('register', name, self.endpoint, 'POST', self.endpoint, json_body=metadata,
                          bearer=self.initial_access_token)
        if resp.status in (200, 201) and isinstance(resp.json, dict) and resp.json.get('client_id'):
            return resp.json
        hint = 'Check the client metadata.'
        if resp.status in (401, 403):
            hint = ('Check the initial access token (federation_oauth_initial_access_token, or the environment variable '
                    'FEDERATION_OAUTH_INITIAL_ACCESS_TOKEN): the server refused it.')
        raise OAuthError("Failed to register OAuth client '%s' on %s: %s. %s" % (name, self.endpoint, resp.said(), hint))

    def read(self, name, uri, token):
        """The client's registration, or None when the server refuses the registration access token."""
        resp = self._call('read', name, uri, 'GET', uri, bearer=token)
        if resp.status == 200 and isinstance(resp.json, dict):
            return resp.json
        if resp.status in (401, 403, 404):
            return None
        raise OAuthError("Failed to read OAuth client '%s' on %s: %s." % (name, uri, resp.said()))

    def update(self, name, uri, token, client_id, metadata):
        body = dict(metadata, client_id=client_id)
        resp = self._call('update', name, uri, 'PUT', uri, json_body=body, bearer=token)
        if resp.status == 200 and isinstance(resp.json, dict):
            return resp.json
        raise OAuthError("Failed to update OAuth client '%s' on %s: %s. The registration was left as it was."
                         % (name, uri, resp.said()))

    def delete(self, name, uri, token):
        """True when deleted, False when the server no longer knows the client or its token."""
        resp = self._call('delete', name, uri, 'DELETE', uri, bearer=token)
        if resp.status in (200, 204):
            return True
        if resp.status in (401, 403, 404):
            return False
        raise OAuthError("Failed to delete OAuth client '%s' on %s: %s." % (name, uri, resp.said()))


def discover(http, issuer):
    """The authorization server's metadata (RFC 8414, falling back to OpenID Connect discovery)."""
    base = issuer.rstrip('/')
    last = None
    for path in ('/.well-known/oauth-authorization-server', '/.well-known/openid-configuration'):
        resp = http.request('GET', base + path)
        if resp.status == 200 and isinstance(resp.json, dict):
            return resp.json
        last = resp
    raise OAuthError("Failed to discover the authorization server '%s': %s. Set its token endpoint explicitly."
                     % (issuer, last.said()))


def token_request(http, token_endpoint, client_id, client_secret, scope=None, resource=None,
                  auth_method='client_secret_basic'):
    """A client credentials grant (RFC 6749 4.4). Returns the token's public facts, never the token."""
    form = {'grant_type': 'client_credentials'}
    if scope:
        form['scope'] = scope
    if resource:
        form['resource'] = resource
    basic = None
    if auth_method == 'client_secret_post':
        form.update(client_id=client_id, client_secret=client_secret)
    else:
        basic = (client_id, client_secret)
    started = time.monotonic()
    try:
        resp = http.request('POST', token_endpoint, form=form, basic=basic)
    except Unreachable as exc:
        return dict(ok=False, status=None, error=str(exc), seconds=round(time.monotonic() - started, 3))
    elapsed = round(time.monotonic() - started, 3)
    body = resp.json if isinstance(resp.json, dict) else {}
    if resp.status == 200 and body.get('access_token'):
        facts = dict(ok=True, token_type=body.get('token_type'), expires_in=body.get('expires_in'),
                     scope=body.get('scope', scope), seconds=elapsed)
        claims = jwt_claims(body['access_token'])
        if claims:
            facts.update(audience=claims.get('aud'), issuer=claims.get('iss'))
        return facts
    return dict(ok=False, status=resp.status, error=resp.said(), seconds=elapsed)


def jwt_claims(value):
    """The claims of a JWT, unverified (to read exp/aud), or None when ``value`` is not one."""
    if not isinstance(value, str) or value.count('.') != 2:
        return None
    try:
        header, payload = [json.loads(_b64url(part)) for part in value.split('.')[:2]]
    except (ValueError, TypeError):
        return None
    if not isinstance(header, dict) or 'alg' not in header or not isinstance(payload, dict):
        return None
    return payload


def _b64url(part):
    return base64.urlsafe_b64decode(part + '=' * (-len(part) % 4)).decode('utf-8')


def n8n_redirect_uri(n8n_url):
    """Where n8n receives OAuth 2.0 authorization codes (its fixed callback path)."""
    return n8n_url.rstrip('/') + N8N_CALLBACK_PATH


def parse_service_account_key(text, where):
    """Validate a Google service-account JSON key; returns the parsed key. Raises OAuthError."""
    try:
        key = json.loads(text)
    except ValueError as exc:
        raise OAuthError('%s is not JSON (%s). Download the key again from the Google Cloud console '
                         '(IAM > Service accounts > Keys > Add key > JSON).' % (where, exc.__class__.__name__))
    if not isinstance(key, dict) or key.get('type') != 'service_account':
        raise OAuthError("%s is not a service-account key (its 'type' must be 'service_account'). A user-consent "
                         "OAuth client belongs to provider google_oauth." % where)
    missing = [f for f in ('client_email', 'private_key', 'private_key_id', 'token_uri') if not key.get(f)]
    if missing:
        raise OAuthError('%s lacks %s. Download the key again as JSON.' % (where, ', '.join(missing)))
    if not HAS_CRYPTOGRAPHY:
        raise OAuthError('The Python library cryptography is needed to check %s.' % where)
    try:
        private = serialization.load_pem_private_key(key['private_key'].encode('utf-8'), password=None)
    except (ValueError, TypeError):
        raise OAuthError('%s has a private_key that is not an unencrypted PEM key. Download the key again.' % where)
    if getattr(private, 'key_size', 0) < 2048:
        raise OAuthError('%s has a private key shorter than 2048 bits, which Google does not issue.' % where)
    return key


def parse_oauth_client_file(text, where):
    """A Google OAuth client (user consent) as downloaded from the console: {web|installed: {...}}."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise OAuthError('%s is not JSON (%s). Download the OAuth client again from the Google Cloud console '
                         '(APIs & Services > Credentials).' % (where, exc.__class__.__name__))
    body = doc.get('web') or doc.get('installed') if isinstance(doc, dict) else None
    if not isinstance(body, dict) or not body.get('client_id') or not body.get('client_secret'):
        raise OAuthError("%s is not an OAuth client file: it needs a 'web' section with client_id and client_secret."
                         % where)
    return body


def secret_names(name, provider):
    """The store keys of one client, by provider (each prefixed oauth_<name>_)."""
    prefix = 'oauth_%s_' % name
    if provider == 'google_service_account':
        return [prefix + 'service_account_key']
    if provider == 'google_oauth':
        return [prefix + 'client_id', prefix + 'client_secret']
    return [prefix + 'client_id', prefix + 'client_secret', prefix + 'registration_access_token',
            prefix + 'registration_client_uri']


def main_secret(name, provider):
    """The key whose metadata describes the client (its expiry, its checks)."""
    if provider == 'google_service_account':
        return 'oauth_%s_service_account_key' % name
    return 'oauth_%s_client_secret' % name


class Outcome(object):
    """What reconciling one client does to the store, and what to report about it."""

    def __init__(self, name, provider):
        self.name = name
        self.provider = provider
        self.set = {}           # secret name -> value
        self.delete = []        # secret names to remove
        self.metadata = {}      # secret name -> metadata mapping (replaces the stored one), or None
        self.changed = False
        self.report = dict(name=name, provider=provider, changed=False)

    @property
    def writes(self):
        return bool(self.set or self.delete or self.metadata)

    def apply(self, secrets, metadata):
        """(secrets, metadata) after this outcome, or None when they would not change."""
        new = dict(secrets)
        new.update(self.set)
        for key in self.delete:
            new.pop(key, None)
        meta = dict(metadata)
        for key, value in self.metadata.items():
            if value is None:
                meta.pop(key, None)
            else:
                meta[key] = value
        if new == secrets and meta == metadata:
            return None
        return new, meta


class ClientReconciler(object):
    """Brings one department's OAuth clients to their wanted state, one client at a time.

    ``registrar`` talks to the authorization server; ``discovery`` returns the server's metadata
    (or raises OAuthError); ``now`` is the current Unix time. Nothing is written at the server in
    check mode: only reads happen, and the outcome predicts the change.
    """

    def __init__(self, department, registrar, http, check_mode, discovery=None, now=None):
        self.department = department
        self.registrar = registrar
        self.http = http
        self.check_mode = check_mode
        self.discovery = discovery
        self.now = now or time.time()

    # oidc: RFC 7591 / 7592
    def oidc(self, client, secrets, metadata, endpoints):
        name = client['name']
        out = Outcome(name, 'oidc')
        prefix = 'oauth_%s_' % name
        key = main_secret(name, 'oidc')
        client_name = client['client_name']
        stored_id = secrets.get(prefix + 'client_id')
        token = secrets.get(prefix + 'registration_access_token')
        uri = secrets.get(prefix + 'registration_client_uri')
        out.report.update(client_name=client_name, client_id=stored_id)

        if client['state'] == 'absent':
            if not stored_id:
                out.report.update(action='absent')
                return out
            out.changed = True
            gone = True
            if not self.check_mode and uri and token:
                gone = self.registrar.delete(client_name, uri, token)
            out.delete = [k for k in secret_names(name, 'oidc') if k in secrets]
            out.metadata[key] = None
            out.report.update(action='deleted' if gone else 'forgotten', before=dict(client_id=stored_id))
            if not gone:
                out.report['warning'] = ('the server no longer knew this client or its registration access token; '
                                         'its secrets were removed from the store')
            out.report['changed'] = True
            return out

        desired = client_metadata(client_name, client['grant_types'], client['scopes'], client['redirect_uris'],
                                  client['token_endpoint_auth_method'], client['metadata'])
        current = None
        if stored_id and token and uri:
            current = self.registrar.read(client_name, uri, token)
            if current is None and not client['reregister']:
                raise OAuthError(
                    "Failed to read OAuth client '%s' (client_id %s) of department '%s' on %s: the server refused its "
                    "stored registration access token, so the client was deleted at the server or its token was "
                    "rotated elsewhere. Set reregister: true on this client to register a new one (the old client id "
                    "is then dropped from the store)." % (client_name, stored_id, self.department, uri))
        elif stored_id:
            raise OAuthError(
                "OAuth client '%s' of department '%s' has a client id in the store but no registration access token "
                "or URI, so it cannot be managed. Remove the oauth_%s_* secrets from the store (or set state: absent "
                "and run again) to register it anew." % (client_name, self.department, name))

        answer = None
        if current is None:
            out.changed = True
            action = 'reregistered' if stored_id else 'registered'
            out.report.update(action=action, differences=sorted(desired))
            if not self.check_mode:
                answer = self.registrar.register(client_name, desired)
        else:
            diff = differences(desired, current)
            out.report['differences'] = diff
            if diff:
                out.changed = True
                out.report.update(action='updated',
                                  before=dict((k, current.get(k)) for k in diff))
                if not self.check_mode:
                    answer = self.registrar.update(client_name, uri, token, stored_id, desired)
            else:
                out.report['action'] = 'unchanged'
                answer = current

        if answer is not None:
            # Keep what the server handed out; a rotated registration access token replaces the old one,
            # which the server no longer accepts.
            fresh = {
                prefix + 'client_id': answer.get('client_id'),
                prefix + 'registration_access_token': answer.get('registration_access_token') or token,
                prefix + 'registration_client_uri': answer.get('registration_client_uri') or uri,
            }
            if answer.get('client_secret'):
                fresh[prefix + 'client_secret'] = answer['client_secret']
            for k, v in fresh.items():
                if v and secrets.get(k) != v:
                    out.set[k] = v
            out.report['client_id'] = answer.get('client_id')
            out.report['rotated_registration_access_token'] = bool(
                token and answer.get('registration_access_token') and answer['registration_access_token'] != token)
            if prefix + 'client_secret' not in secrets and prefix + 'client_secret' not in out.set \
                    and client['token_endpoint_auth_method'] != 'none':
                raise OAuthError("OAuth client '%s' of department '%s': the server returned no client secret and the "
                                 "store holds none." % (client_name, self.department))
        after = public(answer) if answer is not None else dict(desired, client_id=stored_id)
        out.report['metadata'] = dict((k, after.get(k)) for k in sorted(desired) if k in after)
        # The server's word on expiry first (0: never); else what the spec says; else what was recorded.
        secret_expiry = expires_at(answer.get('client_secret_expires_at')) if answer is not None else \
            (metadata.get(key) or {}).get('expires_at')
        secret_expiry = secret_expiry or client.get('expires_at')

        record = dict(kind='oauth_client', provider='oidc', client_id=out.report['client_id'], client_name=client_name,
                      grant_types=list(client['grant_types']), scope=' '.join(client['scopes']),
                      auth_method=client['token_endpoint_auth_method'], expires_at=secret_expiry,
                      token_endpoint=endpoints.get('token_endpoint'),
                      authorization_endpoint=endpoints.get('authorization_endpoint'),
                      n8n_credential=client['n8n_credential'])
        if 'authorization_code' in client['grant_types']:
            record['consent'] = dict(required=True, redirect_uris=list(client['redirect_uris']),
                                     n8n_url=client.get('n8n_url'), n8n_credential=client['n8n_credential'])
        record = dict((k, v) for k, v in record.items() if v not in (None, ''))
        if metadata.get(key) != record:
            out.metadata[key] = record
            if out.report['action'] == 'unchanged' and not out.set:
                out.report['action'] = 'recorded'
        out.report.update(expires_at=secret_expiry, token_endpoint=endpoints.get('token_endpoint'),
                          authorization_endpoint=endpoints.get('authorization_endpoint'),
                          grant_types=list(client['grant_types']), scopes=list(client['scopes']),
                          auth_method=client['token_endpoint_auth_method'], n8n_credential=client['n8n_credential'],
                          consent_required='authorization_code' in client['grant_types'])
        if out.report['consent_required']:
            out.report['next_step'] = (
                "unless done before: a person opens n8n > Credentials > '%s' and signs in at the authorization server "
                "to grant consent (monitor_credentials.yml reports it until then)" % client['n8n_credential'])
        out.report['changed'] = out.changed or out.writes
        return out

    # google_service_account: a JSON key imported into the store
    def google_service_account(self, client, secrets, metadata, key_text):
        name = client['name']
        out = Outcome(name, 'google_service_account')
        key_name = main_secret(name, 'google_service_account')
        stored = secrets.get(key_name)
        if client['state'] == 'absent':
            if stored is not None or key_name in metadata:
                out.changed = True
                out.delete = [key_name] if stored is not None else []
                out.metadata[key_name] = None
                out.report.update(action='deleted')
            else:
                out.report.update(action='absent')
            out.report['changed'] = out.changed
            return out

        where = client.get('key_file') or 'the stored key of %s' % name
        previous = dict(metadata.get(key_name) or {})
        if key_text is not None:
            key = parse_service_account_key(key_text, where)
            compact = json.dumps(key, sort_keys=True, separators=(',', ':'))
            if stored is None or json.loads(stored) != key:
                out.set[key_name] = compact
                out.changed = True
                out.report['action'] = 'rotated' if stored is not None else 'imported'
                previous['imported_at'] = expires_at(self.now)
            else:
                out.report['action'] = 'unchanged'
        elif stored is not None:
            key = parse_service_account_key(stored, where)
            out.report['action'] = 'unchanged'
        else:
            raise OAuthError(
                "OAuth client '%s' of department '%s' (provider google_service_account) has no key in the store and no "
                "key_file was found%s. Create a JSON key for the service account in the Google Cloud console and put "
                "it there; it is imported into the department's secrets on the next run, after which the file may be "
                "deleted." % (name, self.department, ' at %s' % client['key_file'] if client.get('key_file') else ''))

        imported = previous.get('imported_at') or expires_at(self.now)
        expiry = client.get('expires_at')
        if not expiry and client.get('max_age_days'):
            base = _parse_time(imported) or self.now
            expiry = expires_at(base + client['max_age_days'] * 86400)
        record = dict(kind='google_service_account', provider='google_service_account',
                      client_email=key['client_email'], private_key_id=key['private_key_id'],
                      project_id=key.get('project_id'), token_uri=key['token_uri'], subject=client.get('subject'),
                      scope=' '.join(client['scopes']), imported_at=imported, expires_at=expiry,
                      n8n_credential=client['n8n_credential'])
        record = dict((k, v) for k, v in record.items() if v not in (None, ''))
        if metadata.get(key_name) != record:
            out.metadata[key_name] = record
            if out.report['action'] == 'unchanged':
                out.report['action'] = 'recorded'
        out.report.update(client_email=key['client_email'], private_key_id=key['private_key_id'],
                          subject=client.get('subject'), expires_at=expiry, scopes=list(client['scopes']),
                          n8n_credential=client['n8n_credential'], consent_required=False,
                          changed=out.changed or out.writes)
        return out

    # google_oauth: a user-consent client made in the Google console; the consent is a person's step
    def google_oauth(self, client, secrets, metadata, client_doc):
        name = client['name']
        out = Outcome(name, 'google_oauth')
        prefix = 'oauth_%s_' % name
        key = main_secret(name, 'google_oauth')
        if client['state'] == 'absent':
            present = [k for k in secret_names(name, 'google_oauth') if k in secrets]
            if present or key in metadata:
                out.changed = True
                out.delete = present
                out.metadata[key] = None
                out.report.update(action='deleted')
            else:
                out.report.update(action='absent')
            out.report['changed'] = out.changed
            return out

        given_id = (client_doc or {}).get('client_id') or client.get('client_id')
        given_secret = (client_doc or {}).get('client_secret') or client.get('client_secret')
        if not given_id and not secrets.get(prefix + 'client_id'):
            raise OAuthError(
                "OAuth client '%s' of department '%s' (provider google_oauth) has no client id in the store and no "
                "client_file was found%s. Create an OAuth client of type 'Web application' in the Google Cloud console "
                "(APIs & Services > Credentials), download its JSON and put it there."
                % (name, self.department, ' at %s' % client['client_file'] if client.get('client_file') else ''))
        if given_id and not given_secret and not secrets.get(prefix + 'client_secret'):
            raise OAuthError("OAuth client '%s' of department '%s' (provider google_oauth): a client id without a "
                             "client secret. Give both (client_file, or client_id and client_secret)."
                             % (name, self.department))
        for k, v in ((prefix + 'client_id', given_id), (prefix + 'client_secret', given_secret)):
            if v and secrets.get(k) != v:
                out.set[k] = v
        out.changed = bool(out.set)
        action = 'imported' if prefix + 'client_id' not in secrets else ('updated' if out.set else 'unchanged')
        redirect_uri = client.get('redirect_uri')
        consent = dict(required=True, redirect_uris=[redirect_uri] if redirect_uri else [],
                       n8n_url=client.get('n8n_url'), n8n_credential=client['n8n_credential'])
        record = dict(kind='oauth_consent', provider='google_oauth',
                      client_id=given_id or secrets.get(prefix + 'client_id'), scope=' '.join(client['scopes']),
                      expires_at=client.get('expires_at'), n8n_credential=client['n8n_credential'],
                      consent=dict((k, v) for k, v in consent.items() if v is not None))
        record = dict((k, v) for k, v in record.items() if v not in (None, ''))
        if metadata.get(key) != record:
            out.metadata[key] = record
            if action == 'unchanged':
                action = 'recorded'
        out.report['next_step'] = (
            "unless done before: add the redirect URI %s to OAuth client %s in the Google Cloud console, then a person "
            "opens n8n > Credentials > '%s' and signs in to grant consent (monitor_credentials.yml reports it until then)"
            % (redirect_uri or '(known once the n8n instance exists)', record['client_id'], client['n8n_credential']))
        out.report.update(action=action, client_id=record['client_id'], redirect_uri=redirect_uri,
                          consent_required=True, scopes=list(client['scopes']), expires_at=client.get('expires_at'),
                          n8n_credential=client['n8n_credential'], changed=out.changed or out.writes)
        return out


def _parse_time(text):
    """Unix time of an ISO 8601 UTC text (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ), or None."""
    if not text:
        return None
    for fmt in ('%Y-%m-%dT%H:%M:%SZ', '%Y-%m-%dT%H:%M:%S%z', '%Y-%m-%d'):
        try:
            moment = datetime.datetime.strptime(text, fmt)
        except ValueError:
            continue
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.timezone.utc)
        return moment.timestamp()
    return None


parse_time = _parse_time
