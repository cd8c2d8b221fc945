"""The voice bridge's pieces without a server: G.711, the request signature, the configuration, the grammar."""

import hashlib
import warnings

import numpy as np
import pytest
from twilio.request_validator import RequestValidator

from voice_bridge import audio, config, g711, signature, speech

TOKEN = '12345'
URL = 'https://mycompany.com/myapp.php?foo=1&bar=2'
PARAMS = {'CallSid': 'CA1234567890ABCDE', 'Caller': '+12349013030', 'Digits': '1234', 'From': '+12349013030',
          'To': '+18005551212'}


def test_mulaw_known_values():
    assert g711.decode(b'\x00\x80\xff\x7f').tolist() == [-32124, 32124, 0, 0]
    assert g711.encode(np.array([0, -1, 32767, -32768, 100], dtype=np.int16)) == b'\xff\x7e\x80\x00\xf2'


def test_mulaw_matches_the_reference_coder_everywhere():
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        audioop = pytest.importorskip('audioop')
    every = np.arange(-32768, 32768, dtype=np.int16)
    assert g711.encode(every) == audioop.lin2ulaw(every.tobytes(), 2)
    assert g711.decode(bytes(range(256))).tobytes() == audioop.ulaw2lin(bytes(range(256)), 2)


def test_telephone_frame_upsampled_for_the_recogniser():
    frame = g711.encode(np.array([0, 1000, 2000, 1000] * 40, dtype=np.int16))
    pcm = np.frombuffer(audio.mulaw_to_recogniser(frame), dtype='<i2')
    assert len(pcm) == 320 and abs(int(pcm[2]) - 1000) < 40 and abs(int(pcm[3]) - 1500) < 40
    assert [len(f) for f in audio.frames(b'\x01' * 330)] == [160, 160, 160]


def test_signature_is_the_platform_s():
    assert signature.compute(TOKEN, URL, PARAMS) == '0/KCTR6DLpKmkAf8muzZqo1nDgQ='
    assert signature.valid(TOKEN, URL, PARAMS, '0/KCTR6DLpKmkAf8muzZqo1nDgQ=')
    signed = RequestValidator(TOKEN).compute_signature('https://mycompany.com:443/myapp.php?foo=1&bar=2', PARAMS)
    assert signature.valid(TOKEN, URL, PARAMS, signed)
    assert not signature.valid(TOKEN, URL, dict(PARAMS, Digits='9'), '0/KCTR6DLpKmkAf8muzZqo1nDgQ=')
    assert not signature.valid('other', URL, PARAMS, '0/KCTR6DLpKmkAf8muzZqo1nDgQ=')
    assert not signature.valid(TOKEN, URL, PARAMS, None)
    repeated = {'b': ['2', '1'], 'a': 'x'}
    # A repeated name: its values sorted (the data signed is the URL, then name+value pairs).
    assert signature.compute(TOKEN, URL, repeated) == RequestValidator(TOKEN).compute_signature(URL + 'axb1b2', {})


def test_signature_of_a_json_body():
    body = b'{"CallSid":"CA1"}'
    url = 'https://voice.example.test/finance/twilio/status?bodySHA256=' + hashlib.sha256(body).hexdigest()
    signed = RequestValidator(TOKEN).compute_signature(url, {})
    assert signature.valid(TOKEN, url, {}, signed, body)
    assert not signature.valid(TOKEN, url, {}, signed, body + b' ')


BASE_ENV = {'VOICE_DEPARTMENT': 'finance', 'VOICE_PUBLIC_URL': 'https://voice.example.test/finance/',
            'VOICE_TWILIO_AUTH_TOKEN': 't', 'VOICE_API_KEY': 'k' * 16, 'VOICE_ASSISTANT_URL': 'http://n8n:5678/webhook/v',
            'VOICE_ASSISTANT_SECRET': 's' * 16}


def test_configuration_read():
    cfg = config.from_env(dict(BASE_ENV, VOICE_MODE='stream', VOICE_TRANSFER_TO='hr, sales', VOICE_LISTEN='127.0.0.1:9'))
    assert (cfg.public_url, cfg.ws_base, cfg.transfer_to, cfg.port) == (
        'https://voice.example.test/finance', 'wss://voice.example.test/finance', ('hr', 'sales'), 9)
    assert 'k' * 16 not in repr(cfg) and cfg.voice == 'en-us'


@pytest.mark.parametrize('change, field', [
    ({'VOICE_DEPARTMENT': ''}, 'VOICE_DEPARTMENT'),
    ({'VOICE_TWILIO_AUTH_TOKEN': ''}, 'VOICE_TWILIO_AUTH_TOKEN'),
    ({'VOICE_PUBLIC_URL': 'ftp://x'}, 'VOICE_PUBLIC_URL'),
    ({'VOICE_MODE': 'fax'}, 'VOICE_MODE'),
    ({'VOICE_MODE': 'stream', 'VOICE_LANGUAGE': 'en-GB'}, 'VOICE_LANGUAGE'),
    ({'VOICE_API_KEY': 'short'}, 'VOICE_API_KEY'),
    ({'VOICE_MAX_CALLS': 'many'}, 'VOICE_MAX_CALLS'),
    ({'VOICE_TRANSFER_TO': 'Human Resources'}, 'VOICE_TRANSFER_TO'),
])
def test_configuration_refused_naming_the_field(change, field):
    with pytest.raises(config.ConfigError, match="voice bridge 'finance'|voice bridge '") as err:
        config.from_env(dict(BASE_ENV, **change))
    assert field in str(err.value) and 's' * 16 not in str(err.value)


def test_grammar_from_the_department_s_phrases():
    known = {'tell', 'me', 'about', 'opening', 'hours', 'finance', 'transfer', 'connect', 'put', 'to', 'through',
             'human', 'resources', 'please', 'yes', 'no'}.__contains__
    text = speech.grammar('finance', ['opening hours', 'zorblax reports'], ['human_resources'], known=lambda w: True)
    assert '(finance | opening hours | zorblax reports)' in text and 'through to) (human resources)' in text
    text = speech.grammar('finance', ['opening hours', 'zorblax reports'], [], known=known)
    assert 'zorblax' not in text and 'transfer' not in text and '(finance | opening hours)' in text
