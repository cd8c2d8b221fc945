#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: department
short_description: Keep a department's record and provisioning state in the platform registry
version_added: 0.1.0
description:
  - Registers a department in the control schema C(federation_control) of the platform database and
    moves it through the provisioning state machine.
  - "States: V(requested) -> V(provisioning) -> V(active); any step may end in V(failed); V(failed) and
    V(active) may be provisioned again; V(requested), V(active) and V(failed) may move to
    V(deprovisioning) -> V(deleted); a V(deleted) department may be requested again."
  - An illegal transition fails with a message that names both states and changes nothing.
  - Every transition is recorded with its timestamp in C(federation_control.department_transitions).
  - Creates the control schema on first use.
author:
  - Federation platform team (@federation)
extends_documentation_fragment:
  - federation.platform.postgres
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
options:
  name:
    description:
      - The department name (2-31 lowercase letters, digits and single hyphens, starting with a letter).
    type: str
    required: true
  state:
    description:
      - The state the department should be in.
      - V(present) registers the department as V(requested) when it is not registered (or was deleted)
        and otherwise leaves its state alone; it still updates O(spec).
      - V(provisioning) on a department that is not registered (or was deleted) registers it first,
        recording both transitions.
      - V(query) changes nothing and returns the record (or C(null)) and its history.
    type: str
    default: present
    choices: [present, query, requested, provisioning, active, failed, deprovisioning, deleted]
  spec:
    description:
      - The department's spec, stored as JSON beside its state. Left unchanged when omitted.
    type: dict
  error:
    description:
      - With O(state=failed), what went wrong. Stored as the department's C(last_error);
        a transition to any other state clears it.
    type: str
'''

EXAMPLES = r'''
- name: Register finance (no change when it is already registered)
  federation.platform.department:
    name: finance
    spec: "{{ federation_department }}"
    login_host: db.internal
    login_password: "{{ platform_db_password }}"

- name: Start provisioning
  federation.platform.department:
    name: finance
    state: provisioning

- name: Record a failure
  federation.platform.department:
    name: finance
    state: failed
    error: "n8n did not become ready within 120 s"
'''

RETURN = r'''
department:
  description: The department's record after the call (C(null) when not registered).
  returned: always
  type: dict
  sample:
    name: finance
    state: active
    spec: {tools: [log_call]}
    last_error: null
    created_at: "2026-11-25T10:00:00.123456+00:00"
    updated_at: "2026-11-25T10:02:10.000001+00:00"
    state_changed_at: "2026-11-25T10:02:10.000001+00:00"
previous_state:
  description: The state before the call (C(null) when the department was not registered).
  returned: always
  type: str
  sample: provisioning
history:
  description: With O(state=query), every recorded transition in order.
  returned: when O(state=query)
  type: list
  elements: dict
  sample: [{from_state: null, to_state: requested, error: null, at: "2026-11-25T10:00:00+00:00"}]
queries:
  description: The statements that changed something, with values inlined.
  returned: always
  type: list
  elements: str
msg:
  description: What happened, in words.
  returned: always
  type: str
  sample: "department 'finance' moved from provisioning to active"
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.federation.platform.plugins.module_utils._naming import department_name_error, NAME_RULE
from ansible_collections.federation.platform.plugins.module_utils._postgres import (
    Database, DatabaseError, postgres_argument_spec)
from ansible_collections.federation.platform.plugins.module_utils._registry import (
    IllegalTransition, Registry, check_transition)


def run(module, db):
    name = module.params['name']
    target = module.params['state']
    spec = module.params['spec']
    db.connect()
    registry = Registry(db)

    if target == 'query':
        record = registry.get(name)
        history = registry.history(name) if record else []
        db.finish(False)
        return dict(changed=False, department=record, previous_state=record and record['state'],
                    history=history, queries=[], msg="department '%s' is %s" % (name, record['state'] if record else 'not registered'))

    # Registration is implicit for the forward path: a department that is not registered
    # (or was deleted) is requested first, then moved on.
    registers = target in ('present', 'requested', 'provisioning')

    # Fail on an illegal move before anything is written, even the control schema.
    current_record = registry.get(name)
    current = current_record['state'] if current_record else None
    if current in (None, 'deleted') and registers:
        check_transition(name, current, 'requested')
        current = 'requested'
    if target != 'present':
        check_transition(name, current, target)

    registry.ensure_schema()
    record = registry.get(name, lock=True)
    current = record['state'] if record else None
    messages = []
    if record is None:
        registry.insert(name, spec)
        messages.append("department '%s' registered as requested" % name)
        current = 'requested'
    elif current == 'deleted' and registers:
        registry.transition(name, current, 'requested')
        messages.append("department '%s' moved from deleted to requested" % name)
        current = 'requested'
    if record is not None and spec is not None and spec != record['spec']:
        registry.set_spec(name, spec)
        messages.append("spec of department '%s' updated" % name)

    if target not in ('present', current):
        registry.transition(name, current, target, module.params['error'] if target == 'failed' else None)
        messages.append("department '%s' moved from %s to %s" % (name, current, target))
    elif target == 'failed' and module.params['error'] and module.params['error'] != record['last_error']:
        registry.set_error(name, module.params['error'])
        messages.append("error of department '%s' updated" % name)

    after = registry.get(name)
    changed = bool(db.queries)
    db.finish(changed)
    result = dict(changed=changed, department=after, previous_state=record and record['state'], queries=db.queries,
                  msg='; '.join(messages) or "department '%s' is %s; nothing to change" % (name, after['state']))
    if module._diff:
        result['diff'] = dict(before=_diffable(record), after=_diffable(after))
    return result


def _diffable(record):
    if record is None:
        return {}
    return dict(state=record['state'], spec=record['spec'], last_error=record['last_error'])


def main():
    argument_spec = postgres_argument_spec()
    argument_spec.update(
        name=dict(type='str', required=True),
        state=dict(type='str', default='present',
                   choices=['present', 'query', 'requested', 'provisioning', 'active', 'failed', 'deprovisioning', 'deleted']),
        spec=dict(type='dict'),
        error=dict(type='str'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)

    problem = department_name_error(module.params['name'])
    if problem:
        module.fail_json(msg='Invalid department: %s. A department name has %s.' % (problem, NAME_RULE))

    db = Database(module)
    try:
        result = run(module, db)
    except (DatabaseError, IllegalTransition) as exc:
        db.abort()
        module.fail_json(msg=str(exc), changed=False, queries=db.queries)
    finally:
        db.close()
    module.exit_json(**result)


if __name__ == '__main__':
    main()
