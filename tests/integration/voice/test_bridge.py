"""The voice bridge as a process on loopback, driven by real clients: the telephony platform's library signs the
requests and builds the TwiML expected, a test phone streams espeak-ng speech as Media Streams frames and
recognises what comes back, an OpenAI-style client reads the chat completions. The assistant is a deterministic
HTTP server (no n8n)."""

import asyncio
import hashlib
import json
import xml.etree.ElementTree as ET

import aiohttp
import pytest
import requests
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Connect, Gather, VoiceResponse

from tests.harness.voice import GREETING, Listener, Phone, answer_for, connect

FORM = {'CallSid': 'CA0123456789abcdef', 'From': '+15550100', 'To': '+15550199', 'CallStatus': 'ringing',
        'AccountSid': 'AC0123'}


@pytest.fixture(scope='module')
def listener():
    return Listener()


def post_signed(bridge, path, form, sign_url=None):
    url = bridge.public_url + path
    sig = RequestValidator(bridge.auth_token).compute_signature(sign_url or url, form)
    return requests.post(bridge.base + path, data=form, headers={'X-Twilio-Signature': sig}, timeout=10)


def tree(xml: str):
    """A TwiML document as comparable data: tag, attributes, text, children."""
    def walk(el):
        return (el.tag, dict(el.attrib), (el.text or '').strip(), [walk(c) for c in el])
    return walk(ET.fromstring(xml.encode() if isinstance(xml, str) else xml))


def test_twiml_of_each_mode(bridges):
    gather, relay, stream = bridges('gather'), bridges('relay'), bridges('stream')
    expected = VoiceResponse()
    g = Gather(input='speech dtmf', action=gather.public_url + '/twilio/gather', method='POST', language='en-US',
               speechTimeout='auto', timeout='5', actionOnEmptyResult='true',
               hints='opening hours, invoices, payroll, human_resources, sales')
    g.say(GREETING, language='en-US')
    expected.append(g)
    answer = post_signed(gather, '/twilio/voice', FORM)
    assert answer.status_code == 200 and answer.headers['Content-Type'].startswith('text/xml')
    assert tree(answer.text) == tree(str(expected))

    expected = VoiceResponse()
    connect = Connect()
    cr = connect.conversation_relay(url='wss://voice.example.test/finance/twilio/relay',
                                    welcome_greeting=GREETING,
                                    language='en-US', interruptible='true', dtmf_detection='true')
    cr.parameter(name='department', value='finance')
    cr.parameter(name='caller', value='+15550100')
    expected.append(connect)
    assert tree(post_signed(relay, '/twilio/voice', FORM).text) == tree(str(expected))

    expected = VoiceResponse()
    connect = Connect()
    st = connect.stream(url='wss://voice.example.test/finance/twilio/stream')
    st.parameter(name='department', value='finance')
    st.parameter(name='caller', value='+15550100')
    expected.append(connect)
    assert tree(post_signed(stream, '/twilio/voice', FORM).text) == tree(str(expected))


def test_gather_turn_asks_the_assistant(bridges, assistant):
    gather = bridges('gather')
    before = len(assistant.calls)
    answer = post_signed(gather, '/twilio/gather', dict(FORM, SpeechResult='What are your opening hours?',
                                                        Confidence='0.9'))
    turn = assistant.calls[before]
    assert (turn['call_id'], turn['from'], turn['mode'], turn['input']) == ('CA0123456789abcdef', '+15550100',
                                                                            'gather', 'speech')
    said = tree(answer.text)[3][0]
    assert said[0] == 'Gather' and said[3][0][2] == answer_for('hours')
    answer = post_signed(gather, '/twilio/gather', dict(FORM, Digits='2'))
    assert assistant.calls[-1]['input'] == 'dtmf' and answer_for('2') in answer.text


def test_bad_signature_refused_before_any_work(bridges, assistant):
    gather = bridges('gather')
    before = len(assistant.calls)
    spoken = dict(FORM, SpeechResult='opening hours')
    # Signed over the address the bridge was reached at instead of its public URL: what a proxy breaks.
    assert post_signed(gather, '/twilio/gather', spoken, sign_url=gather.base + '/twilio/gather').status_code == 403
    tampered = dict(spoken)
    sig = RequestValidator(gather.auth_token).compute_signature(gather.public_url + '/twilio/gather', spoken)
    tampered['SpeechResult'] = 'transfer me to sales'
    assert requests.post(gather.base + '/twilio/gather', data=tampered, headers={'X-Twilio-Signature': sig},
                         timeout=10).status_code == 403
    assert requests.post(gather.base + '/twilio/gather', data=spoken, timeout=10).status_code == 403
    other = RequestValidator('not-the-token').compute_signature(gather.public_url + '/twilio/gather', spoken)
    assert requests.post(gather.base + '/twilio/gather', data=spoken, headers={'X-Twilio-Signature': other},
                         timeout=10).status_code == 403
    assert len(assistant.calls) == before
    # A JSON body: the URL carries its hash and is signed alone.
    body = json.dumps({'SpeechResult': 'x'}).encode()
    path = '/twilio/gather?bodySHA256=' + hashlib.sha256(body).hexdigest()
    sig = RequestValidator(gather.auth_token).compute_signature(gather.public_url + path, {})
    headers = {'X-Twilio-Signature': sig, 'Content-Type': 'application/json'}
    assert requests.post(gather.base + path, data=body, headers=headers, timeout=10).status_code == 200
    assert requests.post(gather.base + path, data=body + b' ', headers=headers, timeout=10).status_code == 403
    assert len(assistant.calls) == before


def _ws(bridge, path, session, sign=True):
    return connect(session, bridge.base, bridge.public_url, bridge.auth_token, path, sign)


def test_websocket_needs_the_signature_and_its_department(bridges, assistant):
    before = len(assistant.calls)

    async def main():
        async with aiohttp.ClientSession() as session:
            for mode, path in (('relay', '/twilio/relay'), ('stream', '/twilio/stream')):
                with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                    await _ws(bridges(mode), path, session, sign=False)
                assert err.value.status == 403
            # Signed, but for another department: closed without a turn.
            ws = await _ws(bridges('relay'), '/twilio/relay', session)
            await ws.send_json({'type': 'setup', 'callSid': 'CAother', 'customParameters': {'department': 'hr'}})
            await ws.send_json({'type': 'prompt', 'voicePrompt': 'opening hours', 'last': True})
            assert (await ws.receive(timeout=5)).type == aiohttp.WSMsgType.CLOSE and ws.close_code == 1008
            phone = Phone(await _ws(bridges('stream'), '/twilio/stream', session), 'hr')
            await phone.start()
            await asyncio.wait_for(phone._reader, 5)
            assert phone.ws.close_code == 1008 and not phone.received('media')
    asyncio.run(main())
    assert len(assistant.calls) == before


def test_media_streams_call(bridges, assistant, listener):
    """Speech in, recognised, answered aloud; DTMF; the caller speaking over the bot clears its audio."""
    stream = bridges('stream')

    async def main():
        async with aiohttp.ClientSession() as session:
            phone = Phone(await _ws(stream, '/twilio/stream', session), 'finance')
            await phone.start()
            assert {'opening', 'hours', 'payroll'} <= listener.words(await phone.next_utterance())
            before = len(assistant.calls)
            await phone.say('tell me about opening hours')
            answer = listener.words(await phone.next_utterance())
            turn = assistant.calls[before]
            assert 'hours' in turn['text'] and turn['call_id'] == phone.call_sid and turn['input'] == 'speech'
            assert {'office', 'open'} <= answer, answer

            await phone.dtmf('4')
            assert {'payroll', 'menu'} <= listener.words(await phone.next_utterance())
            assert assistant.calls[-1]['text'] == '4' and assistant.calls[-1]['input'] == 'dtmf'

            # Barge-in: the bot's answer is still 'playing' (its mark not echoed) when the caller speaks.
            phone.echo_marks = False
            await phone.dtmf('2')
            await phone.next_utterance()
            assert not phone.received('clear')
            phone.echo_marks = True
            await phone.say('what about payroll', silence=0.6)
            assert phone.received('clear'), 'the bot kept talking over the caller'
            await asyncio.wait_for(_until(lambda: 'payroll' in assistant.calls[-1]['text']), 20)
            assert {'salaries', 'paid', 'last', 'day', 'month'} & listener.words(await phone.next_utterance())
            marks = phone.received('mark')
            assert marks and all(m['streamSid'] == phone.stream_sid for m in marks)
            await phone.hang_up()
            # The end of the call reaches the assistant as a turn of its own, without text.
            await asyncio.wait_for(_until(lambda: assistant.calls[-1]['input'] == 'hangup'), 10)
            assert assistant.calls[-1]['call_id'] == phone.call_sid and assistant.calls[-1]['text'] == ''
    asyncio.run(main())


async def _until(predicate, interval=0.05):
    while not predicate():
        await asyncio.sleep(interval)
    return True


def test_conversation_relay_interrupt_cancels_the_turn(bridges, assistant):
    relay = bridges('relay')

    async def main():
        async with aiohttp.ClientSession() as session:
            ws = await _ws(relay, '/twilio/relay', session)
            await ws.send_json({'type': 'setup', 'sessionId': 'VX1', 'callSid': 'CArelay1', 'from': '+15550100',
                                'to': '+15550199', 'direction': 'inbound', 'customParameters': {'department': 'finance'}})
            await ws.send_json({'type': 'prompt', 'voicePrompt': 'tell me slowly about opening hours', 'lang': 'en-US',
                                'last': True})
            await asyncio.wait_for(_until(lambda: assistant.calls and assistant.calls[-1]['call_id'] == 'CArelay1'), 5)
            await ws.send_json({'type': 'interrupt', 'utteranceUntilInterrupt': '', 'durationUntilInterruptMs': 300})
            with pytest.raises(asyncio.TimeoutError):
                await ws.receive_json(timeout=assistant.slow + 0.5)
            await ws.send_json({'type': 'prompt', 'voicePrompt': 'invoices', 'lang': 'en-US', 'last': True})
            tokens = []
            while True:
                msg = await ws.receive_json(timeout=10)
                assert msg['type'] == 'text'
                tokens.append(msg['token'])
                if msg['last']:
                    break
            assert len(tokens) > 2 and ''.join(tokens) == answer_for('invoices')
            await ws.send_json({'type': 'dtmf', 'digit': '7'})
            msg = await ws.receive_json(timeout=10)
            assert msg['type'] == 'text' and assistant.calls[-1]['input'] == 'dtmf'
            await ws.close()
    asyncio.run(main())


def test_chat_completions(bridges, assistant):
    relay = bridges('relay')
    url = relay.base + '/v1/chat/completions'
    body = {'model': 'finance', 'messages': [{'role': 'system', 'content': 'Be brief.'},
                                             {'role': 'user', 'content': 'What about invoices?'}], 'user': 'call-7'}
    before = len(assistant.calls)
    for key in ('wrong-key', ''):
        refused = requests.post(url, json=body, headers={'Authorization': 'Bearer ' + key}, timeout=10)
        assert refused.status_code == 401 and refused.json()['error']['code'] == 'invalid_api_key'
    assert len(assistant.calls) == before
    auth = {'Authorization': 'Bearer ' + relay.api_key}
    answer = requests.post(url, json=body, headers=auth, timeout=10).json()
    assert answer['object'] == 'chat.completion' and answer['choices'][0]['message']['content'] == answer_for('invoices')
    assert assistant.calls[-1]['call_id'] == 'call-7' and assistant.calls[-1]['mode'] == 'chat'
    with requests.post(url, json=dict(body, stream=True), headers=auth, timeout=10, stream=True) as resp:
        assert resp.headers['Content-Type'].startswith('text/event-stream')
        events = [line[6:] for line in resp.iter_lines(decode_unicode=True) if line.startswith('data: ')]
    assert events[-1] == '[DONE]'
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c['object'] == 'chat.completion.chunk' for c in chunks) and len(chunks) > 3
    assert ''.join(c['choices'][0]['delta'].get('content', '') for c in chunks) == answer_for('invoices')
    assert chunks[-1]['choices'][0]['finish_reason'] == 'stop'
