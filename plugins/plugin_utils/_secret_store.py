# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: no compatibility promise outside federation.platform.
"""Controller-side helpers for the action plugins that read and write a department's secrets.

They share one set of options (documented by the doc fragment federation.platform.secret_store)
and open the same store from them: the ansible-vault file (default) or HashiCorp Vault KV v2.
"""

from __future__ import annotations

import yaml

from ansible.errors import AnsibleActionFail
from ansible.module_utils.basic import env_fallback
from ansible.parsing.vault import VaultLib

from ansible_collections.federation.platform.plugins.module_utils._secrets import HashiVaultKV2Store, VaultFileStore

BACKENDS = ('file', 'hashi_vault')


def store_argument_spec():
    """The options every secrets-handling action plugin accepts."""
    return dict(
        backend=dict(type='str', default='file', choices=list(BACKENDS)),
        path=dict(type='path'),
        vault_id=dict(type='str'),
        hashi_vault=dict(type='dict', default={}, options=dict(
            url=dict(type='str', fallback=(env_fallback, ['VAULT_ADDR'])),
            token=dict(type='str', no_log=True, fallback=(env_fallback, ['VAULT_TOKEN'])),
            namespace=dict(type='str', fallback=(env_fallback, ['VAULT_NAMESPACE'])),
            engine_mount_point=dict(type='str', default='secret'),
            path=dict(type='str'),
            path_prefix=dict(type='str', default='federation'),
            validate_certs=dict(type='bool', default=True),
            ca_cert=dict(type='path', fallback=(env_fallback, ['VAULT_CACERT'])),
            timeout=dict(type='int', default=30),
        )),
    )


def yaml_dump(doc):
    return yaml.safe_dump(doc, default_flow_style=False)


def open_store(loader, args, department, path=None):
    """The store named by ``args`` (validated against store_argument_spec) for ``department``.

    ``path`` overrides args['path'] for the file backend (callers that handle several departments).
    """
    if args['backend'] == 'hashi_vault':
        options = args.get('hashi_vault') or {}
        missing = [name for name in ('url', 'token') if not options.get(name)]
        if missing:
            raise AnsibleActionFail(
                "Department '%s': the hashi_vault secrets backend needs %s: set hashi_vault.%s or the environment "
                "variable%s %s." % (department, ' and '.join(missing), ' and hashi_vault.'.join(missing),
                                    's' if len(missing) > 1 else '',
                                    ' and '.join({'url': 'VAULT_ADDR', 'token': 'VAULT_TOKEN'}[m] for m in missing)))
        vault_path = options.get('path') or '%s/%s' % ((options.get('path_prefix') or 'federation').strip('/'), department)
        return HashiVaultKV2Store(department, options['url'], options['token'],
                                  engine_mount_point=options.get('engine_mount_point'), path=vault_path,
                                  namespace=options.get('namespace'), validate_certs=options.get('validate_certs', True),
                                  ca_cert=options.get('ca_cert'), timeout=options.get('timeout') or 30)
    path = path or args.get('path')
    if not path:
        raise AnsibleActionFail("Department '%s': the file secrets backend needs 'path', the department's encrypted "
                                "secrets file." % department)
    vault, secret = vault_for(loader, args.get('vault_id'))
    return VaultFileStore(path, department, vault, secret, vault_id=args.get('vault_id'),
                          yaml_load=yaml.safe_load, yaml_dump=yaml_dump)


def vault_for(loader, vault_id):
    """The VaultLib of this run and the secret to encrypt with (from --vault-id / vault_password_file)."""
    secrets = list(getattr(getattr(loader, '_vault', None), 'secrets', None) or [])
    if not secrets:
        raise AnsibleActionFail(
            'No vault password is configured, so department secrets cannot be encrypted: set '
            'FEDERATION_VAULT_PASSWORD or FEDERATION_VAULT_PASSWORD_FILE (read by scripts/vault-password), '
            'or pass --vault-password-file.')
    chosen = None
    for sid, secret in secrets:
        if vault_id is None or sid == vault_id:
            chosen = secret
            break
    if chosen is None:
        raise AnsibleActionFail("No vault password with vault id '%s' is configured." % vault_id)
    return VaultLib(secrets), chosen
