#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: department_health
short_description: Judge every registered department's health from the registry and live checks
version_added: 0.1.0
description:
  - Runs on the controller and changes nothing. C(playbooks/status.yml) gathers what it needs from the hosts (the
    registry, the Docker host's containers, the gateway's record of routed departments, the tenant objects in the
    platform database) and hands it over; this action probes what answers over HTTP, side by side, and returns one row
    per department, a table and a report.
  - "Live checks: n8n answers C(/rest/settings) with JSON 200 (target V(vps) - on the port the department's container
    publishes, at O(vps_address); target V(railway) - at the address the gateway routes the department to, that is its
    Railway domain; O(n8n_urls) overrides both); the gateway routes the department and answers; the tenant's schema,
    login role (able to log in) and n8n database exist."
  - "Health: an V(active) department is V(healthy) when every check passes, V(unhealthy) otherwise; V(failed) means the
    last run failed (its error is shown); V(requested), V(provisioning) and V(deprovisioning) are V(in progress), or
    V(stuck) once the state is older than O(stuck_after_minutes); a V(deleted) department expects nothing, and what is
    still found is named as left over."
  - A department needs attention when it is active and unhealthy, failed, or stuck (RV(needs_attention)).
author:
  - Federation platform team (@federation)
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: It only reads, in check mode as otherwise.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
options:
  departments:
    description: The registry's records, as M(federation.platform.department_info) returns them.
    type: list
    elements: dict
    required: true
  docker_containers:
    description:
      - "The containers of the Docker host that runs the V(vps) departments, as C(community.docker.docker_host_info)
        returns them (C(containers=true), C(containers_all=true), C(verbose_output=true))."
    type: list
    elements: dict
    default: []
  docker_error:
    description: Why the Docker host could not be read, when it could not; V(vps) departments then fail their n8n check.
    type: str
  docker_prefix:
    description: The prefix of the Docker objects; a department's n8n container is C(<prefix>-<department>-n8n).
    type: str
    default: federation
  vps_address:
    description: The address of the Docker host where the controller reaches the ports the containers publish.
    type: str
    default: 127.0.0.1
  n8n_urls:
    description: n8n's base URL per department, where the default is not right for it.
    type: dict
    default: {}
  gateway_routes:
    description:
      - The gateway's record of the departments it routes (its C(departments.json)), or V(null) when no gateway is in
        use (the route is then not checked).
    type: list
    elements: dict
  gateway_url:
    description: The gateway's base URL; any HTTP answer means it runs.
    type: str
  tenants:
    description:
      - Names present in the platform database - C(schemas), C(roles), C(login_roles) (roles that may log in) and
        C(databases) (lists).
    type: dict
    default: {}
  stuck_after_minutes:
    description: A department in V(requested), V(provisioning) or V(deprovisioning) for longer than this is V(stuck).
    type: int
    default: 60
  timeout:
    description: Seconds to wait for each HTTP answer.
    type: int
    default: 5
  validate_certs:
    description: Verify TLS certificates (the Railway domains).
    type: bool
    default: true
seealso:
  - module: federation.platform.department_info
'''

EXAMPLES = r'''
- name: Every registered department
  federation.platform.department_info:
  register: registry

- name: Judge their health
  federation.platform.department_health:
    departments: "{{ registry.departments }}"
    docker_containers: "{{ docker.containers }}"
    gateway_routes: "{{ gateway_record.content | b64decode | from_json }}"
    gateway_url: http://127.0.0.1:8480
  register: health

- name: Show them
  ansible.builtin.debug:
    msg: "{{ health.table }}"
'''

RETURN = r'''
departments:
  description:
    - One row per department - C(name), C(state), C(target), C(last_error), C(state_changed_at), C(health), C(healthy),
      C(needs_attention), C(checks) (C(n8n), C(route), C(tenant), each with C(ok) - true, false or null when not
      checked - and C(detail)), C(leftovers) and C(detail).
  returned: always
  type: list
  elements: dict
  sample:
    - name: finance
      state: active
      health: healthy
      needs_attention: false
      checks: {n8n: {ok: true, detail: answers}, route: {ok: true, detail: routed}, tenant: {ok: true, detail: present}}
table:
  description: The rows as a fixed-width text table, the departments that need attention first.
  returned: always
  type: list
  elements: str
report:
  description: What a JSON report holds - C(generated_at), C(summary) (C(total), C(counts) per health,
    C(needs_attention)), C(gateway) and C(departments).
  returned: always
  type: dict
needs_attention:
  description: The departments that need attention.
  returned: always
  type: list
  elements: str
msg:
  description: A summary in words.
  returned: always
  type: str
  sample: all 3 departments as expected (1 deleted, 2 healthy)
'''
