# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: no compatibility promise outside federation.platform.
"""Controller-side helpers for the action plugins that read and write a department's secrets (or the
platform's own).

They share one set of options (documented by the doc fragment federation.platform.secret_store)
and open the same store from them: the ansible-vault file (default) or HashiCorp Vault KV v2.
vault_for() is the one place that picks the run's vault password.
"""

from __future__ import annotations

import yaml

from ansible.errors import AnsibleActionFail
from ansible.module_utils.basic import env_fallback
from ansible.parsing.vault import AnsibleVaultError, VaultLib

from ansible_collections.federation.platform.plugins.module_utils._secrets import (
    PLATFORM_FOLDER, HashiVaultKV2Store, StoreConflict, StoreError, VaultFileStore, hashi_vault_path, owner_of, update)

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


def open_store(loader, args, department, path=None, platform_name=None):
    """The store named by ``args`` (validated against store_argument_spec) for ``department``.

    ``department`` None opens a set of the platform's own secrets (scope=platform): the file at the
    path given, or in Vault hashi_vault.path, else <path_prefix>/_platform/<platform_name>.
    ``path`` overrides args['path'] for the file backend (callers that handle several departments).
    """
    owner = owner_of(department)
    title = owner[0].upper() + owner[1:]
    if args['backend'] == 'hashi_vault':
        options = args.get('hashi_vault') or {}
        missing = [name for name in ('url', 'token') if not options.get(name)]
        if missing:
            raise AnsibleActionFail(
                "%s: the hashi_vault secrets backend needs %s: set hashi_vault.%s or the environment "
                "variable%s %s." % (title, ' and '.join(missing), ' and hashi_vault.'.join(missing),
                                    's' if len(missing) > 1 else '',
                                    ' and '.join({'url': 'VAULT_ADDR', 'token': 'VAULT_TOKEN'}[m] for m in missing)))
        vault_path = options.get('path')
        if not vault_path:
            if department is None and not platform_name:
                raise AnsibleActionFail(
                    "The platform's secrets in HashiCorp Vault need a place: set name (they are kept at "
                    "<path_prefix>/%s/<name>) or hashi_vault.path." % PLATFORM_FOLDER)
            vault_path = hashi_vault_path(options.get('path_prefix'), department, platform_name)
        return HashiVaultKV2Store(department, options['url'], options['token'],
                                  engine_mount_point=options.get('engine_mount_point'), path=vault_path,
                                  namespace=options.get('namespace'), validate_certs=options.get('validate_certs', True),
                                  ca_cert=options.get('ca_cert'), timeout=options.get('timeout') or 30)
    path = path or args.get('path')
    if not path:
        raise AnsibleActionFail("%s: the file secrets backend needs 'path', %s encrypted secrets file."
                                % (title, "the platform's" if department is None else "the department's"))
    vault, secret = vault_for(loader, args.get('vault_id'))
    return VaultFileStore(path, department, vault, secret, vault_id=args.get('vault_id'),
                          yaml_load=yaml.safe_load, yaml_dump=yaml_dump)


def update_store(store, change, department, check_mode):
    """update() (load, change, save with retries; nothing saved in check mode), its failures as
    AnsibleActionFail messages that name the owner and the store and never a secret."""
    owner, where = owner_of(department), store.describe()
    try:
        return update(store, change, write=not check_mode)
    except (AnsibleVaultError, ValueError) as exc:
        raise AnsibleActionFail("Failed to read the secrets of %s from %s: %s. Check the vault "
                                "password; the file was left as it is." % (owner, where, exc))
    except StoreConflict as exc:
        raise AnsibleActionFail("Failed to write the secrets of %s to %s: %s, again and again. "
                                "Another run keeps writing them; try again." % (owner, where, exc))
    except StoreError as exc:
        raise AnsibleActionFail(str(exc))
    except (OSError, yaml.YAMLError) as exc:
        raise AnsibleActionFail("Failed to write the secrets of %s to %s: %s. The previous "
                                "file, if any, is unchanged." % (owner, where, exc))


def published(task_vars, fact_name, department, secrets, check_mode, own=()):
    """The mapping of secrets to set as the fact ``fact_name`` after a call that read ``secrets`` from the store
    and generated or stored the names in ``own`` itself.

    In check mode nothing is saved, so the store still holds what it held before the run: values that earlier
    tasks of the same run only generated in memory (a rotated password, say) are kept from the fact as it was,
    when it holds the same owner's secrets (the department being provisioned, or the platform's own fact), and
    only this call's own values go over them.
    """
    if not check_mode:
        return secrets
    previous = (task_vars or {}).get(fact_name)
    if not isinstance(previous, dict):
        return secrets
    if department is not None and str(task_vars.get('federation_dept', department)) != department:
        return secrets
    merged = dict(secrets)
    merged.update(previous)
    merged.update((name, secrets[name]) for name in own if name in secrets)
    return merged


def vault_for(loader, vault_id):
    """The VaultLib of this run and the secret to encrypt with (from --vault-id / vault_password_file)."""
    secrets = list(getattr(getattr(loader, '_vault', None), 'secrets', None) or [])
    if not secrets:
        raise AnsibleActionFail(
            'No vault password is configured, so secrets cannot be encrypted: set '
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
