"""The bridge's assistant client against a real HTTP server: the answer, and each failure as its own error."""

import asyncio

import pytest

from tests.harness.common import free_port
from tests.harness.voice import answer_for
from voice_bridge.assistant import Assistant, AssistantBadAnswer, AssistantTimeout, AssistantUnavailable


def ask(url, secret, text, timeout=2.0):
    async def main():
        client = Assistant(url, secret, timeout, 'finance')
        try:
            return await client.ask('CA1', text, '+15550100', 'gather')
        finally:
            await client.close()
    return asyncio.run(main())


def test_answer_and_typed_errors(assistant):
    assert ask(assistant.url, assistant.secret, 'opening hours?') == answer_for('hours')
    assert assistant.calls[-1] == {'call_id': 'CA1', 'text': 'opening hours?', 'from': '+15550100', 'mode': 'gather',
                                   'input': 'speech', 'department': 'finance'}
    refused = assistant.refused
    with pytest.raises(AssistantUnavailable, match='HTTP 401'):
        ask(assistant.url, 'wrong-secret', 'opening hours?')
    assert assistant.refused == refused + 1
    with pytest.raises(AssistantTimeout, match="department 'finance'"):
        ask(assistant.url, assistant.secret, 'answer slowly', timeout=0.3)
    with pytest.raises(AssistantBadAnswer, match='not JSON'):
        ask(assistant.url, assistant.secret, 'garbage')
    with pytest.raises(AssistantUnavailable, match='cannot be reached'):
        ask('http://127.0.0.1:%d/webhook' % free_port(), assistant.secret, 'x')
