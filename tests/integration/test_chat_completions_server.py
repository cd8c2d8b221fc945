"""The local chat-completions server the LLM path is tested against refuses what the hosted service refuses,
answers, streams and calls tools in the protocol's shapes."""

import json

import pytest
import requests

from tests.harness.chat_completions import ChatCompletionsServer


@pytest.fixture
def server():
    chat = ChatCompletionsServer('sk-test-key')
    yield chat
    chat.stop()


def post(server, body, key='sk-test-key', url=None):
    return requests.post(url or server.url, json=body, headers={'Authorization': 'Bearer ' + key}, timeout=10)


def test_refusals_have_the_services_status_and_shape(server):
    hello = {'model': 'm', 'messages': [{'role': 'user', 'content': 'hi'}]}
    assert post(server, hello, key='wrong').json()['error']['code'] == 'invalid_api_key'
    assert post(server, hello, key='wrong').status_code == 401
    assert post(server, {'messages': hello['messages']}).status_code == 400
    assert post(server, {'model': 'm', 'messages': [{'role': 'robot', 'content': 'x'}]}).status_code == 400
    assert post(server, dict(hello, tools=[{'type': 'function'}])).status_code == 400
    assert post(server, hello, url=server.url.replace('/chat/completions', '/completions')).status_code == 404
    assert server.requests == []


def test_an_answer_a_stream_and_a_tool_call(server):
    answer = post(server, {'model': 'm', 'messages': [{'role': 'system', 'content': 's'}, {'role': 'user', 'content': 'hi'}]}).json()
    assert answer['object'] == 'chat.completion' and answer['choices'][0]['message']['content'] == 'm says: hi'

    streamed = post(server, {'model': 'm', 'stream': True, 'messages': [{'role': 'user', 'content': 'hello there'}]})
    events = [line[len('data: '):] for line in streamed.text.split('\n\n') if line.startswith('data: ')]
    assert events[-1] == '[DONE]'
    chunks = [json.loads(e) for e in events[:-1]]
    assert ''.join(c['choices'][0]['delta'].get('content', '') for c in chunks).strip() == 'm says: hello there'
    assert chunks[-1]['choices'][0]['finish_reason'] == 'stop'

    tools = [{'type': 'function', 'function': {'name': 'ask_department', 'parameters': {'type': 'object'}}}]
    called = post(server, {'model': 'm', 'tools': tools, 'messages': [{'role': 'user', 'content': 'use ask_department'}]}).json()
    call = called['choices'][0]
    assert call['finish_reason'] == 'tool_calls' and call['message']['tool_calls'][0]['function']['name'] == 'ask_department'
    assert len(server.requests) == 3
