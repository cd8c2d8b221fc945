"""The voice bridge's counterparts on loopback: the bridge as a process, a deterministic assistant (a real HTTP
server standing in for the department's n8n webhook), and a test phone that speaks the Media Streams protocol
exactly as the telephony platform frames it."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


from tests.harness.common import REPO, free_port, wait_for

PACKAGE_DIR = REPO / 'docker' / 'voice'
if str(PACKAGE_DIR) not in sys.path:
    sys.path.insert(0, str(PACKAGE_DIR))

from voice_bridge import audio, g711  # noqa: E402

SECRET_HEADER = 'X-Federation-Voice-Secret'
MENU = {'1': 'opening hours', '2': 'invoices', '4': 'payroll'}
GREETING = 'Welcome to finance. Ask about opening hours or payroll.'


def answer_for(text: str) -> str:
    """The deterministic assistant's answer."""
    t = text.lower()
    if t.isdigit():
        return 'You chose the %s menu.' % MENU.get(t, 'main')
    if 'hours' in t:
        return 'The office is open from nine to five. Monday to Friday.'
    if 'transfer' in t or 'connect' in t:
        dept = t.rsplit(' ', 1)[-1]
        return 'Transferring you to %s now.' % dept
    if 'invoice' in t:
        return 'Invoices are paid within thirty days.'
    if 'payroll' in t:
        return 'Salaries are paid on the last day of the month.'
    return 'Sorry, I know nothing about that.'


# What the bot may say: every answer of the fake assistant and the bridge's own sentences.
BOT_SENTENCES = sorted({sentence for text in [
    answer_for('1'), answer_for('2'), answer_for('4'), answer_for('7'), answer_for('hours'), GREETING, answer_for('transfer me to finance'),
    answer_for('transfer me to sales'), answer_for('invoice'), answer_for('payroll'), answer_for('x'),
    'Hello, this is the finance assistant. How can I help?', 'Sorry, I did not catch that. Could you say it again?',
    'Sorry, I cannot answer that right now. Please try again later.']
    for sentence in re.split(r'(?<=[.?!])\s+', text)})


class FakeAssistant:
    """POST / with the bridge's turn JSON; answers {"text": ...}. Refuses a missing or wrong secret with 401.
    A text containing 'slowly' is answered after ``slow`` seconds, one containing 'garbage' with HTML."""

    def __init__(self, secret: str, slow: float = 2.0):
        self.secret = secret
        self.slow = slow
        self.calls: list = []
        self.refused = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get('Content-Length') or 0))
                if self.headers.get(SECRET_HEADER) != fake.secret:
                    fake.refused += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                turn = json.loads(body)
                fake.calls.append(turn)
                if 'slowly' in turn['text']:
                    time.sleep(fake.slow)
                # 'garbage' in the text: an answer that is not the assistant's JSON.
                data = b'<html>oops' if 'garbage' in turn['text'] else json.dumps({'text': answer_for(turn['text'])}).encode()
                try:
                    self.send_response(200)
                    self.send_header('Content-Type', 'application/json')
                    self.send_header('Content-Length', str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass    # the bridge gave up waiting (a timeout test)

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.server.daemon_threads = True
        self.url = 'http://127.0.0.1:%d/webhook/voice' % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class BridgeProcess:
    """python -m voice_bridge on a free loopback port."""

    def __init__(self, assistant: FakeAssistant, mode: str, workdir: Path, department: str = 'finance',
                 public_url: str | None = None, max_calls: int = 2, **extra):
        self.port = free_port()
        self.department = department
        self.public_url = public_url or 'https://voice.example.test/%s' % department
        self.auth_token = 'tok-' + uuid.uuid4().hex
        self.api_key = 'key-' + uuid.uuid4().hex
        self.env = dict(os.environ, PYTHONPATH=str(PACKAGE_DIR), VOICE_DEPARTMENT=department,
                        VOICE_PUBLIC_URL=self.public_url, VOICE_TWILIO_AUTH_TOKEN=self.auth_token,
                        VOICE_API_KEY=self.api_key, VOICE_ASSISTANT_URL=assistant.url,
                        VOICE_ASSISTANT_SECRET=assistant.secret, VOICE_MODE=mode,
                        VOICE_LISTEN='127.0.0.1:%d' % self.port, VOICE_MAX_CALLS=str(max_calls),
                        VOICE_TOPICS='opening hours, invoices, payroll', VOICE_TRANSFER_TO='human_resources, sales',
                        VOICE_GREETING=GREETING,
                        **extra)
        self.log = workdir / ('bridge-%s-%d.log' % (mode, self.port))
        self.base = 'http://127.0.0.1:%d' % self.port
        with open(self.log, 'wb') as out:
            self.proc = subprocess.Popen([sys.executable, '-m', 'voice_bridge'], env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT, cwd=str(workdir))
        import urllib.request

        def ready():
            try:
                with urllib.request.urlopen(self.base + '/healthz', timeout=1) as resp:
                    return resp.status == 200
            except OSError:
                return False
        wait_for(ready, 60, 'voice bridge (%s)' % mode, process=self.proc, log=self.log)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def connect(session, base: str, public_url: str, auth_token: str, path: str, sign: bool = True):
    """A WebSocket to the bridge at ``base``, its handshake signed over the public wss:// URL."""
    from twilio.request_validator import RequestValidator
    url = public_url.replace('https://', 'wss://', 1) + path
    headers = {'X-Twilio-Signature': RequestValidator(auth_token).compute_signature(url, {})} if sign else {}
    return await session.ws_connect(base + path, headers=headers)


def last_voiced_frame(mulaw: bytes, level: float = 300.0) -> int:
    """The index of the last 20 ms frame louder than ``level`` (RMS of the 16-bit samples)."""
    pcm = g711.decode(mulaw).astype(float)
    count = len(pcm) // audio.FRAME_BYTES
    rms = (pcm[:count * audio.FRAME_BYTES].reshape(count, -1) ** 2).mean(axis=1) ** 0.5
    loud = [i for i, value in enumerate(rms) if value > level]
    return loud[-1] if loud else count - 1


def speech_mulaw(text: str) -> bytes:
    wav = subprocess.run(['espeak-ng', '-v', 'en-us', '-s', '160', '--stdout', text], capture_output=True,
                         check=True).stdout
    return audio.wav_to_mulaw(wav)


class Listener:
    """Recognises the bot's audio against the sentences it may say (so tests assert key words, never a verbatim
    transcript of free speech)."""

    def __init__(self, sentences=BOT_SENTENCES):
        from pocketsphinx import Decoder
        self.decoder = Decoder(loglevel='FATAL', lm=None, bestpath=False)
        options = sorted({' '.join(re.findall(r"[a-z']+", s.lower())) for s in sentences})
        self.decoder.add_jsgf_string('bot', '#JSGF V1.0;\ngrammar bot;\npublic <s> = (%s)+;\n' % ' | '.join(options))
        self.decoder.activate_search('bot')

    def words(self, mulaw: bytes) -> set:
        pcm = audio.resample(g711.decode(b'\xff' * 4000 + mulaw + b'\xff' * 4000), 8000, 16000)
        self.decoder.start_utt()
        self.decoder.process_raw(pcm.astype('<i2').tobytes(), full_utt=True)
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        return set(hyp.hypstr.split()) if hyp else set()


class Phone:
    """A Media Streams call to the bridge: 20 ms mu-law frames in real time, marks echoed when the bot's audio
    has been 'played' (at once), the events received kept with their arrival time."""

    def __init__(self, ws, department: str, caller: str = '+15550100'):
        self.ws = ws
        self.stream_sid = 'MZ' + uuid.uuid4().hex
        self.call_sid = 'CA' + uuid.uuid4().hex
        self.department = department
        self.caller = caller
        self.sequence = 0
        self.chunk = 0
        self.events: list = []        # (time, message)
        self.heard = bytearray()      # the bot's audio since the last mark
        self.utterances: asyncio.Queue = asyncio.Queue()
        self.echo_marks = True
        self.first_frame_at: float | None = None
        self._reader = asyncio.ensure_future(self._read())

    async def _send(self, message):
        self.sequence += 1
        message['sequenceNumber'] = str(self.sequence)
        await self.ws.send_str(json.dumps(message))

    async def start(self):
        await self.ws.send_str(json.dumps({'event': 'connected', 'protocol': 'Call', 'version': '1.0.0'}))
        await self._send({'event': 'start', 'streamSid': self.stream_sid, 'start': {
            'accountSid': 'AC' + uuid.uuid4().hex, 'streamSid': self.stream_sid, 'callSid': self.call_sid,
            'tracks': ['inbound'], 'mediaFormat': {'encoding': 'audio/x-mulaw', 'sampleRate': 8000, 'channels': 1},
            'customParameters': {'department': self.department, 'caller': self.caller}}})

    async def _read(self):
        async for msg in self.ws:
            data = json.loads(msg.data)
            now = time.monotonic()
            self.events.append((now, data))
            if data.get('event') == 'media':
                if self.first_frame_at is None:
                    self.first_frame_at = now
                self.heard += base64.b64decode(data['media']['payload'])
            elif data.get('event') == 'mark':
                self.utterances.put_nowait(bytes(self.heard))
                self.heard.clear()
                if self.echo_marks:
                    await self._send({'event': 'mark', 'streamSid': self.stream_sid, 'mark': data['mark']})
            elif data.get('event') == 'clear':
                self.heard.clear()

    async def frames(self, mulaw: bytes, speed: float = 1.0):
        """Send audio as 20 ms frames, paced in real time (``speed`` times faster)."""
        started = time.monotonic()
        for i, frame in enumerate(audio.frames(mulaw)):
            self.chunk += 1
            await self._send({'event': 'media', 'streamSid': self.stream_sid, 'media': {
                'track': 'inbound', 'chunk': str(self.chunk), 'timestamp': str(self.chunk * 20),
                'payload': base64.b64encode(frame).decode()}})
            delay = started + (i + 1) * 0.02 / speed - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)

    async def say(self, text: str, silence: float = 1.0, speed: float = 1.0, mulaw: bytes | None = None) -> float:
        """Speak ``text`` (or ``mulaw``) then keep the line open with silence; returns the time the last voiced
        frame was sent: when the caller stopped speaking."""
        speech = mulaw if mulaw is not None else speech_mulaw(text)
        voiced = last_voiced_frame(speech)
        self.first_frame_at = None
        await self.frames(b'\xff' * 1600 + speech[:(voiced + 1) * audio.FRAME_BYTES], speed)
        stopped = time.monotonic()
        self.first_frame_at = None
        await self.frames(speech[(voiced + 1) * audio.FRAME_BYTES:] + b'\xff' * int(8000 * silence), speed)
        return stopped

    async def dtmf(self, digit: str):
        await self._send({'event': 'dtmf', 'streamSid': self.stream_sid,
                          'dtmf': {'track': 'inbound_track', 'digit': digit}})

    async def next_utterance(self, timeout: float = 20) -> bytes:
        return await asyncio.wait_for(self.utterances.get(), timeout)

    async def hang_up(self):
        await self._send({'event': 'stop', 'streamSid': self.stream_sid,
                          'stop': {'accountSid': 'AC0', 'callSid': self.call_sid}})
        await self.ws.close()
        self._reader.cancel()

    def received(self, event: str) -> list:
        return [data for when, data in self.events if data.get('event') == event]
