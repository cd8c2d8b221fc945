# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import yaml

from ansible.errors import AnsibleActionFail
from ansible.parsing.vault import AnsibleVaultError
from ansible.plugins.action import ActionBase

from ansible_collections.federation.platform.plugins.module_utils._naming import validate_department_name
from ansible_collections.federation.platform.plugins.module_utils._secrets import (
    StoreConflict, StoreError, merge_metadata, reconcile, update)
from ansible_collections.federation.platform.plugins.plugin_utils._secret_store import open_store, store_argument_spec


class ActionModule(ActionBase):
    """Keep a department's secrets in its store (ansible-vault file or HashiCorp Vault), on the controller."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        # Whatever happens below, the result carries secret values: never display it.
        result['_ansible_no_log'] = True
        spec = store_argument_spec()
        spec.update(
            department=dict(type='str', required=True),
            generate=dict(type='dict', default={}),
            values=dict(type='dict', default={}, no_log=True),
            metadata=dict(type='dict', default={}),
            rotate=dict(type='list', elements='str', default=[]),
            fact_name=dict(type='str', default='federation_secrets'),
        )
        validation, args = self.validate_argument_spec(argument_spec=spec)
        department = str(args['department'])
        try:
            validate_department_name(department)
        except ValueError as exc:
            raise AnsibleActionFail('Invalid department: %s' % exc)

        generate = {}
        for name, options in args['generate'].items():
            length = (options or {}).get('length', 32) if isinstance(options, dict) else options
            if not isinstance(length, int) or isinstance(length, bool) or not 8 <= length <= 256:
                raise AnsibleActionFail("Secret '%s' of department '%s': length must be a whole number from 8 to 256"
                                        % (name, department))
            generate[str(name)] = length
        unknown = sorted(set(args['rotate']) - set(generate))
        if unknown:
            raise AnsibleActionFail("Department '%s': cannot rotate %s, which %s not generated secrets"
                                    % (department, ', '.join(unknown), 'is' if len(unknown) == 1 else 'are'))
        metadata_changes = {}
        for name, entry in args['metadata'].items():
            if entry is not None and not isinstance(entry, dict):
                raise AnsibleActionFail("Department '%s': metadata of secret '%s' must be a mapping (for example "
                                        "{expires_at: '2030-01-31T00:00:00Z'}) or null to remove it" % (department, name))
            metadata_changes[str(name)] = entry
        values = {str(k): (None if v is None else str(v)) for k, v in args['values'].items()}

        store = open_store(self._loader, args, department)
        where = store.describe()
        outcome = {}

        def change(snapshot):
            new, generated, updated = reconcile(snapshot.secrets, generate, values, set(args['rotate']))
            metadata = merge_metadata(snapshot.metadata, metadata_changes)
            outcome.update(generated=generated, updated=updated, metadata_changed=metadata != snapshot.metadata,
                           new=new, metadata=metadata)
            if not (generated or updated or outcome['metadata_changed']):
                return None
            return new, metadata

        try:
            before, saved, dummy = update(store, change, write=not self._task.check_mode)
        except (AnsibleVaultError, ValueError) as exc:
            raise AnsibleActionFail("Failed to read the secrets of department '%s' from %s: %s. Check the vault "
                                    "password; the file was left as it is." % (department, where, exc))
        except StoreConflict as exc:
            raise AnsibleActionFail("Failed to write the secrets of department '%s' to %s: %s, again and again. "
                                    "Another run keeps writing them; try again." % (department, where, exc))
        except StoreError as exc:
            raise AnsibleActionFail(str(exc))
        except (OSError, yaml.YAMLError) as exc:
            raise AnsibleActionFail("Failed to write the secrets of department '%s' to %s: %s. The previous "
                                    "file, if any, is unchanged." % (department, where, exc))

        generated, updated = outcome['generated'], outcome['updated']
        changed = saved is not None
        new = outcome['new']
        result.update(
            changed=changed,
            backend=args['backend'],
            path=where,
            generated=generated,
            updated=updated,
            ansible_facts={args['fact_name']: new},
            msg="secrets of department '%s': %s" % (
                department, ', '.join(['generated ' + n for n in generated] + ['stored ' + n for n in updated]
                                      + (['metadata updated'] if outcome['metadata_changed'] else [])) or 'unchanged'),
        )
        if self._task.diff:
            result['diff'] = dict(before={'secrets': sorted(before.secrets)}, after={'secrets': sorted(new)},
                                  before_header=where, after_header=where)
        return result
