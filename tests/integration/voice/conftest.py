"""One deterministic assistant and one bridge per mode, shared by the voice tests."""

import pytest

from tests.harness.voice import BridgeProcess, FakeAssistant


@pytest.fixture(scope='session')
def assistant():
    fake = FakeAssistant('secret-' + 'x' * 20)
    yield fake
    fake.stop()


@pytest.fixture(scope='session')
def bridges(assistant, tmp_path_factory):
    started = {}
    workdir = tmp_path_factory.mktemp('voice')

    def bridge(mode):
        if mode not in started:
            started[mode] = BridgeProcess(assistant, mode, workdir)
        return started[mode]
    yield bridge
    for process in started.values():
        process.stop()
