#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: railway_service
short_description: Run a container image as a Railway service, configured and deployed
version_added: 0.1.0
description:
  - Makes one service of a Railway project run a container image, through Railway's public GraphQL API (v2).
  - Finds the project by name or id (and creates it in a workspace when it is missing), finds or creates the
    environment, creates the service, sets its variables, image and settings, attaches a volume, creates a
    Railway domain, deploys once and waits until the deployment reaches a terminal status.
  - Only what differs is changed. Variables are set with C(skipDeploys) and the service is deployed once at the
    end, when its configuration changed or nothing healthy is running; a re-run with nothing to change sends
    no mutation at all.
  - Variable values are compared but never returned, printed or put in the diff; the diff and the result name
    the variables only.
author:
  - Federation platform team (@federation)
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target. Railway is
      only read; the planned mutations are returned in RV(operations).
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
      Variables appear by name only.
    support: full
extends_documentation_fragment:
  - federation.platform.railway
options:
  state:
    description:
      - V(present) makes the service exist, configured and deployed. V(absent) deletes the service (its
        variables, domain and deployments go with it); the project and environment are left alone.
    type: str
    choices: [present, absent]
    default: present
  workspace:
    description:
      - The workspace the project is in, by id or by name.
      - Needed to create a project when the token reaches more than one workspace. When the project is given by
        name, only this workspace is searched.
    type: str
  project:
    description:
      - The project, by name or id. A name must be unique among the projects the token reaches.
    type: str
    required: true
  create_project:
    description:
      - Create the project (with O(environment) as its first environment) when no project has this name.
    type: bool
    default: true
  environment:
    description:
      - The environment, by name or id. It is created when missing (not with a project token).
      - With a project token, defaults to the token's environment.
      - Otherwise defaults to V(production).
    type: str
  service:
    description:
      - The service name, unique in the project.
    type: str
    required: true
  image:
    description:
      - The container image the service runs, for example V(registry.example.com/federation/aio:1.4.0).
      - Required with O(state=present).
    type: str
  registry_credentials:
    description:
      - Credentials for a private registry (a Railway Pro feature).
      - Railway does not return them, so they cannot be compared; they are sent whenever the image or a setting
        changes, and when the service is created.
    type: dict
    suboptions:
      username:
        description: Registry user name.
        type: str
        required: true
      password:
        description: Registry password or token.
        type: str
        required: true
  variables:
    description:
      - Service variables that are not secret (name to value). Values may appear in the module's invocation.
      - Values are strings on Railway; booleans become V(true) / V(false), numbers their digits.
      - References such as C(${{RAILWAY_PUBLIC_DOMAIN}}) are kept as written (compared unrendered). In a playbook,
        write them with C(!unsafe) so Ansible does not template them.
    type: dict
    default: {}
  secret_variables:
    description:
      - Service variables whose values are secret (passwords, keys). Never printed, returned or put in the diff.
      - A name must not be in both O(variables) and O(secret_variables).
    type: dict
    default: {}
  purge_variables:
    description:
      - Remove the service's variables that are in neither O(variables) nor O(secret_variables). Railway's own
        C(RAILWAY_*) variables are never touched.
    type: bool
    default: false
  start_command:
    description: The command the container starts with, instead of the image's own. Left as it is when not given.
    type: str
  healthcheck_path:
    description:
      - The path Railway requests before it routes traffic to a new deployment (for n8n, V(/healthz)).
      - Left as it is when not given.
    type: str
  healthcheck_timeout:
    description: Seconds Railway waits for the health check of a new deployment. Left as it is when not given.
    type: int
  region:
    description: The region the service runs in (for example V(europe-west4-drams3a)). Left as it is when not given.
    type: str
  replicas:
    description: How many replicas run. Left as it is when not given.
    type: int
  restart_policy:
    description: When Railway restarts the container. Left as it is when not given.
    type: str
    choices: [always, never, on_failure]
  restart_policy_max_retries:
    description: Restarts before Railway gives up, with O(restart_policy=on_failure). Left as it is when not given.
    type: int
  sleep_application:
    description: Let Railway put the service to sleep when idle. Left as it is when not given.
    type: bool
  service_domain:
    description:
      - Give the service a Railway-provided domain (C(*.up.railway.app)), routed to O(target_port).
      - V(false) leaves any existing domain alone.
    type: bool
    default: false
  target_port:
    description:
      - The container port the Railway domain routes to. Left as it is on an existing domain when not given.
    type: int
  volume_mount_path:
    description:
      - Attach a volume to the service, mounted at this absolute path. A service has at most one volume on Railway;
        an existing one is re-mounted at this path when it differs.
    type: str
  purge_volume:
    description:
      - With O(state=absent), delete the service's volume and its data too. Otherwise the volume is kept, detached.
    type: bool
    default: false
  deploy:
    description:
      - V(auto) deploys when the service was created, its image, settings, variables or volume changed, or its latest
        deployment is missing or ended badly (FAILED, CRASHED, REMOVED, SKIPPED).
      - V(always) deploys on every run (then the module always reports a change). V(never) only configures.
    type: str
    choices: [auto, always, never]
    default: auto
  wait:
    description:
      - Wait until the deployment (the new one, or one still in progress) reaches a terminal status, and fail unless
        it is SUCCESS or SLEEPING.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for the deployment. The module fails when it is still in progress after that.
    type: int
    default: 600
  poll_interval:
    description: Seconds between two reads of the deployment's status while waiting.
    type: float
    default: 5
notes:
  - The order of the changes deploys exactly once. The service is created without a source (Railway deploys a
    service created with an image at once), variables are set with C(skipDeploys), the image and settings and the
    volume follow, then the domain, and one C(serviceInstanceDeployV2) deploys it all.
  - Railway applies an instance update in an environment that is not a fork to every such environment of the
    project (see Railway's API reference). Keep one environment per project, or use forked environments.
  - Resource limits (CPU, memory) are not managed. Railway's API returns them as an undocumented JSON value, so a
    change could not be detected reliably.
seealso:
  - name: Railway public API
    description: Railway's GraphQL API, tokens and rate limits.
    link: https://docs.railway.com/integrations/api
'''

EXAMPLES = r'''
- name: Run the department's n8n on Railway
  federation.platform.railway_service:
    api_token: "{{ railway_api_token }}"
    workspace: Federation
    project: federation-finance
    environment: production
    service: federation-finance-n8n
    image: registry.example.com/federation/aio:1.4.0
    variables:
      DB_TYPE: postgresdb
      N8N_PORT: 5678
      WEBHOOK_URL: !unsafe "https://${{RAILWAY_PUBLIC_DOMAIN}}/"
    secret_variables:
      DB_POSTGRESDB_PASSWORD: "{{ n8n_db_password }}"
      N8N_ENCRYPTION_KEY: "{{ n8n_encryption_key }}"
    healthcheck_path: /healthz
    service_domain: true
    target_port: 5678
    volume_mount_path: /home/node/.n8n
    wait_timeout: 900
  register: n8n_service
  no_log: true

- name: Show where it answers
  ansible.builtin.debug:
    msg: "{{ n8n_service.url }} ({{ n8n_service.deployment.status }})"

- name: Configure with a project token from RAILWAY_TOKEN, deploy later
  federation.platform.railway_service:
    project: federation-finance
    service: federation-finance-n8n
    image: registry.example.com/federation/aio:1.4.1
    deploy: never

- name: Remove the service and its volume
  federation.platform.railway_service:
    project: federation-finance
    service: federation-finance-n8n
    state: absent
    purge_volume: true
'''

RETURN = r'''
project:
  description: The project.
  returned: always
  type: dict
  sample: {id: 0b6d1c7e-5a3f-4c1e-9d55-0e6f3d2b1a90, name: federation-finance, workspace_id: 7c1e2f34-1a2b-4c5d-8e9f-0a1b2c3d4e5f}
environment:
  description: The environment (its C(id) is null when it would be created in check mode).
  returned: always
  type: dict
  sample: {id: 3c0f9a52-8f0e-4f5c-b1a4-6d2e7f8a9b0c, name: production}
service:
  description: The service and the image it was given.
  returned: success
  type: dict
  sample: {id: 9e8d7c6b-5a4f-4e3d-2c1b-0a9f8e7d6c5b, name: federation-finance-n8n, image: registry.example.com/federation/aio:1.4.0}
domain:
  description: The service's Railway domain, or null.
  returned: success
  type: str
  sample: federation-finance-n8n-production-1a2b.up.railway.app
url:
  description: C(https://) and the domain, or null.
  returned: success
  type: str
  sample: https://federation-finance-n8n-production-1a2b.up.railway.app
volume:
  description: The service's volume (C(id) is the volume's id), or null.
  returned: success
  type: dict
  sample: {id: 5f4e3d2c-1b0a-4f9e-8d7c-6b5a4f3e2d1c, mount_path: /home/node/.n8n}
deployment:
  description:
    - The deployment started by this run, or else the latest one; null when there is none (or in check mode before
      the first deployment).
    - C(statuses) lists the statuses seen while waiting, C(waited_seconds) how long the wait took.
  returned: success
  type: dict
  sample: {id: 1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d, status: SUCCESS, url: null, static_url: null,
           statuses: [QUEUED, BUILDING, DEPLOYING, SUCCESS], waited_seconds: 84.2}
variables_changed:
  description: Names of the variables that were (or in check mode would be) set because they were missing or different.
  returned: success
  type: list
  elements: str
  sample: [DB_POSTGRESDB_PASSWORD, N8N_ENCRYPTION_KEY]
variables_removed:
  description: Names of the variables removed by O(purge_variables) (or by O(state=absent)).
  returned: success
  type: list
  elements: str
  sample: []
operations:
  description:
    - The mutations sent to Railway in order (in check mode, the ones that would be sent), each with what it changes,
      never a value. Empty when nothing changed.
  returned: always
  type: list
  elements: str
  sample: ["serviceCreate federation-finance-n8n", "variableCollectionUpsert skipDeploys: DB_TYPE, N8N_ENCRYPTION_KEY",
           "serviceInstanceUpdate healthcheckPath, source.image", "volumeCreate /home/node/.n8n",
           "serviceDomainCreate targetPort 5678", "serviceInstanceDeployV2"]
rate_limit:
  description:
    - Railway's rate-limit state after the last answer (C(limit), C(remaining), C(reset) as Railway sent them), the
      number of C(requests) sent, C(retries) after HTTP 429 or a server error, and the total C(waited_seconds).
  returned: always
  type: dict
  sample: {limit: 1000, remaining: 988, reset: "1795652781", requests: 12, retries: 0, waited_seconds: 0.0}
msg:
  description: What happened, in words.
  returned: always
  type: str
  sample: "service 'federation-finance-n8n' on Railway project 'federation-finance' environment 'production' is up to date"
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.federation.platform.plugins.module_utils._railway import (
    RESTART_POLICIES, RailwayClient, RailwayError, ReconcileError, ServiceReconciler, check_params, railway_argument_spec)


def main():
    argument_spec = railway_argument_spec()
    argument_spec.update(
        state=dict(type='str', default='present', choices=['present', 'absent']),
        workspace=dict(type='str'),
        project=dict(type='str', required=True),
        create_project=dict(type='bool', default=True),
        environment=dict(type='str'),
        service=dict(type='str', required=True),
        image=dict(type='str'),
        registry_credentials=dict(type='dict', options=dict(
            username=dict(type='str', required=True),
            password=dict(type='str', required=True, no_log=True),
        )),
        variables=dict(type='dict', default={}),
        secret_variables=dict(type='dict', default={}, no_log=True),
        purge_variables=dict(type='bool', default=False),
        start_command=dict(type='str'),
        healthcheck_path=dict(type='str'),
        healthcheck_timeout=dict(type='int'),
        region=dict(type='str'),
        replicas=dict(type='int'),
        restart_policy=dict(type='str', choices=sorted(RESTART_POLICIES)),
        restart_policy_max_retries=dict(type='int'),
        sleep_application=dict(type='bool'),
        service_domain=dict(type='bool', default=False),
        target_port=dict(type='int'),
        volume_mount_path=dict(type='str'),
        purge_volume=dict(type='bool', default=False),
        deploy=dict(type='str', default='auto', choices=['auto', 'always', 'never']),
        wait=dict(type='bool', default=True),
        wait_timeout=dict(type='int', default=600),
        poll_interval=dict(type='float', default=5),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    where = "Railway project '%s'" % params['project']

    problems = check_params(params)
    if not (params['api_token'] or params['project_token']):
        problems.append('no Railway token: set api_token (or RAILWAY_API_TOKEN) to an account or workspace token, '
                        'or project_token (or RAILWAY_TOKEN) to a project token')
    if problems:
        module.fail_json(msg="Invalid options for service '%s' on %s: %s." % (params['service'], where, '; '.join(problems)),
                         changed=False, operations=[])

    client = RailwayClient(endpoint=params['endpoint'], api_token=params['api_token'], project_token=params['project_token'],
                           timeout=params['request_timeout'], validate_certs=params['validate_certs'],
                           max_retries=params['rate_limit_retries'], max_wait=params['rate_limit_max_wait'])
    reconciler = ServiceReconciler(client, params, check_mode=module.check_mode)
    try:
        result = reconciler.run()
    except ReconcileError as exc:
        module.fail_json(msg=exc.message, **exc.result)
    except RailwayError as exc:  # pragma: no cover - every call goes through the reconciler's messages
        module.fail_json(msg="Failed to reconcile service '%s' on %s: %s" % (params['service'], where, exc.message),
                         **reconciler.partial())
    diff = result.pop('diff')
    if module._diff:
        result['diff'] = diff
    module.exit_json(**result)


if __name__ == '__main__':
    main()
