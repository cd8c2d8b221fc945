# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: no compatibility promise outside federation.platform.
"""Which of a department's credentials need a person: expired, about to expire, failing a live
check, or waiting for a consent only a person can give.

Input is what a secrets store holds (secrets and their metadata); output is rows without a
secret in them. Live checks are functions passed in, so the evaluation itself is pure.
"""

from __future__ import annotations

import datetime

from ansible_collections.federation.platform.plugins.module_utils._oauth import (
    Unreachable, jwt_claims, parse_time, token_request)

# Worst first: a credential's status is the worst that applies.
STATUSES = ('expired', 'check_failed', 'expiring', 'consent_pending', 'ok', 'unchecked')
NEEDS_ACTION = ('expired', 'check_failed', 'expiring', 'consent_pending')


def iso(epoch):
    return datetime.datetime.fromtimestamp(int(epoch), tz=datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def credentials_of(department, secrets, metadata):
    """The credentials worth reporting: every metadata entry, and every secret that is a JWT with ``exp``."""
    found = []
    for key in sorted(metadata):
        record = metadata[key]
        if not isinstance(record, dict):
            continue
        found.append(dict(record, secret=key, present=key in secrets))
    described = set(metadata)
    for key in sorted(secrets):
        if key in described:
            continue
        claims = jwt_claims(secrets[key])
        if claims and isinstance(claims.get('exp'), (int, float)):
            found.append(dict(secret=key, kind='jwt', present=True, expires_at=iso(claims['exp']),
                              issuer=claims.get('iss'), subject=claims.get('sub')))
    return found


def label(record):
    """The name a person knows a credential by."""
    secret = record['secret']
    if record.get('kind') in ('oauth_client', 'google_service_account', 'oauth_consent') and secret.startswith('oauth_'):
        for suffix in ('_client_secret', '_service_account_key'):
            if secret.endswith(suffix):
                return secret[len('oauth_'):-len(suffix)]
    return secret


def evaluate(department, record, now, within_days, live=None):
    """One report row for ``record``; ``live`` is the result of its live check (or None when none ran)."""
    row = dict(department=department, credential=label(record), secret=record['secret'], kind=record.get('kind', 'secret'),
               provider=record.get('provider'), expires_at=record.get('expires_at'), days_left=None,
               status='ok', detail='', action='')
    statuses, details, actions = [], [], []
    expiry = parse_time(record.get('expires_at')) if record.get('expires_at') else None
    if record.get('expires_at') and expiry is None:
        statuses.append('check_failed')
        details.append('its expires_at %r is not a date' % record['expires_at'])
        actions.append('fix the metadata of %s' % record['secret'])
    if expiry is not None:
        left = (expiry - now) / 86400.0
        row['days_left'] = round(left, 1)
        if left < 0:
            statuses.append('expired')
            details.append('expired %s' % record['expires_at'])
            actions.append(_renew_action(record))
        elif left <= within_days:
            statuses.append('expiring')
            details.append('expires %s, in %.1f days' % (record['expires_at'], left))
            actions.append(_renew_action(record))
    if not record.get('present', True):
        statuses.append('check_failed')
        details.append('its secret %s is missing from the store' % record['secret'])
        actions.append('run provision.yml for the department to set it up again')
    if live is not None:
        row['live_check'] = live
        if live.get('ok') is False:
            statuses.append('check_failed')
            details.append('live check failed: %s' % live.get('error'))
            actions.append(live.get('action') or _renew_action(record))
    consent = record.get('consent') or {}
    if consent.get('required'):
        granted = (live or {}).get('consent_granted')
        if not granted:
            statuses.append('consent_pending')
            where = consent.get('n8n_credential') or row['credential']
            uris = consent.get('redirect_uris') or []
            details.append('waits for consent%s' % ((': ' + (live or {}).get('consent_detail')) if (live or {}).get('consent_detail') else ''))
            actions.append("a person opens n8n > Credentials > '%s' and signs in to grant consent%s" % (
                where, ('; the provider must allow the redirect URI %s' % ', '.join(uris)) if uris else
                '; the redirect URI is known once the n8n instance exists'))
            row['redirect_uris'] = uris
        else:
            details.append('consent given')
    if live is None and not statuses and expiry is None and not consent.get('required'):
        row['status'] = 'unchecked'
        row['detail'] = 'no expiry known and no live check'
        return row
    if statuses:
        row['status'] = min(statuses, key=STATUSES.index)
    elif live is not None and live.get('ok'):
        details.append('live check ok')
    row['detail'] = '; '.join(d for d in details if d)
    row['action'] = '; '.join(dict.fromkeys(a for a in actions if a))
    return row


def _renew_action(record):
    kind = record.get('kind')
    if kind == 'oauth_client':
        return ("renew client '%s': give it a new secret at the authorization server (or set state: absent, then "
                "present, to register it anew) and run provision.yml" % record.get('client_name', label(record)))
    if kind == 'google_service_account':
        return ('create a new JSON key for %s in the Google Cloud console, put it at the key file and run '
                'provision.yml; then delete key %s'
                % (record.get('client_email', 'the service account'), record.get('private_key_id', '')))
    if kind == 'oauth_consent':
        return 'renew the OAuth client in the provider console, put its JSON at the client file and run provision.yml'
    return 'renew %s and store it again (department_secrets values)' % record['secret']


def live_client_credentials(http, record, secrets):
    """A client credentials token request for an oidc client record; None when it cannot be checked."""
    if record.get('kind') != 'oauth_client' or 'client_credentials' not in (record.get('grant_types') or []):
        return None
    name = label(record)
    client_id = secrets.get('oauth_%s_client_id' % name) or record.get('client_id')
    secret = secrets.get('oauth_%s_client_secret' % name)
    if not record.get('token_endpoint') or not secret or not client_id:
        return None
    facts = token_request(http, record['token_endpoint'], client_id, secret, scope=record.get('scope') or None,
                          auth_method=record.get('auth_method') or 'client_secret_basic')
    facts['check'] = 'client_credentials token request on %s' % record['token_endpoint']
    return facts


def live_consent(http, record, owner_email, owner_password):
    """Whether a person granted consent to the n8n credential of a record (n8n keeps the token once they did)."""
    consent = record.get('consent') or {}
    if not consent.get('required'):
        return None
    n8n_url = (consent.get('n8n_url') or '').rstrip('/')
    if not n8n_url:
        return dict(consent_granted=False, consent_detail='no n8n instance is recorded for it yet')
    if not owner_password:
        return dict(consent_granted=False, consent_detail='the n8n owner password is not in the store, so n8n was not asked')
    try:
        login = http.request('POST', n8n_url + '/rest/login',
                             json_body={'emailOrLdapLoginId': owner_email, 'password': owner_password})
        if login.status != 200:
            return dict(consent_granted=False, consent_detail='n8n at %s refused the owner login (%s)' % (n8n_url, login.said()))
        cookies = []
        getter = getattr(login.headers, 'get_all', None)
        for header in (getter('Set-Cookie') if getter else [login.headers.get('Set-Cookie')]) or []:
            if header and header.startswith('n8n-auth='):
                cookies.append(header.split(';', 1)[0])
        listing = http.request('GET', n8n_url + '/rest/credentials?includeData=true',
                               headers={'Cookie': '; '.join(cookies)})
    except Unreachable as exc:
        return dict(consent_granted=False, consent_detail='n8n could not be asked (%s)' % exc)
    if listing.status != 200 or not isinstance(listing.json, dict):
        return dict(consent_granted=False, consent_detail='n8n at %s did not list its credentials (%s)' % (n8n_url, listing.said()))
    wanted = consent.get('n8n_credential')
    for item in listing.json.get('data') or []:
        if item.get('name') == wanted:
            data = item.get('data') or {}
            if data.get('oauthTokenData'):
                return dict(consent_granted=True, consent_detail='n8n credential %r holds a token' % wanted)
            return dict(consent_granted=False, consent_detail='n8n credential %r holds no token yet' % wanted)
    return dict(consent_granted=False, consent_detail='n8n at %s has no credential %r yet' % (n8n_url, wanted))


def table(rows, width=None):
    """A fixed-width text table of report rows, worst first."""
    headers = ('DEPARTMENT', 'CREDENTIAL', 'KIND', 'STATUS', 'EXPIRES', 'DETAIL')
    body = [(r['department'], r['credential'], r['kind'], r['status'].upper() if r['status'] in NEEDS_ACTION else r['status'],
             (r['expires_at'] or '-')[:10], r['detail']) for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *body)] if body else [len(h) for h in headers]
    widths[-1] = min(widths[-1], width or 200)
    line = '  '.join('%%-%ds' % w for w in widths)
    out = [line % headers, line % tuple('-' * w for w in widths)]
    out += [line % tuple(str(x) for x in row) for row in body]
    return [text.rstrip() for text in out]


def sort_rows(rows):
    return sorted(rows, key=lambda r: (STATUSES.index(r['status']), r['department'], r['credential']))
