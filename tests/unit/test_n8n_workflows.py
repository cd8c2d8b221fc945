"""Workflow definitions: cleaning for the API, normal form, references, order, webhooks; check mode."""

import copy

import pytest

from ansible_collections.federation.platform.plugins.module_utils import _n8n_workflows as wf


def definition():
    return {
        'nodes': [
            {'name': 'Webhook', 'type': 'n8n-nodes-base.webhook', 'typeVersion': 2,
             'parameters': {'httpMethod': 'POST', 'path': '/finance/voice/'}},
            {'name': 'Log', 'type': 'n8n-nodes-base.executeWorkflow', 'typeVersion': 1.2,
             'parameters': {'workflowId': {'__rl': True, 'mode': 'id', 'value': '${workflow:log_call}'}}},
            {'name': 'Insert', 'type': 'n8n-nodes-base.postgres', 'typeVersion': 2.5, 'parameters': {},
             'credentials': {'postgres': {'id': 'stale', 'name': 'finance-db'}}},
        ],
        'connections': {'Webhook': {'main': [[{'node': 'Log', 'type': 'main', 'index': 0}]]}},
        'settings': {'executionOrder': 'v1'},
    }


def as_returned_by_get(major):
    """What GET /workflows/{id} answers: the definition plus read-only and server-filled fields."""
    doc = copy.deepcopy(definition())
    doc.update(id='abc', name='x', active=True, versionId='v1', tags=[{'id': 't', 'name': 'n'}], meta=None, pinData=None,
               createdAt='2026', updatedAt='2026', shared=[], isArchived=False, triggerCount=1, activeVersionId='v1')
    doc['settings'].update(callerPolicy='workflowsFromSameOwner', availableInMCP=False, saveManualExecutions='DEFAULT')
    for node in doc['nodes']:
        node['position'] = [0.0, 0.0]
        node['createdAt'] = '2026'
    if major >= 2:
        doc.update(nodeGroups=[], description=None, versionCounter=3)
    return doc


@pytest.mark.parametrize('major', [1, 2])
def test_a_get_answer_is_cleaned_to_what_the_api_accepts(major):
    cleaned, dropped = wf.clean(as_returned_by_get(major), major)
    assert set(cleaned) == {'nodes', 'connections', 'settings'}
    assert 'saveManualExecutions' not in cleaned['settings']
    assert all('createdAt' not in n for n in cleaned['nodes'])
    assert dropped == []    # read-only fields go silently


def test_unknown_fields_are_dropped_and_named():
    doc = definition()
    doc['colour'] = 'red'
    doc['settings']['binaryMode'] = 'separate'        # 2.x only
    doc['nodes'][0]['customTelemetryTags'] = ['a']    # 2.x only
    cleaned, dropped = wf.clean(doc, 1)
    assert dropped == ['colour', 'nodes[Webhook].customTelemetryTags', 'settings.binaryMode']
    cleaned, dropped = wf.clean(doc, 2)
    assert dropped == ['colour']
    assert cleaned['settings']['binaryMode'] == 'separate'


@pytest.mark.parametrize('major', [1, 2])
def test_an_unchanged_workflow_compares_equal_to_what_n8n_returns(major):
    desired, dummy = wf.clean(definition(), major)
    wf.fill_defaults('x', desired)
    current = as_returned_by_get(major)
    for node, mine in zip(current['nodes'], desired['nodes']):
        node.update(id=mine['id'], position=[float(v) for v in mine['position']])
        if 'webhookId' in mine:
            node['webhookId'] = mine['webhookId']
    current['nodes'].reverse()        # the editor may store nodes in another order
    current_clean, dummy = wf.clean(current, major)
    assert wf.same(desired, current_clean)
    current_clean['settings']['callerPolicy'] = 'any'
    assert not wf.same(desired, current_clean)


def test_stable_ids_come_from_the_workflow_and_node_names():
    one = wf.fill_defaults('finance: voice', wf.clean(definition(), 1)[0])
    two = wf.fill_defaults('finance: voice', wf.clean(definition(), 1)[0])
    other = wf.fill_defaults('hr: voice', wf.clean(definition(), 1)[0])
    assert [n['id'] for n in one['nodes']] == [n['id'] for n in two['nodes']]
    assert one['nodes'][0]['webhookId'] == two['nodes'][0]['webhookId'] != other['nodes'][0]['webhookId']
    assert [n['position'] for n in one['nodes']] == [[0, 0], [220, 0], [440, 0]]


def test_references_are_resolved_and_stale_credential_ids_replaced():
    refs = wf.references(definition())
    assert refs == {('workflow', 'log_call'), ('credential', 'finance-db')}
    resolved = wf.resolve('voice', definition(), lambda key: {'log_call': 'W1'}[key],
                          lambda name, kind: ('C9', kind))
    assert resolved['nodes'][1]['parameters']['workflowId']['value'] == 'W1'
    assert resolved['nodes'][2]['credentials'] == {'postgres': {'id': 'C9', 'name': 'finance-db'}}
    assert definition()['nodes'][1]['parameters']['workflowId']['value'] == '${workflow:log_call}'   # input untouched


def test_unresolvable_references_name_the_workflow_and_node():
    def nothing(*args):
        raise LookupError('not there')
    with pytest.raises(wf.WorkflowError) as exc:
        wf.resolve('voice', definition(), nothing, nothing)
    assert "workflow 'voice': reference ${workflow:log_call}: not there" in str(exc.value)
    # a credential without a resolvable name keeps the id it was given
    doc = definition()
    doc['nodes'][1]['parameters']['workflowId']['value'] = 'literal'
    kept = wf.resolve('voice', doc, nothing, nothing)
    assert kept['nodes'][2]['credentials']['postgres'] == {'id': 'stale', 'name': 'finance-db'}


def test_order_puts_tools_before_callers_and_refuses_cycles():
    items = [{'key': 'voice', 'definition': definition()},
             {'key': 'log_call', 'definition': {'nodes': [], 'connections': {}}}]
    assert [i['key'] for i in wf.order(items)] == ['log_call', 'voice']
    a = {'key': 'a', 'definition': {'nodes': [{'name': 'x', 'parameters': {'w': '${workflow:b}'}}]}}
    b = {'key': 'b', 'definition': {'nodes': [{'name': 'x', 'parameters': {'w': '${workflow:a}'}}]}}
    with pytest.raises(wf.WorkflowError, match=r'cycle \(a -> b -> a\)'):
        wf.order([a, b])


def test_shape_problems_are_all_reported():
    doc = definition()
    doc['nodes'].append({'name': 'Log', 'type': '', 'typeVersion': 1})
    doc['connections']['Ghost'] = {'main': [[{'node': 'Webhook'}]]}
    problems = wf.problems_of('voice', doc)
    assert "workflow 'voice': node Log has no type" in problems
    assert "workflow 'voice': two nodes are named 'Log'" in problems
    assert "workflow 'voice': connections start at unknown node 'Ghost'" in problems
    assert wf.problems_of('voice', 'text') == ["workflow 'voice': definition must be a mapping with nodes, connections and settings"]


def test_webhooks_and_the_probe_method():
    hooks = wf.webhooks(definition())
    assert hooks == [{'node': 'Webhook', 'path': 'finance/voice', 'methods': ['POST']}]
    assert wf.probe_method(['POST']) == 'PUT'
    assert wf.probe_method(['PUT', 'PATCH']) == 'DELETE'
    dynamic = definition()
    dynamic['nodes'][0]['parameters']['path'] = 'orders/:id'
    assert wf.webhooks(dynamic) == []


def test_subworkflows_cannot_be_activated_on_1x():
    tool = {'nodes': [{'name': 'Start', 'type': 'n8n-nodes-base.executeWorkflowTrigger'}]}
    assert wf.is_subworkflow(tool) and not wf.activatable(tool)
    assert wf.activatable(definition())
    assert wf.activatable({'nodes': [{'name': 'Every hour', 'type': 'n8n-nodes-base.scheduleTrigger'}]})


class FakeClient(object):
    """Answers reads from memory and records every request: check mode must send no write."""

    major = 2
    where = 'n8n at fake'
    url = 'http://fake'

    def __init__(self, workflows):
        self.workflows = workflows
        self.calls = []

    def paginate(self, path, query=None):
        self.calls.append(('GET', path))
        if path == '/workflows':
            return iter(self.workflows)
        return iter([])

    def api(self, method, path, body=None, query=None, **kwargs):
        self.calls.append((method, path))
        raise AssertionError('unexpected request %s %s' % (method, path))

    def raw(self, method, url, body=None, headers=None, timeout=None, retry=True):
        self.calls.append((method, url))
        return 404, {}, b'{"message": "This webhook is not registered for PUT requests. Did you mean to make a POST request?"}'


def test_check_mode_sends_only_reads_and_probes():
    existing = as_returned_by_get(2)
    existing['name'] = 'voice'
    existing['active'] = False
    client = FakeClient([existing])
    applier = wf.WorkflowApplier(client, check_mode=True, webhook_base='http://fake/webhook',
                                 credential_index=type('I', (), {'resolve': lambda self, n, t=None: ('C9', t)})())
    items = [{'name': 'voice', 'key': 'voice', 'definition': definition(), 'active': True, 'tags': ['federation']},
             {'name': 'tool', 'key': 'log_call', 'definition': {'nodes': [
                 {'name': 'Start', 'type': 'n8n-nodes-base.executeWorkflowTrigger', 'typeVersion': 1.1}],
                 'connections': {}, 'settings': {}}, 'active': True}]
    results = applier.present(items)
    assert [(r['name'], r['actions']) for r in results] == [
        ('tool', ['create', 'activate']), ('voice', ['update', 'tag', 'activate'])]
    assert all(method == 'GET' for method, dummy in client.calls), client.calls
