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
                   tools=TOOLS, assistant='deterministic', llm={'url': 'https://llm.invalid/v1', 'model': 'm'},
                   gateway_url='http://gw.invalid:8080', ask_timeout_ms=10000, schema='federation', table='call_log',
                   credentials={'postgres': 'field-ops-tenant-db', 'gateway': 'field-ops-gateway', 'llm': 'field-ops-llm'})
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
    assert wf.webhooks(doc) == [{'node': 'Webhook', 'path': 'field-ops/voice', 'methods': ['POST']}]
    # every node is reachable from the webhook, and the answer is sent on every path
    reached, todo = set(), ['Webhook']
    while todo:
        current = todo.pop()
        reached.add(current)
        for branch in doc['connections'].get(current, {}).get('main', []):
            todo.extend(link['node'] for link in branch if link['node'] not in reached)
    assert reached == names
    respond = [n for n in doc['nodes'] if n['name'] == 'Respond'][0]
    assert '"field-ops"' in respond['parameters']['responseBody']
    assert 'caller' not in json.dumps(doc)       # n8n's expression sandbox refuses a field of that name


def test_the_display_name_is_escaped_into_json():
    doc = render('voice_assistant.json.j2', tools=[])
    answer = [n for n in doc['nodes'] if n['name'] == 'Answer'][0]
    assert answer['parameters']['assignments']['assignments'][0]['value'].startswith('=Field "Ops" heard')


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
    insert = [n for n in log['nodes'] if n['name'] == 'Insert call'][0]
    assert insert['parameters']['schema']['value'] == 'federation' and insert['parameters']['table']['value'] == 'call_log'
