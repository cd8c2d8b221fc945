"""The bridge's configuration: environment variables, validated before the service starts."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

MODES = ('gather', 'relay', 'stream')
# Offline speech (stream mode) has the US English model only; Twilio speaks these in the other modes.
LANGUAGES = {'en-US': 'en-us', 'en-GB': 'en-gb'}
STREAM_LANGUAGES = ('en-US',)
_NAME = re.compile(r'^[a-z][a-z0-9_-]{0,39}$')


class ConfigError(ValueError):
    """The environment does not describe a usable bridge."""


@dataclass(frozen=True)
class Config:
    department: str
    public_url: str            # https://voice.example.org/finance: what the telephony platform calls
    twilio_auth_token: str = field(repr=False)
    api_key: str = field(repr=False)
    assistant_url: str
    assistant_secret: str = field(repr=False)
    mode: str = 'gather'
    language: str = 'en-US'
    greeting: str = ''
    topics: tuple = ()
    transfer_to: tuple = ()
    host: str = '0.0.0.0'
    port: int = 8080
    assistant_timeout: float = 5.0
    max_calls: int = 2         # speech recognisers (one process each) shared by the calls

    @property
    def voice(self) -> str:
        return LANGUAGES[self.language]

    @property
    def ws_base(self) -> str:
        parts = urlsplit(self.public_url)
        return '%s://%s%s' % ('wss' if parts.scheme == 'https' else 'ws', parts.netloc, parts.path)

    def greeting_text(self) -> str:
        return self.greeting or 'Hello, this is the %s assistant. How can I help?' % self.department.replace('_', ' ')


def _list(value: str) -> tuple:
    return tuple(item.strip() for item in re.split(r'[,\n]', value) if item.strip())


def _fail(department: str, name: str, what: str, todo: str):
    raise ConfigError("Failed to start voice bridge '%s' on this host: %s %s. %s" % (department or '?', name, what, todo))


def from_env(env=None) -> Config:
    """Read VOICE_* variables; a missing or bad one raises ConfigError naming it."""
    env = os.environ if env is None else env
    dept = env.get('VOICE_DEPARTMENT', '')
    if not _NAME.match(dept):
        _fail(dept, 'VOICE_DEPARTMENT', 'is %s' % ('missing' if not dept else 'not a department name'),
              'Set it to the department name (lower case letters, digits, - and _).')
    for name in ('VOICE_PUBLIC_URL', 'VOICE_TWILIO_AUTH_TOKEN', 'VOICE_API_KEY', 'VOICE_ASSISTANT_URL',
                 'VOICE_ASSISTANT_SECRET'):
        if not env.get(name):
            _fail(dept, name, 'is missing', 'Set it in the bridge\'s environment.')
    public = env['VOICE_PUBLIC_URL'].rstrip('/')
    parts = urlsplit(public)
    if parts.scheme not in ('https', 'http') or not parts.netloc or parts.query or parts.fragment:
        _fail(dept, 'VOICE_PUBLIC_URL', 'is not an http(s) URL without query',
              'Give the address the telephony platform calls, e.g. https://voice.example.org/%s.' % dept)
    assistant = urlsplit(env['VOICE_ASSISTANT_URL'])
    if assistant.scheme not in ('https', 'http') or not assistant.netloc:
        _fail(dept, 'VOICE_ASSISTANT_URL', 'is not an http(s) URL', "Give the department's assistant webhook.")
    for name, minimum in (('VOICE_API_KEY', 16), ('VOICE_ASSISTANT_SECRET', 16)):
        if len(env[name]) < minimum:
            _fail(dept, name, 'is shorter than %d characters' % minimum, 'Use a random secret.')
    mode = env.get('VOICE_MODE', 'gather')
    if mode not in MODES:
        _fail(dept, 'VOICE_MODE', "is '%s'" % mode, 'Use one of %s.' % ', '.join(MODES))
    language = env.get('VOICE_LANGUAGE', 'en-US')
    supported = STREAM_LANGUAGES if mode == 'stream' else tuple(LANGUAGES)
    if language not in supported:
        _fail(dept, 'VOICE_LANGUAGE', "'%s' is not supported in mode %s" % (language, mode),
              'Use one of %s.' % ', '.join(supported))
    listen = env.get('VOICE_LISTEN', '0.0.0.0:8080')
    host, port = listen.rpartition(':')[::2]
    numbers = {}
    for name, default, low, high in (('VOICE_ASSISTANT_TIMEOUT', '5', 0.1, 120), ('VOICE_MAX_CALLS', '2', 1, 64)):
        try:
            numbers[name] = float(env.get(name, default))
        except ValueError:
            numbers[name] = None
        if numbers[name] is None or not low <= numbers[name] <= high:
            _fail(dept, name, "is '%s'" % env.get(name), 'Use a number from %s to %s.' % (low, high))
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        _fail(dept, 'VOICE_LISTEN', "is '%s'" % listen, 'Use host:port, e.g. 0.0.0.0:8080.')
    transfer = _list(env.get('VOICE_TRANSFER_TO', ''))
    for other in transfer:
        if not _NAME.match(other):
            _fail(dept, 'VOICE_TRANSFER_TO', "names '%s', not a department" % other, 'List department names.')
    return Config(department=dept, public_url=public, twilio_auth_token=env['VOICE_TWILIO_AUTH_TOKEN'],
                  api_key=env['VOICE_API_KEY'], assistant_url=env['VOICE_ASSISTANT_URL'],
                  assistant_secret=env['VOICE_ASSISTANT_SECRET'], mode=mode, language=language,
                  greeting=env.get('VOICE_GREETING', ''), topics=_list(env.get('VOICE_TOPICS', '')),
                  transfer_to=transfer, host=host.strip('[]'), port=int(port),
                  assistant_timeout=numbers['VOICE_ASSISTANT_TIMEOUT'], max_calls=int(numbers['VOICE_MAX_CALLS']))
