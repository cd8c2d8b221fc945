#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: n8n_workflow
short_description: Create, update, activate and delete n8n workflows by exact name, with symbolic references
version_added: 0.1.0
description:
  - Manages one workflow (O(name), O(definition)) or a list of them (O(workflows)) in one call.
  - A workflow is found by its exact name (the API's name filter matches substrings; the module compares
    exactly). Two workflows with the same exact name are an error, not a guess.
  - A definition may be a template, an export from the editor or the answer of a GET; the fields the API
    refuses on write for the running version (C(id), C(active), C(tags), C(versionId), C(meta), C(pinData) and
    others) are dropped, so a round trip never fails. Unknown fields are dropped with a warning.
  - Definitions are compared in a normal form (node order, server-filled settings and number formats do not
    count), so an unchanged workflow reports no change. Nodes without C(id) get one derived from the workflow
    and node names, webhook nodes without C(webhookId) likewise, so ids are stable across runs.
  - "References are resolved at apply time: a node's C(credentials) entry names the credential
    (C({postgres: {name: finance-postgres}}) or C({postgres: finance-postgres})); a string that is exactly
    C(${workflow:KEY}) becomes the id of the workflow with that O(workflows[].key) in the same call, or else of
    the workflow with that exact name on the server; C(${credential:NAME}) becomes that credential's id."
  - Workflows are applied in dependency order (a workflow after those it references), so sub-workflows exist
    and are published before their callers. A reference cycle is an error.
  - O(workflows[].active) activates (1.x) or publishes (2.x). On 1.x a sub-workflow whose only trigger is
    C(Execute Workflow Trigger) cannot be activated and runs without it, so it is left inactive there.
  - n8n expressions (C(={{ $json.x }})) look like Jinja. A definition rendered by a lookup (as the role
    C(federation.platform.n8n_content) does) is not templated again, but one written inline in a playbook must be
    marked C(!unsafe) or wrapped in C({% raw %}).
  - After activating or updating an active workflow, and on every run for active workflows, each webhook is
    checked to be really live (n8n 1.x can report a workflow active whose webhooks it never registered); a dead
    one is repaired by deactivating and activating the workflow.
author:
  - Federation platform team (@federation)
extends_documentation_fragment:
  - federation.platform.n8n
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Check mode sends no request that changes anything; webhooks are probed with a method they do not accept.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: Before and after of each changed workflow in the compared normal form (nodes, connections, settings, active, tags).
options:
  api_key:
    required: true
  workflows:
    description: The workflows to manage. Mutually exclusive with O(name).
    type: list
    elements: dict
    suboptions:
      name:
        description: Exact workflow name.
        type: str
        required: true
      key:
        description: What C(${workflow:KEY}) references call this workflow (for example a template key). Defaults to O(workflows[].name).
        type: str
      definition:
        description:
          - The workflow, a mapping with C(nodes), C(connections) and C(settings), or a JSON string of it. Required
            with O(state=present). Its C(name) is ignored (O(workflows[].name) counts).
        type: raw
      active:
        description: Whether the workflow is active (published on 2.x). Left as it is when not given; a new workflow starts inactive.
        type: bool
      tags:
        description: Tag names of the workflow (created when missing). Left as they are when not given.
        type: list
        elements: str
  name:
    description: Name of one workflow to manage (instead of O(workflows)).
    type: str
  key:
    description: Key of the workflow named by O(name).
    type: str
  definition:
    description: Definition of the workflow named by O(name).
    type: raw
  active:
    description: Whether the workflow named by O(name) is active.
    type: bool
  tags:
    description: Tags of the workflow named by O(name).
    type: list
    elements: str
  state:
    description: V(present) creates or updates; V(absent) deletes (deactivating first).
    type: str
    default: present
    choices: [present, absent]
  webhook_url:
    description:
      - Base URL of the instance's production webhooks as the host running the module reaches them.
        Defaults to O(url) followed by C(/webhook).
    type: str
  webhook_timeout:
    description: Seconds to wait for a webhook to become live after its workflow was activated or changed.
    type: float
    default: 10
  verify_webhooks:
    description: Whether to check (and repair) the webhooks of active workflows.
    type: bool
    default: true
'''

EXAMPLES = r'''
- name: A tool, then the entry workflow that calls it
  federation.platform.n8n_workflow:
    url: "{{ federation_n8n_url }}"
    api_key: "{{ federation_secrets.n8n_api_key }}"
    workflows:
      - name: "finance: log call"
        key: log_call
        definition: "{{ lookup('ansible.builtin.template', 'tool_log_call.json.j2') }}"
        active: true
        tags: [federation, tool]
      - name: "finance: voice assistant"
        key: voice
        definition:
          nodes:
            - name: Webhook
              type: n8n-nodes-base.webhook
              typeVersion: 2
              parameters: {httpMethod: POST, path: finance/voice, responseMode: lastNode}
            - name: Log
              type: n8n-nodes-base.executeWorkflow
              typeVersion: 1.2
              parameters:
                workflowId: {__rl: true, mode: id, value: "${workflow:log_call}"}
          connections:
            Webhook: {main: [[{node: Log, type: main, index: 0}]]}
          settings: {executionOrder: v1}
        active: true

- name: Remove a workflow
  federation.platform.n8n_workflow:
    url: "{{ federation_n8n_url }}"
    api_key: "{{ federation_secrets.n8n_api_key }}"
    name: "finance: old"
    state: absent
'''

RETURN = r'''
workflows:
  description: One entry per workflow, in the order applied (dependencies first).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The workflow's name.
      type: str
    key:
      description: Its key.
      type: str
    id:
      description: Its id (C(null) for one still to be created in check mode).
      type: str
    changed:
      description: Whether it changed (or would, in check mode).
      type: bool
    actions:
      description: What was done, in order (V(create), V(update), V(tag), V(activate), V(deactivate), V(repair webhooks), V(delete)).
      type: list
      elements: str
    active:
      description: Whether it is active afterwards.
      type: bool
    tags:
      description: Its tag names afterwards.
      type: list
      elements: str
    webhooks:
      description: Its static webhooks and whether each is live ({node, path, methods, live}).
      type: list
      elements: dict
ids:
  description: Workflow ids by key.
  returned: always
  type: dict
  sample: {log_call: Xb2kP0a9LmQ3zT7c, voice: 9sD1fGh2JkL3mN4b}
major:
  description: The n8n major version, 1 or 2.
  returned: always
  type: int
msg:
  description: What happened, in words.
  returned: always
  type: str
'''

import json

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.federation.platform.plugins.module_utils._n8n import N8nClient, N8nError, n8n_argument_spec, scrub
from ansible_collections.federation.platform.plugins.module_utils._n8n_state import CredentialIndex, ManagedState
from ansible_collections.federation.platform.plugins.module_utils._n8n_workflows import (
    WorkflowApplier, WorkflowError, order, problems_of, references)


def items_of(params):
    if params['workflows'] is not None:
        return [dict(item) for item in params['workflows']]
    return [dict(name=params['name'], key=params['key'], definition=params['definition'], active=params['active'],
                 tags=params['tags'])]


def prepare(items, state):
    """Items with keys and parsed definitions, and the list of problems."""
    problems = []
    names, keys = set(), set()
    for index, item in enumerate(items):
        name = item.get('name')
        if not isinstance(name, str) or not name.strip() or len(name) > 128:
            problems.append('workflow %d: name must have 1-128 characters' % (index + 1))
            continue
        item['key'] = item.get('key') or name
        if name in names:
            problems.append("workflow '%s' is listed twice" % name)
        if item['key'] in keys:
            problems.append("workflow key '%s' is used twice" % item['key'])
        names.add(name)
        keys.add(item['key'])
        if state == 'absent':
            continue
        definition = item.get('definition')
        if isinstance(definition, str):
            try:
                definition = json.loads(definition)
            except ValueError as exc:
                problems.append("workflow '%s': definition is not valid JSON (%s)" % (name, exc))
                continue
        if definition is None:
            problems.append("workflow '%s': definition is required with state=present" % name)
            continue
        item['definition'] = definition
        problems.extend(problems_of(name, definition))
    if not problems and state == 'present':
        try:
            order(items)
        except WorkflowError as exc:
            problems.append(str(exc))
    return problems


def main():
    argument_spec = n8n_argument_spec()
    argument_spec.update(
        api_key=dict(type='str', required=True, no_log=True),
        workflows=dict(type='list', elements='dict', options=dict(
            name=dict(type='str', required=True),
            key=dict(type='str', no_log=False),
            definition=dict(type='raw'),
            active=dict(type='bool'),
            tags=dict(type='list', elements='str'),
        )),
        name=dict(type='str'),
        key=dict(type='str', no_log=False),
        definition=dict(type='raw'),
        active=dict(type='bool'),
        tags=dict(type='list', elements='str'),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        webhook_url=dict(type='str'),
        webhook_timeout=dict(type='float', default=10.0),
        verify_webhooks=dict(type='bool', default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[('workflows', 'name')], required_one_of=[('workflows', 'name')])
    p = module.params
    secrets = [p['api_key']]
    items = items_of(p)
    problems = prepare(items, p['state'])
    if problems:
        module.fail_json(msg='Invalid workflows for n8n at %s, nothing was changed: %s.' % (p['url'], '; '.join(problems)))

    client = N8nClient.from_params(p)
    index = None
    if p['state'] == 'present' and any(kind == 'credential' for item in items for kind, dummy in references(item['definition'])):
        index = _LazyIndex(client)
    applier = WorkflowApplier(client, check_mode=module.check_mode, diff=module._diff,
                              webhook_base=(p.get('webhook_url') or client.url + '/webhook') if p['verify_webhooks'] else None,
                              webhook_timeout=p['webhook_timeout'], credential_index=index,
                              warn=lambda text: module.warn(scrub(text, secrets)))
    try:
        if p['state'] == 'present':
            results = applier.present(items)
        else:
            # Callers before the workflows they call: dependency order reversed, when definitions tell it.
            known = all(isinstance(item.get('definition'), dict) for item in items)
            results = applier.absent([item['name'] for item in reversed(order(items) if known else items)])
    except (WorkflowError, N8nError) as exc:
        text = str(exc)
        if isinstance(exc, N8nError):
            text = 'Failed to manage workflows on %s: %s' % (client.where, text)
        module.fail_json(msg=scrub(text, secrets), workflows=applier.results,
                         changed=any(r['changed'] for r in applier.results) and not module.check_mode)
    changed = any(r['changed'] for r in results)
    done = ["%s '%s'" % ('/'.join(r['actions']), r['name']) for r in results if r['changed']]
    result = dict(changed=changed, workflows=results, major=client.major,
                  ids=dict((r['key'], r['id']) for r in results if r.get('id')),
                  msg='workflows on %s: %s' % (client.where, ', '.join(done) if done else 'unchanged'))
    if module._diff:
        result['diff'] = dict(before=applier.before, after=applier.after)
    module.exit_json(**result)


class _LazyIndex(object):
    """A CredentialIndex loaded on first use (the managed state costs two requests)."""

    def __init__(self, client):
        self.client = client
        self._index = None

    def resolve(self, name, cred_type=None):
        if self._index is None:
            self._index = CredentialIndex(self.client, ManagedState(self.client).load())
        return self._index.resolve(name, cred_type)


if __name__ == '__main__':
    main()
