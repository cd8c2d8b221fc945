# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # Where a department's secrets are kept: the options of every action that reads or writes them.
    DOCUMENTATION = r'''
options:
  backend:
    description:
      - The secrets backend.
      - V(file) keeps an ansible-vault encrypted YAML file per department (O(path)), encrypted with the vault
        password of the run (C(--vault-id), C(--vault-password-file) or C(vault_password_file) in C(ansible.cfg)).
        Concurrent runs on one controller serialise on a lock file beside it.
      - V(hashi_vault) keeps one HashiCorp Vault KV version 2 secret per department (O(hashi_vault)). Every write
        is a check-and-set on the version read, so concurrent writers never lose an update; a conflicting write
        is read again and retried.
      - Both keep, beside the secrets, metadata that is not secret (when a credential expires, what kind it is,
        how to check it), which C(federation.platform.credential_status) reports on.
    type: str
    default: file
    choices: [file, hashi_vault]
  path:
    description:
      - With O(backend=file), the department's encrypted secrets file. Its folder is created with mode 0700, the
        file with mode 0600.
    type: path
  vault_id:
    description: With O(backend=file), the vault id to encrypt with, when the run has several vault passwords.
    type: str
  hashi_vault:
    description:
      - With O(backend=hashi_vault), how to reach Vault. The names and environment variables are those of the
        C(community.hashi_vault) collection, so one AWX credential serves both.
      - The secret's data holds each secret under its name and the metadata as JSON under C(_federation_metadata).
    type: dict
    default: {}
    suboptions:
      url:
        description: Vault's address, such as V(https://vault.example.com:8200). Falls back to E(VAULT_ADDR).
        type: str
      token:
        description:
          - A Vault token whose policy allows C(read), C(create) and C(update) on the department's path. Falls back to
            E(VAULT_TOKEN). Never returned or logged.
        type: str
      namespace:
        description: The Vault Enterprise namespace. Falls back to E(VAULT_NAMESPACE).
        type: str
      engine_mount_point:
        description: Where the KV version 2 secrets engine is mounted.
        type: str
        default: secret
      path:
        description: The secret's path inside the mount. Defaults to O(hashi_vault.path_prefix)/<department>.
        type: str
      path_prefix:
        description: The folder under the mount that holds one secret per department.
        type: str
        default: federation
      validate_certs:
        description: Whether to verify Vault's TLS certificate.
        type: bool
        default: true
      ca_cert:
        description: A CA bundle to verify Vault's certificate with. Falls back to E(VAULT_CACERT).
        type: path
      timeout:
        description: Seconds to wait for Vault.
        type: int
        default: 30
'''
