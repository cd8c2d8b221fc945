"""federation.platform.department_secrets_archive: a department's secrets copied, then moved, out of its store."""

from __future__ import annotations

import json
import stat
import urllib.error
import urllib.request

from tests.helpers import read_vault_file

MODULE = 'federation.platform.department_secrets_archive'
SECRETS = 'federation.platform.department_secrets'


def deleted(vault, path):
    """Whether the latest version of a Vault secret reads as deleted (Vault answers 404 with its metadata)."""
    try:
        urllib.request.urlopen(urllib.request.Request('%s/v1/secret/data/%s' % (vault.url, path),
                                                      headers={'X-Vault-Token': vault.root_token}), timeout=10)
    except urllib.error.HTTPError as exc:
        return exc.code == 404 and json.loads(exc.read())['data']['metadata']['deletion_time'] != ''
    return False


def test_file_backend_copy_then_move(runner, fed_home, tmp_path):
    path = fed_home / 'secrets' / 'finance.yml'
    runner.module(SECRETS, dict(department='finance', path=str(path), generate={'tenant_db_password': {}, 'n8n_api_key': {}}))
    original = path.read_bytes()
    values = read_vault_file(fed_home, path)['secrets']
    dest = tmp_path / 'backups' / 'finance' / '20261125T101010Z' / 'secrets.yml'
    args = dict(department='finance', path=str(path), dest=str(dest))

    checked = runner.module(MODULE, args, check=True, diff=True)
    assert checked['changed'] is True and checked['archived'] is True and checked['removed'] is False
    assert checked['diff']['after']['secrets'] == ['n8n_api_key', 'tenant_db_password']
    assert not dest.exists() and not (tmp_path / 'backups').exists()

    copied = runner.module(MODULE, args)
    assert copied['changed'] is True and copied['secrets'] == ['n8n_api_key', 'tenant_db_password']
    assert dest.read_bytes() == original, 'still encrypted, byte for byte'
    assert dest.read_bytes().startswith(b'$ANSIBLE_VAULT;1.1;AES256')
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600 and stat.S_IMODE(dest.parent.stat().st_mode) == 0o700
    assert path.read_bytes() == original, 'a copy leaves the store alone'
    assert runner.module(MODULE, args)['changed'] is False

    moved_check = runner.module(MODULE, dict(args, remove=True), check=True)
    assert moved_check['changed'] is True and moved_check['removed'] is True and path.exists()
    moved = runner.module(MODULE, dict(args, remove=True))
    assert moved['changed'] is True and not path.exists()
    assert read_vault_file(fed_home, dest)['secrets'] == values
    again = runner.module(MODULE, dict(args, remove=True))
    assert again['changed'] is False and again['archived'] is True
    assert 'nothing to archive' in again['msg']
    for output in (copied, moved, again):
        assert not any(value in str(output) for value in values.values())

    # The next provisioning generates new secrets: nothing was left to reuse.
    fresh = runner.module(SECRETS, dict(department='finance', path=str(path), generate={'tenant_db_password': {}}))
    assert fresh['changed'] is True
    assert read_vault_file(fed_home, path)['secrets']['tenant_db_password'] != values['tenant_db_password']


def test_file_backend_refuses_what_it_must(runner, fed_home, tmp_path):
    path = fed_home / 'secrets' / 'hr.yml'
    runner.module(SECRETS, dict(department='hr', path=str(path), generate={'a': {}}))
    relative = runner.module(MODULE, dict(department='hr', path=str(path), dest='backups/secrets.yml'))
    assert relative['failed'] and 'is not an absolute path' in relative['msg']
    itself = runner.module(MODULE, dict(department='hr', path=str(path), dest=str(path)))
    assert itself['failed'] and 'archive it elsewhere' in itself['msg']
    other = runner.module(MODULE, dict(department='finance', path=str(path), dest=str(tmp_path / 'x.yml')))
    assert other['failed'] and "not of department 'finance'" in other['msg'] and not (tmp_path / 'x.yml').exists()
    blocker = tmp_path / 'blocker'
    blocker.write_text('a file where a folder should be\n')
    blocked = runner.module(MODULE, dict(department='hr', path=str(path), dest=str(blocker / 'hr' / 'secrets.yml'), remove=True))
    assert blocked['failed'] and "Failed to archive the secrets of department 'hr'" in blocked['msg']
    assert path.exists(), 'nothing is removed when the archive could not be written'


def test_hashi_vault_backend_archives_encrypted_and_deletes_the_latest_version(runner, fed_home, vault, tmp_path):
    hv = dict(url=vault.url, token=vault.root_token)
    runner.module(SECRETS, dict(department='finance', backend='hashi_vault', hashi_vault=hv,
                                generate={'tenant_db_password': {}}, metadata={'tenant_db_password': {'kind': 'db'}}))
    stored = vault.read('secret', 'federation/finance')
    dest = tmp_path / 'archive' / 'secrets.yml'
    args = dict(department='finance', backend='hashi_vault', hashi_vault=hv, dest=str(dest))

    copied = runner.module(MODULE, args)
    assert copied['changed'] is True
    doc = read_vault_file(fed_home, dest)
    assert doc['department'] == 'finance'
    assert doc['secrets'] == {'tenant_db_password': stored['tenant_db_password']}
    assert doc['metadata'] == {'tenant_db_password': {'kind': 'db'}}
    assert runner.module(MODULE, args)['changed'] is False, 'the same secrets are not written again'

    assert runner.module(MODULE, dict(args, remove=True), check=True)['changed'] is True
    assert vault.read('secret', 'federation/finance') is not None
    moved = runner.module(MODULE, dict(args, remove=True))
    assert moved['changed'] is True and moved['removed'] is True
    assert deleted(vault, 'federation/finance'), 'the latest version is deleted (soft)'
    assert vault.current_version('secret', 'federation/finance') == 1
    assert runner.module(MODULE, dict(args, remove=True))['changed'] is False

    # Provisioning again writes version 2 with new values.
    runner.module(SECRETS, dict(department='finance', backend='hashi_vault', hashi_vault=hv, generate={'tenant_db_password': {}}))
    assert vault.current_version('secret', 'federation/finance') == 2
    assert vault.read('secret', 'federation/finance')['tenant_db_password'] != stored['tenant_db_password']
    assert vault.root_token not in str(moved) and stored['tenant_db_password'] not in str(moved)
