#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: gateway_token
short_description: Mint or renew a department's identity for the cross-department API gateway
version_added: 0.1.0
description:
  - Runs on the controller. Keeps the department's gateway token, a JWT signed with the platform's gateway
    signing key, as the secret C(gateway_token) in the department's secrets store - the same one
    M(federation.platform.department_secrets) keeps, with the same options (O(backend), O(path),
    O(hashi_vault)); other secrets and metadata in it are kept as they are.
  - The token carries C(iss) (O(issuer)), C(sub) (the department), C(iat), C(exp) and, when O(audience) is set, C(aud).
    The algorithm follows the key - ES256 for an EC P-256 key, RS256 for an RSA key.
  - A token that verifies with the key, carries the same claims and stays valid for longer than O(renew_before_days)
    is kept, so a re-run changes nothing. Otherwise a new token is minted.
  - Sets the fact named by O(fact_name) to the department's full mapping of secrets, like
    M(federation.platform.department_secrets). The task result is always hidden as if C(no_log) were set.
author:
  - Federation platform team (@federation)
extends_documentation_fragment:
  - federation.platform.secret_store
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: In check mode a new token is minted in memory only, so later tasks can run.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: The diff says whether the token was renewed and when it expires, never the token.
options:
  department:
    description:
      - The department the token identifies (its C(sub) claim).
      - Without it nothing is minted and no store is opened; the call returns the key's algorithm and public half,
        for the gateway.
      - With O(department) and O(backend=file), O(path) (the department's secrets file) is required.
    type: str
  signing_key:
    description:
      - The platform's gateway signing key, PEM (EC P-256 or RSA of 2048 bits or more), as kept by
        M(federation.platform.department_secrets) with C(scope=platform).
    type: str
    required: true
  issuer:
    description: The C(iss) claim; the gateway accepts only this issuer.
    type: str
    default: federation-gateway
  audience:
    description: The C(aud) claim, when the gateway checks one. Empty means none.
    type: str
  lifetime_days:
    description: How long a new token is valid, from 1 to 3650 days.
    type: int
    default: 365
  renew_before_days:
    description: A token that expires within this many days is replaced.
    type: int
    default: 30
  fact_name:
    description: The fact that receives the department's mapping of secrets.
    type: str
    default: federation_secrets
seealso:
  - module: federation.platform.department_secrets
  - module: federation.platform.gateway_routes
'''

EXAMPLES = r'''
- name: Give finance its gateway identity
  federation.platform.gateway_token:
    department: finance
    path: "{{ federation_secrets_dir }}/finance.yml"
    signing_key: "{{ federation_platform_secrets.gateway_signing_key }}"
  register: finance_token

- name: The same with finance's secrets in HashiCorp Vault (VAULT_ADDR and VAULT_TOKEN from the environment)
  federation.platform.gateway_token:
    department: finance
    backend: hashi_vault
    signing_key: "{{ federation_platform_secrets.gateway_signing_key }}"

- name: Write the key the gateway verifies tokens with
  ansible.builtin.copy:
    content: "{{ finance_token.public_key }}"
    dest: /etc/haproxy/federation/gateway-public.pem
    mode: "0644"
'''

RETURN = r'''
backend:
  description: The secrets backend used.
  returned: when O(department) is set
  type: str
  sample: file
path:
  description: Where the department's secrets are, the file or the Vault secret (never a secret value).
  returned: when O(department) is set
  type: str
algorithm:
  description: The JWT algorithm of the key.
  returned: always
  type: str
  sample: ES256
public_key:
  description: The public key that verifies the department's token, PEM.
  returned: always
  type: str
expires_at:
  description: When the department's token expires (UTC, ISO 8601).
  returned: when O(department) is set
  type: str
  sample: "2027-11-25T10:00:00+00:00"
reason:
  description: Why a new token was minted, or C(null) when the stored one was kept.
  returned: always
  type: str
  sample: the token expires within 30 days
'''
