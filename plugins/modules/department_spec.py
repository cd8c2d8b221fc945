#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: department_spec
short_description: Validate a department name and load its spec
version_added: 0.1.0
description:
  - Runs on the controller and changes nothing. Checks the department name against the naming rule
    (2-31 lowercase ASCII letters, digits and single hyphens, starting with a letter and ending with a
    letter or digit), loads C(<specs_dir>/<name>.yml) when it exists, fills in defaults and checks every field.
  - Reads the department name from the raw variable O(from_var) before Ansible evaluates it, so a name
    carrying a template expression is refused instead of run.
  - All problems of a spec are reported in one message naming the department, the field and the fix.
  - Sets the facts C(federation_dept) (the validated name) and C(federation_department) (the full spec).
author:
  - Federation platform team (@federation)
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
options:
  from_var:
    description:
      - Name of the variable holding the department name, read before templating.
      - Ignored when O(name) is given.
    type: str
    default: dept
  name:
    description:
      - The department name. When given, it has already been templated by Ansible.
    type: raw
  specs_dir:
    description:
      - Folder holding one C(<name>.yml) spec per department. A department without a file gets the defaults.
    type: path
    required: true
  default_target:
    description:
      - Where the department's instance runs when its spec says nothing.
    type: str
    default: vps
notes:
  - "Spec fields: C(display_name), C(target) (V(vps) or V(railway)), C(tools) (V(log_call), V(ask_department)),
    C(callers) (departments allowed to call this one), C(rate_limit) (C(requests), C(per_seconds)),
    C(resources) (C(memory), C(cpus)), C(assistant) (V(deterministic), the default, or V(llm): answers from a
    language model whose key is the department's secret C(llm_api_key))."
  - "C(database): how many sessions the department's login roles may hold at once in the platform's PostgreSQL,
    C(connections) for C(dept_<name>) (default 5) and C(n8n_connections) for C(n8n_<name>) (default 8; n8n keeps
    a pool of 4), each 1-1000. A department that opens more is refused by the server; the others are not affected.
    See C(docs/security-model.md) for their sum against the server's C(max_connections)."
  - "C(voice): the department's phone line (docs/voice.md); without it the department has none. C(mode)
    (V(gather), the default, V(relay) or V(stream)), C(language) (V(en-US); V(en-GB) too except in V(stream)),
    C(greeting), C(topics) (phrases callers ask about), C(transfer_to) (departments a caller may be put through
    to), C(public_url) (what the telephony platform calls; default the host's proxy address), C(max_calls)
    (1-16), C(resources) (C(memory), C(cpus) of the voice bridge's container). The telephony account's auth
    token comes from the operator (C(FEDERATION_TWILIO_AUTH_TOKEN)), never from the spec."
  - "C(oauth_clients): the OAuth clients the department's tools need, each C(name) (1-40 of a-z, 0-9, _),
    C(provider) (V(oidc), the default, V(google_service_account) or V(google_oauth)), C(scopes), and
    C(grant_types) (V(oidc)), C(subject) and C(max_age_days) (V(google_service_account)), C(expires_at).
    See C(federation.platform.oauth_client)."
'''

EXAMPLES = r'''
- name: Validate -e dept=... and load departments/<dept>.yml
  federation.platform.department_spec:
    specs_dir: "{{ playbook_dir }}/../departments"

- name: Validate a name given directly
  federation.platform.department_spec:
    name: finance
    specs_dir: /srv/federation/departments
'''

RETURN = r'''
department:
  description: The validated department name.
  returned: success
  type: str
  sample: finance
spec:
  description: The complete spec, defaults filled in.
  returned: success
  type: dict
  sample: {display_name: Finance, target: vps, tools: [log_call], callers: [],
           rate_limit: {requests: 60, per_seconds: 60}, resources: {memory: 1g, cpus: 1.0},
           database: {connections: 5, n8n_connections: 8}}
spec_file:
  description: The spec file that was read, or C(null) when the defaults were used.
  returned: success
  type: str
  sample: /srv/federation/departments/finance.yml
'''
