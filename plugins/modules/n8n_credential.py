#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: n8n_credential
short_description: Create, replace and delete n8n credentials by name, with write-only data
version_added: 0.1.0
description:
  - Manages one credential (O(name), O(type), O(data)) or a list of them (O(credentials)) in one call.
  - n8n never returns a credential's data. The module keeps a keyed fingerprint (HMAC-SHA256, keyed with
    O(fingerprint_key)) of the data it wrote in the instance itself, in the static data of an inactive workflow
    named C(Federation managed state (do not edit)), and compares the wanted data's fingerprint with it.
    Unchanged data reports no change; the data itself is never read back, returned or logged.
  - On n8n 2.x changed data is written in place (C(PATCH)), so workflows keep using the same credential id.
  - On n8n 1.x, which has no update, list or get for credentials, changed data means a new credential, every
    workflow that used the old one pointed at the new one (active workflows stay active and their webhooks are
    checked), then the old one deleted.
  - Data that is to be written is checked against the type's schema from n8n before anything is written; one bad item fails the call
    with nothing changed.
author:
  - Federation platform team (@federation)
extends_documentation_fragment:
  - federation.platform.n8n
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Check mode sends no request that changes anything.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: The diff names credentials and types; data shows only as changed, never its value.
options:
  api_key:
    required: true
  credentials:
    description:
      - The credentials to manage. Mutually exclusive with O(name).
    type: list
    elements: dict
    suboptions:
      name:
        description: Credential name, 3-128 characters, unique among the managed credentials.
        type: str
        required: true
      type:
        description: Credential type, as n8n names it (for example V(postgres), V(httpHeaderAuth)).
        type: str
      data:
        description: The credential's data (write-only). Required with O(state=present).
        type: dict
  name:
    description: Name of one credential to manage (instead of O(credentials)).
    type: str
  type:
    description: Type of the credential named by O(name).
    type: str
  data:
    description: Data of the credential named by O(name) (write-only).
    type: dict
  state:
    description:
      - V(present) creates or replaces; V(absent) deletes every credential of that name (and type, when given).
    type: str
    default: present
    choices: [present, absent]
  fingerprint_key:
    description:
      - Secret key of the data fingerprints, for example the department's C(n8n_encryption_key). It is not stored
        anywhere by the module. Defaults to O(api_key), in which case a new API key makes every credential compare
        as changed once.
    type: str
  webhook_url:
    description:
      - Base URL of the instance's production webhooks, used to check the webhooks of active workflows that were
        pointed at a replaced credential (n8n 1.x). Defaults to O(url) followed by C(/webhook).
    type: str
  webhook_timeout:
    description: Seconds to wait for a webhook to become live after its workflow changed.
    type: float
    default: 10
'''

EXAMPLES = r'''
- name: The department's database login and its gateway identity
  federation.platform.n8n_credential:
    url: "{{ federation_n8n_url }}"
    api_key: "{{ federation_secrets.n8n_api_key }}"
    fingerprint_key: "{{ federation_secrets.n8n_encryption_key }}"
    credentials:
      - name: finance-postgres
        type: postgres
        data:
          host: 127.0.0.1
          port: 5432
          database: federation
          user: dept_finance
          password: "{{ federation_secrets.tenant_db_password }}"
          ssl: disable
          sshTunnel: false
      - name: finance-gateway
        type: httpHeaderAuth
        data:
          name: Authorization
          value: "Bearer {{ federation_secrets.gateway_token }}"
  no_log: true

- name: Remove one
  federation.platform.n8n_credential:
    url: "{{ federation_n8n_url }}"
    api_key: "{{ federation_secrets.n8n_api_key }}"
    name: finance-old
    state: absent
'''

RETURN = r'''
credentials:
  description: One entry per credential, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The credential's name.
      type: str
    id:
      description: Its id (C(null) for one that is still to be created in check mode).
      type: str
    type:
      description: Its type.
      type: str
    changed:
      description: Whether it changed (or would, in check mode).
      type: bool
    action:
      description: V(created), V(updated) (2.x, in place), V(replaced) (1.x, new id), V(deleted) or V(unchanged).
      type: str
  sample: [{name: finance-postgres, id: f3kPq2Lx8aB1cD9e, type: postgres, changed: true, action: created}]
repointed_workflows:
  description: Names of the workflows pointed at a replaced credential (n8n 1.x).
  returned: always
  type: list
  elements: str
major:
  description: The n8n major version, 1 or 2.
  returned: always
  type: int
msg:
  description: What happened, in words.
  returned: always
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.federation.platform.plugins.module_utils._n8n import N8nClient, N8nError, n8n_argument_spec, scrub
from ansible_collections.federation.platform.plugins.module_utils._n8n_credentials import CredentialApplier, CredentialError


def _secret_values(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _secret_values(item)
    elif isinstance(value, list):
        for item in value:
            yield from _secret_values(item)
    elif isinstance(value, str):
        yield value


def items_of(params):
    if params['credentials'] is not None:
        return [dict(item) for item in params['credentials']]
    return [dict(name=params['name'], type=params['type'], data=params['data'])]


def problems_of(items, state):
    problems = []
    seen = set()
    for index, item in enumerate(items):
        name = item.get('name')
        label = "credential '%s'" % name if name else 'credential %d' % (index + 1)
        if not isinstance(name, str) or not 3 <= len(name) <= 128:
            problems.append('%s: name must have 3-128 characters' % label)
        if name in seen:
            problems.append('%s is listed twice' % label)
        seen.add(name)
        if state == 'present':
            if not item.get('type'):
                problems.append('%s: type is required (for example postgres or httpHeaderAuth)' % label)
            if not isinstance(item.get('data'), dict) or not item.get('data'):
                problems.append('%s: data is required and must be a mapping' % label)
    return problems


def main():
    argument_spec = n8n_argument_spec()
    argument_spec.update(
        api_key=dict(type='str', required=True, no_log=True),
        credentials=dict(type='list', elements='dict', options=dict(
            name=dict(type='str', required=True),
            type=dict(type='str'),
            data=dict(type='dict', no_log=True),
        )),
        name=dict(type='str'),
        type=dict(type='str'),
        data=dict(type='dict', no_log=True),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        fingerprint_key=dict(type='str', no_log=True),
        webhook_url=dict(type='str'),
        webhook_timeout=dict(type='float', default=10.0),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[('credentials', 'name')],
                           required_one_of=[('credentials', 'name')])
    p = module.params
    items = items_of(p)
    secrets = [p['api_key'], p.get('fingerprint_key')]
    for item in items:
        secrets.extend(_secret_values(item.get('data')))

    problems = problems_of(items, p['state'])
    if problems:
        module.fail_json(msg='Invalid credentials for n8n at %s, nothing was changed: %s.' % (p['url'], '; '.join(problems)))

    client = N8nClient.from_params(p)
    applier = CredentialApplier(client, p.get('fingerprint_key') or p['api_key'], check_mode=module.check_mode,
                                diff=module._diff, webhook_base=p.get('webhook_url') or client.url + '/webhook',
                                webhook_timeout=p['webhook_timeout'], warn=lambda text: module.warn(scrub(text, secrets)))
    try:
        results = applier.run(items, p['state'])
    except (CredentialError, N8nError) as exc:
        text = str(exc)
        if isinstance(exc, N8nError):
            text = 'Failed to manage credentials on %s: %s' % (client.where, text)
        module.fail_json(msg=scrub(text, secrets), credentials=applier.results, changed=any(
            r['changed'] for r in applier.results) and not module.check_mode)
    changed = any(r['changed'] for r in results)
    done = ['%s %s' % (r['action'], r['name']) for r in results if r['changed']]
    result = dict(changed=changed, credentials=results, repointed_workflows=applier.repointed, major=client.major,
                  msg='credentials on %s: %s' % (client.where, ', '.join(done) if done else 'unchanged'))
    if module._diff:
        result['diff'] = dict(before=applier.before, after=applier.after)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
