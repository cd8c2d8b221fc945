"""federation.platform.gateway_routes on its own, as ansible runs it: bad input, check mode, exclusive resync."""

from __future__ import annotations

import json

import pytest

from tests.helpers import Ansible

MODULE = 'federation.platform.gateway_routes'


@pytest.fixture
def run(fed_home):
    return Ansible(fed_home, None)


def test_bad_input_fails_naming_department_and_field_and_writes_nothing(run, tmp_path):
    folder = tmp_path / 'gateway'
    result = run.module(MODULE, dict(path=str(folder), departments=[
        dict(name='finance', backend='127.0.0.1:5678'),
        dict(name='hr', backend='127.0.0.1:5678\n    server evil 10.0.0.1:80')]))
    assert result['failed']
    assert "department 'hr', field 'backend'" in result['msg'] and 'host:port' in result['msg']
    assert not folder.exists()
    bad_name = run.module(MODULE, dict(path=str(folder), departments=[dict(name='Finance', backend='h:1')]))
    assert bad_name['failed'] and 'Invalid department' in bad_name['msg'] and not folder.exists()
    bad_key = run.module(MODULE, dict(path=str(folder), public_key='not a key', departments=[dict(name='hr', backend='h:1')]))
    assert bad_key['failed'] and 'PEM public key' in bad_key['msg'] and not folder.exists()


def test_check_mode_then_apply_then_exclusive_resync(run, tmp_path):
    folder = tmp_path / 'gateway'
    args = dict(path=str(folder), departments=[
        dict(name='finance', backend='http://10.1.0.5:5678/webhook', callers=['hr']),
        dict(name='hr', backend='10.1.0.6:5678', callers=['finance'], rate_limit={'requests': 5, 'per_seconds': 10})])
    checked = run.module(MODULE, args, check=True, diff=True)
    assert checked['changed'] is True and checked['runtime'] == 'not running'
    assert 'departments.cfg' in checked['files_changed'] and checked['config_changed'] is True
    assert any('hr:finance 1' in d['after'] for d in checked['diff'])
    assert not folder.exists()

    applied = run.module(MODULE, args)
    assert applied['changed'] is True
    assert (folder / 'callers.map').read_text().splitlines()[1:] == ['finance:hr 1', 'hr:finance 1']
    assert run.module(MODULE, args)['changed'] is False

    resync = run.module(MODULE, dict(path=str(folder), exclusive=True, departments=[args['departments'][0]]))
    assert resync['changed'] is True and [d['name'] for d in resync['departments']] == ['finance']
    assert (folder / 'callers.map').read_text().splitlines()[1:] == []  # hr is gone, so is its pair
    assert 'dept_hr' not in (folder / 'departments.cfg').read_text()
    assert [d['name'] for d in json.loads((folder / 'departments.json').read_text())['departments']] == ['finance']

    removed = run.module(MODULE, dict(path=str(folder), state='absent', departments=['finance', 'nobody']))
    assert removed['changed'] is True and removed['departments'] == []
