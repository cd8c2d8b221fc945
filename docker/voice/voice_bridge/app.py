"""The HTTP and WebSocket entries of a department's voice bridge."""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import time
import uuid
from urllib.parse import parse_qs

from aiohttp import WSMsgType, web

from . import audio, signature, speech, twiml
from .assistant import Assistant, AssistantError
from .config import Config

log = logging.getLogger('voice_bridge')

SORRY = 'Sorry, I cannot answer that right now. Please try again later.'
NOT_HEARD = 'Sorry, I did not catch that. Could you say it again?'
UPGRADE = 'websocket'


async def messages(ws):
    """The JSON objects a WebSocket receives; anything else is skipped."""
    async for msg in ws:
        if msg.type != WSMsgType.TEXT:
            continue
        try:
            data = json.loads(msg.data)
        except ValueError:
            continue
        if isinstance(data, dict):
            yield data


class Bridge:
    def __init__(self, config: Config):
        self.config = config
        self.assistant = Assistant(config.assistant_url, config.assistant_secret, config.assistant_timeout,
                                   config.department)
        self.recogniser: speech.Recogniser | None = None
        self.calls = 0
        self.stats = {'refused': 0, 'turns': 0, 'barge_ins': 0, 'interrupts': 0}

    # --- the application ---------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._twilio_signature], client_max_size=1 << 20)
        app.add_routes([web.get('/healthz', self.healthz),
                        web.post('/twilio/voice', self.voice),
                        web.post('/twilio/gather', self.gather),
                        web.get('/twilio/relay', self.relay),
                        web.get('/twilio/stream', self.stream),
                        web.post('/v1/chat/completions', self.chat_completions)])
        app.on_startup.append(self._startup)
        app.on_cleanup.append(self._cleanup)
        return app

    async def _startup(self, app):
        if self.config.mode == 'stream':
            self.recogniser = speech.Recogniser(self.config.department, self.config.topics, self.config.transfer_to,
                                                self.config.max_calls)
            await self.recogniser.start()
        log.info("voice bridge of department '%s' ready: mode %s, public URL %s", self.config.department,
                 self.config.mode, self.config.public_url)

    async def _cleanup(self, app):
        await self.assistant.close()
        if self.recogniser is not None:
            self.recogniser.close()

    @web.middleware
    async def _twilio_signature(self, request: web.Request, handler):
        """Every /twilio/ request, WebSocket handshakes included, is signed by the platform over the public URL
        it called; anything else is refused before any work."""
        if not request.path.startswith('/twilio/'):
            return await handler(request)
        websocket = request.headers.get('Upgrade', '').lower() == UPGRADE
        base = self.config.ws_base if websocket else self.config.public_url
        url = signature.public_url(base, request.raw_path)
        body = b'' if websocket else await request.read()
        params = {}
        if request.content_type == 'application/x-www-form-urlencoded':
            params = parse_qs(body.decode('utf-8', errors='replace'), keep_blank_values=True)
        if not signature.valid(self.config.twilio_auth_token, url, params,
                               request.headers.get('X-Twilio-Signature'), body):
            self.stats['refused'] += 1
            log.warning('refused %s %s from %s: bad or missing X-Twilio-Signature', request.method, request.path,
                        request.remote)
            return web.Response(status=403, text='Forbidden: bad or missing X-Twilio-Signature\n')
        request['form'] = {name: values[0] for name, values in params.items()}
        return await handler(request)

    async def healthz(self, request):
        return web.json_response({'status': 'ok', 'department': self.config.department, 'mode': self.config.mode,
                                  'calls': self.calls})

    # --- Twilio voice webhook and <Gather> ---------------------------------------------------------------

    def _url(self, path: str) -> str:
        return self.config.public_url + path

    def _parameters(self, form) -> dict:
        return {'department': self.config.department, 'caller': form.get('From', '')}

    async def voice(self, request):
        form = request['form']
        cfg = self.config
        if cfg.mode == 'relay':
            body = twiml.relay(cfg.ws_base + '/twilio/relay', cfg.greeting_text(), cfg.language, self._parameters(form))
        elif cfg.mode == 'stream':
            body = twiml.stream(cfg.ws_base + '/twilio/stream', self._parameters(form))
        else:
            body = twiml.gather(cfg.greeting_text(), self._url('/twilio/gather'), cfg.language, self._hints())
        return web.Response(text=body, content_type='text/xml')

    def _hints(self):
        return list(self.config.topics) + list(self.config.transfer_to)

    async def gather(self, request):
        form = request['form']
        text = (form.get('SpeechResult') or '').strip()
        source = 'speech'
        if not text and form.get('Digits'):
            text, source = form['Digits'].strip(), 'dtmf'
        if not text:
            answer = NOT_HEARD
        else:
            answer = await self._ask(form.get('CallSid', ''), text, form.get('From', ''), source)
        return web.Response(text=twiml.gather(answer, self._url('/twilio/gather'), self.config.language,
                                              self._hints()), content_type='text/xml')

    async def _ask(self, call_id, text, caller, source) -> str:
        self.stats['turns'] += 1
        try:
            return await self.assistant.ask(call_id, text, caller, self.config.mode, source)
        except AssistantError as exc:
            log.error('turn of call %s: %s', call_id, exc)
            return SORRY

    # --- ConversationRelay: text over a WebSocket --------------------------------------------------------

    async def relay(self, request):
        ws = web.WebSocketResponse(heartbeat=30)
        await ws.prepare(request)
        self.calls += 1
        state = {'call_id': '', 'from': '', 'accepted': False}
        turn: asyncio.Task | None = None

        async def answer(text, source):
            reply = await self._ask(state['call_id'], text, state['from'], source)
            words = reply.split(' ')
            for i, word in enumerate(words):
                await ws.send_json({'type': 'text', 'token': word if i == len(words) - 1 else word + ' ',
                                    'last': False})
            await ws.send_json({'type': 'text', 'token': '', 'last': True})

        def start(text, source):
            nonlocal turn
            if turn is not None and not turn.done():
                turn.cancel()
            turn = asyncio.create_task(answer(text, source))

        try:
            async for data in messages(ws):
                kind = data.get('type')
                if kind == 'setup':
                    state['call_id'] = data.get('callSid', '')
                    state['from'] = data.get('from', '')
                    wanted = (data.get('customParameters') or {}).get('department')
                    if wanted and wanted != self.config.department:
                        await ws.close(code=1008, message=b'wrong department')
                        break
                    state['accepted'] = True
                elif kind == 'prompt' and data.get('last', True) and data.get('voicePrompt', '').strip():
                    start(data['voicePrompt'].strip(), 'speech')
                elif kind == 'dtmf' and data.get('digit'):
                    start(str(data['digit']), 'dtmf')
                elif kind == 'interrupt':
                    self.stats['interrupts'] += 1
                    if turn is not None and not turn.done():
                        turn.cancel()
                elif kind == 'error':
                    log.warning('relay error on call %s: %s', state['call_id'], data.get('description'))
        finally:
            self.calls -= 1
            if turn is not None:
                turn.cancel()
            if state['accepted']:
                await self.assistant.hang_up(state['call_id'], state['from'], self.config.mode)
        return ws

    # --- Media Streams: audio over a WebSocket -----------------------------------------------------------

    async def stream(self, request):
        if self.recogniser is None:
            raise web.HTTPNotFound(text='this bridge is not in stream mode\n')
        ws = web.WebSocketResponse(heartbeat=30)
        await ws.prepare(request)
        self.calls += 1
        call = MediaCall(self, ws)
        try:
            await call.run()
        finally:
            self.calls -= 1
            call.close()
            if call.accepted:
                await self.assistant.hang_up(call.call_id, call.caller, self.config.mode)
        return ws

    # --- OpenAI-compatible chat completions --------------------------------------------------------------

    def _openai_error(self, status, message, code):
        return web.json_response({'error': {'message': message, 'type': 'invalid_request_error', 'code': code}},
                                 status=status)

    async def chat_completions(self, request):
        given = request.headers.get('Authorization', '')
        token = given[7:] if given[:7].lower() == 'bearer ' else ''
        if not hmac.compare_digest(token.encode(), self.config.api_key.encode()):
            self.stats['refused'] += 1
            return self._openai_error(401, 'Incorrect API key provided.', 'invalid_api_key')
        try:
            body = await request.json()
            messages = body['messages']
            user = [m for m in messages if isinstance(m, dict) and m.get('role') == 'user']
            content = user[-1]['content']
            if isinstance(content, list):
                content = ' '.join(part.get('text', '') for part in content if isinstance(part, dict))
            if not isinstance(content, str) or not content.strip():
                raise ValueError
        except (ValueError, KeyError, IndexError, TypeError):
            return self._openai_error(400, 'messages must end with a user message with text content.',
                                      'invalid_messages')
        call_id = str(body.get('user') or request.headers.get('X-Call-Id') or 'chat-' + uuid.uuid4().hex)
        self.stats['turns'] += 1
        try:
            answer = await self.assistant.ask(call_id, content.strip(), '', 'chat', 'text')
        except AssistantError as exc:
            log.error('chat completion for %s: %s', call_id, exc)
            return web.json_response({'error': {'message': 'The assistant did not answer.', 'type': 'server_error',
                                                'code': 'assistant_unavailable'}}, status=502)
        ident = 'chatcmpl-' + uuid.uuid4().hex
        model = str(body.get('model') or 'federation-' + self.config.department)
        created = int(time.time())
        if not body.get('stream'):
            return web.json_response({
                'id': ident, 'object': 'chat.completion', 'created': created, 'model': model,
                'choices': [{'index': 0, 'message': {'role': 'assistant', 'content': answer}, 'finish_reason': 'stop'}],
                'usage': {'prompt_tokens': len(content.split()), 'completion_tokens': len(answer.split()),
                          'total_tokens': len(content.split()) + len(answer.split())}})
        resp = web.StreamResponse(headers={'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache'})
        await resp.prepare(request)

        async def event(delta, finish=None):
            chunk = {'id': ident, 'object': 'chat.completion.chunk', 'created': created, 'model': model,
                     'choices': [{'index': 0, 'delta': delta, 'finish_reason': finish}]}
            await resp.write(b'data: ' + json.dumps(chunk).encode() + b'\n\n')

        await event({'role': 'assistant', 'content': ''})
        words = answer.split(' ')
        for i, word in enumerate(words):
            await event({'content': word if i == 0 else ' ' + word})
        await event({}, 'stop')
        await resp.write(b'data: [DONE]\n\n')
        await resp.write_eof()
        return resp


class MediaCall:
    """One Media Streams call: caller audio -> end of speech -> recogniser -> assistant -> espeak-ng -> frames."""

    def __init__(self, bridge: Bridge, ws: web.WebSocketResponse):
        from pocketsphinx import Endpointer
        self.bridge = bridge
        self.ws = ws
        self.endpointer = Endpointer()
        self.buffer = bytearray()
        self.utterance = bytearray()
        self.in_speech = False
        self.stream_sid = ''
        self.call_id = ''
        self.caller = ''
        self.accepted = False      # the call started, for this department: its end is told to the assistant
        self.pending_marks: set = set()
        self.marks = 0
        self.turn: asyncio.Task | None = None

    def close(self):
        if self.turn is not None:
            self.turn.cancel()

    async def run(self):
        async for data in messages(self.ws):
            event = data.get('event')
            if event == 'media':
                payload = (data.get('media') or {}).get('payload', '')
                try:
                    self._audio(base64.b64decode(payload))
                except ValueError:
                    continue
            elif event == 'start':
                start = data.get('start') or {}
                self.stream_sid = data.get('streamSid') or start.get('streamSid', '')
                self.call_id = start.get('callSid', '')
                params = start.get('customParameters') or {}
                self.caller = params.get('caller', '')
                if params.get('department', self.bridge.config.department) != self.bridge.config.department:
                    await self.ws.close(code=1008, message=b'wrong department')
                    return
                self.accepted = True
                self._start_turn(self._say(self.bridge.config.greeting_text()))
            elif event == 'dtmf':
                digit = str((data.get('dtmf') or {}).get('digit', ''))
                if digit:
                    self._barge_in()
                    self._start_turn(self._answer(digit, 'dtmf'))
            elif event == 'mark':
                self.pending_marks.discard((data.get('mark') or {}).get('name'))
            elif event == 'stop':
                return

    def _audio(self, mulaw: bytes):
        self.buffer += audio.mulaw_to_recogniser(mulaw)
        size = self.endpointer.frame_bytes
        while len(self.buffer) >= size:
            frame = bytes(self.buffer[:size])
            del self.buffer[:size]
            voiced = self.endpointer.process(frame)
            now_speech = self.endpointer.in_speech
            if now_speech and not self.in_speech:
                self._barge_in()
            if voiced is not None:
                self.utterance += voiced
            if self.in_speech and not now_speech:
                utterance = bytes(self.utterance)
                self.utterance.clear()
                self._start_turn(self._utterance(utterance))
            self.in_speech = now_speech

    def _barge_in(self):
        """The caller speaks (or presses a key): stop what the bot says or is about to say."""
        if self.turn is not None and not self.turn.done():
            self.turn.cancel()
        if self.pending_marks:
            self.bridge.stats['barge_ins'] += 1
            self.pending_marks.clear()
            asyncio.ensure_future(self._send({'event': 'clear', 'streamSid': self.stream_sid}))

    def _start_turn(self, coro):
        if self.turn is not None and not self.turn.done():
            self.turn.cancel()
        self.turn = asyncio.create_task(coro)

    async def _send(self, message):
        if not self.ws.closed:
            await self.ws.send_str(json.dumps(message))

    async def _utterance(self, pcm16k: bytes):
        try:
            text = await self.bridge.recogniser.recognise(pcm16k)
        except Exception as exc:  # a worker that died (BrokenProcessPool) must not end the call silently
            log.error('call %s: the speech recogniser failed: %s', self.call_id, exc)
            await self._say(SORRY)
            return
        log.info('call %s: heard %r', self.call_id, text)
        if not text:
            await self._say(NOT_HEARD)
            return
        await self._answer(text, 'speech')

    async def _answer(self, text, source):
        reply = await self.bridge._ask(self.call_id, text, self.caller, source)
        await self._say(reply)

    async def _say(self, text):
        parts = speech.sentences(text)
        upcoming = asyncio.ensure_future(speech.synthesise(parts[0], self.bridge.config.voice))
        try:
            for i in range(len(parts)):
                mulaw = await upcoming
                if i + 1 < len(parts):
                    upcoming = asyncio.ensure_future(speech.synthesise(parts[i + 1], self.bridge.config.voice))
                if i == 0:
                    # Queued at the platform from the first frame on: the caller speaking now is a barge-in.
                    self.marks += 1
                    name = 'answer-%d' % self.marks
                    self.pending_marks.add(name)
                for frame in audio.frames(mulaw):
                    await self._send({'event': 'media', 'streamSid': self.stream_sid,
                                      'media': {'payload': base64.b64encode(frame).decode()}})
            # Echoed by the platform once everything before it has been played.
            await self._send({'event': 'mark', 'streamSid': self.stream_sid, 'mark': {'name': name}})
        finally:
            upcoming.cancel()
