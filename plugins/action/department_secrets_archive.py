# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os
import tempfile

import yaml

from ansible.errors import AnsibleActionFail
from ansible.parsing.vault import AnsibleVaultError
from ansible.plugins.action import ActionBase

from ansible_collections.federation.platform.plugins.module_utils._naming import validate_department_name
from ansible_collections.federation.platform.plugins.module_utils._secrets import Snapshot, StoreError, VaultFileStore
from ansible_collections.federation.platform.plugins.plugin_utils._secret_store import (
    open_store, store_argument_spec, vault_for, yaml_dump)


class ActionModule(ActionBase):
    """Copy (or move) a department's secrets out of its store into an encrypted archive file, on the controller."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        spec = store_argument_spec()
        spec.update(
            department=dict(type='str', required=True),
            dest=dict(type='path', required=True),
            remove=dict(type='bool', default=False),
        )
        validation, args = self.validate_argument_spec(argument_spec=spec)
        department = str(args['department'])
        try:
            validate_department_name(department)
        except ValueError as exc:
            raise AnsibleActionFail('Invalid department: %s' % exc)
        dest = args['dest']
        if not os.path.isabs(dest):
            raise AnsibleActionFail("Invalid dest for the secrets of department '%s': %r is not an absolute path. Give "
                                    'an absolute file name.' % (department, dest))
        store = open_store(self._loader, args, department)
        where = store.describe()
        if args['backend'] == 'file' and os.path.abspath(store.path) == os.path.abspath(dest):
            raise AnsibleActionFail("dest is the secrets file of department '%s' itself (%s): archive it elsewhere."
                                    % (department, dest))
        check = self._task.check_mode
        vault, secret = vault_for(self._loader, args.get('vault_id')) if args['backend'] == 'hashi_vault' else (None, None)

        store.lock(write=not check)
        try:
            try:
                snapshot = store.load()
            except (AnsibleVaultError, ValueError) as exc:
                raise AnsibleActionFail("Failed to read the secrets of department '%s' from %s: %s. Check the vault "
                                        'password; nothing was archived or removed.' % (department, where, exc))
            except StoreError as exc:
                raise AnsibleActionFail(str(exc))
            if not snapshot.exists:
                result.update(changed=False, archived=os.path.exists(dest), removed=False, dest=dest, path=where,
                              secrets=[], msg="secrets of department '%s': none in %s, nothing to archive" % (department, where))
                return result

            try:
                if args['backend'] == 'file':
                    with open(store.path, 'rb') as handle:
                        content = handle.read()
                    write = _read(dest) != content
                    if write and not check:
                        _write_private(dest, content)
                    if args['remove'] and not check:
                        os.unlink(store.path)
                else:
                    archive = VaultFileStore(dest, department, vault, secret, vault_id=args.get('vault_id'),
                                             yaml_load=yaml.safe_load, yaml_dump=yaml_dump)
                    write = _archived(archive) != (snapshot.secrets, snapshot.metadata)
                    if write and not check:
                        archive.save(Snapshot(), snapshot.secrets, snapshot.metadata)
                    if args['remove'] and not check:
                        store.delete_latest()
            except OSError as exc:
                raise AnsibleActionFail("Failed to archive the secrets of department '%s' from %s to %s: %s. The secrets "
                                        'are still in %s; give a folder that can be written and run again.'
                                        % (department, where, dest, exc, where))
            except StoreError as exc:
                raise AnsibleActionFail('%s The archive %s was written first, so nothing is lost.' % (exc, dest))
        finally:
            store.unlock()

        done = (['copied to %s' % dest] if write else ['already in %s' % dest]) + (['removed from %s' % where] if args['remove'] else [])
        result.update(
            changed=write or args['remove'],
            archived=True,
            removed=args['remove'],
            dest=dest,
            path=where,
            secrets=sorted(snapshot.secrets),
            msg="secrets of department '%s': %s%s" % (department, ', '.join(done), ' (check mode: nothing written)' if check else ''),
        )
        if self._task.diff:
            result['diff'] = dict(before={'store': where, 'secrets': sorted(snapshot.secrets)},
                                  after={'store': where, 'secrets': [] if args['remove'] else sorted(snapshot.secrets),
                                         'archive': dest})
        return result


def _read(path):
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _archived(archive):
    """(secrets, metadata) of an existing archive, or None when there is none (or it cannot be read)."""
    if not os.path.exists(archive.path):
        return None
    try:
        snapshot = archive.load()
    except (AnsibleVaultError, ValueError):
        return None
    return snapshot.secrets, snapshot.metadata


def _write_private(path, content):
    """Write ``content`` to ``path`` whole (temporary file, fsync, rename), mode 0600 in a 0700 folder."""
    folder = os.path.dirname(path)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=folder, prefix='.%s.' % os.path.basename(path))
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, 'wb') as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except BaseException:
        if os.path.exists(partial):
            os.unlink(partial)
        raise
