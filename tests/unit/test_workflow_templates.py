"""The workflow templates render to definitions the n8n modules accept, for every tool combination."""

import itertools
import json
from pathlib import Path

import jinja2
import pytest

from ansible_collections.federation.platform.plugins.module_utils import _n8n_workflows as wf

TEMPLATES = Path(__file__).resolve().parents[2] / 'templates' / 'workflows'
TOOLS = ['log_call', 'ask_department']


def render(name, **overrides):
    # The role renders with ansible.builtin.template and << >> as variable delimiters.
    env = jinja2.Environment(variable_start_string='<<', variable_end_string='>>', undefined=jinja2.StrictUndefined,
                             loader=jinja2.FileSystemLoader(str(TEMPLATES)))
    env.filters['to_json'] = json.dumps
    context = dict(department='field-ops', display_name='Field "Ops"', voice_path='field-ops/voice',
                   turn_path='field-ops/turn', transfer_to=['hr', 'sales-eu'], tenant_schema='dept_field_ops', tools=TOOLS,
                   assistant='deterministic', llm={'url': 'https://llm.invalid/v1', 'model': 'm'},
                   gateway_url='http://gw.invalid:8080', ask_timeout_ms=10000, schema='federation', table='call_log',
                   credentials={'postgres': 'field-ops-tenant-db', 'gateway': 'field-ops-gateway', 'llm': 'field-ops-llm',
                                'voice': 'field-ops-voice-bridge'})
    context.update(overrides)
    return json.loads(env.get_template(name).render(t=context))


def combinations():
    for size in range(len(TOOLS) + 1):
        for tools in itertools.combinations(TOOLS, size):
            for assistant in ('deterministic', 'llm'):
                yield list(tools), assistant


@pytest.mark.parametrize('tools, assistant', list(combinations()))
def test_the_voice_assistant_composes_from_the_tools(tools, assistant):
    doc = render('voice_assistant.json.j2', tools=tools, assistant=assistant)
    assert wf.problems_of('voice', doc) == []
    names = {n['name'] for n in doc['nodes']}
    assert ('Log call' in names) is ('log_call' in tools)
    assert ('Ask department' in names) is ('ask_department' in tools)
    assert ('Ask model' in names) is (assistant == 'llm')
    refs = wf.references(doc)
    assert {target for kind, target in refs if kind == 'workflow'} == set(tools)
    assert wf.webhooks(doc) == [{'node': 'Webhook', 'path': 'field-ops/voice', 'methods': ['POST']},
                                {'node': 'Bridge', 'path': 'field-ops/turn', 'methods': ['POST']}]
    nodes = {n['name']: n for n in doc['nodes']}
    # The gateway's door is open (the gateway authenticated the caller) and drops forward_to; the bridge's
    # door needs the header credential.
    assert 'authentication' not in nodes['Webhook']['parameters']
    assert 'forward_to: ""' in nodes['Request']['parameters']['jsonOutput']
    assert nodes['Bridge']['parameters']['authentication'] == 'headerAuth'
    assert nodes['Bridge']['credentials'] == {'httpHeaderAuth': {'name': 'field-ops-voice-bridge'}}
    assert ('credential', 'field-ops-voice-bridge') in refs
    # every node is reachable from the two doors, and the answer is sent on every path
    reached, todo = set(), ['Webhook', 'Bridge']
    while todo:
        current = todo.pop()
        reached.add(current)
        for branch in doc['connections'].get(current, {}).get('main', []):
            todo.extend(link['node'] for link in branch if link['node'] not in reached)
    assert reached == names
    respond = [n for n in doc['nodes'] if n['name'] == 'Respond'][0]
    assert '"field-ops"' in respond['parameters']['responseBody']
    # n8n's expression sandbox refuses to read a field of that name: no expression does.
    expressions = [v for v in strings(doc) if v.startswith('=')]
    assert expressions and not [e for e in expressions if 'caller' in e]


def strings(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, str):
        yield value


@pytest.mark.parametrize('tools', [[], ['log_call']])
def test_a_hang_up_closes_the_conversation_and_answers_nothing_else(tools):
    doc = render('voice_assistant.json.j2', tools=tools)
    nodes = {n['name']: n for n in doc['nodes']}
    branches = doc['connections']['Hang-up']['main']
    assert [link['node'] for link in branches[1]] == ['Question']
    if tools:
        assert [link['node'] for link in branches[0]] == ['End call']
        query = nodes['End call']['parameters']['query']
        assert 'UPDATE federation.conversations c SET ended_at = now()' in query and '(call ended)' in query
        assert doc['connections']['End call']['main'][0][0]['node'] == 'Respond'
    else:
        assert [link['node'] for link in branches[0]] == ['Respond'] and 'End call' not in nodes


def test_the_bridge_door_forwards_only_to_the_departments_a_caller_may_be_put_through_to():
    doc = render('voice_assistant.json.j2')
    turn = [n for n in doc['nodes'] if n['name'] == 'Turn'][0]
    values = {a['name']: a['value'] for a in turn['parameters']['assignments']['assignments']}
    assert set(values) == {'call_id', 'caller', 'question', 'input', 'forward_to'}
    assert '["hr", "sales-eu"]' in values['forward_to'] and 'transfer|connect|put' in values['forward_to']


def test_the_display_name_is_escaped_into_json():
    doc = render('voice_assistant.json.j2', tools=[])
    answer = [n for n in doc['nodes'] if n['name'] == 'Answer'][0]
    assert '("Field \\"Ops\\"" + \' heard your question: \'' in answer['parameters']['jsonOutput']


def test_the_deterministic_assistant_answers_from_the_tenants_knowledge():
    doc = render('voice_assistant.json.j2', tools=[])
    nodes = {n['name']: n for n in doc['nodes']}
    knowledge = nodes['Knowledge']
    assert knowledge['alwaysOutputData'] is True
    assert knowledge['credentials'] == {'postgres': {'name': 'field-ops-tenant-db'}}
    assert 'FROM dept_field_ops.knowledge WHERE' in knowledge['parameters']['query']
    assert '{{' not in knowledge['parameters']['query']
    assert doc['connections']['Knowledge']['main'][0][0]['node'] == 'Answer'
    assert 'Knowledge' not in {n['name'] for n in render('voice_assistant.json.j2', assistant='llm')['nodes']}


def test_the_tools_use_their_credentials_by_name():
    log = render('tool_log_call.json.j2')
    ask = render('tool_ask_department.json.j2')
    for doc in (log, ask):
        assert wf.problems_of('tool', doc) == []
        assert wf.is_subworkflow(doc) and not wf.activatable(doc)
    assert ('credential', 'field-ops-tenant-db') in wf.references(log)
    assert ('credential', 'field-ops-gateway') in wf.references(ask)
    call = [n for n in ask['nodes'] if n['name'] == 'Call gateway'][0]
    assert call['parameters']['url'].startswith('=http://gw.invalid:8080/dept/{{ encodeURIComponent($json.department) }}/')
    insert = [n for n in log['nodes'] if n['name'] == 'Insert call'][0]['parameters']
    # One statement, the turn as its only parameter: no value is ever part of the SQL text.
    assert insert['operation'] == 'executeQuery' and insert['options'] == {'queryReplacement': '={{ JSON.stringify($json) }}'}
    for table in ('federation.conversations', 'federation.messages', 'federation.tool_invocations', 'federation.call_log'):
        assert 'INSERT INTO %s ' % table in insert['query']
    assert '{{' not in insert['query'] and '$1::jsonb' in insert['query']
