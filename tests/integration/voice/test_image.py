"""The voice image, built by playbooks/build_images.yml like the others, runs the bridge: the speech recogniser
starts inside it, a signed call is answered aloud, a bad configuration is refused naming the variable."""

import asyncio
import time

import aiohttp
import pytest
import requests

from tests.harness.common import free_port, wait_for
from tests.harness.docker_objects import build_images, docker, remove_prefixed, unique_prefix
from tests.harness.voice import Phone, connect


@pytest.fixture(scope='module')
def container(assistant):
    image = build_images()['voice']
    prefix = unique_prefix()
    port = free_port()
    env = {'VOICE_DEPARTMENT': 'finance', 'VOICE_PUBLIC_URL': 'https://voice.example.test/finance',
           'VOICE_TWILIO_AUTH_TOKEN': 'tok-image-test', 'VOICE_API_KEY': 'key-image-test-0123456789',
           'VOICE_ASSISTANT_URL': assistant.url, 'VOICE_ASSISTANT_SECRET': assistant.secret, 'VOICE_MODE': 'stream',
           'VOICE_LISTEN': '127.0.0.1:%d' % port, 'VOICE_MAX_CALLS': '1', 'VOICE_TOPICS': 'payroll'}
    # The host's network: the deterministic assistant listens on this machine's loopback.
    args = ['run', '-d', '--name', prefix + '-finance-voice', '--label', 'federation.prefix=' + prefix,
            '--network', 'host', '--memory', '512m', '--cpus', '1']
    for name, value in env.items():
        args += ['-e', '%s=%s' % (name, value)]
    docker(*args, image)
    try:
        yield {'image': image, 'base': 'http://127.0.0.1:%d' % port, 'env': env, 'name': prefix + '-finance-voice'}
    finally:
        remove_prefixed(prefix)


def test_image_runs_the_bridge(container, assistant):
    deadline = time.monotonic() + 90
    while True:
        try:
            health = requests.get(container['base'] + '/healthz', timeout=2).json()
            break
        except (requests.RequestException, ValueError):
            assert time.monotonic() < deadline, docker('logs', container['name'], check=False).stdout
            time.sleep(0.5)
    assert health == {'status': 'ok', 'department': 'finance', 'mode': 'stream', 'calls': 0}
    assert docker('exec', container['name'], 'id', '-un').stdout.strip() == 'voicebridge'

    async def call():
        async with aiohttp.ClientSession() as session:
            phone = Phone(await connect(session, container['base'], container['env']['VOICE_PUBLIC_URL'],
                                        container['env']['VOICE_TWILIO_AUTH_TOKEN'], '/twilio/stream'), 'finance')
            await phone.start()
            greeting = await phone.next_utterance(60)
            await phone.dtmf('4')
            answer = await phone.next_utterance(30)
            await phone.hang_up()
            return greeting, answer
    before = len(assistant.calls)
    greeting, answer = asyncio.run(call())
    # espeak-ng spoke (a second of audio is 8000 mu-law bytes) and the assistant was asked once.
    assert len(greeting) > 8000 and len(answer) > 8000
    assert [c['text'] for c in assistant.calls[before:] if c['input'] != 'hangup'] == ['4']
    # and told of the end of the call.
    wait_for(lambda: [c for c in assistant.calls[before:] if c['input'] == 'hangup'], 10, 'the end of the call')


def test_image_refuses_a_bad_configuration(container):
    # The image's entry point in the running container, with an environment of its own (cheaper than a container).
    proc = docker('exec', container['name'], 'env', '-i', 'PYTHONPATH=/opt/voice', 'VOICE_DEPARTMENT=finance',
                  'VOICE_PUBLIC_URL=https://x.test', 'python3', '-m', 'voice_bridge', check=False)
    assert proc.returncode == 2 and 'VOICE_TWILIO_AUTH_TOKEN is missing' in proc.stderr
