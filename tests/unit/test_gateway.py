"""The gateway's department records, maps, generated backends and runtime diffs (no HAProxy needed)."""

import pytest

from ansible_collections.federation.platform.plugins.module_utils._gateway import (
    GatewayError, Runtime, merge_departments, uptime_seconds, normalize_department, parse_backend, parse_map, render_fragment,
    render_maps)


def dept(name, backend='127.0.0.1:5678', **more):
    return normalize_department(dict(name=name, backend=backend, **more))


@pytest.mark.parametrize('value, expected', [
    ('127.0.0.1:5678', ('http', '127.0.0.1', 5678, '/webhook')),
    ('http://10.0.0.5:5678/webhook', ('http', '10.0.0.5', 5678, '/webhook')),
    ('http://n8n-finance:5678', ('http', 'n8n-finance', 5678, '/webhook')),
    ('https://finance.up.example.app/webhook/', ('https', 'finance.up.example.app', 443, '/webhook')),
    ('http://[::1]:8080/hooks', ('http', '[::1]', 8080, '/hooks')),
])
def test_backends_are_read_as_host_port_or_url(value, expected):
    parsed = parse_backend(value, 'finance')
    assert (parsed['scheme'], parsed['host'], parsed['port'], parsed['path']) == expected


@pytest.mark.parametrize('value, fragment', [
    ('', 'give the address'),
    ('127.0.0.1', 'has no port'),
    ('ftp://host:21', 'is not host:port or an http(s) URL'),
    ('http://host:70000', 'out of range'),
    ('http://bad_host!:80', 'not a host name'),
    ('http://host:80/a b', 'may hold only'),
    ('http://host:80/x"y', 'may hold only'),
    ("127.0.0.1:80\n    server evil 1.2.3.4:80", 'not host:port'),
])
def test_bad_backends_are_refused_naming_the_department(value, fragment):
    with pytest.raises(GatewayError) as error:
        parse_backend(value, 'finance')
    assert "department 'finance'" in str(error.value) and fragment in str(error.value)


def test_a_department_record_is_complete_and_refuses_bad_fields():
    assert dept('hr') == {'name': 'hr', 'backend': 'http://127.0.0.1:5678/webhook', 'callers': [],
                          'rate_limit': {'requests': 60, 'per_seconds': 60}}
    assert dept('hr', callers=['finance', 'finance', 'hr'])['callers'] == ['finance']
    for bad, fragment in [(dict(name='HR', backend='h:1'), 'not allowed'),
                          (dict(name='hr', backend='h:1', callers=['x y']), "field 'callers'"),
                          (dict(name='hr', backend='h:1', rate_limit={'requests': 0}), 'rate_limit.requests'),
                          (dict(name='hr', backend='h:1', rate_limit={'burst': 1}), "'rate_limit'"),
                          (dict(name='hr', backend='h:1', colour='red'), 'unknown field')]:
        with pytest.raises(GatewayError) as error:
            normalize_department(bad)
        assert fragment in str(error.value)


def test_merging_adds_updates_removes_and_replaces():
    current = [dept('finance'), dept('hr')]
    updated = merge_departments(current, [dept('hr', '127.0.0.1:9')])
    assert [d['backend'] for d in updated] == ['http://127.0.0.1:5678/webhook', 'http://127.0.0.1:9/webhook']
    assert [d['name'] for d in merge_departments(current, [dept('audit')])] == ['audit', 'finance', 'hr']
    assert [d['name'] for d in merge_departments(current, ['hr'], state='absent')] == ['finance']
    assert [d['name'] for d in merge_departments(current, [dept('audit')], exclusive=True)] == ['audit']


def test_maps_allow_only_pairs_of_known_departments_and_limit_callers():
    departments = [dept('finance', callers=['hr', 'ghost']), dept('hr', rate_limit={'requests': 5, 'per_seconds': 10})]
    maps = {name: parse_map(text) for name, text in render_maps(departments).items()}
    assert maps['backends.map'] == {'finance': 'dept_finance', 'hr': 'dept_hr'}
    assert maps['callers.map'] == {'hr:finance': '1'}  # ghost is no department of this gateway
    assert maps['limits.map'] == {'finance': '60', 'hr': '5'}
    assert maps['periods.map'] == {'finance': '60', 'hr': '10'}


def test_the_fragment_has_a_table_per_period_and_a_backend_per_department():
    text = render_fragment([dept('finance'), dept('hr', 'https://hr.example.org', rate_limit={'requests': 5, 'per_seconds': 10})])
    assert 'backend federation_rl_10s' in text and 'backend federation_rl_60s' in text
    assert 'store http_req_rate(10s) peers federation_gateway' in text
    assert 'backend dept_finance' in text and 'server n8n 127.0.0.1:5678\n' in text
    assert 'server n8n hr.example.org:443 init-addr last,libc,none ssl verify required ca-file @system-ca sni str(hr.example.org)' in text
    assert 'http-request set-header Host hr.example.org\n' in text
    assert text.count('table federation_rl_10s if') == 2  # every backend counts the callers of every period
    assert 'http-request replace-path ^/dept/[^/]+/?(.*)$ /webhook/\\1' in text
    assert 'http-request del-header Authorization' in text


def test_runtime_commands_turn_the_running_map_into_the_file():
    runtime = Runtime(None)
    commands = runtime.map_commands('/g/limits.map', {'a': '1', 'b': '2', 'gone': '3'}, {'a': '1', 'b': '5', 'new': '7'})
    assert commands == ['del map /g/limits.map gone', 'set map /g/limits.map b 5', 'add map /g/limits.map new 7']
    assert runtime.map_commands('/g/x.map', {'a': '1'}, {'a': '1'}) == []


def test_show_proc_is_read_with_the_youngest_worker_age():
    class Fake(Runtime):
        def master(self, command):
            return ('#<PID>          <type>          <reloads>       <uptime>        <version>\n'
                    '100             master          3 [failed: 1]   0d01h00m00s     2.6.12\n'
                    '# workers\n'
                    '205             worker          0               0d00h00m04s     2.6.12\n'
                    '# old workers\n'
                    '201             worker          1               0d00h10m00s     2.6.12\n'
                    '# programs\n')
    info = Fake(None).processes()
    assert info == {'master': 100, 'reloads': 3, 'failed': 1, 'workers': [205], 'old_workers': [201], 'worker_age': 4}
    assert uptime_seconds('1d02h03m04s') == 93784 and uptime_seconds('soon') is None
