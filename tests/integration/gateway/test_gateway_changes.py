"""Changing the gateway: re-runs, check mode, live map changes, adding a department under load, removing one."""

from __future__ import annotations

import json
import threading

from tests.harness.common import wait_for
from tests.harness.haproxy import EchoServer, cli, show_proc, wrk
from tests.helpers import recap


def gateway_files(gateway):
    return {p.name: p.read_text() for p in sorted(gateway.folder.iterdir()) if p.is_file() and p.name != '.lock'}


def runtime_maps(gateway):
    return {name: cli(gateway.master_socket, '@1 show map %s' % (gateway.folder / name))
            for name in ('backends.map', 'callers.map', 'limits.map', 'periods.map')}


def test_a_rerun_changes_nothing(gateway):
    run = gateway.route('finance')
    assert recap(run.stdout)['changed'] == 0, run.stdout[-4000:]


def test_check_mode_predicts_a_new_department_and_changes_nothing(gateway, fast_backends):
    files, maps, proc = gateway_files(gateway), runtime_maps(gateway), show_proc(gateway.master_socket)
    run = gateway.route('legal', fast_backends['legal'], '--check', '--diff')
    assert recap(run.stdout)['changed'] > 0
    assert '+legal dept_legal' in run.stdout  # the diff of backends.map
    assert gateway_files(gateway) == files
    assert runtime_maps(gateway) == maps
    assert show_proc(gateway.master_socket) == proc
    assert not (gateway.home / 'secrets' / 'legal.yml').exists()


def test_a_limit_change_applies_at_once_without_a_reload(gateway):
    gateway.backends.setdefault('sales', EchoServer('sales').start())
    gateway.route('sales')
    workers = show_proc(gateway.master_socket)['workers']
    gateway.write_spec('sales', {'callers': ['hr', 'finance'], 'rate_limit': {'requests': 20, 'per_seconds': 60}})
    run = gateway.route('sales', None, '-v')
    assert recap(run.stdout)['changed'] > 0
    assert 'set map %s sales 20' % (gateway.folder / 'limits.map') in run.stdout
    assert show_proc(gateway.master_socket)['workers'] == workers, 'a map change must not reload'
    assert 'sales 20' in cli(gateway.master_socket, '@1 show map %s' % (gateway.folder / 'limits.map'))
    assert 'finance:sales 1' in cli(gateway.master_socket, '@1 show map %s' % (gateway.folder / 'callers.map'))
    answer = gateway.call('/dept/sales/pipeline', gateway.token('finance'))
    assert answer.status_code == 200 and answer.json()['caller'] == 'finance'


def test_adding_a_department_under_load_loses_no_request(gateway, fast_backends):
    gateway.route('ops', fast_backends['ops'])
    token = gateway.token('hr')
    assert gateway.call('/dept/ops/status', token).json()['department'] == 'ops'
    workers = show_proc(gateway.master_socket)['workers']

    result, runs = {}, {}
    load = threading.Thread(target=lambda: result.update(wrk(
        gateway.url + '/dept/ops/status', duration=10, connections=20, headers={'Authorization': 'Bearer ' + token})))
    # A new backend: maps at once, then a hot reload. The load starts once the playbook has recorded the new
    # department, a few seconds before its reload, so the reload happens under load.
    adding = threading.Thread(target=lambda: runs.update(run=gateway.route('legal', fast_backends['legal'], check=False)))
    adding.start()
    try:
        wait_for(lambda: 'legal' in (gateway.folder / 'departments.json').read_text(), 60, 'the new department recorded')
        load.start()
        adding.join()
        assert load.is_alive(), 'the reload must happen while the load runs'
    finally:
        adding.join()
        if load.ident is not None:  # started
            load.join()
    run = runs['run']
    assert run.returncode == 0, run.stdout[-5000:]
    print('wrk during the reload: requests %d, non-2xx %d, errors %d, %.0f req/s'
          % (result['requests'], result['non_2xx'], result['errors'], result['rate']))
    assert recap(run.stdout)['changed'] > 0
    assert show_proc(gateway.master_socket)['workers'] != workers, 'the gateway must have reloaded'
    assert result['requests'] > 1000, result['output']
    assert result['non_2xx'] == 0 and result['errors'] == 0, result['output']
    answer = gateway.call('/dept/legal/contracts', token)
    assert answer.status_code == 200 and answer.json()['department'] == 'legal'


def test_removing_a_department_refuses_it_and_its_token_at_once(gateway, fast_backends):
    gateway.route('legal', fast_backends['legal'])
    token = gateway.token('legal')
    assert gateway.call('/dept/legal/contracts', gateway.token('hr')).status_code == 200
    run = gateway.unroute('legal')
    assert recap(run.stdout)['changed'] > 0
    assert gateway.call('/dept/legal/contracts', gateway.token('hr')).status_code == 404
    assert gateway.call('/dept/finance/x', token).status_code == 401  # its identity is revoked with it
    state = json.loads((gateway.folder / 'departments.json').read_text())
    assert 'legal' not in [d['name'] for d in state['departments']]
    assert 'dept_legal' not in (gateway.folder / 'departments.cfg').read_text()
    again = gateway.unroute('legal')
    assert recap(again.stdout)['changed'] == 0


def test_no_token_or_key_appears_in_verbose_output(gateway):
    run = gateway.route('records', gateway.backends['finance'].address, '-vvv')
    output = run.stdout + run.stderr
    token = gateway.token('records')
    assert token.split('.')[2] not in output and token not in output
    key_lines = [line for line in gateway.signing_key().splitlines() if 'PRIVATE KEY' not in line]
    assert key_lines and not any(line in output for line in key_lines)
    assert gateway.call('/dept/finance/x', token).status_code == 403  # routed, and not on finance's list
