# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import yaml

from ansible.errors import AnsibleActionFail
from ansible.parsing.vault import AnsibleVaultError, VaultLib
from ansible.plugins.action import ActionBase

from ansible_collections.federation.platform.plugins.module_utils._naming import validate_department_name
from ansible_collections.federation.platform.plugins.module_utils._secrets import KINDS, VaultFileStore, reconcile


class ActionModule(ActionBase):
    """Keep a department's secrets in its ansible-vault encrypted file, on the controller."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        # Whatever happens below, the result carries secret values: never display it.
        result['_ansible_no_log'] = True
        validation, args = self.validate_argument_spec(argument_spec=dict(
            department=dict(type='str'),
            scope=dict(type='str', default='department', choices=['department', 'platform']),
            path=dict(type='path', required=True),
            generate=dict(type='dict', default={}),
            values=dict(type='dict', default={}, no_log=True),
            rotate=dict(type='list', elements='str', default=[]),
            vault_id=dict(type='str'),
            fact_name=dict(type='str', default='federation_secrets'),
        ))
        if args['scope'] == 'platform':
            if args['department'] is not None:
                raise AnsibleActionFail("The platform's secrets belong to no department: with scope=platform, "
                                        "leave out department (got '%s')." % args['department'])
            department, owner = None, 'the platform'
        else:
            if args['department'] is None:
                raise AnsibleActionFail('No department given: set department, or scope=platform for the '
                                        "platform's own secrets.")
            department = str(args['department'])
            try:
                validate_department_name(department)
            except ValueError as exc:
                raise AnsibleActionFail('Invalid department: %s' % exc)
            owner = "department '%s'" % department

        generate = {}
        for name, options in args['generate'].items():
            options = options if isinstance(options, dict) else {'length': options}
            kind = options.get('kind', 'password')
            if kind not in KINDS:
                raise AnsibleActionFail("Secret '%s' of %s: kind %r is unknown; use one of %s"
                                        % (name, owner, kind, ', '.join(KINDS)))
            if kind == 'password':
                length = options.get('length', 32)
                if not isinstance(length, int) or isinstance(length, bool) or not 8 <= length <= 256:
                    raise AnsibleActionFail("Secret '%s' of %s: length must be a whole number from 8 to 256"
                                            % (name, owner))
                generate[str(name)] = length
            else:
                generate[str(name)] = {'kind': kind}
        unknown = sorted(set(args['rotate']) - set(generate))
        if unknown:
            raise AnsibleActionFail("%s: cannot rotate %s, which %s not generated secrets"
                                    % (owner[0].upper() + owner[1:], ', '.join(unknown), 'is' if len(unknown) == 1 else 'are'))

        store = VaultFileStore(args['path'], department, *self._vault(args['vault_id']), vault_id=args['vault_id'])
        store.lock()
        try:
            try:
                current = store.read(yaml.safe_load)
            except (AnsibleVaultError, ValueError) as exc:
                raise AnsibleActionFail("Failed to read the secrets of %s from %s: %s. Check the vault "
                                        "password; the file was left as it is." % (owner, args['path'], exc))
            values = {str(k): (None if v is None else str(v)) for k, v in args['values'].items()}
            new, generated, updated = reconcile(current, generate, values, set(args['rotate']))
            changed = bool(generated or updated)
            if changed and not self._task.check_mode:
                try:
                    store.write(new, lambda doc: yaml.safe_dump(doc, default_flow_style=False))
                except (OSError, yaml.YAMLError) as exc:
                    raise AnsibleActionFail("Failed to write the secrets of %s to %s: %s. The previous "
                                            "file, if any, is unchanged." % (owner, args['path'], exc))
        finally:
            store.unlock()

        result.update(
            changed=changed,
            path=args['path'],
            generated=generated,
            updated=updated,
            ansible_facts={args['fact_name']: new},
            msg="secrets of %s: %s" % (
                owner, ', '.join(['generated ' + n for n in generated] + ['stored ' + n for n in updated]) or 'unchanged'),
        )
        if self._task.diff:
            result['diff'] = dict(before={'secrets': sorted(current)}, after={'secrets': sorted(new)},
                                  before_header=args['path'], after_header=args['path'])
        return result

    def _vault(self, vault_id):
        return run_vault(self._loader, vault_id)


def run_vault(loader, vault_id=None):
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
