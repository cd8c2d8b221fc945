# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import datetime
import re

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.federation.platform.plugins.module_utils._naming import validate_department_name
from ansible_collections.federation.platform.plugins.module_utils import _gateway_token as tokens
from ansible_collections.federation.platform.plugins.plugin_utils._secret_store import (
    open_store, published, store_argument_spec, update_store)

SECRET_NAME = 'gateway_token'
CLAIM_RE = re.compile(r'^[A-Za-z0-9._:/@+-]{1,200}$')


class ActionModule(ActionBase):
    """Mint or renew a department's gateway token and keep it in the department's secrets store (the same store,
    file or HashiCorp Vault, as department_secrets), on the controller."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        # The result sets a fact with every secret of the department: never display it.
        result['_ansible_no_log'] = True
        spec = store_argument_spec()
        spec.update(
            department=dict(type='str'),
            signing_key=dict(type='str', required=True, no_log=True),
            issuer=dict(type='str', default='federation-gateway'),
            audience=dict(type='str'),
            lifetime_days=dict(type='int', default=365),
            renew_before_days=dict(type='int', default=30),
            fact_name=dict(type='str', default='federation_secrets'),
        )
        validation, args = self.validate_argument_spec(argument_spec=spec)
        if not tokens.HAS_LIBS:
            raise AnsibleActionFail('The gateway_token action needs the Python libraries PyJWT and cryptography on the '
                                    'controller (%s): install requirements.txt.' % tokens.IMPORT_ERROR)
        args['audience'] = args['audience'] or None
        for claim in ('issuer', 'audience'):
            if args[claim] is not None and not CLAIM_RE.match(args[claim]):
                raise AnsibleActionFail('Invalid gateway %s %r: use 1-200 letters, digits and . _ : / @ + - (the gateway '
                                        'configuration compares it as a plain word).' % (claim, args[claim]))
        try:
            key, algorithm = tokens.load_signing_key(args['signing_key'])
        except tokens.TokenError as exc:
            raise AnsibleActionFail("Failed to load the gateway signing key: %s. Check the platform's secret "
                                    "gateway_signing_key." % exc)
        if not args['department']:
            # Only the key's public half and algorithm, for the gateway's configuration.
            result.update(changed=False, algorithm=algorithm, public_key=tokens.public_pem(key), path=None,
                          expires_at=None, reason=None, msg='gateway signing key: %s' % algorithm)
            return result
        department = str(args['department'])
        try:
            validate_department_name(department)
        except ValueError as exc:
            raise AnsibleActionFail('Invalid department: %s' % exc)
        if args['backend'] == 'file' and not args['path']:
            raise AnsibleActionFail("Failed to mint the gateway token of department '%s': path (its secrets file) "
                                    "is missing." % department)
        if not 1 <= args['lifetime_days'] <= 3650:
            raise AnsibleActionFail("Failed to mint the gateway token of department '%s': lifetime_days must be from 1 "
                                    "to 3650." % department)
        if not 0 <= args['renew_before_days'] < args['lifetime_days']:
            raise AnsibleActionFail("Failed to mint the gateway token of department '%s': renew_before_days must be at "
                                    "least 0 and shorter than lifetime_days." % department)

        store = open_store(self._loader, args, department)
        where = store.describe()
        claims = dict(subject=department, issuer=args['issuer'], audience=args['audience'])
        outcome = {}

        def change(snapshot):
            # May run again on a fresh snapshot (a concurrent writer in Vault): it only computes.
            reason, expires = tokens.assess(snapshot.secrets.get(SECRET_NAME), key, algorithm,
                                            renew_before_days=args['renew_before_days'], **claims)
            new = dict(snapshot.secrets)
            if reason:
                new[SECRET_NAME] = tokens.mint(key, algorithm, lifetime_days=args['lifetime_days'], **claims)
                dummy, expires = tokens.assess(new[SECRET_NAME], key, algorithm, renew_before_days=0, **claims)
            outcome.update(reason=reason, expires=expires, new=new)
            return (new, snapshot.metadata) if reason else None

        before, dummy, dummy = update_store(store, change, department, self._task.check_mode)
        reason, expires, new = outcome['reason'], outcome['expires'], outcome['new']

        expires_at = datetime.datetime.fromtimestamp(expires, datetime.timezone.utc).isoformat() if expires else None
        result.update(
            changed=bool(reason),
            backend=args['backend'],
            path=where,
            algorithm=algorithm,
            public_key=tokens.public_pem(key),
            expires_at=expires_at,
            reason=reason,
            ansible_facts={args['fact_name']: published(task_vars, args['fact_name'], department, new,
                                                        self._task.check_mode, own=[SECRET_NAME] if reason else [])},
            msg="gateway token of department '%s': %s" % (
                department, ('minted (%s)' % reason) if reason else 'valid until %s, unchanged' % expires_at),
        )
        if self._task.diff:
            result['diff'] = dict(before={SECRET_NAME: 'present' if before.secrets.get(SECRET_NAME) else 'absent'},
                                  after={SECRET_NAME: ('renewed, expires %s' % expires_at) if reason else 'unchanged'},
                                  before_header=where, after_header=where)
        return result
