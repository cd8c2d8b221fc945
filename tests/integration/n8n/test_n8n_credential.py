"""federation.platform.n8n_credential against a real n8n (1.x and 2.x)."""

import json

from tests.integration.n8n.support import wait

FINGERPRINT_KEY = 'fingerprint-key-for-tests-0123456789'
STATE = 'Federation managed state (do not edit)'


def header(name, token):
    return {'name': name, 'type': 'httpHeaderAuth', 'data': {'name': 'Authorization', 'value': 'Bearer ' + token}}


def postgres(name, password, port=5432):
    return {'name': name, 'type': 'postgres',
            'data': {'host': '127.0.0.1', 'port': port, 'database': 'federation', 'user': 'dept_x',
                     'password': password, 'ssl': 'disable', 'sshTunnel': False}}


def args(n8n, credentials, **extra):
    out = dict(url=n8n.url, api_key=n8n.key, fingerprint_key=FINGERPRINT_KEY, credentials=credentials)
    out.update(extra)
    return out


def caller_workflow(name, cred_name, path):
    """A webhook workflow whose HTTP node uses the credential (to see it follow a replacement)."""
    return {
        'name': name, 'active': True,
        'definition': {
            'nodes': [
                {'name': 'Webhook', 'type': 'n8n-nodes-base.webhook', 'typeVersion': 2,
                 'parameters': {'httpMethod': 'POST', 'path': path, 'responseMode': 'lastNode', 'options': {}}},
                {'name': 'Call', 'type': 'n8n-nodes-base.httpRequest', 'typeVersion': 4.2,
                 'parameters': {'url': 'http://127.0.0.1:9/', 'authentication': 'genericCredentialType',
                                'genericAuthType': 'httpHeaderAuth', 'options': {}},
                 'credentials': {'httpHeaderAuth': {'name': cred_name}}},
            ],
            'connections': {'Webhook': {'main': [[{'node': 'Call', 'type': 'main', 'index': 0}]]}},
            'settings': {'executionOrder': 'v1'},
        },
    }


def node_credential(n8n, workflow_name):
    workflow = n8n.workflow(workflow_name)
    node = [n for n in workflow['nodes'] if n['name'] == 'Call'][0]
    return node['credentials']['httpHeaderAuth']


def test_create_then_nothing_to_do_then_update_keeps_workflows_working(n8n, run, unique):
    token, pw = 'tok-' + unique, 'Pw-' + unique
    creds = [header('gw-' + unique, token), postgres('db-' + unique, pw)]

    checked = run('n8n_credential', args(n8n, creds), check=True)
    assert checked['changed'] is True
    assert [c['action'] for c in checked['credentials']] == ['created', 'created']
    assert n8n.credential_rows('gw-' + unique) == []

    first = run('n8n_credential', args(n8n, creds))
    assert first['changed'] is True, first
    assert [(c['name'], c['action']) for c in first['credentials']] == [('gw-' + unique, 'created'), ('db-' + unique, 'created')]
    ids = dict((c['name'], c['id']) for c in first['credentials'])
    assert n8n.credential_rows('gw-' + unique) == [(ids['gw-' + unique], 'httpHeaderAuth')]
    assert first['major'] == n8n.major

    # The fingerprint sits beside the credential, in the instance; never the data.
    state = n8n.static_data(STATE)
    recorded = state['federation']['credentials']['gw-' + unique]
    assert recorded['id'] == ids['gw-' + unique] and recorded['type'] == 'httpHeaderAuth'
    assert recorded['fingerprint'].startswith('v1:') and len(recorded['fingerprint']) == 67
    assert token not in json.dumps(state) and pw not in json.dumps(state)

    before = n8n.snapshot()
    again = run('n8n_credential', args(n8n, creds))
    assert again['changed'] is False, again
    assert [c['action'] for c in again['credentials']] == ['unchanged', 'unchanged']
    assert [c['id'] for c in again['credentials']] == [ids['gw-' + unique], ids['db-' + unique]]
    assert n8n.snapshot() == before

    # A workflow uses the gateway credential; then the token changes.
    flow = caller_workflow('uses-gw-' + unique, 'gw-' + unique, 'cred-%s/hook' % unique)
    made = run('n8n_workflow', dict(url=n8n.url, api_key=n8n.key, workflows=[flow]))
    assert made['changed'] is True, made
    assert node_credential(n8n, 'uses-gw-' + unique)['id'] == ids['gw-' + unique]

    rotated = [header('gw-' + unique, token + '-new'), creds[1]]
    before = n8n.snapshot()
    checked = run('n8n_credential', args(n8n, rotated), check=True, diff=True)
    assert checked['changed'] is True
    assert checked['credentials'][0]['action'] == ('updated' if n8n.major >= 2 else 'replaced')
    assert checked['credentials'][1]['action'] == 'unchanged'
    assert checked['diff']['after'] == {'gw-' + unique: {'type': 'httpHeaderAuth', 'data': '(write-only: new value)'}}
    assert n8n.snapshot() == before

    result = run('n8n_credential', args(n8n, rotated))
    assert result['changed'] is True, result
    new_id = result['credentials'][0]['id']
    if n8n.major >= 2:
        assert result['credentials'][0]['action'] == 'updated'
        assert new_id == ids['gw-' + unique]
        assert result['repointed_workflows'] == []
    else:
        # 1.x cannot update: a new credential, the workflow follows it, the old one is gone.
        assert result['credentials'][0]['action'] == 'replaced'
        assert new_id != ids['gw-' + unique]
        assert result['repointed_workflows'] == ['uses-gw-' + unique]
        assert n8n.credential_rows('gw-' + unique) == [(new_id, 'httpHeaderAuth')]
    assert node_credential(n8n, 'uses-gw-' + unique) == {'id': new_id, 'name': 'gw-' + unique}
    assert n8n.workflow('uses-gw-' + unique)['active'] is True
    probe = wait(lambda: n8n.webhook('cred-%s/hook' % unique, {}).status_code != 404)
    assert probe, 'the workflow using the replaced credential lost its webhook'

    # The workflow module now agrees nothing changed: the reference resolves to the same id.
    same = run('n8n_workflow', dict(url=n8n.url, api_key=n8n.key, workflows=[flow]))
    assert same['changed'] is False, same

    gone = run('n8n_credential', dict(url=n8n.url, api_key=n8n.key, credentials=[{'name': 'db-' + unique}],
                                      state='absent'))
    assert gone['changed'] is True and gone['credentials'][0]['action'] == 'deleted'
    assert n8n.credential_rows('db-' + unique) == []
    assert 'db-' + unique not in n8n.static_data(STATE)['federation']['credentials']
    again = run('n8n_credential', dict(url=n8n.url, api_key=n8n.key, name='db-' + unique, state='absent'))
    assert again['changed'] is False


def test_invalid_data_fails_the_whole_call_before_anything_is_written(n8n, run, unique):
    before = n8n.snapshot()
    bad = [header('ok-' + unique, 'x' * 12),
           {'name': 'pg-' + unique, 'type': 'postgres', 'data': {'host': 'db.invalid-host', 'colour': 'crimson-red', 'port': 'many-ports'}},
           {'name': 'nt-' + unique, 'type': 'noSuchType', 'data': {'a': 'bee-value'}}]
    result = run('n8n_credential', args(n8n, bad))
    assert result['failed'] is True
    msg = result['msg']
    assert msg.startswith('Invalid credentials for n8n at %s, nothing was changed: ' % n8n.url)
    assert "credential 'pg-%s' (postgres): data has unknown property colour" % unique in msg
    assert "credential 'pg-%s' (postgres): data.port must be a number" % unique in msg
    if n8n.major < 2:
        assert "needs property ssl" in msg     # 1.x's schema makes ssl (and sshTunnel's fields) conditional
    assert "credential 'nt-%s': type 'noSuchType' is not a credential type this n8n knows" % unique in msg
    assert n8n.snapshot() == before


def test_no_secret_appears_in_results_or_errors(n8n, run, unique):
    secret = 'S3cret-' + unique + '-value'
    result = run('n8n_credential', args(n8n, [header('sec-' + unique, secret)]), diff=True)
    assert result['changed'] is True
    assert secret not in json.dumps(result) and n8n.key not in json.dumps(result)
    # n8n refuses the data: its message reaches the user with the name, the data does not.
    bad = {'name': 'sec2-' + unique, 'type': 'httpHeaderAuth', 'data': {'name': 'X-Header-Name', 'value': secret, 'nope': secret}}
    failed = run('n8n_credential', args(n8n, [bad]))
    assert failed['failed'] is True
    assert "credential 'sec2-%s'" % unique in failed['msg'] and 'unknown property nope' in failed['msg']
    assert secret not in json.dumps(failed)


def test_names_shorter_than_n8n_allows_are_refused_up_front(n8n, run):
    result = run('n8n_credential', args(n8n, [header('ab', 'x' * 10)]))
    assert result['failed'] is True
    assert "credential 'ab': name must have 3-128 characters" in result['msg']


def test_a_lost_state_is_recovered_without_duplicates(n8n, run, unique):
    creds = [header('lost-' + unique, 'token-' + unique)]
    first = run('n8n_credential', args(n8n, creds))
    cred_id = first['credentials'][0]['id']
    flow = caller_workflow('uses-lost-' + unique, 'lost-' + unique, 'lost-%s/hook' % unique)
    flow['active'] = False
    assert run('n8n_workflow', dict(url=n8n.url, api_key=n8n.key, workflows=[flow]))['changed'] is True

    # Someone deletes the state workflow: fingerprints are gone.
    state = n8n.workflow(STATE)
    assert n8n.api('DELETE', '/workflows/%s' % state['id']).status_code == 200
    result = run('n8n_credential', args(n8n, creds))
    assert result['changed'] is True       # nothing to compare with: written once more
    rows = n8n.credential_rows('lost-' + unique)
    assert len(rows) == 1, rows             # found again (2.x: by name; 1.x: through the workflow using it)
    assert node_credential(n8n, 'uses-lost-' + unique)['id'] == rows[0][0]
    if n8n.major >= 2:
        assert rows[0][0] == cred_id
    again = run('n8n_credential', args(n8n, creds))
    assert again['changed'] is False
