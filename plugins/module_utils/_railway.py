# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: no compatibility promise outside federation.platform.
"""Railway's public GraphQL API (v2): a small client and the service reconciler.

The client sends one operation per request, authenticates the way Railway expects (account and
workspace tokens as ``Authorization: Bearer``, project tokens as ``Project-Access-Token``) and honours
Railway's rate-limit headers: it sleeps for ``Retry-After`` (or until ``X-RateLimit-Reset``) and retries,
with a bound on each wait and on the number of retries. A mutation is never retried after a server error.

The reconciler reads the current state with as few queries as it can, compares only what the caller
asked for, and changes what differs in an order that deploys exactly once: the service is created
without a source (so it does not deploy), its variables are set with ``skipDeploys``, then its image
and settings, the volume and the domain, and finally one ``serviceInstanceDeployV2`` whose deployment
is polled until it reaches a terminal status. In check mode it reads and plans, and changes nothing.
Variable values are compared, never returned or printed.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.six.moves.urllib.parse import urlsplit
from ansible.module_utils.urls import open_url

RAILWAY_ENDPOINT = 'https://backboard.railway.com/graphql/v2'

IN_PROGRESS = ('INITIALIZING', 'QUEUED', 'WAITING', 'BUILDING', 'DEPLOYING')
HEALTHY = ('SUCCESS', 'SLEEPING')
UNHEALTHY = ('FAILED', 'CRASHED', 'REMOVED', 'REMOVING', 'SKIPPED')
NEEDS_APPROVAL = 'NEEDS_APPROVAL'

RESTART_POLICIES = {'always': 'ALWAYS', 'never': 'NEVER', 'on_failure': 'ON_FAILURE'}

_UUID = re.compile(r'^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$')
VARIABLE_NAME = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')
SYSTEM_PREFIX = 'RAILWAY_'
PAGE_SIZE = 100

# Every document the collection sends. tests/integration/railway validates each one against
# Railway's schema, and the fake server validates them again on every request.
DOCUMENTS = {
    'apiToken': '''
query apiToken {
  apiToken { workspaces { id name } }
}''',
    'projectToken': '''
query projectToken {
  projectToken { projectId environmentId }
}''',
    'projects': '''
query projects($workspaceId: String, $first: Int, $after: String) {
  projects(workspaceId: $workspaceId, first: $first, after: $after) {
    edges { node { id name workspaceId deletedAt } }
    pageInfo { hasNextPage endCursor }
  }
}''',
    'project': '''
query project($id: String!) {
  project(id: $id) {
    id
    name
    workspaceId
    deletedAt
    environments { edges { node { id name isEphemeral } } }
    services { edges { node { id name } } }
  }
}''',
    'serviceState': '''
query serviceState($projectId: String!, $environmentId: String!, $serviceId: String!) {
  serviceInstance(serviceId: $serviceId, environmentId: $environmentId) {
    id
    serviceId
    source { image }
    startCommand
    healthcheckPath
    healthcheckTimeout
    region
    numReplicas
    restartPolicyType
    restartPolicyMaxRetries
    sleepApplication
    latestDeployment { id status url staticUrl }
    domains { serviceDomains { id domain targetPort } }
  }
  environment(id: $environmentId, projectId: $projectId) {
    volumeInstances { edges { node { id volumeId serviceId mountPath } } }
  }
  variables(projectId: $projectId, environmentId: $environmentId, serviceId: $serviceId, unrendered: true)
}''',
    'projectCreate': '''
mutation projectCreate($input: ProjectCreateInput!) {
  projectCreate(input: $input) {
    id
    name
    workspaceId
    environments { edges { node { id name isEphemeral } } }
  }
}''',
    'environmentCreate': '''
mutation environmentCreate($input: EnvironmentCreateInput!) {
  environmentCreate(input: $input) { id name projectId }
}''',
    'serviceCreate': '''
mutation serviceCreate($input: ServiceCreateInput!) {
  serviceCreate(input: $input) { id name projectId }
}''',
    'variableCollectionUpsert': '''
mutation variableCollectionUpsert($input: VariableCollectionUpsertInput!) {
  variableCollectionUpsert(input: $input)
}''',
    'serviceInstanceUpdate': '''
mutation serviceInstanceUpdate($serviceId: String!, $environmentId: String, $input: ServiceInstanceUpdateInput!) {
  serviceInstanceUpdate(serviceId: $serviceId, environmentId: $environmentId, input: $input)
}''',
    'volumeCreate': '''
mutation volumeCreate($input: VolumeCreateInput!) {
  volumeCreate(input: $input) { id name projectId }
}''',
    'volumeInstanceUpdate': '''
mutation volumeInstanceUpdate($volumeId: String!, $environmentId: String, $input: VolumeInstanceUpdateInput!) {
  volumeInstanceUpdate(volumeId: $volumeId, environmentId: $environmentId, input: $input)
}''',
    'volumeDelete': '''
mutation volumeDelete($volumeId: String!) {
  volumeDelete(volumeId: $volumeId)
}''',
    'serviceDomainCreate': '''
mutation serviceDomainCreate($input: ServiceDomainCreateInput!) {
  serviceDomainCreate(input: $input) { id domain targetPort }
}''',
    'serviceDomainUpdate': '''
mutation serviceDomainUpdate($input: ServiceDomainUpdateInput!) {
  serviceDomainUpdate(input: $input)
}''',
    'serviceInstanceDeployV2': '''
mutation serviceInstanceDeployV2($serviceId: String!, $environmentId: String!) {
  serviceInstanceDeployV2(serviceId: $serviceId, environmentId: $environmentId)
}''',
    'deployment': '''
query deployment($id: String!) {
  deployment(id: $id) { id status url staticUrl }
}''',
    'deploymentLogs': '''
query deploymentLogs($deploymentId: String!, $limit: Int) {
  buildLogs(deploymentId: $deploymentId, limit: $limit) { message severity }
  deploymentLogs(deploymentId: $deploymentId, limit: $limit) { message severity }
}''',
    'serviceDelete': '''
mutation serviceDelete($id: String!, $environmentId: String) {
  serviceDelete(id: $id, environmentId: $environmentId)
}''',
}


def railway_argument_spec():
    """Connection options shared by the Railway modules (doc fragment federation.platform.railway)."""
    from ansible.module_utils.basic import env_fallback
    return dict(
        api_token=dict(type='str', no_log=True, fallback=(env_fallback, ['RAILWAY_API_TOKEN'])),
        project_token=dict(type='str', no_log=True, fallback=(env_fallback, ['RAILWAY_TOKEN'])),
        endpoint=dict(type='str', default=RAILWAY_ENDPOINT),
        validate_certs=dict(type='bool', default=True),
        request_timeout=dict(type='int', default=30),
        rate_limit_retries=dict(type='int', default=5),
        rate_limit_max_wait=dict(type='int', default=120),
    )


class RailwayError(Exception):
    """Railway refused or failed a request. ``message`` is what the server said (never a secret we sent)."""

    def __init__(self, message, operation=None, status=None):
        super(RailwayError, self).__init__(message)
        self.message = message
        self.operation = operation
        self.status = status


class RailwayRateLimited(RailwayError):
    """The rate limit did not allow the request within the configured waits."""


def is_id(value):
    return bool(value) and _UUID.match(value) is not None


def _header(headers, name):
    if headers is None:
        return None
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    return value


def seconds_until(value, now):
    """Seconds from ``now`` (epoch) to a rate-limit time: epoch seconds or milliseconds, a delay in
    seconds, an RFC 3339 or an HTTP date. None when it cannot be read."""
    if value is None:
        return None
    text = to_text(value).strip()
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None:
        if number > 1e12:      # epoch milliseconds
            return number / 1000.0 - now
        if number > 1e9:       # epoch seconds
            return number - now
        return number          # a delay
    for parse in (lambda t: datetime.fromisoformat(t.replace('Z', '+00:00')), parsedate_to_datetime):
        try:
            moment = parse(text)
        except (TypeError, ValueError, IndexError):
            continue
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp() - now
    return None


class RailwayClient(object):
    """One Railway account, workspace or project token talking to one GraphQL endpoint."""

    def __init__(self, endpoint=RAILWAY_ENDPOINT, api_token=None, project_token=None, timeout=30,
                 validate_certs=True, max_retries=5, max_wait=120, sleep=time.sleep, clock=time.time):
        if not (api_token or project_token):
            raise RailwayError('no Railway token was given')
        self.endpoint = endpoint
        self.token = project_token or api_token
        self.token_kind = 'project' if project_token else 'bearer'
        self.timeout = timeout
        self.validate_certs = validate_certs
        self.max_retries = max_retries
        self.max_wait = max_wait
        self.sleep = sleep
        self.clock = clock
        self.requests = 0
        self.retries = 0
        self.waited = 0.0
        self.operations = []   # (name, is_mutation) of each operation that reached Railway
        self.limit = None
        self.remaining = None
        self.reset = None

    @property
    def rate_limit(self):
        return dict(limit=self.limit, remaining=self.remaining, reset=self.reset, retries=self.retries,
                    waited_seconds=round(self.waited, 3), requests=self.requests)

    def _headers(self):
        headers = {'Content-Type': 'application/json', 'Accept': 'application/json'}
        if self.token_kind == 'project':
            headers['Project-Access-Token'] = self.token
        else:
            headers['Authorization'] = 'Bearer %s' % self.token
        return headers

    def _post(self, payload):
        self.requests += 1
        try:
            response = open_url(self.endpoint, data=payload, headers=self._headers(), method='POST',
                                validate_certs=self.validate_certs, timeout=self.timeout,
                                http_agent='federation.platform-railway_service', follow_redirects='none')
            return response.getcode(), response.headers, response.read()
        except HTTPError as exc:
            try:
                body = exc.read()
            except Exception:  # the body of an error answer is best effort
                body = b''
            return exc.code, exc.headers, body
        except URLError as exc:
            raise RailwayError('cannot reach %s: %s' % (self.endpoint, to_text(exc.reason)))
        except Exception as exc:  # timeouts, connection resets
            raise RailwayError('cannot reach %s: %s' % (self.endpoint, to_text(exc)))

    def _note_limits(self, headers):
        for attr, name in (('limit', 'X-RateLimit-Limit'), ('remaining', 'X-RateLimit-Remaining')):
            value = _header(headers, name)
            if value is not None:
                try:
                    setattr(self, attr, int(float(value)))
                except ValueError:
                    pass
        reset = _header(headers, 'X-RateLimit-Reset')
        if reset is not None:
            self.reset = to_text(reset)

    def _wait(self, seconds, why):
        seconds = max(0.0, float(seconds))
        if seconds > self.max_wait:
            raise RailwayRateLimited('%s; Railway asks to wait %.0f s, more than rate_limit_max_wait (%d s)'
                                     % (why, seconds, self.max_wait), status=429)
        self.sleep(seconds)
        self.waited += seconds

    def execute(self, name, variables=None):
        """Run the document ``DOCUMENTS[name]``; return its ``data``, or raise RailwayError."""
        document = DOCUMENTS[name]
        mutation = document.lstrip().startswith('mutation')
        payload = json.dumps({'query': document, 'variables': variables or {}, 'operationName': name})
        attempt = 0
        while True:
            # The previous answer said the window is used up: wait for the reset when it is near.
            if self.remaining == 0 and self.reset is not None:
                delay = seconds_until(self.reset, self.clock())
                if delay is not None and 0 < delay <= self.max_wait:
                    self._wait(delay, 'rate limit window used up')
                self.remaining = None
            status, headers, body = self._post(payload)
            self._note_limits(headers)
            if status == 429:
                attempt += 1
                if attempt > self.max_retries:
                    raise RailwayRateLimited('rate limited %d times in a row (HTTP 429)' % attempt, name, 429)
                delay = seconds_until(_header(headers, 'Retry-After'), self.clock())
                if delay is None:
                    delay = seconds_until(_header(headers, 'X-RateLimit-Reset'), self.clock())
                if delay is None:
                    delay = min(2 ** attempt, 60)
                self.retries += 1
                self._wait(max(delay, 0.5), 'rate limited (HTTP 429)')
                self.remaining = None  # that wait was for this window already
                continue
            if status in (502, 503, 504) and not mutation and attempt < self.max_retries:
                attempt += 1
                self.retries += 1
                self._wait(min(2 ** attempt, 30), 'Railway answered HTTP %d' % status)
                continue
            break
        self.operations.append((name, mutation))
        return self._result(name, status, body)

    def _result(self, name, status, body):
        text = to_text(body or b'', errors='surrogate_or_replace')
        try:
            document = json.loads(text) if text else None
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise RailwayError('HTTP %s with a body that is not GraphQL JSON: %s' % (status, text[:200].strip() or '(empty)'), name, status)
        errors = document.get('errors') or []
        if errors:
            messages = []
            for error in errors:
                message = error.get('message') if isinstance(error, dict) else to_text(error)
                if message and message not in messages:
                    messages.append(message)
            raise RailwayError('; '.join(messages) or 'HTTP %s' % status, name, status)
        if status != 200 or document.get('data') is None:
            raise RailwayError('HTTP %s without data' % status, name, status)
        return document['data']


def _edges(connection):
    return [edge['node'] for edge in (connection or {}).get('edges') or []]


def _value_text(value):
    """Railway variables are strings: YAML booleans become true/false, numbers their digits."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if value is None:
        return ''
    return to_text(value)


class ReconcileError(Exception):
    """Stops the run with a complete message; ``result`` holds what was done before."""

    def __init__(self, message, result=None):
        super(ReconcileError, self).__init__(message)
        self.message = message
        self.result = result or {}


# (module option, ServiceInstance field) for the settings the module manages.
SETTINGS = (
    ('start_command', 'startCommand'),
    ('healthcheck_path', 'healthcheckPath'),
    ('healthcheck_timeout', 'healthcheckTimeout'),
    ('region', 'region'),
    ('replicas', 'numReplicas'),
    ('restart_policy', 'restartPolicyType'),
    ('restart_policy_max_retries', 'restartPolicyMaxRetries'),
    ('sleep_application', 'sleepApplication'),
)


def check_params(params):
    """Problems with the options that must stop the run before any request; a list of messages."""
    problems = []
    plain = params.get('variables') or {}
    secret = params.get('secret_variables') or {}
    for name in sorted(set(plain) | set(secret)):
        if not VARIABLE_NAME.match(name):
            problems.append("variable name '%s' is not allowed: use letters, digits and underscores, "
                            "not starting with a digit" % name)
        elif name.startswith(SYSTEM_PREFIX):
            problems.append("variable '%s' uses the prefix %s, which Railway keeps for its own variables" % (name, SYSTEM_PREFIX))
    nested = sorted(k for k, v in list(plain.items()) + list(secret.items()) if isinstance(v, (dict, list)))
    if nested:
        problems.append('variables %s have a list or mapping as value: Railway variables are text, '
                        'so give them as a string (for example JSON)' % ', '.join(nested))
    both = sorted(set(plain) & set(secret))
    if both:
        problems.append('variables %s are in both variables and secret_variables: keep each in one' % ', '.join(both))
    endpoint = params.get('endpoint') or ''
    parts = urlsplit(endpoint)
    if parts.scheme not in ('https', 'http') or not parts.hostname:
        problems.append("endpoint '%s' is not an http(s) URL" % endpoint)
    elif parts.scheme == 'http' and parts.hostname not in ('127.0.0.1', '::1', 'localhost'):
        problems.append("endpoint '%s' is plain http: the token would cross the network unencrypted; use https" % endpoint)
    if params.get('state') == 'present' and not params.get('image'):
        problems.append('image is required with state=present')
    mount = params.get('volume_mount_path')
    if mount is not None and not mount.startswith('/'):
        problems.append("volume_mount_path '%s' must be an absolute path" % mount)
    path = params.get('healthcheck_path')
    if path is not None and not path.startswith('/'):
        problems.append("healthcheck_path '%s' must start with /" % path)
    port = params.get('target_port')
    if port is not None and not 1 <= port <= 65535:
        problems.append('target_port %d is not a TCP port (1-65535)' % port)
    replicas = params.get('replicas')
    if replicas is not None and replicas < 1:
        problems.append('replicas must be at least 1')
    for name in ('wait_timeout', 'poll_interval', 'healthcheck_timeout'):
        value = params.get(name)
        if value is not None and value <= 0:
            problems.append('%s must be above 0' % name)
    return problems


class ServiceReconciler(object):
    """Make one Railway service look like the options say (state present) or remove it (absent)."""

    def __init__(self, client, params, check_mode=False, sleep=time.sleep, clock=time.monotonic):
        self.client = client
        self.params = params
        self.check_mode = check_mode
        self.sleep = sleep
        self.clock = clock
        self.operations = []       # mutations done (or planned in check mode), in order, without values
        self.project = None
        self.environment = None
        self.service = None
        self.result = {}
        self._searched = None      # the workspaces searched for the project

    # -------------------------------------------------------------- helpers

    @property
    def where(self):
        project = self.project['name'] if self.project else self.params['project']
        environment = self.environment['name'] if self.environment else (self.params.get('environment') or 'production')
        return "Railway project '%s' environment '%s'" % (project, environment)

    def fail(self, verb, kind, name, error, hint=None):
        said = error.message if isinstance(error, RailwayError) else to_text(error)
        if hint is None:
            hint = self._hint(error)
        raise ReconcileError("Failed to %s %s '%s' on %s: %s. %s" % (verb, kind, name, self.where, said.rstrip('.'), hint),
                             self.partial())

    @staticmethod
    def _hint(error):
        said = (error.message if isinstance(error, RailwayError) else to_text(error)).lower()
        if isinstance(error, RailwayRateLimited):
            return 'Wait for the rate-limit window to reset (or raise rate_limit_max_wait / rate_limit_retries) and run again'
        if 'not authorized' in said or 'unauthorized' in said:
            return ('Check the token: an account or workspace token goes in api_token (RAILWAY_API_TOKEN), a project '
                    'token in project_token (RAILWAY_TOKEN), and it must reach this project and environment')
        if 'cannot reach' in said:
            return 'Check endpoint and the network path to Railway, then run again'
        if isinstance(error, RailwayError) and error.status == 400:
            return 'Railway refused the request itself; this is a defect of the module, please report it with this message'
        return 'Fix the cause and run again; the module resumes from what already exists'

    def call(self, verb, kind, name, operation, variables=None):
        try:
            return self.client.execute(operation, variables)
        except RailwayError as exc:
            self.fail(verb, kind, name, exc)

    def mutate(self, verb, kind, name, operation, variables, note):
        """Record the mutation; run it unless in check mode. Returns its data (None in check mode)."""
        self.operations.append('%s %s' % (operation, note) if note else operation)
        if self.check_mode:
            return None
        return self.call(verb, kind, name, operation, variables)

    def partial(self):
        result = dict(self.result)
        result.update(changed=bool(self.operations), operations=list(self.operations), rate_limit=self.client.rate_limit)
        result.setdefault('project', self.project and dict(
            id=self.project.get('id'), name=self.project['name'], workspace_id=self.project.get('workspaceId')))
        result.setdefault('environment', self.environment and dict(id=self.environment.get('id'), name=self.environment['name']))
        result.setdefault('service', self.service and dict(id=self.service.get('id'), name=self.service['name']))
        return result

    # -------------------------------------------------------------- locate

    def _workspaces(self):
        data = self.call('list', 'workspaces', 'of the token', 'apiToken')
        return data['apiToken']['workspaces']

    def _workspace_ids(self, for_create):
        """The ids of the workspaces to search (or, ``for_create``, the one to create in).

        Projects are always listed per workspace: the documented way, and the only one a workspace token
        allows. A workspace given by id costs no request; otherwise the token's workspaces are read."""
        wanted = self.params.get('workspace')
        if wanted and is_id(wanted):
            return [wanted]
        workspaces = self._workspaces()
        names = ', '.join("'%s'" % w['name'] for w in workspaces) or 'none'
        if wanted:
            found = [w for w in workspaces if w['name'] == wanted]
            if len(found) != 1:
                raise ReconcileError("Failed to find workspace '%s' on Railway: the token reaches %s. "
                                     "Set workspace to one of those names or to a workspace id" % (wanted, names), self.partial())
            return [found[0]['id']]
        if for_create and len(workspaces) != 1:
            raise ReconcileError("Failed to create project '%s' on Railway: the token reaches %d workspaces (%s). "
                                 "Set workspace to the one the project belongs in" % (self.params['project'], len(workspaces), names),
                                 self.partial())
        return [w['id'] for w in workspaces]

    def _load_project(self, project_id):
        data = self.call('read', 'project', self.params['project'], 'project', {'id': project_id})
        return data['project']

    def _find_project(self):
        """The project (a dict with environments and services), or None when it does not exist."""
        wanted = self.params['project']
        if is_id(wanted):
            return self._load_project(wanted)
        self._searched = self._workspace_ids(for_create=False)
        found = []
        for workspace_id in self._searched:
            after = None
            while True:
                data = self.call('list', 'projects', wanted, 'projects',
                                 {'workspaceId': workspace_id, 'first': PAGE_SIZE, 'after': after})['projects']
                found.extend(p for p in _edges(data) if p['name'] == wanted and not p.get('deletedAt'))
                if not data['pageInfo']['hasNextPage']:
                    break
                after = data['pageInfo']['endCursor']
        if len(found) > 1:
            raise ReconcileError("Failed to find project '%s' on Railway: %d projects have that name (%s). "
                                 "Set project to the id of the one to use"
                                 % (wanted, len(found), ', '.join(p['id'] for p in found)), self.partial())
        return self._load_project(found[0]['id']) if found else None

    def _locate_with_project_token(self):
        token = self.call('read', 'project token', 'scope', 'projectToken')['projectToken']
        project = self._load_project(token['projectId'])
        wanted = self.params['project']
        if wanted not in (project['id'], project['name']):
            raise ReconcileError("Failed to use project '%s' on Railway: the project token belongs to project '%s' (%s). "
                                 "Use a token of project '%s', or set project to '%s'"
                                 % (wanted, project['name'], project['id'], wanted, project['name']), self.partial())
        envs = [e for e in _edges(project['environments']) if e['id'] == token['environmentId']]
        if not envs:
            raise ReconcileError("Failed to use the project token on Railway project '%s': its environment is not in the project"
                                 % project['name'], self.partial())
        wanted_env = self.params.get('environment')
        if wanted_env and wanted_env not in (envs[0]['name'], envs[0]['id']):
            raise ReconcileError("Failed to use environment '%s' on Railway project '%s': the project token is for environment "
                                 "'%s'. Use a token of environment '%s', or set environment to '%s'"
                                 % (wanted_env, project['name'], envs[0]['name'], wanted_env, envs[0]['name']), self.partial())
        return project, envs[0]

    def locate(self, create):
        """Find (and with ``create``, create or plan) the project and the environment; find the service."""
        if self.client.token_kind == 'project':
            project, environment = self._locate_with_project_token()
        else:
            project = self._find_project()
            if project is None:
                if not create:
                    return False
                if not self.params['create_project']:
                    raise ReconcileError("Failed to find project '%s' on Railway: it does not exist and create_project is false. "
                                         "Create it, or set create_project: true" % self.params['project'], self.partial())
                project = self._create_project()
            environment = self._find_environment(project, create)
        self.project = project
        self.environment = environment
        if environment is None:
            return False
        services = [s for s in _edges(project.get('services')) if s['name'] == self.params['service']]
        if len(services) > 1:
            raise ReconcileError("Failed to find service '%s' on %s: %d services have that name. Rename or remove the extra ones"
                                 % (self.params['service'], self.where, len(services)), self.partial())
        self.service = services[0] if services else None
        return True

    def _create_project(self):
        name = self.params['project']
        self.project = {'id': None, 'name': name, 'workspaceId': None}
        searched = self._searched or []
        workspace_id = searched[0] if len(searched) == 1 else self._workspace_ids(for_create=True)[0]
        env_name = self.params.get('environment') or 'production'
        data = self.mutate('create', 'project', name, 'projectCreate',
                           {'input': {'name': name, 'workspaceId': workspace_id, 'defaultEnvironmentName': env_name}},
                           name)
        if data is None:  # check mode: the project and its first environment are planned
            return {'id': None, 'name': name, 'workspaceId': workspace_id, 'planned': True,
                    'environments': {'edges': [{'node': {'id': None, 'name': env_name, 'planned': True}}]},
                    'services': {'edges': []}}
        project = data['projectCreate']
        project['services'] = {'edges': []}
        return project

    def _find_environment(self, project, create):
        wanted = self.params.get('environment') or 'production'
        found = [e for e in _edges(project.get('environments')) if wanted in (e['name'], e.get('id'))]
        if found:
            return found[0]
        if not create:
            return None
        self.project = project
        data = self.mutate('create', 'environment', wanted, 'environmentCreate',
                           {'input': {'name': wanted, 'projectId': project['id']}}, wanted)
        if data is None:
            return {'id': None, 'name': wanted, 'planned': True}
        return data['environmentCreate']

    # -------------------------------------------------------------- read

    def read_state(self):
        """The service instance, its variables (names -> values) and its volume instance, as Railway has them."""
        empty = {'instance': None, 'variables': {}, 'volume': None}
        if self.service is None or self.environment.get('planned') or self.project.get('planned'):
            return empty
        try:
            data = self.client.execute('serviceState', {'projectId': self.project['id'], 'environmentId': self.environment['id'],
                                                        'serviceId': self.service['id']})
        except RailwayError as exc:
            if 'not found' in exc.message.lower():  # the project, environment and service were just listed
                raise ReconcileError("Failed to read service '%s' on %s: the service exists in the project but not in this "
                                     "environment. Add it to the environment in Railway (or remove the service) and run again"
                                     % (self.service['name'], self.where), self.partial())
            self.fail('read', 'service', self.service['name'], exc)
        volumes = [v for v in _edges(data['environment']['volumeInstances']) if v.get('serviceId') == self.service['id']]
        variables = dict((k, v) for k, v in (data['variables'] or {}).items() if not k.startswith(SYSTEM_PREFIX))
        return {'instance': data['serviceInstance'], 'variables': variables, 'volume': volumes[0] if volumes else None}

    # -------------------------------------------------------------- present

    def present(self):
        p = self.params
        self.locate(create=True)
        state = self.read_state()
        instance = state['instance'] or {}
        latest = instance.get('latestDeployment')
        before = self._view(instance, state['variables'], state['volume'], exists=self.service is not None)

        # Service
        created = False
        if self.service is None:
            data = self.mutate('create', 'service', p['service'], 'serviceCreate',
                               {'input': {'projectId': self.project['id'], 'environmentId': self.environment['id'],
                                          'name': p['service']}}, p['service'])
            self.service = data['serviceCreate'] if data else {'id': None, 'name': p['service'], 'planned': True}
            created = True
        ids = {'projectId': self.project['id'], 'environmentId': self.environment['id'], 'serviceId': self.service['id']}

        # Variables: only the names whose value differs; every change with skipDeploys, one deploy later.
        desired = dict((k, _value_text(v)) for k, v in (p.get('variables') or {}).items())
        desired.update((k, _value_text(v)) for k, v in (p.get('secret_variables') or {}).items())
        current = state['variables']
        changed_names = sorted(k for k in desired if current.get(k) != desired[k])
        removed_names = sorted(k for k in current if k not in desired) if p['purge_variables'] else []
        if removed_names:
            self.mutate('update', 'variables of service', p['service'], 'variableCollectionUpsert',
                        {'input': dict(ids, variables=desired, replace=True, skipDeploys=True)},
                        'replace, skipDeploys: set %s; remove %s' % (', '.join(changed_names) or 'none', ', '.join(removed_names)))
        elif changed_names:
            self.mutate('update', 'variables of service', p['service'], 'variableCollectionUpsert',
                        {'input': dict(ids, variables=dict((k, desired[k]) for k in changed_names), skipDeploys=True)},
                        'skipDeploys: %s' % ', '.join(changed_names))

        # Image and settings
        update = {}
        current_image = (instance.get('source') or {}).get('image')
        if current_image != p['image']:
            update['source'] = {'image': p['image']}
        for option, field in SETTINGS:
            value = p.get(option)
            if option == 'restart_policy' and value is not None:
                value = RESTART_POLICIES[value]
            if value is not None and instance.get(field) != value:
                update[field] = value
        if update:
            note = ', '.join(sorted('source.image' if k == 'source' else k for k in update))
            if p.get('registry_credentials'):
                update['registryCredentials'] = {'username': p['registry_credentials']['username'],
                                                 'password': p['registry_credentials']['password']}
                note += ', registryCredentials'
            self.mutate('update', 'service', p['service'], 'serviceInstanceUpdate',
                        {'serviceId': self.service['id'], 'environmentId': self.environment['id'], 'input': update}, note)

        # Volume
        volume = state['volume']
        volume_changed = False
        if p.get('volume_mount_path'):
            if volume is None:
                data = self.mutate('create', 'volume of service', p['service'], 'volumeCreate',
                                   {'input': {'projectId': self.project['id'], 'environmentId': self.environment['id'],
                                              'serviceId': self.service['id'], 'mountPath': p['volume_mount_path']}},
                                   p['volume_mount_path'])
                volume = {'volumeId': data['volumeCreate']['id'] if data else None, 'mountPath': p['volume_mount_path']}
                volume_changed = True
            elif volume['mountPath'] != p['volume_mount_path']:
                self.mutate('update', 'volume of service', p['service'], 'volumeInstanceUpdate',
                            {'volumeId': volume['volumeId'], 'environmentId': self.environment['id'],
                             'input': {'mountPath': p['volume_mount_path']}}, 'mountPath %s' % p['volume_mount_path'])
                volume = dict(volume, mountPath=p['volume_mount_path'])
                volume_changed = True

        # Railway domain (routing only: no deploy needed)
        domains = ((instance.get('domains') or {}).get('serviceDomains')) or []
        domain = domains[0] if domains else None
        if p['service_domain']:
            if domain is None:
                data = self.mutate('create', 'domain of service', p['service'], 'serviceDomainCreate',
                                   {'input': {'environmentId': self.environment['id'], 'serviceId': self.service['id'],
                                              'targetPort': p.get('target_port')}},
                                   'targetPort %s' % p.get('target_port'))
                domain = data['serviceDomainCreate'] if data else {'id': None, 'domain': None, 'targetPort': p.get('target_port')}
            elif p.get('target_port') is not None and domain.get('targetPort') != p['target_port']:
                self.mutate('update', 'domain of service', p['service'], 'serviceDomainUpdate',
                            {'input': {'domain': domain['domain'], 'environmentId': self.environment['id'],
                                       'serviceDomainId': domain['id'], 'serviceId': self.service['id'],
                                       'targetPort': p['target_port']}}, 'targetPort %s' % p['target_port'])
                domain = dict(domain, targetPort=p['target_port'])

        # Deploy: once, when the configuration changed or nothing healthy is running.
        configured = created or bool(changed_names or removed_names or update or volume_changed)
        status = latest and latest.get('status')
        if status == NEEDS_APPROVAL and not configured and p['deploy'] != 'always':
            raise ReconcileError("Failed to deploy service '%s' on %s: deployment %s is waiting for approval. Approve it in "
                                 "Railway (or set deploy: always to replace it) and run again" % (p['service'], self.where, latest['id']),
                                 self.partial())
        if p['deploy'] == 'always':
            deploy = True
        elif p['deploy'] == 'never':
            deploy = False
        else:
            deploy = configured or latest is None or status in UNHEALTHY
        deployment = None
        if deploy:
            data = self.mutate('deploy', 'service', p['service'], 'serviceInstanceDeployV2',
                               {'serviceId': self.service['id'], 'environmentId': self.environment['id']}, '')
            if data:
                deployment = {'id': data['serviceInstanceDeployV2'], 'status': None, 'url': None, 'static_url': None}
        elif latest:
            deployment = {'id': latest['id'], 'status': status, 'url': latest.get('url'), 'static_url': latest.get('staticUrl')}

        self.result = self._summary(domain, volume, deployment, changed_names, removed_names)
        if deployment and p['wait'] and not self.check_mode and (deploy or status in IN_PROGRESS):
            self._wait(deployment)

        configured_instance = dict(instance)
        configured_instance.update(update)
        configured_instance['source'] = {'image': p['image']}
        after = self._view(configured_instance, {}, volume, exists=True)
        after['variables'] = dict((k, '(new)' if k not in current else ('(changed)' if k in changed_names else '(set)'))
                                  for k in sorted(desired if removed_names else set(current) | set(desired)))
        after['service_domain'] = {'target_port': domain.get('targetPort')} if domain else None
        if deployment and deployment.get('status'):
            after['deployment'] = deployment['status']
        elif deploy:
            after['deployment'] = '(new deployment)'
        if before:
            before['service_domain'] = {'target_port': domains[0].get('targetPort')} if domains else None
        result = self.partial()
        result.update(self.result)
        result['diff'] = {'before': before, 'after': after}
        result['msg'] = self._message(result)
        return result

    def _view(self, instance, variables, volume, exists):
        if not exists:
            return {}
        settings = dict((field, instance.get(field)) for option, field in SETTINGS if self.params.get(option) is not None)
        return {
            'project': self.project['name'], 'environment': self.environment['name'], 'service': self.params['service'],
            'image': (instance.get('source') or {}).get('image'), 'settings': settings,
            'variables': dict((k, '(set)') for k in sorted(variables)),
            'volume': volume['mountPath'] if volume else None,
            'deployment': (instance.get('latestDeployment') or {}).get('status'),
        }

    def _summary(self, domain, volume, deployment, changed_names, removed_names):
        hostname = domain.get('domain') if domain else None
        return {
            'project': dict(id=self.project.get('id'), name=self.project['name'], workspace_id=self.project.get('workspaceId')),
            'environment': dict(id=self.environment.get('id'), name=self.environment['name']),
            'service': dict(id=self.service.get('id'), name=self.service['name'], image=self.params['image']),
            'domain': hostname,
            'url': 'https://%s' % hostname if hostname else None,
            'volume': dict(id=volume.get('volumeId'), mount_path=volume['mountPath']) if volume else None,
            'deployment': deployment,
            'variables_changed': changed_names,
            'variables_removed': removed_names,
        }

    def _wait(self, deployment):
        p = self.params
        deadline = self.clock() + p['wait_timeout']
        seen = []
        started = self.clock()
        while True:
            data = self.call('wait for', 'deployment of service', p['service'], 'deployment', {'id': deployment['id']})['deployment']
            status = data['status']
            if not seen or seen[-1] != status:
                seen.append(status)
            deployment.update(status=status, url=data.get('url'), static_url=data.get('staticUrl'), statuses=list(seen),
                              waited_seconds=round(self.clock() - started, 1))
            if status not in IN_PROGRESS:
                break
            left = deadline - self.clock()
            if left <= 0:
                raise ReconcileError(
                    "Failed to deploy service '%s' on %s: deployment %s is still %s after %d s (statuses seen: %s). "
                    "Raise wait_timeout, or look at the deployment in Railway; a re-run waits for it again without deploying twice"
                    % (p['service'], self.where, deployment['id'], status, p['wait_timeout'], ' -> '.join(seen)), self.partial_with())
            self.sleep(min(p['poll_interval'], left))
        if status in HEALTHY:
            return
        if status == NEEDS_APPROVAL:
            raise ReconcileError("Failed to deploy service '%s' on %s: deployment %s needs approval in Railway. Approve it and run again"
                                 % (p['service'], self.where, deployment['id']), self.partial_with())
        raise ReconcileError("Failed to deploy service '%s' on %s: deployment %s ended %s (statuses seen: %s).%s "
                             "Fix the image or its variables and run again; a re-run deploys again"
                             % (p['service'], self.where, deployment['id'], status, ' -> '.join(seen), self._log_tail(deployment['id'])),
                             self.partial_with())

    def partial_with(self):
        result = self.partial()
        result.update(self.result)
        return result

    def _log_tail(self, deployment_id, lines=5):
        try:
            data = self.client.execute('deploymentLogs', {'deploymentId': deployment_id, 'limit': lines})
        except RailwayError:
            return ''
        tail = [log['message'][:300] for log in (data.get('buildLogs') or []) + (data.get('deploymentLogs') or [])][-lines:]
        return (' Last log lines: %s.' % ' | '.join(tail)) if tail else ''

    def _message(self, result):
        name = "service '%s' on %s" % (self.params['service'], self.where)
        if not self.operations:
            return '%s is up to date' % name
        verb = 'would change' if self.check_mode else 'changed'
        return '%s: %s %s' % (name, verb, '; '.join(self.operations))

    # -------------------------------------------------------------- absent

    def absent(self):
        p = self.params
        if not self.locate(create=False) or self.service is None:
            self.result = {'deployment': None, 'domain': None, 'url': None, 'volume': None,
                           'variables_changed': [], 'variables_removed': []}
            result = self.partial_with()
            result['diff'] = {'before': {}, 'after': {}}
            result['msg'] = "service '%s' is absent from %s" % (p['service'], self.where)
            return result
        state = self.read_state()
        before = self._view(state['instance'], state['variables'], state['volume'], exists=True)
        if p['purge_volume'] and state['volume']:
            self.mutate('delete', 'volume of service', p['service'], 'volumeDelete',
                        {'volumeId': state['volume']['volumeId']}, state['volume']['mountPath'])
        self.mutate('delete', 'service', p['service'], 'serviceDelete',
                    {'id': self.service['id'], 'environmentId': self.environment['id']}, p['service'])
        self.result = {'deployment': None, 'domain': None, 'url': None, 'volume': None,
                       'variables_changed': [], 'variables_removed': sorted(state['variables'])}
        result = self.partial_with()
        result['diff'] = {'before': before, 'after': {}}
        result['msg'] = self._message(result)
        return result

    def run(self):
        return self.present() if self.params['state'] == 'present' else self.absent()
