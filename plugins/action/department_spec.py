# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.federation.platform.plugins.module_utils._naming import department_name_error, NAME_RULE
from ansible_collections.federation.platform.plugins.module_utils._spec import SpecError, normalize_spec

_TEMPLATE_MARKERS = ('{{', '{%', '{#')


class ActionModule(ActionBase):
    """Validate a department name and load its spec on the controller; changes nothing."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        validation, args = self.validate_argument_spec(argument_spec=dict(
            from_var=dict(type='str', default='dept'),
            name=dict(type='raw'),
            specs_dir=dict(type='path', required=True),
            default_target=dict(type='str', default='vps'),
        ))

        if args['name'] is not None:
            raw = args['name']
        else:
            # The raw variable, before Ansible evaluates any template expression in it:
            # extra vars are templated on use, so '-e dept={{ ... }}' would otherwise run.
            if args['from_var'] not in task_vars:
                raise AnsibleActionFail(
                    "No department given: run the playbook with -e %s=<name>, where a name has %s."
                    % (args['from_var'], NAME_RULE))
            raw = task_vars[args['from_var']]

        if isinstance(raw, str) and any(marker in raw for marker in _TEMPLATE_MARKERS):
            raise AnsibleActionFail(
                'Invalid department: department name %r contains a template expression. A department name has %s.'
                % (str(raw), NAME_RULE))
        problem = department_name_error(raw if not isinstance(raw, str) else str(raw))
        if problem:
            raise AnsibleActionFail('Invalid department: %s. A department name has %s.' % (problem, NAME_RULE))
        name = str(raw)

        spec_file = os.path.join(args['specs_dir'], name + '.yml')
        data = None
        if os.path.exists(spec_file):
            try:
                data = self._loader.load_from_file(spec_file)
            except Exception as exc:  # the loader raises several error types for bad YAML
                raise AnsibleActionFail("Invalid spec for department '%s': %s could not be read: %s"
                                        % (name, spec_file, exc))
        else:
            spec_file = None
        try:
            spec = normalize_spec(name, _plain(data), default_target=args['default_target'])
        except SpecError as exc:
            where = ' (in %s)' % spec_file if spec_file else ''
            raise AnsibleActionFail('%s%s. Fix the spec and run again; nothing was changed.' % (exc, where))

        result.update(
            changed=False,
            department=name,
            spec=spec,
            spec_file=spec_file,
            ansible_facts=dict(federation_dept=name, federation_department=spec),
            msg="department '%s' is valid (%s)" % (name, spec_file or 'no spec file: defaults'),
        )
        return result


def _plain(value):
    """Turn the loader's tagged YAML values into plain Python types."""
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return value
