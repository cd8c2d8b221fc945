"""A local stand-in for Railway's public GraphQL API (v2), for tests.

Railway cannot run here, so this server plays it on 127.0.0.1 (a random free port):

- GraphQL over ``POST /graphql/v2``, like ``https://backboard.railway.com/graphql/v2``. Every document
  is parsed and validated against Railway's own schema (``railway_schema/schema.json``) with
  graphql-core, and its variables are coerced to their declared types. A document or a variable that
  Railway's schema refuses gets HTTP 400 with GraphQL ``errors`` and is recorded as a *violation*.
- Authentication the way Railway does it: account and workspace tokens as ``Authorization: Bearer``,
  project tokens as ``Project-Access-Token``; each token sees only what its scope allows.
- State: workspaces, projects, environments, services and their instances, variables, service domains,
  deployments and volumes. Only the operations ``railway_service`` uses have resolvers; any other root
  field answers an error (recorded as *unsupported*), never a silent success. Input fields the fake does
  not model are refused the same way.
- Deployments move through QUEUED -> BUILDING -> DEPLOYING -> SUCCESS, one step per ``deployment``
  poll; ``deploy_outcomes`` makes the next ones end FAILED or CRASHED, or stay BUILDING (STUCK).
- Rate limits: ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (epoch
  seconds) on every answer, and HTTP 429 with ``Retry-After`` once the budget of the window is spent.
- An edge: ``GET /edge/<domain>/<path>`` answers like the service behind a Railway domain: 200 JSON
  when its latest deployment succeeded, 502 "Application failed to respond" otherwise, 404
  "Application not found" for an unknown domain.
- Every request is recorded (operation name and type, root fields, status, errors) so tests can assert
  "no schema violation" and "no mutation".

Where Railway's behaviour is not documented, the fake is the stricter reading (for example a second
Railway domain or a second volume for one service is refused) and says so in the error.
"""

from __future__ import annotations

import base64
import collections
import itertools
import json
import math
import re
import secrets
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import graphql
from graphql import GraphQLError
from graphql.execution.values import get_variable_values
from graphql.type.validate import validate_schema

SCHEMA_PATH = Path(__file__).resolve().parent / 'railway_schema' / 'schema.json'
GRAPHQL_PATH = '/graphql/v2'

IN_PROGRESS = ('INITIALIZING', 'QUEUED', 'WAITING', 'BUILDING', 'DEPLOYING')
PLANS = {
    'SUCCESS': ['QUEUED', 'BUILDING', 'DEPLOYING', 'SUCCESS'],
    'FAILED': ['QUEUED', 'BUILDING', 'FAILED'],
    'CRASHED': ['QUEUED', 'BUILDING', 'DEPLOYING', 'CRASHED'],
    'STUCK': ['QUEUED', 'BUILDING'],
}
_VARIABLE_NAME = re.compile(r'^[A-Za-z_][A-Za-z0-9_.-]*$')
_REFERENCE = re.compile(r'\$\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}')

# The schema is newer than graphql-core's rules in one respect: Team.id is deprecated while Node.id is
# not, which graphql-core 3.3 reports as a schema error. It says nothing about the documents we check.
_TOLERATED_SCHEMA_ERRORS = (re.compile(r'^Interface field Node\.id is not deprecated, so implementation field \w+\.id must not be deprecated\.$'),)


def _now():
    return datetime.now(timezone.utc).isoformat(timespec='milliseconds').replace('+00:00', 'Z')


def _environment_variables(value):
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValueError('EnvironmentVariables must be an object whose values are strings')
    return value


def _date_time(value):
    if not isinstance(value, str):
        raise ValueError('DateTime must be an RFC 3339 string')
    datetime.fromisoformat(value.replace('Z', '+00:00'))
    return value


def load_schema(path: Path = SCHEMA_PATH) -> graphql.GraphQLSchema:
    """Railway's schema with the scalars the fake checks (EnvironmentVariables, DateTime)."""
    schema = graphql.build_client_schema(json.loads(Path(path).read_text())['data'])
    errors = [e for e in validate_schema(schema)
              if not any(p.match(e.message) for p in _TOLERATED_SCHEMA_ERRORS)]
    if errors:
        raise RuntimeError('Railway schema %s is not valid: %s' % (path, '; '.join(e.message for e in errors)))
    schema._validation_errors = []  # checked above
    for name, check in (('EnvironmentVariables', _environment_variables), ('DateTime', _date_time)):
        scalar = schema.type_map[name]
        scalar.parse_value = scalar.coerce_input_value = check
    return schema


class RailwayFault(GraphQLError):
    """An error the way Railway answers it: HTTP 200, ``errors`` in the body."""


def _connection(items, first=None, after=None, last=None, before=None):
    start = int(base64.b64decode(after).decode()) + 1 if after else 0
    window = items[start:]
    if first is not None:
        if first < 0:
            raise RailwayFault('first must be positive')
        window = window[:first]
    edges = [{'node': node, 'cursor': base64.b64encode(str(start + i).encode()).decode()} for i, node in enumerate(window)]
    return {
        'edges': edges,
        'pageInfo': {
            'hasNextPage': start + len(window) < len(items),
            'hasPreviousPage': start > 0,
            'startCursor': edges[0]['cursor'] if edges else None,
            'endCursor': edges[-1]['cursor'] if edges else None,
        },
    }


def _lazy_connection(producer):
    """A connection field: the default resolver calls it with the field's arguments."""
    def resolve(info, **args):
        return _connection(producer(), first=args.get('first'), after=args.get('after'))
    return resolve


class _RateLimiter(object):
    def __init__(self, limit, window):
        self.limit = limit
        self.window = window
        self.buckets = {}
        self.forced = collections.deque()

    def take(self, key):
        """(allowed, headers) for one request of ``key``."""
        now = time.time()
        start, used = self.buckets.get(key, (now, 0))
        if now >= start + self.window:
            start, used = now, 0
        reset = start + self.window
        headers = {'X-RateLimit-Limit': str(self.limit), 'X-RateLimit-Reset': str(int(math.ceil(reset)))}
        if self.forced:
            retry_after = self.forced.popleft()
            headers.update({'X-RateLimit-Remaining': '0', 'Retry-After': str(retry_after),
                            'X-RateLimit-Reset': str(int(math.ceil(now + retry_after)))})
            return False, headers
        if used >= self.limit:
            headers.update({'X-RateLimit-Remaining': '0', 'Retry-After': str(max(1, int(math.ceil(reset - now))))})
            return False, headers
        used += 1
        self.buckets[key] = (start, used)
        headers['X-RateLimit-Remaining'] = str(self.limit - used)
        return True, headers


class RailwayFake(object):
    """The fake Railway API. ``with RailwayFake() as fake: ...`` or ``start()`` / ``stop()``."""

    def __init__(self, schema_path: Path = SCHEMA_PATH, rate_limit: int = 1000, rate_window: float = 3600.0,
                 host: str = '127.0.0.1'):
        self.schema = load_schema(schema_path)
        self._install_resolvers()
        self.host = host
        self.lock = threading.RLock()
        self.limiter = _RateLimiter(rate_limit, rate_window)
        self.requests = []
        self.deploy_outcomes = collections.deque()
        self.polls_per_status = 1
        self.unhealthy_services = set()  # service ids whose edge answers 502 even after SUCCESS
        self.unhealthy_all = False       # every service's edge answers 502 (nothing listens behind the domain)
        self.edge_requests = []          # (domain, path, status) of each request through the edge
        self.user = {'id': str(uuid.uuid4()), 'email': 'owner@federation.test', 'name': 'Federation Owner'}
        self.tokens = {}
        self.workspaces = {}
        self.projects = {}
        self.environments = {}
        self.services = {}
        self.instances = {}       # (service id, environment id) -> instance
        self.variables = {}       # (environment id, service id or None) -> {name: value}
        self.domains = {}
        self.deployments = {}
        self.volumes = {}
        self.volume_instances = {}
        self.registry_credentials = {}  # (service id, environment id) -> username (the password is dropped)
        self._names = itertools.count(1)
        self._server = None
        self._thread = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> 'RailwayFake':
        fake = self

        class Handler(_Handler):
            pass
        Handler.fake = fake
        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name='railway-fake', daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return 'http://%s:%d' % (self.host, self.port)

    @property
    def url(self) -> str:
        """The GraphQL endpoint (what ``railway_service``'s ``endpoint`` takes)."""
        return self.base_url + GRAPHQL_PATH

    @property
    def edge_template(self) -> str:
        """Where a service domain answers here: replace ``{domain}``."""
        return self.base_url + '/edge/{domain}'

    # ------------------------------------------------------------------ principals

    def add_workspace(self, name: str) -> str:
        with self.lock:
            wid = str(uuid.uuid4())
            self.workspaces[wid] = {'id': wid, 'name': name}
            return wid

    def account_token(self) -> str:
        """A personal token of the fake's user, who belongs to every workspace."""
        return self._token({'kind': 'account'})

    def workspace_token(self, workspace_id: str) -> str:
        return self._token({'kind': 'workspace', 'workspace': workspace_id})

    def project_token(self, project_id: str, environment_id: str) -> str:
        return self._token({'kind': 'project', 'project': project_id, 'environment': environment_id})

    def _token(self, principal):
        token = secrets.token_hex(16)
        self.tokens[token] = principal
        return token

    # ------------------------------------------------------------------ test controls and records

    def set_rate_limit(self, limit: int, window: float):
        with self.lock:
            self.limiter.limit, self.limiter.window = limit, window
            self.limiter.buckets.clear()

    def throttle_next(self, count: int = 1, retry_after: int = 1):
        """Answer the next ``count`` requests with 429 and ``Retry-After: retry_after``."""
        with self.lock:
            self.limiter.forced.extend([retry_after] * count)

    def mark(self) -> int:
        """A position in the request log; pass it to the readers below to look at later requests only."""
        with self.lock:
            return len(self.requests)

    def records(self, since: int = 0):
        with self.lock:
            return list(self.requests[since:])

    def violations(self, since: int = 0):
        """Requests that Railway's schema refuses (syntax, unknown fields, wrong variable types)."""
        return [r for r in self.records(since) if r['violation']]

    def unsupported(self, since: int = 0):
        return [r for r in self.records(since) if r['unsupported']]

    def mutations(self, since: int = 0):
        """Mutation requests that reached a resolver (not throttled, not refused)."""
        return [r for r in self.records(since) if r['type'] == 'mutation' and r['status'] == 200]

    def operation_names(self, since: int = 0):
        return [r['operation'] for r in self.records(since) if r['status'] != 429]

    def find_project(self, name):
        with self.lock:
            found = [p for p in self.projects.values() if p['name'] == name and not p['deletedAt']]
            return found[0] if found else None

    def find_service(self, project_id, name):
        with self.lock:
            found = [s for s in self.services.values() if s['projectId'] == project_id and s['name'] == name]
            return found[0] if found else None

    def find_environment(self, project_id, name):
        with self.lock:
            found = [e for e in self.environments.values() if e['projectId'] == project_id and e['name'] == name]
            return found[0] if found else None

    def service_deployments(self, service_id):
        with self.lock:
            return sorted((d for d in self.deployments.values() if d['serviceId'] == service_id), key=lambda d: d['seq'])

    # ------------------------------------------------------------------ HTTP entry

    def handle_graphql(self, headers, body: bytes):
        """(status, response headers, JSON document) for one POST."""
        record = {'operation': None, 'type': None, 'fields': [], 'status': None, 'errors': [], 'violation': False,
                  'unsupported': False, 'auth': None, 'at': time.time()}
        principal, auth_key = self._authenticate(headers)
        record['auth'] = principal['kind'] if principal else None
        with self.lock:
            allowed, limit_headers = self.limiter.take(auth_key)
        if not allowed:
            return self._finish(record, 429, limit_headers, {'errors': [{
                'message': 'Rate limit exceeded. Retry after %s seconds.' % limit_headers['Retry-After'],
                'extensions': {'code': 'RATE_LIMITED'}}]})

        def refuse(message, code, **extra):
            record['violation'] = True
            error = dict({'message': message, 'extensions': {'code': code}}, **extra)
            return self._finish(record, 400, limit_headers, {'errors': [error]})

        if (headers.get('Content-Type') or '').split(';')[0].strip().lower() != 'application/json':
            return refuse('Content-Type must be application/json', 'BAD_REQUEST')
        try:
            payload = json.loads(body.decode('utf-8'))
        except (UnicodeDecodeError, ValueError) as exc:
            return refuse('Request body is not JSON: %s' % exc, 'BAD_REQUEST')
        if not isinstance(payload, dict) or not isinstance(payload.get('query'), str):
            return refuse('Request body must be an object with a "query" string', 'BAD_REQUEST')
        unknown_keys = set(payload) - {'query', 'variables', 'operationName', 'extensions'}
        if unknown_keys:
            return refuse('Unknown request keys: %s' % ', '.join(sorted(unknown_keys)), 'BAD_REQUEST')
        variables = payload.get('variables') or {}
        if not isinstance(variables, dict):
            return refuse('"variables" must be an object', 'BAD_REQUEST')
        record['operation'] = payload.get('operationName')

        try:
            document = graphql.parse(payload['query'])
        except GraphQLError as exc:
            return refuse(exc.message, 'GRAPHQL_PARSE_FAILED', locations=_locations(exc))
        errors = graphql.validate(self.schema, document)
        if errors:
            record['errors'] = [e.message for e in errors]
            record['violation'] = True
            return self._finish(record, 400, limit_headers, {'errors': [
                {'message': e.message, 'locations': _locations(e), 'extensions': {'code': 'GRAPHQL_VALIDATION_FAILED'}}
                for e in errors]})
        operation = graphql.get_operation_ast(document, payload.get('operationName'))
        if operation is None:
            return refuse('Unknown or ambiguous operation name %r' % payload.get('operationName'), 'BAD_USER_INPUT')
        record['operation'] = operation.name.value if operation.name else None
        record['type'] = operation.operation.value
        record['fields'] = [s.name.value for s in operation.selection_set.selections if hasattr(s, 'name')]
        declared = {d.variable.name.value for d in operation.variable_definitions or []}
        undeclared = sorted(set(variables) - declared)
        if undeclared:
            return refuse('Variables not declared by the operation: %s' % ', '.join(undeclared), 'BAD_USER_INPUT')
        coerced = get_variable_values(self.schema, operation.variable_definitions or [], variables)
        if isinstance(coerced, list):
            record['errors'] = [e.message for e in coerced]
            record['violation'] = True
            return self._finish(record, 400, limit_headers, {'errors': [
                {'message': e.message, 'locations': _locations(e), 'extensions': {'code': 'BAD_USER_INPUT'}} for e in coerced]})

        context = {'principal': principal, 'record': record}
        with self.lock:
            result = graphql.execute(self.schema, document, variable_values=variables,
                                     operation_name=payload.get('operationName'), context_value=context)
        response = {'data': result.data}
        if result.errors:
            record['errors'] = [e.message for e in result.errors]
            response['errors'] = [{'message': e.message, 'locations': _locations(e), 'path': e.path} for e in result.errors]
        return self._finish(record, 200, limit_headers, response)

    def _finish(self, record, status, headers, document):
        record['status'] = status
        with self.lock:
            self.requests.append(record)
        return status, headers, document

    def _authenticate(self, headers):
        project_token = headers.get('Project-Access-Token')
        authorization = headers.get('Authorization') or ''
        token = None
        if project_token:
            token = project_token
            principal = self.tokens.get(token)
            if principal and principal['kind'] != 'project':
                principal = None
        elif authorization.startswith('Bearer '):
            token = authorization[len('Bearer '):].strip()
            principal = self.tokens.get(token)
            if principal and principal['kind'] == 'project':
                principal = None  # a project token is not a Bearer token
        else:
            principal = None
        return principal, token or 'anonymous'

    def handle_edge(self, domain, path):
        """(status, document) for a request through a service domain."""
        status, document = self._edge(domain, path)
        with self.lock:
            self.edge_requests.append((domain, path, status))
        return status, document

    def _edge(self, domain, path):
        with self.lock:
            found = [d for d in self.domains.values() if d['domain'] == domain]
            if not found:
                return 404, {'status': 'error', 'code': 404, 'message': 'Application not found'}
            dom = found[0]
            latest = self._latest_deployment(dom['serviceId'], dom['environmentId'])
            if (latest is None or latest['status'] != 'SUCCESS' or self.unhealthy_all
                    or dom['serviceId'] in self.unhealthy_services):
                return 502, {'status': 'error', 'code': 502, 'message': 'Application failed to respond'}
        if path.rstrip('/') == '/healthz':
            return 200, {'status': 'ok'}
        return 200, {'data': {'path': path, 'deploymentId': latest['id']}}

    # ------------------------------------------------------------------ resolvers

    def _install_resolvers(self):
        queries = {
            'me': self._q_me, 'apiToken': self._q_api_token, 'projectToken': self._q_project_token,
            'projects': self._q_projects, 'project': self._q_project, 'environment': self._q_environment,
            'serviceInstance': self._q_service_instance, 'variables': self._q_variables,
            'deployment': self._q_deployment, 'buildLogs': self._q_build_logs, 'deploymentLogs': self._q_deployment_logs,
            'domains': self._q_domains,
        }
        mutations = {
            'projectCreate': self._m_project_create, 'environmentCreate': self._m_environment_create,
            'serviceCreate': self._m_service_create, 'serviceInstanceUpdate': self._m_service_instance_update,
            'serviceDelete': self._m_service_delete, 'variableCollectionUpsert': self._m_variable_collection_upsert,
            'variableUpsert': self._m_variable_upsert, 'variableDelete': self._m_variable_delete,
            'serviceDomainCreate': self._m_service_domain_create, 'serviceDomainUpdate': self._m_service_domain_update,
            'serviceInstanceDeployV2': self._m_deploy_v2, 'volumeCreate': self._m_volume_create,
            'volumeInstanceUpdate': self._m_volume_instance_update, 'volumeDelete': self._m_volume_delete,
        }
        for root, table in ((self.schema.query_type, queries), (self.schema.mutation_type, mutations)):
            for name, field in root.fields.items():
                field.resolve = self._wrap(table[name]) if name in table else self._unsupported(name)

    def _wrap(self, func):
        def resolve(_root, info, **args):
            principal = info.context['principal']
            if principal is None:
                raise RailwayFault('Not Authorized')
            return func(principal, **args)
        return resolve

    @staticmethod
    def _unsupported(name):
        def resolve(_root, info, **_args):
            info.context['record']['unsupported'] = True
            raise RailwayFault('The Railway fake does not implement %r; railway_service must not need it' % name)
        return resolve

    # access ---------------------------------------------------------------

    def _member_workspaces(self, principal):
        if principal['kind'] == 'account':
            return set(self.workspaces)
        if principal['kind'] == 'workspace':
            return {principal['workspace']}
        return set()

    def _project(self, principal, project_id):
        project = self.projects.get(project_id)
        if project is None or project['deletedAt']:
            raise RailwayFault('Project not found')
        if principal['kind'] == 'project':
            if principal['project'] != project_id:
                raise RailwayFault('Not Authorized')
        elif project['workspaceId'] not in self._member_workspaces(principal):
            raise RailwayFault('Not Authorized')
        return project

    def _environment(self, principal, environment_id, project_id=None):
        env = self.environments.get(environment_id)
        if env is None or (project_id and env['projectId'] != project_id):
            raise RailwayFault('Environment not found')
        self._project(principal, env['projectId'])
        if principal['kind'] == 'project' and principal['environment'] != environment_id:
            raise RailwayFault('Not Authorized')
        return env

    def _service(self, principal, service_id, project_id=None):
        service = self.services.get(service_id)
        if service is None or (project_id and service['projectId'] != project_id):
            raise RailwayFault('Service not found')
        self._project(principal, service['projectId'])
        return service

    def _instance(self, principal, service_id, environment_id):
        self._service(principal, service_id)
        self._environment(principal, environment_id)
        instance = self.instances.get((service_id, environment_id))
        if instance is None:
            raise RailwayFault('ServiceInstance not found')
        return instance

    @staticmethod
    def _only(kind, given, supported):
        extra = sorted(k for k, v in given.items() if k not in supported and v is not None)
        if extra:
            raise RailwayFault('The Railway fake does not model %s: %s' % (kind, ', '.join(extra)))

    # views ----------------------------------------------------------------

    def _project_view(self, p):
        return dict(p, environments=_lazy_connection(lambda: [self._environment_view(e) for e in self._project_envs(p['id'])]),
                    services=_lazy_connection(lambda: [self._service_view(s) for s in self.services.values() if s['projectId'] == p['id']]),
                    volumes=_lazy_connection(lambda: [dict(v) for v in self.volumes.values() if v['projectId'] == p['id']]),
                    workspace=lambda info: dict(self.workspaces[p['workspaceId']]))

    def _project_envs(self, project_id):
        return [e for e in self.environments.values() if e['projectId'] == project_id]

    def _environment_view(self, e):
        return dict(e, serviceInstances=_lazy_connection(
            lambda: [self._instance_view(i) for (sid, eid), i in self.instances.items() if eid == e['id']]),
            volumeInstances=_lazy_connection(
            lambda: [dict(v) for v in self.volume_instances.values() if v['environmentId'] == e['id']]))

    def _service_view(self, s):
        return dict(s)

    def _instance_view(self, i):
        return dict(i, serviceName=self.services[i['serviceId']]['name'],
                    latestDeployment=lambda info: self._deployment_view(self._latest_deployment(i['serviceId'], i['environmentId'])),
                    domains=lambda info: self._domains_view(i['serviceId'], i['environmentId']))

    def _domains_view(self, service_id, environment_id):
        return {'serviceDomains': [dict(d) for d in self.domains.values()
                                   if d['serviceId'] == service_id and d['environmentId'] == environment_id],
                'customDomains': []}

    def _deployment_view(self, d):
        if d is None:
            return None
        view = {k: v for k, v in d.items() if k not in ('plan', 'polls', 'seq', 'logs')}
        return view

    def _latest_deployment(self, service_id, environment_id):
        found = [d for d in self.deployments.values() if d['serviceId'] == service_id and d['environmentId'] == environment_id]
        return max(found, key=lambda d: d['seq']) if found else None

    # queries --------------------------------------------------------------

    def _q_me(self, principal):
        if principal['kind'] != 'account':
            raise RailwayFault('Not Authorized')
        return dict(self.user, workspaces=[dict(w) for w in self.workspaces.values()])

    def _q_api_token(self, principal):
        if principal['kind'] == 'project':
            raise RailwayFault('Not Authorized')
        return {'workspaces': [dict(self.workspaces[w]) for w in sorted(self._member_workspaces(principal))]}

    def _q_project_token(self, principal):
        if principal['kind'] != 'project':
            raise RailwayFault('Project token not found')
        return {'projectId': principal['project'], 'environmentId': principal['environment'],
                'id': 'token-' + principal['project'][:8], 'name': 'federation', 'createdAt': _now(), 'displayToken': '****',
                'project': self._project_view(self.projects[principal['project']]),
                'environment': self._environment_view(self.environments[principal['environment']])}

    def _q_projects(self, principal, workspaceId=None, first=None, after=None, includeDeleted=None, **other):
        self._only('these projects arguments', other, ())
        if principal['kind'] == 'project':
            raise RailwayFault('Not Authorized')
        member = self._member_workspaces(principal)
        if workspaceId is not None and workspaceId not in member:
            raise RailwayFault('Not Authorized')
        wanted = {workspaceId} if workspaceId else member
        items = [self._project_view(p) for p in self.projects.values()
                 if p['workspaceId'] in wanted and (includeDeleted or not p['deletedAt'])]
        return _connection(items, first=first, after=after)

    def _q_project(self, principal, id):
        return self._project_view(self._project(principal, id))

    def _q_environment(self, principal, id, projectId=None):
        return self._environment_view(self._environment(principal, id, projectId))

    def _q_service_instance(self, principal, serviceId, environmentId):
        return self._instance_view(self._instance(principal, serviceId, environmentId))

    def _q_variables(self, principal, projectId, environmentId, serviceId=None, unrendered=None, **other):
        self._only('these variables arguments', other, ())
        env = self._environment(principal, environmentId, projectId)
        if serviceId is not None:
            self._service(principal, serviceId, projectId)
            if (serviceId, environmentId) not in self.instances:
                raise RailwayFault('ServiceInstance not found')
        user = dict(self.variables.get((environmentId, serviceId), {}))
        system = self._system_variables(env, serviceId)
        if not unrendered:
            shared = self.variables.get((environmentId, None), {})
            scope = dict(system, **user)

            def render(match):
                ref = match.group(1)
                if ref.startswith('shared.'):
                    return shared.get(ref[len('shared.'):], '')
                return scope.get(ref, '')
            user = {k: _REFERENCE.sub(render, v) for k, v in user.items()}
        return dict(system, **user)

    def _system_variables(self, env, service_id):
        project = self.projects[env['projectId']]
        values = {'RAILWAY_ENVIRONMENT': env['name'], 'RAILWAY_ENVIRONMENT_NAME': env['name'],
                  'RAILWAY_ENVIRONMENT_ID': env['id'], 'RAILWAY_PROJECT_NAME': project['name'],
                  'RAILWAY_PROJECT_ID': project['id']}
        if service_id:
            service = self.services[service_id]
            values.update({'RAILWAY_SERVICE_NAME': service['name'], 'RAILWAY_SERVICE_ID': service_id,
                           'RAILWAY_PRIVATE_DOMAIN': '%s.railway.internal' % service['name']})
            domains = self._domains_view(service_id, env['id'])['serviceDomains']
            if domains:
                values['RAILWAY_PUBLIC_DOMAIN'] = domains[0]['domain']
        return values

    def _q_deployment(self, principal, id):
        d = self.deployments.get(id)
        if d is None:
            raise RailwayFault('Deployment not found')
        self._environment(principal, d['environmentId'])
        view = self._deployment_view(d)
        self._advance(d)
        return view

    def _logs(self, principal, deploymentId, limit=None, kind='build', **other):
        self._only('these %sLogs arguments' % kind, other, ())
        d = self.deployments.get(deploymentId)
        if d is None:
            raise RailwayFault('Deployment not found')
        self._environment(principal, d['environmentId'])
        lines = [line for line in d['logs'] if line['kind'] == kind]
        if limit is not None:
            lines = lines[-limit:]
        return [{'message': line['message'], 'severity': line['severity'], 'timestamp': line['timestamp'],
                 'attributes': [], 'tags': None} for line in lines]

    def _q_build_logs(self, principal, **args):
        return self._logs(principal, kind='build', **args)

    def _q_deployment_logs(self, principal, **args):
        return self._logs(principal, kind='deploy', **args)

    def _q_domains(self, principal, projectId, environmentId, serviceId):
        self._environment(principal, environmentId, projectId)
        self._service(principal, serviceId, projectId)
        return self._domains_view(serviceId, environmentId)

    # mutations ------------------------------------------------------------

    def _m_project_create(self, principal, input):
        self._only('ProjectCreateInput', input, ('name', 'description', 'defaultEnvironmentName', 'workspaceId', 'isPublic', 'prDeploys'))
        if principal['kind'] == 'project':
            raise RailwayFault('Not Authorized')
        member = self._member_workspaces(principal)
        workspace = input.get('workspaceId')
        if workspace is None:
            if len(member) != 1:
                raise RailwayFault('workspaceId is required: the token can reach %d workspaces' % len(member))
            workspace = next(iter(member))
        if workspace not in member:
            raise RailwayFault('Not Authorized')
        now = _now()
        pid = str(uuid.uuid4())
        project = {'id': pid, 'name': input.get('name') or 'project-%d' % next(self._names), 'workspaceId': workspace,
                   'description': input.get('description'), 'createdAt': now, 'updatedAt': now, 'deletedAt': None,
                   'isPublic': bool(input.get('isPublic')), 'prDeploys': bool(input.get('prDeploys')),
                   'isTempProject': False, 'botPrEnvironments': False, 'focusedPrEnvironments': False,
                   'expiredAt': None, 'baseEnvironmentId': None}
        self.projects[pid] = project
        env = self._new_environment(pid, input.get('defaultEnvironmentName') or 'production')
        project['baseEnvironmentId'] = project['primaryEnvironmentId'] = env['id']
        return self._project_view(project)

    def _new_environment(self, project_id, name, ephemeral=False):
        if any(e['name'] == name for e in self._project_envs(project_id)):
            raise RailwayFault('An environment named %r already exists in this project' % name)
        now = _now()
        eid = str(uuid.uuid4())
        env = {'id': eid, 'name': name, 'projectId': project_id, 'isEphemeral': bool(ephemeral), 'createdAt': now,
               'updatedAt': now, 'deletedAt': None, 'unmergedChangesCount': 0, 'canAccess': True}
        self.environments[eid] = env
        return env

    def _m_environment_create(self, principal, input):
        self._only('EnvironmentCreateInput', input, ('name', 'projectId', 'ephemeral', 'skipInitialDeploys', 'stageInitialChanges'))
        if principal['kind'] == 'project':
            raise RailwayFault('Not Authorized')
        self._project(principal, input['projectId'])
        if input.get('stageInitialChanges'):
            raise RailwayFault('The Railway fake does not model staged changes')
        return self._environment_view(self._new_environment(input['projectId'], input['name'], input.get('ephemeral')))

    def _m_service_create(self, principal, input):
        self._only('ServiceCreateInput', input, ('projectId', 'environmentId', 'name', 'source', 'variables', 'registryCredentials', 'icon'))
        project = self._project(principal, input['projectId'])
        name = input.get('name') or 'service-%d' % next(self._names)
        if any(s['name'] == name for s in self.services.values() if s['projectId'] == project['id']):
            raise RailwayFault('A service named %r already exists in this project' % name)
        if input.get('environmentId'):
            env = self._environment(principal, input['environmentId'], project['id'])
            envs = [env] if env['isEphemeral'] else [e for e in self._project_envs(project['id']) if not e['isEphemeral']]
        else:
            if principal['kind'] == 'project':
                raise RailwayFault('Not Authorized')
            envs = [e for e in self._project_envs(project['id']) if not e['isEphemeral']]
        source = input.get('source') or None
        if source is not None:
            self._only('ServiceSourceInput', source, ('image',))
        now = _now()
        sid = str(uuid.uuid4())
        service = {'id': sid, 'name': name, 'projectId': project['id'], 'createdAt': now, 'updatedAt': now,
                   'deletedAt': None, 'icon': input.get('icon'), 'templateId': None, 'templateServiceId': None,
                   'isRestricted': False, 'hasHiddenRegistryCredentialsFromTemplate': False, 'featureFlags': []}
        self.services[sid] = service
        for env in envs:
            self.instances[(sid, env['id'])] = self._new_instance(sid, env['id'], source)
            if input.get('variables'):
                self._set_variables(env['id'], sid, input['variables'])
            if input.get('registryCredentials'):
                self.registry_credentials[(sid, env['id'])] = input['registryCredentials']['username']
            if source:  # a service created with a source deploys at once
                self._new_deployment(self.instances[(sid, env['id'])])
        return self._service_view(service)

    @staticmethod
    def _new_instance(service_id, environment_id, source):
        now = _now()
        return {'id': str(uuid.uuid4()), 'serviceId': service_id, 'environmentId': environment_id,
                'source': {'image': source.get('image'), 'repo': None} if source else None,
                'startCommand': None, 'healthcheckPath': None, 'healthcheckTimeout': None, 'region': 'us-west2',
                'numReplicas': 1, 'restartPolicyType': 'ON_FAILURE', 'restartPolicyMaxRetries': 10,
                'sleepApplication': False, 'builder': 'RAILPACK', 'createdAt': now, 'updatedAt': now, 'deletedAt': None,
                'isUpdatable': True, 'watchPatterns': [], 'rootDirectory': None, 'buildCommand': None,
                'cronSchedule': None, 'dockerfilePath': None, 'railwayConfigFile': None, 'upstreamUrl': None}

    _INSTANCE_SETTINGS = ('source', 'startCommand', 'healthcheckPath', 'healthcheckTimeout', 'region', 'numReplicas',
                          'restartPolicyType', 'restartPolicyMaxRetries', 'sleepApplication', 'registryCredentials')

    def _m_service_instance_update(self, principal, serviceId, input, environmentId=None):
        self._only('ServiceInstanceUpdateInput', input, self._INSTANCE_SETTINGS)
        service = self._service(principal, serviceId)
        if environmentId is None:
            if principal['kind'] == 'project':
                raise RailwayFault('Not Authorized')
            targets = [i for (sid, eid), i in self.instances.items() if sid == serviceId and not self.environments[eid]['isEphemeral']]
        else:
            env = self._environment(principal, environmentId, service['projectId'])
            self._instance(principal, serviceId, environmentId)
            targets = ([self.instances[(serviceId, environmentId)]] if env['isEphemeral'] else
                       [i for (sid, eid), i in self.instances.items() if sid == serviceId and not self.environments[eid]['isEphemeral']])
        if input.get('numReplicas') is not None and not 1 <= input['numReplicas'] <= 50:
            raise RailwayFault('numReplicas must be between 1 and 50')
        if input.get('restartPolicyMaxRetries') is not None and input['restartPolicyMaxRetries'] < 0:
            raise RailwayFault('restartPolicyMaxRetries must not be negative')
        if input.get('healthcheckPath') is not None and not input['healthcheckPath'].startswith('/'):
            raise RailwayFault('healthcheckPath must start with /')
        for instance in targets:
            for key, value in input.items():
                if key == 'source':
                    if value is not None:
                        self._only('ServiceSourceInput', value, ('image',))
                    instance['source'] = {'image': value.get('image'), 'repo': None} if value else None
                elif key == 'registryCredentials':
                    if value:
                        self.registry_credentials[(serviceId, instance['environmentId'])] = value['username']
                elif key in ('numReplicas', 'restartPolicyType', 'restartPolicyMaxRetries') and value is None:
                    continue
                else:
                    instance[key] = value
            instance['updatedAt'] = _now()
        return True

    def _m_service_delete(self, principal, id, environmentId=None):
        service = self._service(principal, id)
        if environmentId is not None:
            env = self._environment(principal, environmentId, service['projectId'])
            envs = [env['id']] if env['isEphemeral'] else [e['id'] for e in self._project_envs(service['projectId']) if not e['isEphemeral']]
        else:
            if principal['kind'] == 'project':
                raise RailwayFault('Not Authorized')
            envs = [e['id'] for e in self._project_envs(service['projectId'])]
        for eid in envs:
            self.instances.pop((id, eid), None)
            self.variables.pop((eid, id), None)
            for did in [k for k, d in self.domains.items() if d['serviceId'] == id and d['environmentId'] == eid]:
                del self.domains[did]
            for d in self.deployments.values():
                if d['serviceId'] == id and d['environmentId'] == eid and d['status'] not in ('REMOVED', 'FAILED', 'CRASHED'):
                    d['status'] = 'REMOVED'
            for vi in self.volume_instances.values():
                if vi['serviceId'] == id and vi['environmentId'] == eid:
                    vi['serviceId'] = None
        if not any(key[0] == id for key in self.instances):
            del self.services[id]
        return True

    def _variable_target(self, principal, input):
        env = self._environment(principal, input['environmentId'], input['projectId'])
        service_id = input.get('serviceId')
        if service_id is not None:
            self._service(principal, service_id, input['projectId'])
            if (service_id, env['id']) not in self.instances:
                raise RailwayFault('ServiceInstance not found')
        return env, service_id

    @staticmethod
    def _check_names(names):
        bad = [n for n in names if not _VARIABLE_NAME.match(n) or n.startswith('RAILWAY_')]
        if bad:
            raise RailwayFault('Invalid variable name(s): %s' % ', '.join(sorted(bad)))

    def _set_variables(self, environment_id, service_id, values, replace=False):
        self._check_names(values)
        store = self.variables.setdefault((environment_id, service_id), {})
        if replace:
            store.clear()
        store.update(values)

    def _redeploy_after_variables(self, env, service_id):
        """Without skipDeploys, Railway redeploys what the change touches."""
        targets = ([self.instances[(service_id, env['id'])]] if service_id else
                   [i for (sid, eid), i in self.instances.items() if eid == env['id']])
        for instance in targets:
            if instance['source']:
                self._new_deployment(instance)

    def _m_variable_collection_upsert(self, principal, input):
        env, service_id = self._variable_target(principal, input)
        self._set_variables(env['id'], service_id, input['variables'], replace=input.get('replace'))
        if not input.get('skipDeploys'):
            self._redeploy_after_variables(env, service_id)
        return True

    def _m_variable_upsert(self, principal, input):
        env, service_id = self._variable_target(principal, input)
        self._set_variables(env['id'], service_id, {input['name']: input['value']})
        if not input.get('skipDeploys'):
            self._redeploy_after_variables(env, service_id)
        return True

    def _m_variable_delete(self, principal, input):
        env, service_id = self._variable_target(principal, input)
        store = self.variables.get((env['id'], service_id), {})
        if input['name'] not in store:
            raise RailwayFault('Variable %r not found' % input['name'])
        del store[input['name']]
        self._redeploy_after_variables(env, service_id)
        return True

    def _m_service_domain_create(self, principal, input):
        service = self._service(principal, input['serviceId'])
        env = self._environment(principal, input['environmentId'], service['projectId'])
        self._instance(principal, service['id'], env['id'])
        if self._domains_view(service['id'], env['id'])['serviceDomains']:
            raise RailwayFault('Service %r already has a Railway domain in environment %r' % (service['name'], env['name']))
        port = input.get('targetPort')
        if port is not None and not 1 <= port <= 65535:
            raise RailwayFault('targetPort must be between 1 and 65535')
        did = str(uuid.uuid4())
        label = re.sub(r'[^a-z0-9-]', '-', ('%s-%s' % (service['name'], env['name'])).lower())[:50]
        domain = {'id': did, 'domain': '%s-%s.up.railway.app' % (label, secrets.token_hex(2)), 'suffix': 'up.railway.app',
                  'targetPort': port, 'environmentId': env['id'], 'serviceId': service['id'], 'projectId': service['projectId'],
                  'createdAt': _now(), 'updatedAt': _now(), 'deletedAt': None, 'syncStatus': 'ACTIVE', 'cdnMode': None,
                  'edgeId': None, 'newDomainName': None, 'newHostLabel': None}
        self.domains[did] = domain
        return dict(domain)

    def _m_service_domain_update(self, principal, input):
        domain = self.domains.get(input['serviceDomainId'])
        if domain is None or domain['serviceId'] != input['serviceId'] or domain['environmentId'] != input['environmentId']:
            raise RailwayFault('Service domain not found')
        self._environment(principal, domain['environmentId'])
        if input['domain'] != domain['domain']:
            raise RailwayFault('The Railway fake does not model renaming a service domain')
        port = input.get('targetPort')
        if port is not None and not 1 <= port <= 65535:
            raise RailwayFault('targetPort must be between 1 and 65535')
        domain['targetPort'] = port
        domain['updatedAt'] = _now()
        return True

    def _m_deploy_v2(self, principal, serviceId, environmentId, commitSha=None):
        if commitSha is not None:
            raise RailwayFault('The Railway fake does not model commitSha (image services only)')
        instance = self._instance(principal, serviceId, environmentId)
        if not instance['source'] or not instance['source'].get('image'):
            raise RailwayFault('Service has no source to deploy: connect an image or a repository first')
        return self._new_deployment(instance)['id']

    def _new_deployment(self, instance):
        outcome = self.deploy_outcomes.popleft() if self.deploy_outcomes else 'SUCCESS'
        plan = list(PLANS[outcome])
        for d in self.deployments.values():  # a new deployment supersedes the ones still in progress
            if d['serviceId'] == instance['serviceId'] and d['environmentId'] == instance['environmentId'] and d['status'] in IN_PROGRESS:
                d['status'] = 'REMOVED'
                d['statusUpdatedAt'] = _now()
        env = self.environments[instance['environmentId']]
        domains = self._domains_view(instance['serviceId'], env['id'])['serviceDomains']
        now = _now()
        image = instance['source']['image']
        logs = [{'kind': 'build', 'severity': 'info', 'timestamp': now, 'message': 'Pulling image %s' % image}]
        if outcome == 'FAILED':
            logs.append({'kind': 'build', 'severity': 'error', 'timestamp': now,
                         'message': 'failed to pull image %s: manifest unknown' % image})
        if outcome == 'CRASHED':
            logs.append({'kind': 'deploy', 'severity': 'error', 'timestamp': now, 'message': 'process exited with code 1'})
        deployment = {'id': str(uuid.uuid4()), 'serviceId': instance['serviceId'], 'environmentId': env['id'],
                      'projectId': env['projectId'], 'status': plan[0], 'createdAt': now, 'updatedAt': now,
                      'statusUpdatedAt': now, 'url': domains[0]['domain'] if domains else None,
                      'staticUrl': domains[0]['domain'] if domains else None, 'canRedeploy': True, 'canRollback': False,
                      'deploymentStopped': False, 'meta': {'image': image}, 'suggestAddServiceDomain': not domains,
                      'snapshotId': None, 'instances': [], 'sockets': [],
                      'plan': plan, 'polls': 0, 'seq': len(self.deployments), 'logs': logs}
        self.deployments[deployment['id']] = deployment
        return deployment

    def _advance(self, d):
        if d['status'] not in IN_PROGRESS:
            return
        d['polls'] += 1
        step = min(d['polls'] // max(1, self.polls_per_status), len(d['plan']) - 1)
        status = d['plan'][step]
        if status != d['status']:
            d['status'] = status
            d['statusUpdatedAt'] = d['updatedAt'] = _now()
            if status == 'SUCCESS':
                for other in self.deployments.values():
                    if (other is not d and other['serviceId'] == d['serviceId'] and other['environmentId'] == d['environmentId']
                            and other['status'] == 'SUCCESS'):
                        other['status'] = 'REMOVED'

    def _m_volume_create(self, principal, input):
        self._only('VolumeCreateInput', input, ('projectId', 'environmentId', 'serviceId', 'mountPath'))
        project = self._project(principal, input['projectId'])
        if not input['mountPath'].startswith('/'):
            raise RailwayFault('mountPath must be an absolute path')
        service_id = input.get('serviceId')
        if service_id is not None:
            self._service(principal, service_id, project['id'])
        if 'environmentId' not in input:  # undefined: every environment
            if principal['kind'] == 'project':
                raise RailwayFault('Not Authorized')
            envs = self._project_envs(project['id'])
        elif input['environmentId'] is None:
            envs = []
        else:
            envs = [self._environment(principal, input['environmentId'], project['id'])]
        for env in envs:
            if service_id and any(vi['serviceId'] == service_id and vi['environmentId'] == env['id'] for vi in self.volume_instances.values()):
                raise RailwayFault('A service can only have one volume: %r already has one in %r'
                                   % (self.services[service_id]['name'], env['name']))
        vid = str(uuid.uuid4())
        volume = {'id': vid, 'name': '%s-volume' % (self.services[service_id]['name'] if service_id else 'volume-%d' % next(self._names)),
                  'projectId': project['id'], 'createdAt': _now()}
        self.volumes[vid] = volume
        for env in envs:
            iid = str(uuid.uuid4())
            self.volume_instances[iid] = {'id': iid, 'volumeId': vid, 'environmentId': env['id'],
                                          'serviceId': service_id if (service_id, env['id']) in self.instances else None,
                                          'mountPath': input['mountPath'], 'state': 'READY', 'sizeMB': 5000,
                                          'currentSizeMB': 0.0, 'region': 'us-west2', 'createdAt': _now(),
                                          'deletedAt': None, 'externalId': None, 'isPendingDeletion': False}
        return dict(volume)

    def _m_volume_instance_update(self, principal, volumeId, input, environmentId=None):
        self._only('VolumeInstanceUpdateInput', input, ('mountPath', 'serviceId'))
        volume = self.volumes.get(volumeId)
        if volume is None:
            raise RailwayFault('Volume not found')
        self._project(principal, volume['projectId'])
        targets = [vi for vi in self.volume_instances.values() if vi['volumeId'] == volumeId
                   and (environmentId is None or vi['environmentId'] == environmentId)]
        if environmentId is not None:
            self._environment(principal, environmentId, volume['projectId'])
        if not targets:
            raise RailwayFault('Volume instance not found')
        if input.get('mountPath') is not None and not input['mountPath'].startswith('/'):
            raise RailwayFault('mountPath must be an absolute path')
        for vi in targets:
            if input.get('mountPath') is not None:
                vi['mountPath'] = input['mountPath']
            if 'serviceId' in input:
                vi['serviceId'] = input['serviceId']
        return True

    def _m_volume_delete(self, principal, volumeId):
        volume = self.volumes.get(volumeId)
        if volume is None:
            raise RailwayFault('Volume not found')
        self._project(principal, volume['projectId'])
        if principal['kind'] == 'project':
            raise RailwayFault('Not Authorized')
        del self.volumes[volumeId]
        for iid in [k for k, vi in self.volume_instances.items() if vi['volumeId'] == volumeId]:
            del self.volume_instances[iid]
        return True


def _locations(error):
    return [{'line': loc.line, 'column': loc.column} for loc in (error.locations or [])]


class _Handler(BaseHTTPRequestHandler):
    fake = None  # set per server
    protocol_version = 'HTTP/1.1'
    server_version = 'railway-fake'

    def log_message(self, *args):  # keep test output quiet
        pass

    def _send(self, status, document, headers=None):
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json; charset=utf-8')
        self.send_header('Content-Length', str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length)
        if self.path.split('?')[0] != GRAPHQL_PATH:
            return self._send(404, {'errors': [{'message': 'Not found: %s' % self.path}]})
        status, headers, document = self.fake.handle_graphql(self.headers, body)
        self._send(status, document, headers)

    def do_GET(self):
        path = self.path.split('?')[0]
        if path.startswith('/edge/'):
            rest = path[len('/edge/'):]
            domain, tail = (rest.split('/', 1) + [''])[:2]
            status, document = self.fake.handle_edge(domain, '/' + tail)
            return self._send(status, document)
        if path == GRAPHQL_PATH:
            return self._send(405, {'errors': [{'message': 'Use POST'}]}, {'Allow': 'POST'})
        self._send(404, {'errors': [{'message': 'Not found: %s' % self.path}]})

    do_HEAD = do_GET
