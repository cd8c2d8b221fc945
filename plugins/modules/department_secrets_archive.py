#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: department_secrets_archive
short_description: Copy or move a department's secrets out of its store into an encrypted archive file
version_added: 0.1.0
description:
  - Runs on the controller. Writes the department's secrets to O(dest), still encrypted, and with O(remove=true)
    takes them out of the store, so that the department's next provisioning generates new ones instead of reusing
    them. Deprovisioning uses it twice - a copy into the backup folder before anything is removed, and a move at
    the end.
  - With O(backend=file) O(dest) is a byte copy of the department's ansible-vault file, and O(remove=true) moves it
    (the archive is written and synced before the file is unlinked). The store's lock is held throughout.
  - With O(backend=hashi_vault) O(dest) is an ansible-vault file in the file backend's format (encrypted with the
    run's vault password), and O(remove=true) deletes the latest version of the Vault secret after the archive is
    written (a soft delete, as C(vault kv delete) - C(vault kv undelete) brings it back, and Vault keeps the older
    versions).
  - A store without secrets (never provisioned, or archived by an earlier run) is nothing to archive and no change.
  - Never returns or prints a secret value; the result names the secrets only.
author:
  - Federation platform team (@federation)
extends_documentation_fragment:
  - federation.platform.secret_store
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Reads the store and the archive to predict the change; writes and removes nothing.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: The names of the secrets in the store before and after, and the archive's path.
options:
  department:
    description: The department whose secrets are archived.
    type: str
    required: true
  dest:
    description:
      - The archive file on the controller (an absolute path). Its folder is created with mode 0700, the file with
        mode 0600. An archive that already holds the same secrets is left as it is.
    type: path
    required: true
  remove:
    description:
      - After the archive is written, take the secrets out of the store (file backend - the file is moved; Vault - the
        latest version is deleted).
    type: bool
    default: false
seealso:
  - module: federation.platform.department_secrets
'''

EXAMPLES = r'''
- name: Keep a copy of finance's secrets with its backup
  federation.platform.department_secrets_archive:
    department: finance
    path: "{{ federation_home }}/secrets/finance.yml"
    dest: "{{ federation_home }}/backups/finance/20261125T101010Z/secrets.yml"

- name: Move them there once finance is removed
  federation.platform.department_secrets_archive:
    department: finance
    path: "{{ federation_home }}/secrets/finance.yml"
    dest: "{{ federation_home }}/backups/finance/20261125T101010Z/secrets.yml"
    remove: true
'''

RETURN = r'''
archived:
  description: Whether O(dest) holds the department's secrets after the call (in check mode, would hold).
  returned: always
  type: bool
removed:
  description: Whether the secrets were (or in check mode would be) taken out of the store.
  returned: always
  type: bool
dest:
  description: The archive file.
  returned: always
  type: str
path:
  description: The store, the file or the Vault secret (never a secret value).
  returned: always
  type: str
secrets:
  description: The names of the secrets archived.
  returned: always
  type: list
  elements: str
  sample: [n8n_db_password, tenant_db_password]
msg:
  description: What happened, in words.
  returned: always
  type: str
  sample: "secrets of department 'finance': copied to /srv/backups/finance/20261125T101010Z/secrets.yml"
'''
