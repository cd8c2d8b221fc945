#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: n8n_instance
short_description: Bootstrap an n8n instance without its editor - owner account and public-API key
version_added: 0.1.0
description:
  - Waits until the instance's API really answers (C(/rest/settings) and C(/api/v1) return JSON; C(/healthz)
    answers seconds before the API exists).
  - When the stored O(api_key) works, changes nothing and does not log in.
  - Otherwise creates the owner account on an instance that has none (C(POST /rest/owner/setup)) or logs in as
    the existing owner, creates a public-API key labelled O(api_key_label) with the scopes of O(api_key_scopes)
    that the owner may grant (n8n versions without key scopes get an unscoped key), checks that it works, and
    deletes older keys with the same label first (n8n keeps labels unique; their value was never stored, so nobody can use them).
  - The new key is returned once, in RV(api_key). Store it at once, for example with
    M(federation.platform.department_secrets) O(federation.platform.department_secrets#module:values), and mark
    the task C(no_log).
author:
  - Federation platform team (@federation)
extends_documentation_fragment:
  - federation.platform.n8n
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: In check mode the module only reads (it does not even log in) and returns no key.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
options:
  api_key:
    description:
      - The key stored from an earlier run, if any. Empty or missing means there is none.
  owner_email:
    description: E-mail (login) of the owner account.
    type: str
    required: true
  owner_password:
    description:
      - Password of the owner account, 8-64 characters with at least one digit and one uppercase letter.
      - Used only when a key has to be created. Never returned or logged.
    type: str
    required: true
  owner_first_name:
    description: First name of the owner account, when it is created.
    type: str
    default: Federation
  owner_last_name:
    description: Last name of the owner account, when it is created.
    type: str
    default: Owner
  api_key_label:
    description: Label of the key, 1-50 characters.
    type: str
    default: federation
  api_key_scopes:
    description:
      - Scopes of a new key; those the owner may not grant on this version are left out.
      - The default covers workflows, workflow tags, tags, credentials, and reading executions.
    type: list
    elements: str
  wait_timeout:
    description: Seconds to wait for the API to become ready.
    type: int
    default: 120
'''

EXAMPLES = r'''
- name: Bootstrap the department's n8n
  federation.platform.n8n_instance:
    url: "{{ federation_n8n_url }}"
    owner_email: "owner@finance.federation.local"
    owner_password: "{{ federation_secrets.n8n_owner_password }}"
    api_key: "{{ federation_secrets.n8n_api_key | default('') }}"
  register: n8n_bootstrap
  no_log: true

- name: Keep a new key
  federation.platform.department_secrets:
    department: finance
    path: "{{ federation_secrets_dir }}/finance.yml"
    values:
      n8n_api_key: "{{ n8n_bootstrap.api_key }}"
  when: n8n_bootstrap.api_key is truthy
'''

RETURN = r'''
api_key:
  description: The new key, only when one was created by this call (C(null) otherwise).
  returned: always
  type: str
version:
  description: The n8n version, when the instance tells it (C(null) otherwise).
  returned: always
  type: str
  sample: 1.123.81
major:
  description: The major version, 1 or 2.
  returned: always
  type: int
  sample: 1
owner_created:
  description: Whether this call created the owner account (or would, in check mode).
  returned: always
  type: bool
key_created:
  description: Whether this call created an API key (or would, in check mode).
  returned: always
  type: bool
msg:
  description: What happened, in words.
  returned: always
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.federation.platform.plugins.module_utils._n8n import N8nClient, N8nError, n8n_argument_spec, scrub
from ansible_collections.federation.platform.plugins.module_utils._n8n_bootstrap import (
    Bootstrap, BootstrapError, input_problems)


def main():
    argument_spec = n8n_argument_spec()
    argument_spec.update(
        owner_email=dict(type='str', required=True),
        owner_password=dict(type='str', required=True, no_log=True),
        owner_first_name=dict(type='str', default='Federation'),
        owner_last_name=dict(type='str', default='Owner'),
        api_key_label=dict(type='str', default='federation', no_log=False),
        api_key_scopes=dict(type='list', elements='str', no_log=False),
        wait_timeout=dict(type='int', default=120),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    secrets = [p.get('api_key'), p['owner_password']]

    problems = input_problems(p)
    if problems:
        module.fail_json(msg='Invalid options for n8n at %s, nothing was changed: %s.' % (p['url'], '; '.join(problems)))

    client = N8nClient.from_params(p)
    bootstrap = Bootstrap(client, p, check_mode=module.check_mode)
    try:
        result = bootstrap.run()
        if result.get('api_key'):
            secrets.append(result['api_key'])
            client.api_key = result['api_key']
        version = bootstrap.version
        if version:
            major = int(version.split('.')[0])
        elif client.api_key and not module.check_mode:
            major = client.major
        else:
            major = None
    except (BootstrapError, N8nError) as exc:
        module.fail_json(msg=scrub(exc, secrets), changed=bool(bootstrap.actions))
    result.update(version=version, major=major, actions=bootstrap.actions)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
