"""The status report's judgement: addresses to probe, health per state, the table (no servers needed)."""

import datetime

from ansible_collections.federation.platform.plugins.module_utils._status import evaluate, judge_n8n, plan, summary, table

NOW = datetime.datetime(2026, 11, 25, 12, 0, tzinfo=datetime.timezone.utc)


def record(name, state='active', target='vps', minutes_ago=5, error=None):
    return dict(name=name, state=state, spec={'target': target}, last_error=error,
                state_changed_at=(NOW - datetime.timedelta(minutes=minutes_ago)).isoformat())


def container(name, port=24242, status='Up 5 minutes (healthy)'):
    ports = [{'IP': '127.0.0.1', 'PrivatePort': 5678, 'PublicPort': port, 'Type': 'tcp'}] if port else []
    return {'Names': ['/' + name], 'Ports': ports, 'State': 'running', 'Status': status}


def tenants(*names, login=True):
    sql = [n.replace('-', '_') for n in names]
    return dict(schemas=['dept_' + n for n in sql], roles=['dept_' + n for n in sql],
                login_roles=['dept_' + n for n in sql] if login else [], databases=['n8n_' + n for n in sql])


ROUTES = [{'name': 'finance', 'backend': 'http://127.0.0.1:24242/webhook'},
          {'name': 'field-ops', 'backend': 'https://field-ops.up.example.app:443/webhook'}]


def test_plan_finds_the_published_port_or_the_railway_domain():
    departments = [record('finance'), record('field-ops', target='railway'), record('hr'), record('legal', target='railway')]
    probes = plan(departments, [container('pfx-finance-n8n'), container('pfx-hr-n8n', port=None, status='Exited (1)')],
                  prefix='pfx', address='127.0.0.1', routes=ROUTES)
    assert probes['finance']['url'] == 'http://127.0.0.1:24242'
    assert probes['field-ops']['url'] == 'https://field-ops.up.example.app'
    assert probes['hr']['url'] is None and 'publishes no port' in probes['hr']['why'] and 'Exited (1)' in probes['hr']['why']
    assert probes['legal']['url'] is None and 'gateway has no record' in probes['legal']['why']
    given = plan([record('finance')], [], n8n_urls={'finance': 'https://n8n.example/'})
    assert given['finance']['url'] == 'https://n8n.example'
    assert plan([record('finance')], [], prefix='pfx')['finance']['why'] == 'no container pfx-finance-n8n'


def test_judge_n8n():
    assert judge_n8n((200, True)) == (True, 'answers')
    assert judge_n8n((200, False)) == (False, 'HTTP 200 without JSON (still starting up)')
    assert judge_n8n((502, False)) == (False, 'HTTP 502')
    assert judge_n8n('127.0.0.1:1 cannot be reached: refused') == (False, 'no answer (127.0.0.1:1 cannot be reached: refused)')


def run(departments, answers, routes='default', gateway_answer=(404, True), present=('finance',), containers=None, **kw):
    routes = ROUTES if routes == 'default' else routes
    probes = plan(departments, containers if containers is not None else [container('federation-finance-n8n')],
                  routes=routes)
    return {r['name']: r for r in evaluate(departments, probes, answers, routes=routes, gateway_answer=gateway_answer,
                                           tenants=kw.pop('tenant_names', tenants(*present)), now=NOW, **kw)}


def test_an_active_department_is_healthy_only_when_every_check_passes():
    healthy = run([record('finance')], {'finance': (200, True)})['finance']
    assert healthy['health'] == 'healthy' and healthy['healthy'] and not healthy['needs_attention']
    assert {k: c['ok'] for k, c in healthy['checks'].items()} == {'n8n': True, 'route': True, 'tenant': True}
    assert healthy['checks']['n8n']['url'] == 'http://127.0.0.1:24242/rest/settings'

    down = run([record('finance')], {'finance': 'refused'})['finance']
    assert down['health'] == 'unhealthy' and down['needs_attention']
    assert down['detail'].startswith('n8n: no answer (refused)')

    unrouted = run([record('finance')], {'finance': (200, True)}, routes=[])['finance']
    assert unrouted['needs_attention'] and 'route: not routed by the gateway' in unrouted['detail']
    gateway_down = run([record('finance')], {'finance': (200, True)}, gateway_answer='refused')['finance']
    assert gateway_down['needs_attention'] and 'the gateway does not answer (refused)' in gateway_down['detail']
    no_gateway = run([record('finance')], {'finance': (200, True)}, routes=None)['finance']
    assert no_gateway['healthy'] and no_gateway['checks']['route']['ok'] is None

    no_schema = run([record('finance')], {'finance': (200, True)}, present=())['finance']
    assert no_schema['needs_attention']
    assert 'tenant: missing: schema dept_finance, role dept_finance, n8n database n8n_finance' in no_schema['detail']
    frozen = run([record('finance')], {'finance': (200, True)}, tenant_names=tenants('finance', login=False))['finance']
    assert frozen['needs_attention'] and 'role dept_finance cannot log in' in frozen['detail']

    docker = run([record('finance')], {}, containers=[], docker_error='permission denied')['finance']
    assert 'the Docker host could not be read: permission denied' in docker['detail']


def test_a_phone_line_is_checked_by_its_bridges_health():
    spec = {'target': 'vps', 'voice': {'mode': 'stream'}}
    healthy = run([dict(record('finance'), spec=spec)], {'finance': (200, True)},
                  containers=[container('federation-finance-n8n'),
                              dict(container('federation-finance-voice'), Status='Up 2 hours (healthy)')])['finance']
    assert healthy['healthy'] and healthy['checks']['voice']['ok'] is True
    sick = run([dict(record('finance'), spec=spec)], {'finance': (200, True)},
               containers=[container('federation-finance-n8n'),
                           dict(container('federation-finance-voice'), Status='Up 3 minutes (unhealthy)')])['finance']
    assert sick['needs_attention'] and 'voice: voice bridge not healthy: Up 3 minutes (unhealthy)' in sick['detail']
    gone = run([dict(record('finance'), spec=spec)], {'finance': (200, True)},
               containers=[container('federation-finance-n8n')])['finance']
    assert gone['needs_attention'] and 'no voice bridge (container federation-finance-voice)' in gone['detail']
    # A department without a phone line has no such check; a deleted one names a bridge left behind.
    assert 'voice' not in run([record('finance')], {'finance': (200, True)})['finance']['checks']
    left = run([dict(record('ops', state='deleted'), spec=spec)], {}, containers=[container('federation-ops-voice')],
               present=())['ops']
    assert left['leftovers'] == ['container federation-ops-voice']


def test_failed_in_progress_stuck_and_deleted():
    rows = run([record('finance', state='failed', error='n8n did not start'), record('hr', state='provisioning'),
                record('legal', state='deprovisioning', minutes_ago=90), record('ops', state='deleted')],
               {'finance': 'refused'}, present=('finance',), stuck_after_minutes=60)
    assert rows['finance']['health'] == 'failed' and rows['finance']['needs_attention']
    assert rows['finance']['detail'].startswith('last error: n8n did not start')
    assert rows['hr']['health'] == 'in progress' and not rows['hr']['needs_attention']
    assert rows['legal']['health'] == 'stuck' and rows['legal']['needs_attention']
    assert 'deprovisioning for 90 minutes' in rows['legal']['detail']
    assert rows['ops']['health'] == 'deleted' and not rows['ops']['needs_attention'] and rows['ops']['leftovers'] == []
    assert {c['detail'] for c in rows['ops']['checks'].values()} == {'gone'}


def test_what_a_deleted_department_left_behind_is_named():
    rows = run([record('ops', state='deleted')], {'ops': (200, True)},
               routes=[{'name': 'ops', 'backend': 'http://127.0.0.1:1/webhook'}],
               containers=[container('federation-ops-n8n')], present=('ops',))
    ops = rows['ops']
    assert ops['health'] == 'deleted, left over' and not ops['needs_attention']
    assert ops['leftovers'] == ['container federation-ops-n8n', 'n8n answering at http://127.0.0.1:24242', 'gateway route',
                                'schema dept_ops', 'role dept_ops', 'n8n database n8n_ops']


def test_table_and_summary_put_what_needs_attention_first():
    rows = list(run([record('finance'), record('hr', state='failed', error='boom'), record('ops', state='deleted')],
                    {'finance': (200, True)}, present=('finance',)).values())
    lines = table(rows)
    assert lines[0].split() == ['DEPARTMENT', 'STATE', 'SINCE', 'TARGET', 'N8N', 'ROUTE', 'TENANT', 'HEALTH', 'DETAIL']
    assert [line.split()[0] for line in lines[2:]] == ['hr', 'finance', 'ops']
    assert 'FAILED' in lines[2] and 'last error: boom' in lines[2]
    assert lines[3].split()[5:9] == ['ok', 'ok', 'ok', 'healthy']
    assert lines[4].split()[5:9] == ['gone', 'gone', 'gone', 'deleted']
    assert summary(rows)['msg'] == '1 of 3 departments need attention: hr'
    assert summary([r for r in rows if r['name'] != 'hr'])['msg'] == '2 departments, all as expected (1 deleted, 1 healthy)'
    assert summary([])['msg'] == 'no department is registered'
