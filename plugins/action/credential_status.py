# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

from ansible.errors import AnsibleActionFail
from ansible.parsing.vault import AnsibleVaultError
from ansible.plugins.action import ActionBase

from ansible_collections.federation.platform.plugins.module_utils._credentials import (
    NEEDS_ACTION, credentials_of, evaluate, iso, live_client_credentials, live_consent, sort_rows, table)
from ansible_collections.federation.platform.plugins.module_utils._naming import department_name_error
from ansible_collections.federation.platform.plugins.module_utils._oauth import Http
from ansible_collections.federation.platform.plugins.module_utils._secrets import StoreError
from ansible_collections.federation.platform.plugins.plugin_utils._secret_store import open_store, store_argument_spec


class ActionModule(ActionBase):
    """Report, for every department, the credentials that need a person. Changes nothing."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        spec = store_argument_spec()
        spec.update(
            departments=dict(type='list', elements='str', required=True),
            secrets_dir=dict(type='path'),
            within_days=dict(type='int', default=14),
            live_check=dict(type='bool', default=True),
            n8n_owner_email=dict(type='str', default='owner@{department}.federation.local'),
            validate_certs=dict(type='bool', default=True),
            timeout=dict(type='int', default=10),
        )
        validation, args = self.validate_argument_spec(argument_spec=spec)
        if args['within_days'] < 0:
            raise AnsibleActionFail('within_days must be 0 or more, got %d' % args['within_days'])
        if args['backend'] == 'file' and not args['secrets_dir']:
            raise AnsibleActionFail("The file secrets backend needs secrets_dir, the folder of the departments' "
                                    "encrypted secrets files (federation_secrets_dir).")
        departments = []
        for name in args['departments']:
            problem = department_name_error(name)
            if problem:
                raise AnsibleActionFail('Invalid department: %s' % problem)
            if name not in departments:
                departments.append(name)

        now = time.time()
        http = Http(timeout=args['timeout'], validate_certs=args['validate_certs'])
        loaded, rows, summaries = {}, [], []
        for department in sorted(departments):
            path = os.path.join(args['secrets_dir'], department + '.yml') if args['secrets_dir'] else None
            store = open_store(self._loader, args, department, path=path)
            try:
                snapshot = store.load()
            except (AnsibleVaultError, ValueError, StoreError) as exc:
                summaries.append(dict(department=department, store=store.describe(), status='unreadable',
                                      detail=str(exc)))
                rows.append(dict(department=department, credential='(secrets store)', secret=None, kind='store',
                                 provider=None, expires_at=None, days_left=None, status='check_failed',
                                 detail='the secrets could not be read: %s' % exc,
                                 action='check the vault password or the Vault token'))
                continue
            if not snapshot.exists:
                summaries.append(dict(department=department, store=store.describe(), status='no secrets'))
                continue
            summaries.append(dict(department=department, store=store.describe(), status='read'))
            loaded[department] = snapshot

        # Live checks run side by side: each is a network round trip.
        jobs = []
        for department, snapshot in loaded.items():
            for record in credentials_of(department, snapshot.secrets, snapshot.metadata):
                jobs.append((department, snapshot, record))

        def check(job):
            department, snapshot, record = job
            if not args['live_check']:
                return None
            live = live_client_credentials(http, record, snapshot.secrets)
            consent = live_consent(http, record, args['n8n_owner_email'].format(department=department),
                                   snapshot.secrets.get('n8n_owner_password'))
            if consent is not None:
                live = dict(live or {}, **consent)
            return live

        with ThreadPoolExecutor(max_workers=8) as pool:
            lives = list(pool.map(check, jobs))
        for (department, snapshot, record), live in zip(jobs, lives):
            rows.append(evaluate(department, record, now, args['within_days'], live))

        rows = sort_rows(rows)
        attention = [r for r in rows if r['status'] in NEEDS_ACTION]
        counts = dict((s, sum(1 for r in rows if r['status'] == s)) for s in sorted(set(r['status'] for r in rows)))
        report = dict(generated_at=iso(now), within_days=args['within_days'], live_check=args['live_check'],
                      departments=summaries, credentials=rows, counts=counts, needs_action=bool(attention))
        lines = table(rows) if rows else ['(no credentials with an expiry, a live check or a consent to report)']
        if attention:
            todo = ['- %s/%s: %s' % (r['department'], r['credential'], r['action']) for r in attention if r.get('action')]
            lines += ['', 'What to do:'] + todo
        result.update(
            changed=False,
            report=report,
            needs_action=bool(attention),
            table=lines,
            msg=_message(attention, rows, departments),
        )
        return result


def _message(attention, rows, departments):
    if not attention:
        return '%d credentials in %d departments: nothing needs action' % (len(rows), len(departments))
    return '%d of %d credentials in %d departments need action: %s' % (
        len(attention), len(rows), len(departments),
        ', '.join('%s/%s %s' % (r['department'], r['credential'], r['status']) for r in attention))
