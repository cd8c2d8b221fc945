# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.federation.platform.plugins.module_utils._naming import validate_department_name
from ansible_collections.federation.platform.plugins.module_utils._secrets import (
    KINDS, merge_metadata, owner_of, reconcile)
from ansible_collections.federation.platform.plugins.plugin_utils._secret_store import (
    open_store, published, store_argument_spec, update_store)


class ActionModule(ActionBase):
    """Keep a department's (or the platform's own) secrets in its store (ansible-vault file or HashiCorp Vault),
    on the controller."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        # Whatever happens below, the result carries secret values: never display it.
        result['_ansible_no_log'] = True
        spec = store_argument_spec()
        spec.update(
            department=dict(type='str'),
            scope=dict(type='str', default='department', choices=['department', 'platform']),
            name=dict(type='str'),
            generate=dict(type='dict', default={}),
            values=dict(type='dict', default={}, no_log=True),
            metadata=dict(type='dict', default={}),
            rotate=dict(type='list', elements='str', default=[]),
            fact_name=dict(type='str', default='federation_secrets'),
        )
        validation, args = self.validate_argument_spec(argument_spec=spec)
        if args['scope'] == 'platform':
            if args['department'] is not None:
                raise AnsibleActionFail("The platform's secrets belong to no department: with scope=platform, "
                                        "leave out department (got '%s')." % args['department'])
            department = None
            try:
                if args['name'] is not None:
                    validate_department_name(args['name'])
            except ValueError:
                raise AnsibleActionFail("Invalid name %r of the platform's secrets: use the department naming rule "
                                        "(2-31 lowercase letters, digits and single hyphens, starting with a letter), "
                                        "such as 'gateway'." % args['name'])
        else:
            if args['department'] is None:
                raise AnsibleActionFail('No department given: set department, or scope=platform for the '
                                        "platform's own secrets.")
            if args['name'] is not None:
                raise AnsibleActionFail("name names a set of the platform's secrets: with scope=department, leave it "
                                        "out (got '%s')." % args['name'])
            department = str(args['department'])
            try:
                validate_department_name(department)
            except ValueError as exc:
                raise AnsibleActionFail('Invalid department: %s' % exc)
        owner = owner_of(department)
        title = owner[0].upper() + owner[1:]

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
            elif options.get('length') is not None:
                raise AnsibleActionFail("Secret '%s' of %s: a %s key has no length; leave length out or use "
                                        "another kind" % (name, owner, kind))
            else:
                generate[str(name)] = {'kind': kind}
        unknown = sorted(set(args['rotate']) - set(generate))
        if unknown:
            raise AnsibleActionFail("%s: cannot rotate %s, which %s not generated secrets"
                                    % (title, ', '.join(unknown), 'is' if len(unknown) == 1 else 'are'))
        metadata_changes = {}
        for name, entry in args['metadata'].items():
            if entry is not None and not isinstance(entry, dict):
                raise AnsibleActionFail("%s: metadata of secret '%s' must be a mapping (for example "
                                        "{expires_at: '2030-01-31T00:00:00Z'}) or null to remove it" % (title, name))
            metadata_changes[str(name)] = entry
        values = {str(k): (None if v is None else str(v)) for k, v in args['values'].items()}

        store = open_store(self._loader, args, department, platform_name=args['name'])
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

        before, saved, dummy = update_store(store, change, department, self._task.check_mode)

        generated, updated = outcome['generated'], outcome['updated']
        changed = saved is not None
        new = outcome['new']
        result.update(
            changed=changed,
            backend=args['backend'],
            path=where,
            generated=generated,
            updated=updated,
            ansible_facts={args['fact_name']: published(task_vars, args['fact_name'], department, new,
                                                        self._task.check_mode, own=generated + updated)},
            msg="secrets of %s: %s" % (
                owner, ', '.join(['generated ' + n for n in generated] + ['stored ' + n for n in updated]
                                 + (['metadata updated'] if outcome['metadata_changed'] else [])) or 'unchanged'),
        )
        if self._task.diff:
            result['diff'] = dict(before={'secrets': sorted(before.secrets)}, after={'secrets': sorted(new)},
                                  before_header=where, after_header=where)
        return result
