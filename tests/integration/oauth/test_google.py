"""Google has no registration endpoint: service-account keys and user-consent clients are imported.

The keys are made by the tests (fresh RSA keys); no real Google key is ever used.
"""

from __future__ import annotations

import datetime
import json

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .conftest import output_of, vault_file

MODULE = 'federation.platform.oauth_client'


def service_account_key(key_id='k1', bits=2048, email='assistant@finance-proj.iam.gserviceaccount.com'):
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return {'type': 'service_account', 'project_id': 'finance-proj', 'private_key_id': key_id, 'private_key': pem,
            'client_email': email, 'client_id': '1234567890', 'token_uri': 'https://oauth2.googleapis.com/token'}


def test_service_account_key_is_imported_kept_and_rotated(runner, fed_home):
    files = fed_home / 'oauth' / 'finance'
    files.mkdir(parents=True)
    key = service_account_key('k1')
    (files / 'drive.json').write_text(json.dumps(key))
    args = dict(department='finance', path=str(fed_home / 'secrets' / 'finance.yml'), files_dir=str(files),
                clients=[dict(name='drive', provider='google_service_account', subject='assistant@example.com',
                              scopes=['https://www.googleapis.com/auth/drive.readonly'], max_age_days=90)])
    checked = runner.module(MODULE, args, check=True)
    assert checked['changed'] is True and not (fed_home / 'secrets' / 'finance.yml').exists()

    first = runner.module(MODULE, args, diff=True)
    entry = first['clients'][0]
    assert first['changed'] is True and entry['action'] == 'imported'
    assert entry['client_email'] == key['client_email'] and entry['private_key_id'] == 'k1'
    assert entry['consent_required'] is False and 'next_step' not in entry
    expiry = datetime.datetime.strptime(entry['expires_at'], '%Y-%m-%dT%H:%M:%SZ').replace(tzinfo=datetime.timezone.utc)
    days = (expiry - datetime.datetime.now(datetime.timezone.utc)).total_seconds() / 86400
    assert 89.9 < days <= 90
    stored = vault_file(fed_home, 'finance')
    assert json.loads(stored['secrets']['oauth_drive_service_account_key']) == key
    meta = stored['metadata']['oauth_drive_service_account_key']
    assert meta['kind'] == 'google_service_account' and meta['subject'] == 'assistant@example.com'
    assert meta['expires_at'] == entry['expires_at'] and meta['private_key_id'] == 'k1'
    assert key['private_key'] not in output_of(first)

    assert runner.module(MODULE, args)['changed'] is False
    # Once imported, the file may go: the vault holds the key.
    (files / 'drive.json').unlink()
    assert runner.module(MODULE, args)['changed'] is False

    # A new key in the file is a rotation; its age counts from the new import.
    new = service_account_key('k2')
    (files / 'drive.json').write_text(json.dumps(new))
    rotated = runner.module(MODULE, args)
    assert rotated['changed'] is True and rotated['clients'][0]['action'] == 'rotated'
    assert rotated['clients'][0]['private_key_id'] == 'k2'
    assert json.loads(vault_file(fed_home, 'finance')['secrets']['oauth_drive_service_account_key']) == new

    args['clients'][0]['state'] = 'absent'
    gone = runner.module(MODULE, args)
    assert gone['changed'] is True and gone['clients'][0]['action'] == 'deleted'
    assert 'oauth_drive_service_account_key' not in vault_file(fed_home, 'finance')['secrets']


def test_bad_or_missing_keys_are_refused_before_anything_changes(runner, fed_home):
    files = fed_home / 'oauth' / 'finance'
    files.mkdir(parents=True)
    (files / 'a.json').write_text('{not json')
    (files / 'b.json').write_text(json.dumps(dict(service_account_key(), type='authorized_user')))
    (files / 'c.json').write_text(json.dumps(dict(service_account_key(), private_key='-----BEGIN PRIVATE KEY-----\nAAAA\n')))
    (files / 'd.json').write_text(json.dumps(service_account_key(bits=1024)))
    (files / 'e.json').write_text(json.dumps({'installed': {'client_id': 'x'}}))
    args = dict(department='finance', path=str(fed_home / 'secrets' / 'finance.yml'), files_dir=str(files),
                clients=[dict(name=n, provider='google_service_account') for n in 'abcd']
                + [dict(name='e', provider='google_oauth')])
    result = runner.module(MODULE, args)
    assert result['failed'] is True
    msg = result['msg']
    assert '%s/a.json is not JSON' % files in msg
    assert "b.json is not a service-account key (its 'type' must be 'service_account')" in msg
    assert 'c.json has a private_key that is not an unencrypted PEM key' in msg
    assert 'd.json has a private key shorter than 2048 bits' in msg
    assert "e.json is not an OAuth client file: it needs a 'web' section with client_id and client_secret" in msg
    assert msg.endswith('Nothing was changed.') and not (fed_home / 'secrets' / 'finance.yml').exists()

    missing = runner.module(MODULE, dict(args, clients=[dict(name='drive', provider='google_service_account'),
                                                        dict(name='calendar', provider='google_oauth')]))
    assert missing['failed'] is True
    assert ("OAuth clients of department 'finance' cannot be set up yet: 'drive' needs its service-account JSON key at "
            "%s/drive.json; 'calendar' needs its OAuth client JSON at %s/calendar.json" % (files, files)) in missing['msg']
    assert not (fed_home / 'secrets' / 'finance.yml').exists()


def test_user_consent_client_records_its_redirect_uri_and_waits_for_consent(runner, fed_home):
    files = fed_home / 'oauth' / 'finance'
    files.mkdir(parents=True)
    web = {'web': {'client_id': '123-abc.apps.googleusercontent.com', 'client_secret': 'GOCSPX-test-secret-value',
                   'auth_uri': 'https://accounts.google.com/o/oauth2/auth', 'token_uri': 'https://oauth2.googleapis.com/token'}}
    (files / 'calendar.json').write_text(json.dumps(web))
    args = dict(department='finance', path=str(fed_home / 'secrets' / 'finance.yml'), files_dir=str(files),
                n8n_url='http://127.0.0.1:5678', n8n_public_url='https://finance.n8n.example.com',
                clients=[dict(name='calendar', provider='google_oauth', scopes=['https://www.googleapis.com/auth/calendar'])])
    first = runner.module(MODULE, args)
    entry = first['clients'][0]
    assert first['changed'] is True and entry['action'] == 'imported'
    assert entry['redirect_uri'] == 'https://finance.n8n.example.com/rest/oauth2-credential/callback'
    assert entry['consent_required'] is True and entry['n8n_credential'] == 'oauth-calendar'
    assert "a person opens n8n > Credentials > 'oauth-calendar' and signs in" in entry['next_step']
    assert 'https://finance.n8n.example.com/rest/oauth2-credential/callback' in entry['next_step']
    assert 'GOCSPX-test-secret-value' not in output_of(first)
    stored = vault_file(fed_home, 'finance')
    assert stored['secrets']['oauth_calendar_client_id'] == web['web']['client_id']
    assert stored['secrets']['oauth_calendar_client_secret'] == web['web']['client_secret']
    consent = stored['metadata']['oauth_calendar_client_secret']['consent']
    assert consent == {'required': True, 'redirect_uris': [entry['redirect_uri']], 'n8n_url': 'http://127.0.0.1:5678',
                       'n8n_credential': 'oauth-calendar'}
    again = runner.module(MODULE, args)
    assert again['changed'] is False and again['clients'][0]['consent_required'] is True
