"""A stand-in for HashiCorp Vault's KV version 2 HTTP API, on loopback.

HashiCorp Vault cannot be installed on these machines, so the tests of the hashi_vault secrets
backend talk to this server instead. It is a real HTTP server that keeps state and answers the
subset of the API the collection uses the way Vault does, refusals included:

- ``GET /v1/<mount>/data/<path>[?version=N]``: 200 with ``data.data`` and ``data.metadata``;
  404 ``{"errors": []}`` when nothing was written; 404 with the version's metadata when the
  version was deleted or destroyed.
- ``POST|PUT /v1/<mount>/data/<path>`` with ``{"data": {...}, "options": {"cas": N}}``: a new
  version; 400 ``check-and-set parameter did not match the current version`` when ``cas`` is not
  the current version (0: only when the path has no version yet), 400
  ``check-and-set parameter required for this call`` when the mount or the key requires cas,
  400 ``no data provided``; old versions beyond ``max_versions`` (default 10) are dropped.
- ``DELETE /v1/<mount>/data/<path>``: soft-deletes the latest version (204).
- ``GET|DELETE /v1/<mount>/metadata/<path>``, ``LIST`` (or ``GET ?list=true``) on a folder.
- ``GET|POST /v1/<mount>/config`` (``cas_required``, ``max_versions``).
- ``GET /v1/sys/health``.
- Authentication by ``X-Vault-Token`` (or ``Authorization: Bearer``): 403 ``permission denied``
  for a missing or unknown token, or one whose policy does not cover the path.
- ``seal()`` makes every request answer 503 ``Vault is sealed``.

    server = VaultFake(root_token='...').start()   # server.url, server.stop()
"""

from __future__ import annotations

import datetime
import json
import re
import secrets
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from .common import free_port

_PATH = re.compile(r'^/v1/(?P<mount>[^/]+)/(?P<kind>data|metadata|config)(?:/(?P<path>.*))?$')


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')


class _Key(object):
    def __init__(self):
        self.versions = {}            # number -> {data, created_time, deletion_time, destroyed}
        self.current_version = 0
        self.oldest_version = 0
        self.created_time = _now()
        self.updated_time = self.created_time
        self.max_versions = 0
        self.cas_required = False
        self.custom_metadata = None

    def version_metadata(self, number):
        version = self.versions[number]
        return {'created_time': version['created_time'], 'deletion_time': version['deletion_time'],
                'destroyed': version['destroyed'], 'version': number, 'custom_metadata': self.custom_metadata}


class VaultFake(object):
    """The server: ``mounts`` is the KV v2 engines by mount name, each {config, keys}."""

    def __init__(self, root_token=None, mounts=('secret',), port=0):
        self.root_token = root_token or 'hvs.' + secrets.token_urlsafe(24)
        self.tokens = {self.root_token: None}   # token -> list of allowed path prefixes (None: everything)
        self.mounts = {m: {'config': {'cas_required': False, 'max_versions': 0}, 'keys': {}} for m in mounts}
        self.port = port
        self.sealed = False
        self.requests = []                      # (method, path) of every request, for the tests
        self._lock = threading.Lock()
        self._server = None
        self._thread = None

    @property
    def url(self):
        return 'http://127.0.0.1:%d' % self.port

    def add_token(self, allowed_prefixes):
        """A token that may only touch paths (``<mount>/data/<path>``...) starting with one of the prefixes."""
        token = 'hvs.' + secrets.token_urlsafe(24)
        self.tokens[token] = list(allowed_prefixes)
        return token

    def seal(self):
        self.sealed = True

    def unseal(self):
        self.sealed = False

    def start(self):
        if not self.port:
            self.port = free_port()
        fake = self

        class Handler(_Handler):
            server_state = fake

        self._server = ThreadingHTTPServer(('127.0.0.1', self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name='vault-fake', daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # Direct reads for assertions.
    def read(self, mount, path, version=None):
        key = self.mounts[mount]['keys'].get(path)
        if key is None:
            return None
        number = version or key.current_version
        return dict(key.versions[number]['data']) if number in key.versions else None

    def current_version(self, mount, path):
        key = self.mounts[mount]['keys'].get(path)
        return key.current_version if key else 0

    # The API.
    def handle(self, method, raw_path, headers, body):
        parts = urlsplit(raw_path)
        path = unquote(parts.path)
        query = parse_qs(parts.query)
        with self._lock:
            self.requests.append((method, path))
            if path == '/v1/sys/health':
                return (503 if self.sealed else 200), {'initialized': True, 'sealed': self.sealed, 'standby': False,
                                                       'version': '1.15.0-federation-fake'}
            if self.sealed:
                return 503, {'errors': ['Vault is sealed']}
            token = headers.get('X-Vault-Token') or ''
            auth = headers.get('Authorization') or ''
            if not token and auth.lower().startswith('bearer '):
                token = auth[7:].strip()
            if token not in self.tokens:
                return 403, {'errors': ['permission denied']}
            match = _PATH.match(path)
            if not match or match.group('mount') not in self.mounts:
                return 404, {'errors': ['no handler for route "%s". route entry not found.' % path[len('/v1/'):]]}
            allowed = self.tokens[token]
            if allowed is not None and not any(path[len('/v1/'):].startswith(p) for p in allowed):
                return 403, {'errors': ['1 error occurred:\n\t* permission denied\n\n']}
            if method == 'GET' and query.get('list') == ['true']:
                method = 'LIST'
            mount = self.mounts[match.group('mount')]
            kind, key_path = match.group('kind'), (match.group('path') or '')
            if kind == 'config':
                return self._config(mount, method, body)
            if kind == 'data':
                if not key_path or key_path.endswith('/'):
                    return 404, {'errors': []}
                return self._data(mount, key_path, method, query, body)
            return self._metadata(mount, key_path, method)

    def _envelope(self, data):
        return {'request_id': str(uuid.uuid4()), 'lease_id': '', 'renewable': False, 'lease_duration': 0,
                'data': data, 'wrap_info': None, 'warnings': None, 'auth': None, 'mount_type': 'kv'}

    def _config(self, mount, method, body):
        if method == 'GET':
            config = dict(mount['config'], delete_version_after='0s')
            return 200, self._envelope(config)
        if method in ('POST', 'PUT'):
            payload, error = _json(body)
            if error:
                return 400, {'errors': [error]}
            for name in ('cas_required', 'max_versions'):
                if name in payload:
                    mount['config'][name] = payload[name]
            return 204, None
        return 405, {'errors': ['1 error occurred:\n\t* unsupported operation\n\n']}

    def _data(self, mount, path, method, query, body):
        keys = mount['keys']
        key = keys.get(path)
        if method == 'GET':
            if key is None or key.current_version == 0:
                return 404, {'errors': []}
            try:
                number = int((query.get('version') or ['0'])[0]) or key.current_version
            except ValueError:
                return 400, {'errors': ['1 error occurred:\n\t* version: invalid syntax\n\n']}
            if number not in key.versions:
                return 404, {'errors': []}
            version = key.versions[number]
            answer = self._envelope({'data': None, 'metadata': key.version_metadata(number)})
            if version['deletion_time'] or version['destroyed']:
                return 404, answer
            answer['data']['data'] = json.loads(json.dumps(version['data']))
            return 200, answer
        if method in ('POST', 'PUT'):
            payload, error = _json(body)
            if error:
                return 400, {'errors': [error]}
            data = payload.get('data')
            if not isinstance(data, dict):
                return 400, {'errors': ['no data provided']}
            options = payload.get('options') or {}
            if not isinstance(options, dict):
                return 400, {'errors': ['1 error occurred:\n\t* options: expected a map\n\n']}
            current = key.current_version if key else 0
            if 'cas' in options:
                try:
                    cas = int(options['cas'])
                except (TypeError, ValueError):
                    return 400, {'errors': ['error parsing check-and-set parameter']}
                if cas != current:
                    return 400, {'errors': ['check-and-set parameter did not match the current version']}
            elif mount['config']['cas_required'] or (key and key.cas_required):
                return 400, {'errors': ['check-and-set parameter required for this call']}
            if key is None:
                key = keys[path] = _Key()
            number = key.current_version + 1
            key.versions[number] = {'data': json.loads(json.dumps(data)), 'created_time': _now(),
                                    'deletion_time': '', 'destroyed': False}
            key.current_version = number
            key.updated_time = key.versions[number]['created_time']
            keep = key.max_versions or mount['config']['max_versions'] or 10
            for old in sorted(key.versions):
                if len(key.versions) <= keep:
                    break
                del key.versions[old]
            key.oldest_version = min(key.versions)
            return 200, self._envelope(key.version_metadata(number))
        if method == 'DELETE':
            if key is not None and key.current_version in key.versions:
                key.versions[key.current_version]['deletion_time'] = _now()
            return 204, None
        return 405, {'errors': ['1 error occurred:\n\t* unsupported operation\n\n']}

    def _metadata(self, mount, path, method):
        keys = mount['keys']
        if method == 'LIST':
            prefix = path if not path or path.endswith('/') else path + '/'
            names = sorted({k[len(prefix):].split('/')[0] + ('/' if '/' in k[len(prefix):] else '')
                            for k in keys if k.startswith(prefix)})
            if not names:
                return 404, {'errors': []}
            return 200, self._envelope({'keys': names})
        key = keys.get(path)
        if method == 'GET':
            if key is None:
                return 404, {'errors': []}
            return 200, self._envelope({
                'cas_required': key.cas_required, 'created_time': key.created_time,
                'current_version': key.current_version, 'custom_metadata': key.custom_metadata,
                'delete_version_after': '0s', 'max_versions': key.max_versions, 'oldest_version': key.oldest_version,
                'updated_time': key.updated_time,
                'versions': {str(n): {k: v for k, v in version.items() if k != 'data'}
                             for n, version in sorted(key.versions.items())}})
        if method == 'DELETE':
            keys.pop(path, None)
            return 204, None
        return 405, {'errors': ['1 error occurred:\n\t* unsupported operation\n\n']}


def _json(body):
    if not body:
        return {}, None
    try:
        value = json.loads(body)
    except ValueError as exc:
        return None, 'failed to parse JSON input: %s' % exc
    if not isinstance(value, dict):
        return None, 'failed to parse JSON input: expected an object'
    return value, None


class _Handler(BaseHTTPRequestHandler):
    server_state = None
    protocol_version = 'HTTP/1.1'

    def log_message(self, format, *args):  # quiet: the tests read state, not logs
        pass

    def _serve(self, method):
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length) if length else b''
        status, payload = self.server_state.handle(method, self.path, self.headers, body)
        raw = b'' if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header('Cache-Control', 'no-store')
        if raw:
            self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(raw)))
        self.end_headers()
        if raw:
            self.wfile.write(raw)

    def do_GET(self):
        self._serve('GET')

    def do_POST(self):
        self._serve('POST')

    def do_PUT(self):
        self._serve('PUT')

    def do_DELETE(self):
        self._serve('DELETE')

    def do_LIST(self):
        self._serve('LIST')
