"""The platform's signing key and the departments' gateway tokens, through Ansible as a playbook runs them."""

from __future__ import annotations

import jwt
import pytest

from tests.helpers import Ansible, read_vault_file


@pytest.fixture
def run(fed_home):
    return Ansible(fed_home, None)


def read(home, path):
    return read_vault_file(home, path)


def platform_key(run, home):
    path = home / 'secrets' / '_platform' / 'gateway.yml'
    result = run.module('federation.platform.department_secrets', dict(
        scope='platform', path=str(path), generate={'gateway_signing_key': {'kind': 'ec_p256'}}))
    assert not result.get('failed'), result
    return path, result


def test_the_platform_key_is_generated_once_in_a_file_of_the_platform(run, fed_home):
    path = fed_home / 'secrets' / '_platform' / 'gateway.yml'
    checked = run.module('federation.platform.department_secrets', dict(
        scope='platform', path=str(path), generate={'gateway_signing_key': {'kind': 'ec_p256'}}), check=True)
    assert checked['changed'] is True and not path.exists()

    path, first = platform_key(run, fed_home)
    assert first['changed'] is True
    stored = read(fed_home, path)
    assert stored['scope'] == 'platform' and 'department' not in stored
    assert stored['secrets']['gateway_signing_key'].startswith('-----BEGIN PRIVATE KEY-----')
    assert 'BEGIN PRIVATE KEY' not in str(first), 'the result must be censored'
    again = platform_key(run, fed_home)[1]
    assert again['changed'] is False
    assert read(fed_home, path) == stored

    mixed = run.module('federation.platform.department_secrets', dict(scope='platform', department='finance', path=str(path)))
    assert mixed['failed'] and 'leave out department' in mixed['msg']
    as_department = run.module('federation.platform.department_secrets', dict(department='finance', path=str(path)))
    assert as_department['failed'] and 'not of department' in as_department['msg']


def test_a_token_is_minted_once_and_renewed_only_when_due(run, fed_home):
    key_path = platform_key(run, fed_home)[0]
    key = read(fed_home, key_path)['secrets']['gateway_signing_key']
    secrets_file = fed_home / 'secrets' / 'finance.yml'
    args = dict(department='finance', path=str(secrets_file), signing_key=key, lifetime_days=60, renew_before_days=30)

    checked = run.module('federation.platform.gateway_token', args, check=True, diff=True)
    assert checked['changed'] is True and not secrets_file.exists()

    first = run.module('federation.platform.gateway_token', args)
    assert first['changed'] is True, first
    token = read(fed_home, secrets_file)['secrets']['gateway_token']
    public = serialization_public(key)
    claims = jwt.decode(token, public, algorithms=['ES256'], issuer='federation-gateway')
    assert claims['sub'] == 'finance' and claims['exp'] - claims['iat'] == 60 * 86400
    assert token not in str(first)

    assert run.module('federation.platform.gateway_token', args)['changed'] is False
    assert read(fed_home, secrets_file)['secrets']['gateway_token'] == token

    # 60 days left: due once the renewal window is 60 days
    renewed = run.module('federation.platform.gateway_token', dict(args, lifetime_days=90, renew_before_days=60))
    assert renewed['changed'] is True
    assert read(fed_home, secrets_file)['secrets']['gateway_token'] != token

    audience = run.module('federation.platform.gateway_token', dict(args, audience='assistants'))
    assert audience['changed'] is True
    new = read(fed_home, secrets_file)['secrets']['gateway_token']
    assert jwt.decode(new, public, algorithms=['ES256'], audience='assistants')['aud'] == 'assistants'


def test_bad_input_fails_before_anything_is_written(run, fed_home):
    secrets_file = fed_home / 'secrets' / 'finance.yml'
    bad_key = run.module('federation.platform.gateway_token', dict(
        department='finance', path=str(secrets_file), signing_key='-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----'))
    assert bad_key['failed'] and 'gateway signing key' in bad_key['msg'] and 'AAAA' not in bad_key['msg']
    key = read(fed_home, platform_key(run, fed_home)[0])['secrets']['gateway_signing_key']
    bad_name = run.module('federation.platform.gateway_token', dict(department='Finance!', path=str(secrets_file), signing_key=key))
    assert bad_name['failed'] and bad_name['msg'].startswith('Invalid department')
    bad_issuer = run.module('federation.platform.gateway_token', dict(
        department='finance', path=str(secrets_file), signing_key=key, issuer='a b'))
    assert bad_issuer['failed'] and 'Invalid gateway issuer' in bad_issuer['msg']
    assert not secrets_file.exists()


def serialization_public(pem):
    from cryptography.hazmat.primitives import serialization
    return serialization.load_pem_private_key(pem.encode(), password=None).public_key()
