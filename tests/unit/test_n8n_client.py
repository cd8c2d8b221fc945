"""The n8n client against a small real HTTP server on loopback that answers what each test scripts."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.federation.platform.plugins.module_utils._n8n import (
    Conflict, MethodNotAllowed, N8nClient, NotFound, ServerError, Unauthorized, scrub)


class Scripted(object):
    """Answers (status, body) from a queue per (method, path); records every request."""

    def __init__(self):
        self.answers = {}
        self.seen = []
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get('Content-Length') or 0)
                body = self.rfile.read(length) if length else b''
                scripted.seen.append((self.command, self.path, dict((k.lower(), v) for k, v in self.headers.items()), body))
                key = (self.command, self.path.split('?')[0])
                queue = scripted.answers.get(key) or [(404, {'message': 'Not Found'})]
                status, payload = queue.pop(0) if len(queue) > 1 else queue[0]
                data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={'poll_interval': 0.02}, daemon=True).start()
        self.url = 'http://127.0.0.1:%d' % self.server.server_address[1]

    def on(self, method, path, *answers):
        self.answers[(method, path)] = list(answers)


@pytest.fixture
def server():
    s = Scripted()
    yield s
    s.server.shutdown()
    s.server.server_close()


def client(server, **kwargs):
    pauses = []
    c = N8nClient(server.url, api_key='the-key', sleep=pauses.append, **kwargs)
    c.pauses = pauses
    return c


def test_get_is_retried_after_5xx_with_growing_pauses(server):
    server.on('GET', '/api/v1/workflows/a', (500, {'message': 'boom'}), (502, 'bad gateway'), (200, {'id': 'a'}))
    c = client(server)
    assert c.api('GET', '/workflows/a') == {'id': 'a'}
    assert c.pauses == [0.5, 1.0]
    assert server.seen[0][2]['x-n8n-api-key'] == 'the-key'


def test_post_is_not_retried_after_a_500_it_may_have_processed(server):
    server.on('POST', '/api/v1/workflows', (500, {'message': 'There is already an entry with this name'}), (200, {}))
    c = client(server)
    with pytest.raises(ServerError) as exc:
        c.api('POST', '/workflows', {'name': 'x'})
    assert str(exc.value) == 'There is already an entry with this name (HTTP 500)'
    assert len(server.seen) == 1


def test_post_is_retried_after_503_which_was_not_processed(server):
    server.on('POST', '/api/v1/workflows', (503, 'starting'), (200, {'id': 'n'}))
    assert client(server).api('POST', '/workflows', {'name': 'x'}) == {'id': 'n'}
    assert server.seen[0][2]['content-type'] == 'application/json'


def test_retries_give_up_with_the_last_error(server):
    server.on('GET', '/api/v1/tags', (500, {'message': 'still broken'}))
    c = client(server, retries=2)
    with pytest.raises(ServerError, match='still broken'):
        c.api('GET', '/tags')
    assert len(server.seen) == 3


def test_refused_connections_are_retried_then_reported(server):
    c = N8nClient('http://127.0.0.1:9', api_key='k', retries=2, sleep=lambda s: None)
    with pytest.raises(ServerError, match='no answer from http://127.0.0.1:9'):
        c.api('POST', '/workflows', {})
    assert c.requests == [('POST', '/api/v1/workflows')] * 3


@pytest.mark.parametrize('status, error', [(401, Unauthorized), (404, NotFound), (405, MethodNotAllowed), (409, Conflict)])
def test_typed_errors_carry_n8ns_message_not_its_stack(server, status, error):
    server.on('GET', '/api/v1/x', (status, {'code': status, 'message': 'what n8n said', 'stacktrace': 'Error: at x.ts:1'}))
    with pytest.raises(error) as exc:
        client(server).api('GET', '/x')
    assert exc.value.status == status
    assert exc.value.message == 'what n8n said'
    assert 'stacktrace' not in str(exc.value) and 'x.ts' not in str(exc.value)


def test_pagination_follows_next_cursor(server):
    server.on('GET', '/api/v1/workflows', (200, {'data': [{'id': 1}, {'id': 2}], 'nextCursor': 'c2'}),
              (200, {'data': [{'id': 3}], 'nextCursor': None}))
    assert [w['id'] for w in client(server).paginate('/workflows')] == [1, 2, 3]
    assert 'cursor=c2' in server.seen[1][1] and 'limit=250' in server.seen[1][1]


def test_rest_answers_are_unwrapped_and_keep_the_session_cookie(server):
    server.on('POST', '/rest/login', (200, {'data': {'id': 'u1'}}))
    server.on('GET', '/rest/settings', (200, {'data': {'versionCli': '1.2.3'}}))
    c = client(server)
    assert c.rest('POST', '/login', {'emailOrLdapLoginId': 'a', 'password': 'b'}) == {'id': 'u1'}
    assert c.rest('GET', '/settings') == {'versionCli': '1.2.3'}
    assert 'x-n8n-api-key' not in server.seen[0][2]


@pytest.mark.parametrize('status, major', [(405, 1), (200, 2), (403, 2)])
def test_the_major_version_is_told_by_the_credential_list(server, status, major):
    server.on('GET', '/api/v1/credentials', (status, {'data': [], 'nextCursor': None} if status == 200 else {'message': 'x'}))
    assert client(server).major == major


def test_ready_means_json_from_rest_and_api_not_the_starting_page(server):
    server.on('GET', '/rest/settings', (200, '<html>n8n is starting up</html>'))
    c = client(server)
    assert c.ready() is False
    server.on('GET', '/rest/settings', (200, {'data': {}}))
    server.on('GET', '/api/v1/workflows', (401, {'message': "'X-N8N-API-KEY' header required"}))
    assert c.ready() is True


def test_scrub_hides_every_secret_longest_first():
    assert scrub('token abcdef and abcdefgh', ['abcdef', 'abcdefgh', None, 'ab']) == 'token ******** and ********'
