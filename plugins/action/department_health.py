# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import datetime
from concurrent.futures import ThreadPoolExecutor

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.federation.platform.plugins.module_utils._naming import department_name_error
from ansible_collections.federation.platform.plugins.module_utils._oauth import Http, OAuthError
from ansible_collections.federation.platform.plugins.module_utils._status import N8N_PATH, evaluate, plan, summary, table


class ActionModule(ActionBase):
    """Judge the health of every registered department from the registry and live probes. Changes nothing."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        spec = dict(
            departments=dict(type='list', elements='dict', required=True),
            docker_containers=dict(type='list', elements='dict', default=[]),
            docker_error=dict(type='str'),
            docker_prefix=dict(type='str', default='federation'),
            vps_address=dict(type='str', default='127.0.0.1'),
            n8n_urls=dict(type='dict', default={}),
            gateway_routes=dict(type='list', elements='dict'),
            gateway_url=dict(type='str'),
            tenants=dict(type='dict', default={}),
            stuck_after_minutes=dict(type='int', default=60),
            timeout=dict(type='int', default=5),
            validate_certs=dict(type='bool', default=True),
        )
        validation, args = self.validate_argument_spec(argument_spec=spec)
        for record in args['departments']:
            if not isinstance(record.get('name'), str) or department_name_error(record['name']) or not record.get('state'):
                raise AnsibleActionFail('Each department needs a valid name and a state, as department_info returns them; '
                                        'got %r.' % {k: record.get(k) for k in ('name', 'state')})
        if args['timeout'] < 1 or args['stuck_after_minutes'] < 1:
            raise AnsibleActionFail('timeout and stuck_after_minutes must be 1 or more.')

        departments = args['departments']
        probes = plan(departments, args['docker_containers'], args['docker_prefix'], args['vps_address'],
                      args['gateway_routes'], args['n8n_urls'])
        http = Http(timeout=args['timeout'], validate_certs=args['validate_certs'])

        def probe(url):
            try:
                response = http.request('GET', url)
            except OAuthError as exc:
                return str(exc)
            return response.status, response.json is not None

        # Every probe is a network round trip: side by side, the gateway's among them.
        jobs = dict((name, entry['url'] + N8N_PATH) for name, entry in probes.items() if entry['url'])
        if args['gateway_routes'] is not None and args['gateway_url']:
            jobs[None] = args['gateway_url'].rstrip('/') + '/'
        answers = {}
        if jobs:
            with ThreadPoolExecutor(max_workers=min(16, len(jobs))) as pool:
                for key, answer in zip(jobs, pool.map(probe, jobs.values())):
                    answers[key] = answer
        gateway_answer = answers.pop(None, None)

        rows = evaluate(departments, probes, answers, routes=args['gateway_routes'], gateway_answer=gateway_answer,
                        tenants=args['tenants'], docker_error=args['docker_error'],
                        stuck_after_minutes=args['stuck_after_minutes'])
        totals = summary(rows)
        report = dict(
            generated_at=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
            summary=dict((k, v) for k, v in totals.items() if k != 'msg'),
            gateway=dict(in_use=args['gateway_routes'] is not None, url=args['gateway_url'],
                         answers=gateway_answer is not None and not isinstance(gateway_answer, str)),
            departments=rows,
        )
        result.update(changed=False, departments=rows, table=table(rows), report=report,
                      needs_attention=totals['needs_attention'], msg=totals['msg'])
        return result
