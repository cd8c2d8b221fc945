"""The wait for a container's service: ready, crashed, restarted, removed, timed out; the Engine API's log frames."""

from __future__ import annotations

import pytest

from ansible_collections.federation.platform.plugins.module_utils._container_wait import (
    ContainerFailed, WaitTimedOut, demux_logs, wait_ready)


class Clock(object):
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def running(restarts=0):
    return {'State': {'Status': 'running', 'Running': True, 'ExitCode': 0}, 'RestartCount': restarts}


def run_wait(states, answers, timeout=30):
    """``states``: what inspect returns look after look (the last one repeats); ``answers`` likewise for the probe."""
    clock, looks, probes = Clock(), list(states), list(answers)

    def inspect(name):
        return looks.pop(0) if len(looks) > 1 else looks[0]

    def probe(url, timeout, want_json):
        return probes.pop(0) if len(probes) > 1 else probes[0]

    return wait_ready('fed-finance-n8n', 'http://127.0.0.1:1/rest/settings', inspect,
                      lambda name, lines: 'line one\nError: Cannot find module pg\n', timeout=timeout,
                      clock=clock, sleep=clock.sleep, probe_url=probe)


def test_ready_after_a_few_probes():
    seconds, probes = run_wait([running()], [(False, 'no HTTP answer'), (False, 'HTTP 200 without JSON'), (True, 'HTTP 200')])
    assert probes == 3 and seconds == 1.0


def test_a_container_that_exited_ends_the_wait_with_its_code_and_log():
    exited = {'State': {'Status': 'exited', 'Running': False, 'ExitCode': 1}, 'RestartCount': 0}
    with pytest.raises(ContainerFailed) as failure:
        run_wait([running(), exited], [(False, 'no HTTP answer')])
    assert 'it exited with code 1' in str(failure.value)
    assert 'Cannot find module pg' in str(failure.value)
    assert failure.value.state['ExitCode'] == 1


def test_a_restart_during_the_wait_ends_it_even_when_the_container_runs_again():
    with pytest.raises(ContainerFailed) as failure:
        run_wait([running(2), running(2), running(3)], [(False, 'no HTTP answer')])
    assert 'was restarted 1 time' in str(failure.value)


def test_a_restarting_container_at_the_first_look_fails_at_once():
    restarting = {'State': {'Status': 'restarting', 'Restarting': True, 'ExitCode': 9, 'OOMKilled': True}, 'RestartCount': 4}
    with pytest.raises(ContainerFailed) as failure:
        run_wait([restarting], [(True, 'HTTP 200')])
    assert 'exited with code 9, restarting again, killed for running out of memory' in str(failure.value)


def test_a_removed_container_ends_the_wait():
    with pytest.raises(ContainerFailed, match='does not exist'):
        run_wait([running(), None], [(False, 'no HTTP answer')])


def test_a_running_container_that_never_answers_times_out_with_the_last_answer():
    with pytest.raises(WaitTimedOut) as failure:
        run_wait([running()], [(False, 'HTTP 503')], timeout=5)
    assert failure.value.last_answer == 'HTTP 503'


def test_log_frames_are_joined_and_a_tty_log_is_kept_as_it_is():
    frames = b'\x01\x00\x00\x00\x00\x00\x00\x06hello\n' + b'\x02\x00\x00\x00\x00\x00\x00\x05oops\n'
    assert demux_logs(frames) == 'hello\noops\n'
    assert demux_logs(b'plain text\n') == 'plain text\n'
    assert demux_logs(b'') == ''


def test_without_a_url_the_images_health_check_decides():
    def state(health, output=''):
        return {'State': {'Status': 'running', 'Running': True, 'ExitCode': 0,
                          'Health': {'Status': health, 'Log': [{'Output': output}]}}, 'RestartCount': 0}

    looks = [state('starting'), state('unhealthy', 'recogniser not loaded'), state('healthy')]
    clock = Clock()
    seconds, probes = wait_ready('fed-finance-voice', None, lambda name: looks.pop(0) if len(looks) > 1 else looks[0],
                                 lambda name, lines: '', timeout=30, interval=0.5, clock=clock, sleep=clock.sleep)
    assert probes == 3 and seconds == 1.0

    clock = Clock()
    with pytest.raises(WaitTimedOut) as failure:
        wait_ready('fed-finance-voice', None, lambda name: state('unhealthy', 'recogniser not loaded'),
                   lambda name, lines: '', timeout=2, clock=clock, sleep=clock.sleep)
    assert 'its health check' in str(failure.value) and 'recogniser not loaded' in str(failure.value)

    clock = Clock()
    with pytest.raises(WaitTimedOut) as failure:
        wait_ready('fed-finance-voice', None, lambda name: running(), lambda name, lines: '', timeout=1,
                   clock=clock, sleep=clock.sleep)
    assert 'has no health check' in str(failure.value)


def test_a_container_running_again_after_a_restart_is_reported_with_the_code_it_exited_with():
    clock, looks = Clock(), [running(0), running(1)]
    asked = []

    def last_exit_code(name, since):
        asked.append(name)
        return 9

    with pytest.raises(ContainerFailed) as failure:
        wait_ready('fed-finance-n8n', 'http://127.0.0.1:1/rest/settings', lambda name: looks.pop(0) if len(looks) > 1 else looks[0],
                   lambda name, lines: 'node: --bad is not allowed in NODE_OPTIONS\n', timeout=30, clock=clock,
                   sleep=clock.sleep, probe_url=lambda url, timeout, want_json: (False, 'no HTTP answer'),
                   last_exit_code=last_exit_code)
    assert 'it exited with code 9 and was restarted 1 time' in str(failure.value) and asked == ['fed-finance-n8n']
    assert failure.value.state['ExitCode'] == 9
