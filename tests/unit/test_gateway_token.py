"""Gateway identities: minting, the checks that decide a renewal, and the keys the secrets store makes."""

import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ansible_collections.federation.platform.plugins.module_utils import _gateway_token as tokens
from ansible_collections.federation.platform.plugins.module_utils._secrets import (
    Snapshot, VaultFileStore, generate_private_key, generate_value, reconcile)

DAY = 86400


@pytest.fixture(scope='module', params=['ec_p256', 'rsa_2048'])
def key(request):
    return tokens.load_signing_key(generate_private_key(request.param))


def test_the_algorithm_follows_the_key(key):
    signing, algorithm = key
    assert algorithm == ('ES256' if isinstance(signing, ec.EllipticCurvePrivateKey) else 'RS256')
    assert tokens.public_pem(signing).startswith('-----BEGIN PUBLIC KEY-----')


def test_a_minted_token_carries_the_claims_and_verifies_with_the_public_key(key):
    signing, algorithm = key
    now = time.time()
    token = tokens.mint(signing, algorithm, 'finance', 'federation-gateway', 'assistants', lifetime_days=10, now=now)
    claims = jwt.decode(token, tokens.public_pem(signing), algorithms=[algorithm], audience='assistants')
    assert claims['iss'] == 'federation-gateway' and claims['sub'] == 'finance' and claims['aud'] == 'assistants'
    assert claims['exp'] - claims['iat'] == 10 * DAY
    assert jwt.get_unverified_header(token)['alg'] == algorithm


def test_a_valid_token_is_kept_and_each_flaw_renews_it(key):
    signing, algorithm = key
    now = time.time()
    good = tokens.mint(signing, algorithm, 'finance', 'iss-a', lifetime_days=60, now=now)
    check = dict(key=signing, algorithm=algorithm, subject='finance', issuer='iss-a', renew_before_days=30, now=now)

    def reason(token=good, **changes):
        options = dict(check)
        options.update(changes)
        return tokens.assess(token, **options)[0]

    assert tokens.assess(good, **check)[0] is None
    assert tokens.assess(None, **check)[0] == 'no token yet'
    assert 'expires within' in reason(renew_before_days=60)
    assert 'another department' in reason(subject='hr')
    assert 'not valid' in reason(issuer='iss-b')
    assert 'MissingRequiredClaimError' in reason(audience='x')
    with_audience = tokens.mint(signing, algorithm, 'finance', 'iss-a', 'x', lifetime_days=60, now=now)
    assert 'no longer asks' in tokens.assess(with_audience, **check)[0]
    other, dummy = tokens.load_signing_key(generate_private_key('ec_p256' if algorithm == 'ES256' else 'rsa_2048'))
    assert 'InvalidSignatureError' in reason(key=other)
    switched, switched_algorithm = tokens.load_signing_key(generate_private_key('rsa_2048' if algorithm == 'ES256' else 'ec_p256'))
    assert 'not valid' in reason(key=switched, algorithm=switched_algorithm)
    expired = tokens.mint(signing, algorithm, 'finance', 'iss-a', lifetime_days=1, now=now - 2 * DAY)
    assert 'expired' in tokens.assess(expired, **check)[0]
    assert 'not valid' in tokens.assess('not.a.token', **check)[0]


def test_weak_or_foreign_keys_are_refused_without_showing_them():
    with pytest.raises(tokens.TokenError) as error:
        tokens.load_signing_key('-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n')
    assert 'nope' not in str(error.value)
    p384 = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    with pytest.raises(tokens.TokenError, match='P-256'):
        tokens.load_signing_key(p384)


def test_key_secrets_are_generated_once_like_passwords():
    new, generated, dummy = reconcile({}, {'gateway_signing_key': {'kind': 'ec_p256'}, 'pw': 16}, {}, set())
    assert new['gateway_signing_key'].startswith('-----BEGIN PRIVATE KEY-----') and len(new['pw']) == 16
    again = reconcile(new, {'gateway_signing_key': {'kind': 'ec_p256'}}, {}, set())
    assert again[0] == new and again[1] == []
    assert generate_value({'kind': 'password', 'length': 9}).isalnum()
    with pytest.raises(ValueError):
        generate_value({'kind': 'dsa'})


class PlainVault(object):
    """Stands in for VaultLib: the store's scope checks are what is tested here, not encryption."""

    def encrypt(self, plain, secret, vault_id=None):
        return plain.encode() if isinstance(plain, str) else plain

    def decrypt(self, data):
        return data


def test_platform_and_department_files_are_never_read_as_each_other(tmp_path):
    import yaml

    def store(name, department):
        return VaultFileStore(str(tmp_path / name), department, PlainVault(), 'secret',
                              yaml_load=yaml.safe_load, yaml_dump=yaml.safe_dump)

    platform = store('gateway.yml', None)
    platform.save(Snapshot(), {'gateway_signing_key': 'k'}, {})
    assert yaml.safe_load((tmp_path / 'gateway.yml').read_text())['scope'] == 'platform'
    assert platform.load().secrets == {'gateway_signing_key': 'k'}
    with pytest.raises(ValueError, match='not of department'):
        store('gateway.yml', 'finance').load()
    dept = store('finance.yml', 'finance')
    dept.save(Snapshot(), {'a': 'b'}, {})
    with pytest.raises(ValueError, match="not the platform's"):
        store('finance.yml', None).load()


def test_the_platform_has_its_own_place_in_vault_that_no_department_can_take():
    from ansible_collections.federation.platform.plugins.module_utils._naming import validate_department_name
    from ansible_collections.federation.platform.plugins.module_utils._secrets import HashiVaultKV2Store, hashi_vault_path
    assert hashi_vault_path('federation', 'finance') == 'federation/finance'
    assert hashi_vault_path('/teams/federation/', None, 'gateway') == 'teams/federation/_platform/gateway'
    with pytest.raises(ValueError):
        validate_department_name('_platform')
    with pytest.raises(ValueError, match='need a name'):
        hashi_vault_path('federation', None)
    with pytest.raises(ValueError, match='need a name'):
        HashiVaultKV2Store(None, 'http://127.0.0.1:1', 't')
    assert HashiVaultKV2Store('finance', 'http://127.0.0.1:1', 't').path == 'federation/finance'
