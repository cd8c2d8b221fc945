"""federation.platform.n8n_workflow against a real n8n (1.x and 2.x)."""

import copy
import json

import requests

from tests.integration.n8n.support import wait


def node(name, kind, version, parameters, **extra):
    return dict(name=name, type=kind, typeVersion=version, parameters=parameters, **extra)


def link(*pairs):
    out = {}
    for source, target in pairs:
        out.setdefault(source, {'main': [[]]})['main'][0].append({'node': target, 'type': 'main', 'index': 0})
    return out


def tool(answer):
    """A sub-workflow that sets "answer"."""
    return {
        'nodes': [
            node('Start', 'n8n-nodes-base.executeWorkflowTrigger', 1.1, {'inputSource': 'passthrough'}),
            node('Answer', 'n8n-nodes-base.set', 3.4, {
                'mode': 'manual', 'includeOtherFields': True, 'options': {},
                'assignments': {'assignments': [{'id': 'a', 'name': 'answer', 'type': 'string', 'value': answer}]}}),
        ],
        'connections': link(('Start', 'Answer')),
        'settings': {'executionOrder': 'v1'},
    }


def entry(path, tool_ref='${workflow:tool}'):
    """A webhook workflow that calls the tool and answers with its result."""
    return {
        'nodes': [
            node('Webhook', 'n8n-nodes-base.webhook', 2,
                 {'httpMethod': 'POST', 'path': path, 'responseMode': 'lastNode', 'options': {}}),
            node('Call tool', 'n8n-nodes-base.executeWorkflow', 1.2,
                 {'workflowId': {'__rl': True, 'mode': 'id', 'value': tool_ref}, 'options': {}}),
        ],
        'connections': link(('Webhook', 'Call tool')),
        'settings': {'executionOrder': 'v1'},
    }


def pair(unique, answer='=tool answered {{ $json.body.q }}'):
    # The entry comes first on purpose: the module applies the tool first.
    return [
        {'name': 'entry ' + unique, 'key': 'entry', 'definition': entry('wf-%s/ask' % unique), 'active': True,
         'tags': ['federation', 'entry-' + unique]},
        {'name': 'tool ' + unique, 'key': 'tool', 'definition': tool(answer), 'active': True, 'tags': ['federation']},
    ]


def args(n8n, workflows, **extra):
    out = dict(url=n8n.url, api_key=n8n.key, workflows=workflows, webhook_timeout=20)
    out.update(extra)
    return out


def test_create_resolve_activate_rerun_and_check_mode(n8n, run, unique):
    before = n8n.snapshot()
    checked = run('n8n_workflow', args(n8n, pair(unique)), check=True)
    assert checked['changed'] is True, checked
    assert [w['name'] for w in checked['workflows']] == ['tool ' + unique, 'entry ' + unique]
    assert n8n.snapshot() == before

    first = run('n8n_workflow', args(n8n, pair(unique)))
    assert first['changed'] is True, first
    tool_id = first['ids']['tool']
    entry_result = first['workflows'][1]
    assert entry_result['actions'][0] == 'create' and 'activate' in entry_result['actions']
    assert entry_result['webhooks'] == [{'node': 'Webhook', 'path': 'wf-%s/ask' % unique, 'methods': ['POST'],
                                         'live': True}]
    saved = n8n.workflow('entry ' + unique)
    call = [n for n in saved['nodes'] if n['name'] == 'Call tool'][0]
    assert call['parameters']['workflowId']['value'] == tool_id
    assert sorted(t['name'] for t in saved['tags']) == ['entry-' + unique, 'federation']
    assert saved['active'] is True
    # 2.x publishes the tool (callers need it); 1.x runs a sub-workflow without activation.
    assert n8n.workflow('tool ' + unique)['active'] is (n8n.major >= 2)

    answer = n8n.webhook('wf-%s/ask' % unique, {'q': 'ping'})
    assert answer.status_code == 200, answer.text
    assert answer.json()['answer'] == 'tool answered ping'

    before = n8n.snapshot()
    again = run('n8n_workflow', args(n8n, pair(unique)))
    assert again['changed'] is False, again
    assert again['ids'] == first['ids']
    assert n8n.snapshot() == before
    checked = run('n8n_workflow', args(n8n, pair(unique)), check=True)
    assert checked['changed'] is False

    # A template change: check mode shows it and writes nothing; the real run applies it.
    changed = pair(unique, answer='=tool now says {{ $json.body.q }}')
    diff = run('n8n_workflow', args(n8n, changed), check=True, diff=True)
    assert diff['changed'] is True
    assert [w['name'] for w in diff['workflows'] if w['changed']] == ['tool ' + unique]
    before_text = json.dumps(diff['diff']['before']['tool ' + unique])
    after_text = json.dumps(diff['diff']['after']['tool ' + unique])
    assert 'tool answered' in before_text and 'tool now says' in after_text
    assert list(diff['diff']['after']) == ['tool ' + unique]
    assert n8n.snapshot() == before
    applied = run('n8n_workflow', args(n8n, changed))
    assert applied['changed'] is True
    assert wait(lambda: n8n.webhook('wf-%s/ask' % unique, {'q': 'x'}).json().get('answer') == 'tool now says x')


def test_exact_names_not_substrings(n8n, run, unique):
    long_name = 'report %s archive' % unique
    short_name = 'report %s' % unique
    made = run('n8n_workflow', args(n8n, [{'name': long_name, 'definition': tool('=a')}]))
    assert made['changed'] is True
    result = run('n8n_workflow', args(n8n, [{'name': short_name, 'definition': tool('=b')}]))
    assert result['workflows'][0]['actions'] == ['create']      # the substring match is not taken for it
    assert result['ids'][short_name] != made['ids'][long_name]
    gone = run('n8n_workflow', dict(url=n8n.url, api_key=n8n.key, name=short_name, state='absent'))
    assert gone['changed'] is True
    assert n8n.workflow(short_name) is None and n8n.workflow(long_name) is not None


def test_a_workflow_as_n8n_returns_it_round_trips_without_change(n8n, run, unique):
    run('n8n_workflow', args(n8n, pair(unique)))
    fetched = n8n.workflow('entry ' + unique)
    assert {'id', 'active', 'versionId', 'createdAt', 'updatedAt', 'tags'} <= set(fetched)
    fetched['pinData'] = {}                       # refused by 1.x, read-only in 2.x
    fetched['meta'] = {'templateCredsSetupCompleted': True}
    fetched['settings']['saveManualExecutions'] = 'DEFAULT'
    for item in fetched['nodes']:
        item['createdAt'] = '2026-01-01T00:00:00Z'
    again = run('n8n_workflow', args(n8n, [
        {'name': 'tool ' + unique, 'key': 'tool', 'definition': tool('=tool answered {{ $json.body.q }}'), 'active': True,
         'tags': ['federation']},
        {'name': 'entry ' + unique, 'key': 'entry', 'definition': fetched, 'active': True,
         'tags': ['federation', 'entry-' + unique]},
    ]))
    assert not again.get('failed'), again
    assert again['changed'] is False, again
    # and as a JSON string, the way a template lookup hands it over
    as_text = run('n8n_workflow', args(n8n, [{'name': 'entry ' + unique, 'definition': json.dumps(fetched)}]))
    assert as_text['changed'] is False, as_text


def test_lost_webhooks_are_found_and_repaired(n8n, run, unique):
    """n8n can report a workflow active whose webhooks it never registered.

    1.x: activating through the command line while the server runs leaves it so (and /activate then answers
    200 and does nothing). 2.x notices a command-line publish by itself within seconds, so there the
    registration is lost by deleting its rows, the state the 1.x bug leaves behind.
    """
    flows = pair(unique)
    first = run('n8n_workflow', args(n8n, flows))
    entry_id = first['ids']['entry']

    def probe():
        return requests.put(n8n.url + '/webhook/wf-%s/ask' % unique, timeout=10).json()['message']

    if n8n.major >= 2:
        n8n.execute('DELETE FROM webhook_entity WHERE "workflowId" = ?', (entry_id,))
    else:
        assert n8n.api('POST', '/workflows/%s/deactivate' % entry_id).ok
        assert wait(lambda: n8n.webhook('wf-%s/ask' % unique, {'q': 'x'}).status_code == 404)
        proc = n8n.server.cli('update:workflow', '--id=' + entry_id, '--active=true')
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert n8n.webhook('wf-%s/ask' % unique, {'q': 'x'}).status_code == 404     # active, yet not routed
    assert n8n.workflow('entry ' + unique)['active'] is True
    assert 'is not registered' in probe() and 'Did you mean' not in probe()

    before = n8n.snapshot()
    checked = run('n8n_workflow', args(n8n, flows), check=True)
    assert checked['changed'] is True
    assert checked['workflows'][1]['actions'] == ['repair webhooks']
    assert checked['workflows'][1]['webhooks'][0]['live'] is False
    assert n8n.snapshot() == before

    repaired = run('n8n_workflow', args(n8n, flows))
    assert repaired['changed'] is True, repaired
    assert repaired['workflows'][1]['actions'] == ['repair webhooks']
    assert repaired['workflows'][1]['webhooks'][0]['live'] is True
    assert n8n.webhook('wf-%s/ask' % unique, {'q': 'x'}).json()['answer'] == 'tool answered x'
    assert run('n8n_workflow', args(n8n, flows))['changed'] is False


def test_n8n_errors_reach_the_user_with_the_workflow_name(n8n, run, unique):
    no_trigger = {'nodes': [node('Only', 'n8n-nodes-base.noOp', 1, {})], 'connections': {}, 'settings': {}}
    result = run('n8n_workflow', args(n8n, [{'name': 'inert ' + unique, 'definition': no_trigger, 'active': True}]))
    assert result['failed'] is True
    assert result['msg'].startswith("Failed to activate workflow 'inert %s' on n8n at %s: " % (unique, n8n.url))
    assert 'trigger' in result['msg'] and '(HTTP 400)' in result['msg']     # n8n's own words and status
    assert n8n.key not in json.dumps(result)


def test_bad_definitions_and_references_fail_before_any_write(n8n, run, unique):
    before = n8n.snapshot()
    cyclic = [{'name': 'a ' + unique, 'key': 'a', 'definition': entry('cy-%s/a' % unique, '${workflow:b}')},
              {'name': 'b ' + unique, 'key': 'b', 'definition': entry('cy-%s/b' % unique, '${workflow:a}')}]
    result = run('n8n_workflow', args(n8n, cyclic))
    assert result['failed'] is True and 'cycle (a -> b -> a)' in result['msg']
    broken = copy.deepcopy(entry('br-%s/x' % unique))
    broken['connections'] = link(('Webhook', 'Nowhere'))
    result = run('n8n_workflow', args(n8n, [{'name': 'broken ' + unique, 'definition': broken}]))
    assert result['failed'] is True
    assert "workflow 'broken %s': node 'Webhook' connects to unknown node 'Nowhere'" % unique in result['msg']
    dangling = [{'name': 'dangling ' + unique, 'definition': entry('dg-%s/x' % unique, '${workflow:missing-%s}' % unique)}]
    result = run('n8n_workflow', args(n8n, dangling))
    assert result['failed'] is True
    assert "reference ${workflow:missing-%s}" % unique in result['msg']
    credential = entry('cr-%s/x' % unique)
    credential['nodes'][1]['credentials'] = {'httpHeaderAuth': {'name': 'no-such-credential-' + unique}}
    result = run('n8n_workflow', args(n8n, [{'name': 'cred ' + unique, 'definition': credential}]))
    assert result['failed'] is True
    assert "credential 'no-such-credential-%s' of type 'httpHeaderAuth'" % unique in result['msg']
    assert n8n.snapshot() == before


def test_absent_deletes_active_workflows(n8n, run, unique):
    run('n8n_workflow', args(n8n, pair(unique)))
    gone = run('n8n_workflow', args(n8n, pair(unique), state='absent'))
    assert gone['changed'] is True
    assert [w['name'] for w in gone['workflows']] == ['entry ' + unique, 'tool ' + unique]   # callers first
    assert n8n.workflow('entry ' + unique) is None and n8n.workflow('tool ' + unique) is None
    assert run('n8n_workflow', args(n8n, pair(unique), state='absent'))['changed'] is False
