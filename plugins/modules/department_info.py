#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: department_info
short_description: Read the registry's departments, their states and their history
version_added: 0.1.0
description:
  - Reads every department registered in the control schema C(federation_control) of the platform database (or one,
    with O(name)), deleted ones included, ordered by name. Changes nothing.
  - An empty platform database (no registry yet) gives an empty list; the control schema is not created.
  - M(federation.platform.department) moves departments through the state machine; C(playbooks/status.yml) reads them
    with this module.
author:
  - Federation platform team (@federation)
extends_documentation_fragment:
  - federation.platform.postgres
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: It only reads, in check mode as otherwise.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
options:
  name:
    description:
      - Only this department (2-31 lowercase letters, digits and single hyphens, starting with a letter). Every
        department when omitted.
    type: str
  history:
    description: Add each department's recorded transitions (RV(departments[].history)).
    type: bool
    default: false
seealso:
  - module: federation.platform.department
'''

EXAMPLES = r'''
- name: Every registered department
  federation.platform.department_info:
    login_host: db.internal
    login_password: "{{ platform_db_password }}"
  register: registry

- name: The ones that failed
  ansible.builtin.debug:
    msg: "{{ registry.departments | selectattr('state', 'eq', 'failed') | map(attribute='name') | list }}"

- name: One department with its history
  federation.platform.department_info:
    name: finance
    history: true
'''

RETURN = r'''
departments:
  description: The departments' records, ordered by name (empty when none is registered, or O(name) is not).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The department.
      type: str
    state:
      description: V(requested), V(provisioning), V(active), V(failed), V(deprovisioning) or V(deleted).
      type: str
    spec:
      description: The spec stored by the last provisioning run.
      type: dict
    last_error:
      description: The error of the last failure, C(null) once the department moved on.
      type: str
    created_at:
      description: When it was first registered (ISO 8601).
      type: str
    updated_at:
      description: When its record last changed (ISO 8601).
      type: str
    state_changed_at:
      description: When it entered its state (ISO 8601).
      type: str
    history:
      description: With O(history=true), its transitions in order (C(from_state), C(to_state), C(error), C(at)).
      type: list
      elements: dict
  sample:
    - name: finance
      state: active
      spec: {target: vps, tools: [log_call]}
      last_error: null
      created_at: "2026-11-25T10:00:00.123456+00:00"
      updated_at: "2026-11-25T10:02:10.000001+00:00"
      state_changed_at: "2026-11-25T10:02:10.000001+00:00"
msg:
  description: How many departments were read.
  returned: always
  type: str
  sample: 3 departments registered
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.federation.platform.plugins.module_utils._naming import department_name_error, NAME_RULE
from ansible_collections.federation.platform.plugins.module_utils._postgres import (
    Database, DatabaseError, postgres_argument_spec)
from ansible_collections.federation.platform.plugins.module_utils._registry import Registry


def run(module, db):
    name = module.params['name']
    db.connect()
    registry = Registry(db)
    if name is None:
        departments = registry.list()
    else:
        record = registry.get(name)
        departments = [record] if record else []
    if module.params['history']:
        for record in departments:
            record['history'] = registry.history(record['name'])
    db.finish(False)
    count = len(departments)
    if name is None:
        msg = '%d department%s registered' % (count, '' if count == 1 else 's')
    else:
        msg = "department '%s' is %s" % (name, departments[0]['state'] if departments else 'not registered')
    return dict(changed=False, departments=departments, msg=msg)


def main():
    argument_spec = postgres_argument_spec()
    argument_spec.update(
        name=dict(type='str'),
        history=dict(type='bool', default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if module.params['name'] is not None:
        problem = department_name_error(module.params['name'])
        if problem:
            module.fail_json(msg='Invalid department: %s. A department name has %s.' % (problem, NAME_RULE))

    db = Database(module)
    try:
        result = run(module, db)
    except DatabaseError as exc:
        db.abort()
        module.fail_json(msg=str(exc), changed=False)
    finally:
        db.close()
    module.exit_json(**result)


if __name__ == '__main__':
    main()
