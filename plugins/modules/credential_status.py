#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: credential_status
short_description: Report which departments' credentials are expired, about to expire, failing, or waiting for consent
version_added: 0.1.0
description:
  - Runs on the controller and changes nothing. Reads each department's secrets store and reports, per credential,
    one status - V(expired), V(check_failed), V(expiring) (within O(within_days)), V(consent_pending), V(ok) or
    V(unchecked) (nothing is known to check) - with what to do about it. No secret appears in the result.
  - "Credentials are the store's metadata entries (written by C(federation.platform.oauth_client) and by
    C(federation.platform.department_secrets) O(federation.platform.department_secrets#module:metadata)): their
    C(expires_at), and every secret that is a JWT with an C(exp) claim (a gateway token, an n8n API key)."
  - "With O(live_check): each OAuth client with the C(client_credentials) grant makes a token request; each credential
    that needs a person's consent is looked up in the department's n8n (logged in as its owner), and counts as
    consented once n8n holds a token for it. Checks run side by side."
  - A department without a store yet is listed with status C(no secrets) and no rows.
author:
  - Federation platform team (@federation)
extends_documentation_fragment:
  - federation.platform.secret_store
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: It never changes anything; check mode runs the same reads and checks.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
options:
  departments:
    description: The departments to report on.
    type: list
    elements: str
    required: true
  secrets_dir:
    description: With O(backend=file), the folder of the departments' secrets files (C(<department>.yml)). O(path) is not used.
    type: path
  within_days:
    description: A credential that expires within this many days is V(expiring).
    type: int
    default: 14
  live_check:
    description: Make the live checks (token requests, consent lookups in n8n).
    type: bool
    default: true
  n8n_owner_email:
    description: The n8n owner's login, with C({department}) replaced by the department.
    type: str
    default: owner@{department}.federation.local
  validate_certs:
    description: Whether to verify TLS certificates in live checks.
    type: bool
    default: true
  timeout:
    description: Seconds each live check may wait.
    type: int
    default: 10
seealso:
  - module: federation.platform.oauth_client
'''

EXAMPLES = r'''
- name: What needs a person in the next 30 days
  federation.platform.credential_status:
    departments: [finance, hr]
    secrets_dir: "{{ federation_secrets_dir }}"
    within_days: 30
  register: credentials

- name: Show it
  ansible.builtin.debug:
    msg: "{{ credentials.table }}"
'''

RETURN = r'''
needs_action:
  description: Whether any credential is V(expired), V(check_failed), V(expiring) or V(consent_pending).
  returned: always
  type: bool
table:
  description: The report as lines of a fixed-width table, worst first, followed by what to do about each credential that needs action.
  returned: always
  type: list
  elements: str
report:
  description: The whole report, fit to be written as JSON.
  returned: always
  type: dict
  contains:
    generated_at:
      description: When (ISO 8601 UTC).
      type: str
    within_days:
      description: The expiry horizon used.
      type: int
    live_check:
      description: Whether live checks ran.
      type: bool
    departments:
      description: Per department, its store and whether it was read (C(read), C(no secrets), C(unreadable)).
      type: list
      elements: dict
    credentials:
      description:
        - One row per credential - C(department), C(credential), C(secret) (its name in the store), C(kind),
          C(provider), C(status), C(expires_at), C(days_left), C(detail), C(action), and C(live_check) or
          C(redirect_uris) where they apply.
      type: list
      elements: dict
    counts:
      description: How many credentials have each status.
      type: dict
    needs_action:
      description: Same as RV(needs_action).
      type: bool
'''
