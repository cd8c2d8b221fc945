"""Both secrets backends through the department_secrets action: the ansible-vault file and HashiCorp
Vault KV v2 (the stand-in in tests/harness/vault_fake.py, since Vault itself cannot run here)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from ansible_collections.federation.platform.plugins.module_utils._secrets import (
    HashiVaultKV2Store, Snapshot, StoreConflict, StoreError, update)
from tests.harness.common import free_port

from .conftest import output_of, vault_file

MODULE = 'federation.platform.department_secrets'


def hv(vault, **extra):
    return dict(url=vault.url, token=vault.root_token, **extra)


def test_file_backend_keeps_metadata_beside_secrets(runner, fed_home):
    path = str(fed_home / 'secrets' / 'finance.yml')
    first = runner.module(MODULE, dict(department='finance', path=path, generate={'a': {}},
                                       metadata={'a': {'expires_at': '2030-01-31T00:00:00Z', 'kind': 'api_key'}}))
    assert first['changed'] is True
    doc = vault_file(fed_home, 'finance')
    assert doc['metadata'] == {'a': {'expires_at': '2030-01-31T00:00:00Z', 'kind': 'api_key'}}
    # A later call that does not mention metadata keeps it; one that does merges into it.
    runner.module(MODULE, dict(department='finance', path=path, values={'b': 'given'}))
    assert vault_file(fed_home, 'finance')['metadata'] == doc['metadata']
    assert runner.module(MODULE, dict(department='finance', path=path, metadata={'a': {'kind': 'api_key'}}))['changed'] is False
    merged = runner.module(MODULE, dict(department='finance', path=path, metadata={'a': {'kind': None}, 'b': {'owner': 'x'}}))
    assert merged['changed'] is True
    assert vault_file(fed_home, 'finance')['metadata'] == {'a': {'expires_at': '2030-01-31T00:00:00Z'}, 'b': {'owner': 'x'}}
    bad = runner.module(MODULE, dict(department='finance', path=path, metadata={'a': 'soon'}))
    assert bad['failed'] is True and "metadata of secret 'a' must be a mapping" in bad['msg']


def test_hashi_vault_generates_once_versions_and_rotates(runner, fed_home, vault):
    args = dict(department='finance', backend='hashi_vault', hashi_vault=hv(vault),
                generate={'tenant_db_password': {}, 'n8n_encryption_key': {'length': 48}})
    checked = runner.module(MODULE, args, check=True)
    assert checked['changed'] is True and vault.read('secret', 'federation/finance') is None

    first = runner.module(MODULE, args, diff=True)
    assert first['changed'] is True
    assert 'censored' in first                                       # the result carries secrets: always hidden
    data = vault.read('secret', 'federation/finance')
    assert len(data['tenant_db_password']) == 32 and len(data['n8n_encryption_key']) == 48
    assert vault.current_version('secret', 'federation/finance') == 1

    again = runner.module(MODULE, args)
    assert again['changed'] is False and vault.current_version('secret', 'federation/finance') == 1

    rotated = runner.module(MODULE, dict(args, rotate=['tenant_db_password']))
    assert rotated['changed'] is True
    now = vault.read('secret', 'federation/finance')
    assert now['tenant_db_password'] != data['tenant_db_password']
    assert now['n8n_encryption_key'] == data['n8n_encryption_key']
    assert vault.current_version('secret', 'federation/finance') == 2
    assert vault.read('secret', 'federation/finance', version=1) == data   # the old version stays readable

    stored = runner.module(MODULE, dict(department='finance', backend='hashi_vault', hashi_vault=hv(vault),
                                        values={'n8n_api_key': 'k-123'}, metadata={'n8n_api_key': {'expires_at': '2031-01-01'}}))
    assert stored['changed'] is True
    latest = vault.read('secret', 'federation/finance')
    assert latest['n8n_api_key'] == 'k-123'
    assert json.loads(latest['_federation_metadata']) == {'n8n_api_key': {'expires_at': '2031-01-01'}}
    # Every write named the version it read.
    writes = [p for m, p in vault.requests if m == 'POST']
    assert len(writes) == 3


def test_hashi_vault_fact_holds_the_secrets_only(runner, fed_home, vault, tmp_path):
    playbook = tmp_path / 'play.yml'
    playbook.write_text('''
- hosts: localhost
  gather_facts: false
  tasks:
    - federation.platform.department_secrets:
        department: finance
        backend: hashi_vault
        hashi_vault: {url: "%s", token: "%s"}
        generate: {a: {}}
        values: {b: given}
        metadata: {b: {expires_at: "2031-01-01"}}
    - ansible.builtin.assert:
        that:
          - federation_secrets | sort == ['a', 'b']
          - federation_secrets.b == 'given'
          - federation_secrets.a | length == 32
''' % (vault.url, vault.root_token))
    run = runner.playbook(str(playbook))
    assert run.returncode == 0, run.stdout[-3000:]
    assert vault.root_token not in run.stdout + run.stderr


def test_hashi_vault_path_mount_and_environment(runner, fed_home, vault):
    vault.mounts['kv'] = {'config': {'cas_required': True, 'max_versions': 0}, 'keys': {}}
    args = dict(department='hr', backend='hashi_vault',
                hashi_vault=dict(engine_mount_point='kv', path_prefix='teams/federation'), generate={'x': {}})
    result = runner.module(MODULE, args, env={'VAULT_ADDR': vault.url, 'VAULT_TOKEN': vault.root_token})
    assert result['changed'] is True, result
    assert 'x' in vault.read('kv', 'teams/federation/hr')        # cas_required on the mount: every write sends cas


def test_hashi_vault_refusals_are_clear_and_secret_free(runner, fed_home, vault):
    wrong = runner.module(MODULE, dict(department='finance', backend='hashi_vault',
                                       hashi_vault=dict(url=vault.url, token='hvs.wrong-token-value'), generate={'x': {}}))
    assert wrong['failed'] is True
    assert wrong['msg'].startswith("Failed to read the secrets of department 'finance' on Vault %s (KV v2 mount 'secret', "
                                   "path 'federation/finance'): permission denied." % vault.url), wrong['msg']
    assert 'Check the token' in wrong['msg'] and 'hvs.wrong-token-value' not in output_of(wrong)

    # A token whose policy covers only another department's path.
    narrow = vault.add_token(['secret/data/federation/hr', 'secret/metadata/federation/hr'])
    denied = runner.module(MODULE, dict(department='finance', backend='hashi_vault',
                                        hashi_vault=dict(url=vault.url, token=narrow), generate={'x': {}}))
    assert denied['failed'] is True and 'permission denied' in denied['msg'] and narrow not in output_of(denied)
    allowed = runner.module(MODULE, dict(department='hr', backend='hashi_vault',
                                         hashi_vault=dict(url=vault.url, token=narrow), generate={'x': {}}))
    assert allowed['changed'] is True

    missing = runner.module(MODULE, dict(department='finance', backend='hashi_vault', hashi_vault={}, generate={'x': {}}),
                            env={'VAULT_ADDR': '', 'VAULT_TOKEN': ''})
    assert missing['failed'] is True
    assert "the hashi_vault secrets backend needs url and token" in missing['msg'] and 'VAULT_ADDR and VAULT_TOKEN' in missing['msg']

    nomount = runner.module(MODULE, dict(department='finance', backend='hashi_vault',
                                         hashi_vault=hv(vault, engine_mount_point='nope'), generate={'x': {}}))
    assert nomount['failed'] is True and 'no handler for route' in nomount['msg'] and "mounted at 'nope'" in nomount['msg']

    vault.seal()
    sealed = runner.module(MODULE, dict(department='finance', backend='hashi_vault', hashi_vault=hv(vault), generate={'x': {}}))
    assert sealed['failed'] is True and 'Vault is sealed' in sealed['msg']

    down = runner.module(MODULE, dict(department='finance', backend='hashi_vault',
                                      hashi_vault=dict(url='http://127.0.0.1:%d' % free_port(), token='t-123456'),
                                      generate={'x': {}}))
    assert down['failed'] is True and 'cannot be reached' in down['msg'] and 'Connection refused' in down['msg']


def test_concurrent_writers_lose_nothing(runner, fed_home, vault):
    """Eight runs store eight different secrets at once; check-and-set makes the losers retry."""
    base = dict(department='finance', backend='hashi_vault', hashi_vault=hv(vault))
    runner.module(MODULE, dict(base, generate={'seed': {}}))

    def store(index):
        return runner.module(MODULE, dict(base, values={'key_%d' % index: 'value-%d' % index}))

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(store, range(8)))
    assert all(r['changed'] is True for r in results), [r.get('msg') for r in results]
    data = vault.read('secret', 'federation/finance')
    assert {k: v for k, v in data.items() if k.startswith('key_')} == {'key_%d' % i: 'value-%d' % i for i in range(8)}
    assert vault.current_version('secret', 'federation/finance') == 9


def test_the_kv_store_refuses_a_stale_write_and_update_retries(vault):
    store = HashiVaultKV2Store('finance', vault.url, vault.root_token)
    store.save(store.load(), {'a': '1'}, {})
    stale = store.load()
    store.save(store.load(), {'a': '2'}, {})
    with pytest.raises(StoreConflict):
        store.save(stale, {'a': 'lost'}, {})
    assert vault.read('secret', 'federation/finance') == {'a': '2'}
    with pytest.raises(StoreConflict):                      # cas 0: only when nothing exists yet
        store.save(Snapshot(), {'a': 'x'}, {})

    calls = []

    def change(snapshot):
        calls.append(snapshot.version)
        if len(calls) == 1:  # someone else writes between this read and our write
            HashiVaultKV2Store('finance', vault.url, vault.root_token).save(store.load(), dict(snapshot.secrets, b='theirs'), {})
        return dict(snapshot.secrets, c='ours'), {}

    update(store, change)
    assert calls == [2, 3]
    assert vault.read('secret', 'federation/finance') == {'a': '2', 'b': 'theirs', 'c': 'ours'}

    # A version deleted in Vault (soft delete) reads as empty and is written over with its number as cas.
    import urllib.request
    request = urllib.request.Request(vault.url + '/v1/secret/data/federation/finance', method='DELETE',
                                     headers={'X-Vault-Token': vault.root_token})
    urllib.request.urlopen(request).close()
    snapshot = store.load()
    assert snapshot.secrets == {} and snapshot.version == 4
    store.save(snapshot, {'fresh': '1'}, {})
    assert vault.current_version('secret', 'federation/finance') == 5


def test_kv_store_errors_name_the_store(vault):
    store = HashiVaultKV2Store('finance', vault.url, 'hvs.nope')
    with pytest.raises(StoreError) as exc:
        store.load()
    assert "Failed to read the secrets of department 'finance' on Vault" in str(exc.value)
    assert 'hvs.nope' not in str(exc.value)


def test_the_platform_scope_and_gateway_tokens_use_the_same_vault(runner, fed_home, vault):
    """The gateway's pieces on the hashi_vault backend: the platform's signing key at <prefix>/_platform/<name>,
    the department's gateway token beside its other secrets, and nothing of either read as the other."""
    key_args = dict(scope='platform', name='gateway', backend='hashi_vault', hashi_vault=hv(vault),
                    generate={'gateway_signing_key': {'kind': 'ec_p256'}})
    unnamed = runner.module(MODULE, dict(key_args, name=None))
    assert unnamed['failed'] is True and 'need a place' in unnamed['msg'] and '_platform/<name>' in unnamed['msg']
    checked = runner.module(MODULE, key_args, check=True)
    assert checked['changed'] is True and vault.read('secret', 'federation/_platform/gateway') is None
    first = runner.module(MODULE, key_args)
    assert first['changed'] is True and 'censored' in first
    key = vault.read('secret', 'federation/_platform/gateway')['gateway_signing_key']
    assert key.startswith('-----BEGIN PRIVATE KEY-----') and key not in output_of(first)
    assert runner.module(MODULE, key_args)['changed'] is False
    assert vault.current_version('secret', 'federation/_platform/gateway') == 1
    wrong = runner.module(MODULE, dict(key_args, department='finance'))
    assert wrong['failed'] is True and 'leave out department' in wrong['msg']
    named = runner.module(MODULE, dict(department='finance', name='gateway', backend='hashi_vault', hashi_vault=hv(vault)))
    assert named['failed'] is True and 'leave it out' in named['msg']
    bad_kind = runner.module(MODULE, dict(key_args, generate={'k': {'kind': 'dsa'}}))
    assert bad_kind['failed'] is True and "kind 'dsa' is unknown" in bad_kind['msg'] and 'of the platform' in bad_kind['msg']
    sized = runner.module(MODULE, dict(key_args, generate={'k': {'kind': 'rsa_2048', 'length': 40}}))
    assert sized['failed'] is True and 'has no length' in sized['msg']
    assert vault.current_version('secret', 'federation/_platform/gateway') == 1

    runner.module(MODULE, dict(department='finance', backend='hashi_vault', hashi_vault=hv(vault), generate={'a': {}},
                               metadata={'a': {'expires_at': '2031-01-01T00:00:00Z'}}))
    before = vault.read('secret', 'federation/finance')
    token_args = dict(department='finance', backend='hashi_vault', hashi_vault=hv(vault), signing_key=key)
    checked = runner.module('federation.platform.gateway_token', token_args, check=True)
    assert checked['changed'] is True and vault.read('secret', 'federation/finance') == before
    minted = runner.module('federation.platform.gateway_token', token_args, diff=True)
    assert minted['changed'] is True, minted
    after = vault.read('secret', 'federation/finance')
    token = after.pop('gateway_token')
    assert after == before                               # the other secrets and the metadata are kept
    assert token not in output_of(minted) and key not in output_of(minted)
    import jwt
    from cryptography.hazmat.primitives import serialization
    public = serialization.load_pem_private_key(key.encode(), password=None).public_key()
    assert jwt.decode(token, public, algorithms=['ES256'], issuer='federation-gateway')['sub'] == 'finance'
    again = runner.module('federation.platform.gateway_token', token_args)
    assert again['changed'] is False and vault.current_version('secret', 'federation/finance') == 2

    # The file backend keeps the department's metadata across a token too.
    path = str(fed_home / 'secrets' / 'finance.yml')
    runner.module(MODULE, dict(department='finance', path=path, values={'b': 'given'},
                               metadata={'b': {'expires_at': '2031-01-01T00:00:00Z'}}))
    on_file = runner.module('federation.platform.gateway_token', dict(department='finance', path=path, signing_key=key))
    assert on_file['changed'] is True
    doc = vault_file(fed_home, 'finance')
    assert doc['metadata'] == {'b': {'expires_at': '2031-01-01T00:00:00Z'}}
    assert sorted(doc['secrets']) == ['b', 'gateway_token'] and doc['department'] == 'finance'
