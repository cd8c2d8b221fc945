"""A local chat-completions server, as OpenAI documents the protocol, standing in for a language model (none can
be downloaded here): POST /v1/chat/completions with a bearer key, JSON {model, messages, stream?, tools?}.

It refuses what the hosted service refuses (401 without the key, 400 for a body without a model or with messages
that are not role/content objects, 404 for another path) with OpenAI's error shape, answers deterministically
("<model> says: <last user message>"), streams server-sent ``chat.completion.chunk`` events ending with
``data: [DONE]`` when ``stream`` is true, and answers a ``tool_calls`` message when tools are offered and the last
user message names one of them. Every accepted request is kept for the test to read."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROLES = ('system', 'user', 'assistant', 'tool', 'developer')


def _error(message, kind, code):
    return {'error': {'message': message, 'type': kind, 'param': None, 'code': code}}


def problem_of(body):
    """Why OpenAI would refuse this request body, or None."""
    if not isinstance(body, dict):
        return 'the body must be a JSON object'
    if not isinstance(body.get('model'), str) or not body['model']:
        return "you must provide a model parameter"
    messages = body.get('messages')
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty array"
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get('role') not in ROLES:
            return "messages[%d].role must be one of %s" % (index, ', '.join(ROLES))
        if message['role'] != 'assistant' and not isinstance(message.get('content'), (str, list)):
            return "messages[%d].content must be a string or an array of parts" % index
    tools = body.get('tools')
    if tools is not None and (not isinstance(tools, list) or not all(
            isinstance(t, dict) and t.get('type') == 'function' and isinstance((t.get('function') or {}).get('name'), str)
            for t in tools)):
        return "tools must be an array of {type: function, function: {name, parameters}}"
    return None


class ChatCompletionsServer(object):
    def __init__(self, api_key: str):
        self.api_key = api_key
        self.requests: list = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, document):
                data = json.dumps(document).encode()
                self.send_response(status)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get('Content-Length') or 0))
                if self.path.split('?')[0] != '/v1/chat/completions':
                    return self._send(404, _error('Unknown request URL: POST %s' % self.path, 'invalid_request_error',
                                                  'unknown_url'))
                if self.headers.get('Authorization') != 'Bearer ' + server.api_key:
                    return self._send(401, _error('Incorrect API key provided.', 'invalid_request_error',
                                                  'invalid_api_key'))
                try:
                    body = json.loads(raw)
                except ValueError:
                    return self._send(400, _error('We could not parse the JSON body of your request.',
                                                  'invalid_request_error', None))
                problem = problem_of(body)
                if problem:
                    return self._send(400, _error(problem, 'invalid_request_error', None))
                server.requests.append(body)
                self._answer(body)

            def _answer(self, body):
                ident, created, model = 'chatcmpl-' + uuid.uuid4().hex[:24], int(time.time()), body['model']
                last = [m for m in body['messages'] if m['role'] == 'user'][-1:]
                asked = last[0]['content'] if last and isinstance(last[0]['content'], str) else ''
                named = [t['function']['name'] for t in body.get('tools') or [] if t['function']['name'] in asked]
                if named:
                    message = {'role': 'assistant', 'content': None, 'tool_calls': [{
                        'id': 'call_' + uuid.uuid4().hex[:24], 'type': 'function',
                        'function': {'name': named[0], 'arguments': json.dumps({'question': asked})}}]}
                    finish = 'tool_calls'
                else:
                    message = {'role': 'assistant', 'content': '%s says: %s' % (model, asked)}
                    finish = 'stop'
                if not body.get('stream'):
                    return self._send(200, {
                        'id': ident, 'object': 'chat.completion', 'created': created, 'model': model,
                        'choices': [{'index': 0, 'message': message, 'finish_reason': finish, 'logprobs': None}],
                        'usage': {'prompt_tokens': 1, 'completion_tokens': 1, 'total_tokens': 2}})
                self.send_response(200)
                self.send_header('Content-Type', 'text/event-stream')
                self.end_headers()
                deltas = [{'role': 'assistant', 'content': ''}]
                if message.get('tool_calls'):
                    deltas.append({'tool_calls': [dict(message['tool_calls'][0], index=0)]})
                else:
                    deltas += [{'content': word + ' '} for word in message['content'].split(' ')]
                for delta in deltas + [{}]:
                    chunk = {'id': ident, 'object': 'chat.completion.chunk', 'created': created, 'model': model,
                             'choices': [{'index': 0, 'delta': delta, 'finish_reason': None if delta else finish}]}
                    self.wfile.write(b'data: ' + json.dumps(chunk).encode() + b'\n\n')
                self.wfile.write(b'data: [DONE]\n\n')

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.server.daemon_threads = True
        self.url = 'http://127.0.0.1:%d/v1/chat/completions' % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
