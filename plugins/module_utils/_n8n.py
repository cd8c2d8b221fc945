# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: no compatibility promise outside federation.platform.
"""The n8n client every n8n module of the collection starts from.

One class, ``N8nClient``, talks to both the public API (``/api/v1``, authenticated by the
``X-N8N-API-KEY`` header) and the internal REST API (``/rest``, a session cookie, used only to
bootstrap an instance). It raises typed errors (``NotFound``, ``Conflict``, ``Unauthorized``) that
carry n8n's own message, follows ``nextCursor`` pagination, tells n8n 1.x from 2.x, and retries
requests that failed on the server's side (5xx, connection refused or reset) with a growing pause.

Nothing here prints or returns a secret: error messages carry n8n's ``message`` field only (never
its stack trace or the request body), and callers scrub them with ``scrub()`` before showing them.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import time

from http.client import HTTPException, RemoteDisconnected
from http.cookiejar import CookieJar
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode

from ansible.module_utils.basic import env_fallback
from ansible.module_utils.urls import Request

API_PREFIX = '/api/v1'
REST_PREFIX = '/rest'
PAGE_LIMIT = 250

# Methods that change nothing when repeated: retried on any 5xx and on any connection failure.
_IDEMPOTENT = frozenset(('GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'))
# Statuses that mean the request was not processed (a proxy or a server that is not up yet):
# retried for every method, POST and PATCH included.
_NOT_PROCESSED = frozenset((502, 503, 504))


def n8n_argument_spec():
    """Connection options shared by every n8n module (see doc fragment federation.platform.n8n)."""
    return dict(
        url=dict(type='str', required=True, fallback=(env_fallback, ['N8N_URL'])),
        api_key=dict(type='str', no_log=True, fallback=(env_fallback, ['N8N_API_KEY'])),
        validate_certs=dict(type='bool', default=True),
        timeout=dict(type='int', default=30),
        retries=dict(type='int', default=3),
    )


class N8nError(Exception):
    """A request to n8n failed. ``status`` is the HTTP status (None when no answer came)."""

    def __init__(self, message, status=None, method=None, path=None):
        self.message = message
        self.status = status
        self.method = method
        self.path = path
        super(N8nError, self).__init__(message)

    def __str__(self):
        if self.status:
            return '%s (HTTP %s)' % (self.message, self.status)
        return self.message


class BadRequest(N8nError):
    """400: n8n rejected the request body or parameters."""


class Unauthorized(N8nError):
    """401: no key, a wrong key, or a wrong password."""


class Forbidden(N8nError):
    """403: a missing API-key scope or an unlicensed feature."""


class NotFound(N8nError):
    """404."""


class MethodNotAllowed(N8nError):
    """405: the endpoint does not exist in this version (for example GET /credentials on 1.x)."""


class Conflict(N8nError):
    """409."""


class ServerError(N8nError):
    """5xx after the retries, or no answer at all."""


_BY_STATUS = {400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 405: MethodNotAllowed, 409: Conflict}


def error_for(status, message, method=None, path=None):
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status is None or status >= 500 else N8nError
    return cls(message, status, method, path)


def scrub(text, secrets):
    """``text`` with every secret value in ``secrets`` replaced by ********."""
    text = '' if text is None else str(text)
    for value in sorted({str(s) for s in secrets if s not in (None, '') and len(str(s)) >= 4}, key=len, reverse=True):
        text = text.replace(value, '********')
    return text


def _message_of(body, status):
    """n8n's own message from an error body (JSON ``message``), never its stack trace."""
    text = body.decode('utf-8', 'replace') if isinstance(body, bytes) else (body or '')
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        message = doc.get('message') or doc.get('error')
        if isinstance(message, str) and message.strip():
            return message.strip()
    text = re.sub(r'<[^>]+>', ' ', text)
    text = ' '.join(text.split())
    if not text:
        return 'no message (HTTP %s)' % status
    return text[:300]


class N8nClient(object):
    """A connection to one n8n instance.

    ``url`` is the instance's base URL (``http://host:5678``). ``api_key`` authenticates the public
    API. ``sleep`` is injectable so tests of the retry logic do not wait.
    """

    def __init__(self, url, api_key=None, validate_certs=True, timeout=30, retries=3, sleep=time.sleep):
        self.url = (url or '').rstrip('/')
        self.api_key = api_key or None
        self.timeout = timeout
        self.retries = max(0, retries)
        self.sleep = sleep
        self.cookies = CookieJar()
        self._request = Request(validate_certs=validate_certs, cookies=self.cookies, timeout=timeout,
                                follow_redirects='safe')
        self._major = None
        self._credential_page = None
        self.requests = []   # (method, path) of every request sent, for tests and check-mode proofs

    @classmethod
    def from_params(cls, params, **kwargs):
        return cls(params['url'], api_key=params.get('api_key'), validate_certs=params.get('validate_certs', True),
                   timeout=params.get('timeout') or 30, retries=params.get('retries', 3), **kwargs)

    @property
    def where(self):
        return 'n8n at %s' % self.url

    # -- transport -----------------------------------------------------------------------------

    def raw(self, method, url, body=None, headers=None, timeout=None, retry=True):
        """Send one request; return (status, headers, body bytes) for any HTTP answer.

        Retries 5xx answers and connection failures (see the module docstring); raises
        ServerError when no answer came after the retries.
        """
        data = None
        all_headers = {'Accept': 'application/json'}
        if body is not None:
            data = json.dumps(body).encode('utf-8')
            all_headers['Content-Type'] = 'application/json'
        all_headers.update(headers or {})
        attempts = 1 + (self.retries if retry else 0)
        path = url[len(self.url):] if url.startswith(self.url) else url
        last = None
        for attempt in range(attempts):
            if attempt:
                self.sleep(min(0.5 * (2 ** (attempt - 1)), 8))
            self.requests.append((method, path))
            try:
                resp = self._request.open(method, url, data=data, headers=all_headers, timeout=timeout or self.timeout)
                return resp.getcode(), dict(resp.headers.items()), resp.read()
            except HTTPError as exc:
                status = exc.code
                try:
                    payload = exc.read()
                except Exception:  # a body that cannot be read is no body
                    payload = b''
                if status >= 500 and (method in _IDEMPOTENT or status in _NOT_PROCESSED) and attempt + 1 < attempts:
                    last = error_for(status, _message_of(payload, status), method, path)
                    continue
                return status, dict(exc.headers.items()) if exc.headers else {}, payload
            except (URLError, socket.timeout, ConnectionError, RemoteDisconnected, HTTPException, OSError) as exc:
                reason = getattr(exc, 'reason', exc)
                last = ServerError('no answer from %s: %s' % (self.url, reason), None, method, path)
                refused = isinstance(reason, ConnectionRefusedError) or 'refused' in str(reason).lower()
                if method in _IDEMPOTENT or refused:
                    continue
                raise last
        raise last

    def call(self, method, path, body=None, query=None, prefix=API_PREFIX, expect=None, retry=True):
        """One JSON request to ``prefix + path``; returns the decoded answer or raises a typed N8nError."""
        url = self.url + prefix + path
        if query:
            url += '?' + urlencode([(k, _query_value(v)) for k, v in query.items() if v is not None])
        headers = {}
        if prefix == API_PREFIX:
            if not self.api_key:
                raise Unauthorized('no API key was given', None, method, path)
            headers['X-N8N-API-KEY'] = self.api_key
        status, dummy, payload = self.raw(method, url, body, headers, retry=retry)
        if status >= 400 or (expect is not None and status not in expect):
            raise error_for(status, _message_of(payload, status), method, path)
        if not payload:
            return None
        try:
            doc = json.loads(payload.decode('utf-8'))
        except ValueError:
            raise N8nError('the answer to %s %s is not JSON (is %s an n8n instance, and is it ready?)'
                           % (method, path, self.url), status, method, path)
        if prefix == REST_PREFIX and isinstance(doc, dict) and 'data' in doc:
            return doc['data']
        return doc

    def api(self, method, path, body=None, query=None, **kwargs):
        return self.call(method, path, body=body, query=query, prefix=API_PREFIX, **kwargs)

    def rest(self, method, path, body=None, query=None, **kwargs):
        return self.call(method, path, body=body, query=query, prefix=REST_PREFIX, **kwargs)

    def paginate(self, path, query=None):
        """Every item of a public-API list, following ``nextCursor``."""
        query = dict(query or {})
        query.setdefault('limit', PAGE_LIMIT)
        seen = set()
        while True:
            page = self.api('GET', path, query=query)
            yield from page.get('data') or []
            cursor = page.get('nextCursor')
            if not cursor or cursor in seen:
                return
            seen.add(cursor)
            query['cursor'] = cursor

    # -- versions ------------------------------------------------------------------------------

    @property
    def major(self):
        """1 or 2, told apart by what the API can do: 1.x has no credential list (405)."""
        if self._major is None:
            try:
                self._credential_page = self.api('GET', '/credentials', query={'limit': PAGE_LIMIT})
                self._major = 2
            except MethodNotAllowed:
                self._major = 1
            except Forbidden:
                self._major = 2  # a 2.x key without the credential:list scope
        return self._major

    def credentials(self):
        """Every credential (id, name, type) on 2.x; None on 1.x, which cannot list them."""
        if self.major < 2:
            return None
        first = self._credential_page
        self._credential_page = None
        if first is None:
            return list(self.paginate('/credentials'))
        items = list(first.get('data') or [])
        if first.get('nextCursor'):
            items.extend(self.paginate('/credentials', {'cursor': first['nextCursor']}))
        return items

    def version_from_page(self):
        """The version the editor page announces (``n8n@X.Y.Z`` in its release meta), or None."""
        try:
            status, dummy, payload = self.raw('GET', self.url + '/', headers={'Accept': 'text/html'})
        except N8nError:
            return None
        if status != 200:
            return None
        text = payload.decode('utf-8', 'replace')
        for match in re.finditer(r'<meta name="n8n:config:sentry" content="([A-Za-z0-9+/=]+)"', text):
            try:
                doc = json.loads(base64.b64decode(match.group(1)).decode('utf-8'))
            except (ValueError, TypeError):
                continue
            found = re.match(r'^n8n@(\d+\.\d+\.\d+\S*)$', str(doc.get('release', '')))
            if found:
                return found.group(1)
        return None

    # -- readiness -----------------------------------------------------------------------------

    def ready(self):
        """True when the REST and public API routes exist (``/healthz`` answers earlier than that)."""
        try:
            status, dummy, payload = self.raw('GET', self.url + REST_PREFIX + '/settings', retry=False)
            if status != 200:
                return False
            json.loads(payload.decode('utf-8'))   # the "n8n is starting up" page is HTML
            status, dummy, payload = self.raw('GET', self.url + API_PREFIX + '/workflows?limit=1', retry=False)
            if status not in (200, 401):
                return False
            json.loads(payload.decode('utf-8'))
            return True
        except (N8nError, ValueError):
            return False

    def wait_ready(self, timeout, interval=0.5, clock=time.monotonic):
        deadline = clock() + timeout
        while True:
            if self.ready():
                return True
            if clock() >= deadline:
                return False
            self.sleep(interval)


def _query_value(value):
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return str(value)


def quote_id(value):
    """A path segment: ids are URL-quoted so no value can change the path."""
    return quote(str(value), safe='')
