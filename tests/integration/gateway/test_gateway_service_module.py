"""federation.platform.gateway_service as ansible runs it: start, no-op, reload on change, refuse a bad
configuration while the running gateway keeps serving, stop."""

from __future__ import annotations

import concurrent.futures
import socket

import pytest
import requests

from tests.harness.common import free_port
from tests.harness.haproxy import show_proc, stop_pidfile
from tests.harness.systemd import FakeSystemd
from tests.helpers import Ansible

MODULE = 'federation.platform.gateway_service'

CONFIG = """global
    maxconn 100
defaults
    mode http
    timeout connect 5s
    timeout client 5s
    timeout server 5s
frontend answer
    bind 127.0.0.1:{port}
    http-request return status 200 content-type text/plain string "{text}"
"""


@pytest.fixture
def service(fed_home, tmp_path):
    port = free_port()
    config = tmp_path / 'haproxy.cfg'
    args = dict(config_files=[str(config)], pidfile=str(tmp_path / 'run' / 'haproxy.pid'),
                master_socket=str(tmp_path / 'run' / 'master.sock'))
    yield Ansible(fed_home, None), args, config, port, tmp_path
    stop_pidfile(tmp_path / 'run' / 'haproxy.pid')


def test_start_reload_refuse_and_stop(service):
    run, args, config, port, folder = service
    url = 'http://127.0.0.1:%d/' % port
    config.write_text(CONFIG.format(port=port, text='one'))

    predicted = run.module(MODULE, args, check=True)
    assert predicted['changed'] is True and predicted['operation'] == 'started'
    assert not (folder / 'run' / 'haproxy.pid').exists()

    started = run.module(MODULE, args, diff=True)
    assert started['changed'] is True and started['operation'] == 'started', started
    assert started['diff']['before']['running'] is False and started['diff']['after']['running'] is True
    assert requests.get(url, timeout=5).text == 'one'
    assert oct((folder / 'run').stat().st_mode & 0o777) == '0o700'

    again = run.module(MODULE, args)
    assert again['changed'] is False and again['operation'] == 'none'

    config.write_text(CONFIG.format(port=port, text='two'))
    workers = show_proc(folder / 'run' / 'master.sock')['workers']
    reloaded = run.module(MODULE, args)
    assert reloaded['operation'] == 'reloaded' and reloaded['reloads'] == 1
    assert not set(reloaded['workers']) & set(workers)
    assert reloaded['pid'] == started['pid'], 'a reload keeps the master'
    assert requests.get(url, timeout=5).text == 'two'

    config.write_text(CONFIG.format(port=port, text='three') + '    no-such-keyword here\n')
    workers = show_proc(folder / 'run' / 'master.sock')['workers']
    refused = run.module(MODULE, args)
    assert refused['failed'] and 'is not valid' in refused['msg'] and 'unchanged' in refused['msg']
    assert show_proc(folder / 'run' / 'master.sock')['workers'] == workers
    assert requests.get(url, timeout=5).text == 'two'

    stopped = run.module(MODULE, dict(args, state='stopped'))
    assert stopped['changed'] is True and stopped['operation'] == 'stopped'
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=5)
    assert run.module(MODULE, dict(args, state='stopped'))['changed'] is False


def test_under_systemd_the_unit_is_written_enabled_started_and_reloaded_through_the_master(service):
    run, args, config, port, folder = service
    systemd = FakeSystemd(folder / 'systemd')
    args = dict(args, systemd_unit='federation-gateway-test', systemd_dir=str(systemd.units))
    url = 'http://127.0.0.1:%d/' % port
    config.write_text(CONFIG.format(port=port, text='one'))
    try:
        checked = run.module(MODULE, args, check=True, env=systemd.env())
        assert checked['changed'] is True and checked['unit_changed'] is True
        assert not (systemd.units / 'federation-gateway-test.service').exists()

        started = run.module(MODULE, args, env=systemd.env())
        assert started['operation'] == 'started' and started['unit_changed'] is True, started
        unit = (systemd.units / 'federation-gateway-test.service').read_text()
        assert 'Type=notify' in unit and 'Restart=always' in unit and ' -Ws -S ' in unit
        systemd.verify('federation-gateway-test')
        state = systemd.state
        assert state['enabled'] == ['federation-gateway-test']
        assert [c[0] for c in state['calls']][:4] == ['is-enabled', 'daemon-reload', 'is-enabled', 'enable']
        assert state['pids']['federation-gateway-test'] == started['pid'], 'systemd runs the master itself'
        assert requests.get(url, timeout=5).text == 'one'

        again = run.module(MODULE, args, env=systemd.env())
        assert again['changed'] is False and again['unit_changed'] is False

        config.write_text(CONFIG.format(port=port, text='two'))
        reloaded = run.module(MODULE, args, env=systemd.env())
        assert reloaded['operation'] == 'reloaded' and reloaded['pid'] == started['pid']
        assert requests.get(url, timeout=5).text == 'two'

        stopped = run.module(MODULE, dict(args, state='stopped'), env=systemd.env())
        assert stopped['operation'] == 'stopped' and systemd.state['calls'][-1] == ['stop', 'federation-gateway-test']
        with pytest.raises(requests.ConnectionError):
            requests.get(url, timeout=5)
    finally:
        systemd.stop_all()


def test_a_bad_unit_name_is_refused(service):
    run, args, config, port, folder = service
    config.write_text(CONFIG.format(port=port, text='one'))
    refused = run.module(MODULE, dict(args, systemd_unit='../evil.service'))
    assert refused['failed'] and 'is not a unit name' in refused['msg']


def test_a_port_another_process_listens_on_is_refused_before_starting(service):
    run, args, config, port, folder = service
    config.write_text(CONFIG.format(port=port, text='one'))
    other = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # What a second HAProxy would do: it shares a port bound with SO_REUSEPORT instead of failing.
    other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    other.bind(('127.0.0.1', port))
    other.listen(1)
    try:
        for check in (True, False):
            refused = run.module(MODULE, args, check=check)
            assert refused.get('failed') and '127.0.0.1:%d already in use by another process' % port in refused['msg'], refused
        assert not (folder / 'run' / 'haproxy.pid').exists()
    finally:
        other.close()
    assert run.module(MODULE, args)['operation'] == 'started'


def test_five_runs_starting_the_gateway_at_once_share_one_master(service):
    # Runs provisioning five departments at once each start the gateway: one starts it, the others wait for
    # it (one lock beside the master socket) and find it running its configuration, instead of reaching a
    # master socket that does not answer yet ("Connection refused").
    run, args, config, port, folder = service
    config.write_text(CONFIG.format(port=port, text='shared'))
    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        results = list(pool.map(lambda dummy: run.module(MODULE, args), range(5)))
    assert [r.get('failed', False) for r in results] == [False] * 5, [r.get('msg') for r in results]
    assert sorted(r['operation'] for r in results) == ['none'] * 4 + ['started']
    assert len(set(r['pid'] for r in results)) == 1
    assert show_proc(folder / 'run' / 'master.sock')['master'] == results[0]['pid']
    assert requests.get('http://127.0.0.1:%d/' % port, timeout=5).text == 'shared'
