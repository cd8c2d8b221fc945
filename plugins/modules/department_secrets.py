#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: department_secrets
short_description: Generate a department's secrets once and keep them encrypted
version_added: 0.1.0
description:
  - Runs on the controller. Keeps the department's secrets in its store - by default one ansible-vault encrypted
    YAML file per department, encrypted with the vault password of the run (C(--vault-id),
    C(--vault-password-file) or C(vault_password_file) in C(ansible.cfg)); or HashiCorp Vault KV version 2
    (O(backend=hashi_vault)).
  - Generates every secret named in O(generate) that the file does not hold yet and keeps the ones it holds,
    so a re-run never rotates a password by accident. O(rotate) generates named secrets anew.
  - Stores values obtained elsewhere (an API key returned by a server, say) through O(values), and what is known
    about them (when they expire, say) through O(metadata).
  - With O(scope=platform) it keeps, the same way, secrets that belong to no department but to the platform
    (the API gateway's token signing key), in a store of their own.
  - Sets the fact named by O(fact_name) to the full mapping of secrets. The task result is always hidden
    as if C(no_log) were set, since it carries secret values.
author:
  - Federation platform team (@federation)
extends_documentation_fragment:
  - federation.platform.secret_store
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: In check mode nothing is written; missing secrets are generated in memory so later tasks can run.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: The diff lists secret names only, never values.
options:
  department:
    description:
      - The department the secrets belong to. Required with O(scope=department), refused with O(scope=platform).
    type: str
  scope:
    description:
      - V(department) keeps a department's secrets; V(platform) keeps secrets that belong to no department
        (the API gateway's token signing key, for one) in a store of the platform's own, which is never read as
        a department's and the other way round.
      - With O(backend=file) the platform's store is the file at O(path), marked C(scope=platform) where a
        department's file names its C(department). With O(backend=hashi_vault) it is the Vault secret
        O(hashi_vault.path), else C(<path_prefix>/_platform/<name>) (see O(name)); C(_platform) can never be a
        department, so it never meets a department's secret C(<path_prefix>/<department>).
    type: str
    default: department
    choices: [department, platform]
  name:
    description:
      - With O(scope=platform), the name of this set of the platform's secrets, such as V(gateway) (the department
        naming rule). Needed with O(backend=hashi_vault) unless O(hashi_vault.path) is set; not used by the
        file backend, whose O(path) already names the set. Refused with O(scope=department).
    type: str
  generate:
    description:
      - Secrets that must exist, as a mapping of name to options C(kind) and C(length).
      - C(kind=password) (the default) generates ASCII letters and digits with at least one uppercase letter, one
        lowercase letter and one digit; C(length) is from 8 to 256, default 32.
      - C(kind=ec_p256), C(kind=rsa_2048) or C(kind=rsa_3072) generates a private key (no C(length)), kept as
        unencrypted PKCS#8 PEM text inside the store (the encrypted file, or the Vault secret). A key is generated
        once like a password; changing C(kind) later keeps the stored key until it is named in O(rotate).
    type: dict
    default: {}
  values:
    description: Secrets to store as given. A V(null) value is ignored.
    type: dict
    default: {}
  metadata:
    description:
      - What is known about secrets, as secret name to a mapping that is merged into the stored one (a V(null)
        field removes that field, a V(null) mapping removes the entry). Not secret; kept beside the secrets.
      - C(expires_at) (ISO 8601 UTC, such as V(2030-01-31T00:00:00Z)) makes C(federation.platform.credential_status)
        report the secret when it is expired or about to be.
    type: dict
    default: {}
  rotate:
    description: Names from O(generate) to generate anew.
    type: list
    elements: str
    default: []
  fact_name:
    description: The fact that receives the mapping of secrets.
    type: str
    default: federation_secrets
'''

EXAMPLES = r'''
- name: Make sure finance has its database password and n8n encryption key
  federation.platform.department_secrets:
    department: finance
    path: "{{ federation_home }}/secrets/finance.yml"
    generate:
      postgres_password: {}
      n8n_encryption_key: {length: 48}

- name: Make sure the platform has the gateway's token signing key
  federation.platform.department_secrets:
    scope: platform
    name: gateway
    path: "{{ federation_secrets_dir }}/_platform/gateway.yml"
    generate:
      gateway_signing_key: {kind: ec_p256}
    fact_name: federation_platform_secrets

- name: Keep the API key n8n returned, and when it expires
  federation.platform.department_secrets:
    department: finance
    path: "{{ federation_home }}/secrets/finance.yml"
    values:
      n8n_api_key: "{{ bootstrap.api_key }}"
    metadata:
      n8n_api_key:
        expires_at: "2030-01-31T00:00:00Z"

- name: The same secrets in HashiCorp Vault (VAULT_ADDR and VAULT_TOKEN from the environment)
  federation.platform.department_secrets:
    department: finance
    backend: hashi_vault
    hashi_vault:
      engine_mount_point: secret
    generate:
      postgres_password: {}
'''

RETURN = r'''
backend:
  description: The secrets backend used.
  returned: always
  type: str
  sample: file
path:
  description: Where the secrets are, the file or the Vault secret (never a secret value).
  returned: always
  type: str
generated:
  description: Names of the secrets generated by this call.
  returned: always
  type: list
  elements: str
  sample: [postgres_password]
updated:
  description: Names of the secrets stored from O(values) by this call.
  returned: always
  type: list
  elements: str
'''
