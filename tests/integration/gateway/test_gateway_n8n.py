"""The cross-department tool path with a real n8n: a credential holding hr's gateway token, an HTTP Request
node calling the gateway, and treasury's webhook answering behind it with the caller the gateway vouches for."""

from __future__ import annotations

import uuid

import pytest
import requests

from tests.harness.common import wait_for
from tests.harness.n8n import N8nServer

pytestmark = pytest.mark.slow


def node(name, kind, version, position, parameters, **more):
    return dict(id=str(uuid.uuid4()), name=name, type=kind, typeVersion=version, position=position,
                parameters=parameters, **more)


def webhook(path):
    return node('Webhook', 'n8n-nodes-base.webhook', 2, [0, 0],
                {'httpMethod': 'POST', 'path': path, 'responseMode': 'responseNode', 'options': {}},
                webhookId=str(uuid.uuid4()))


def respond(body):
    return node('Respond', 'n8n-nodes-base.respondToWebhook', 1.1, [400, 0],
                {'respondWith': 'json', 'responseBody': body, 'options': {}})


@pytest.fixture(scope='module')
def n8n():
    server = N8nServer(version='2.41.1').start()
    session = requests.Session()
    setup = session.post(server.url + '/rest/owner/setup', timeout=30, json={
        'email': 'owner@treasury.federation.local', 'firstName': 'Owner', 'lastName': 'Treasury',
        'password': 'Gateway-Test-1'})
    assert setup.status_code == 200, setup.text
    key = session.post(server.url + '/rest/api-keys', timeout=30, json={
        'label': 'gateway test', 'expiresAt': None,
        'scopes': ['workflow:create', 'workflow:read', 'workflow:activate', 'credential:create']})
    assert key.status_code == 200, key.text
    server.api_key = key.json()['data']['rawApiKey']
    yield server
    server.remove()


def api(n8n, method, path, **kwargs):
    answer = requests.request(method, n8n.url + '/api/v1' + path, headers={'X-N8N-API-KEY': n8n.api_key}, timeout=30, **kwargs)
    assert answer.status_code == 200, (path, answer.status_code, answer.text)
    return answer.json()


def activate(n8n, workflow):
    created = api(n8n, 'POST', '/workflows', json=dict(workflow, settings={}))
    api(n8n, 'POST', '/workflows/%s/activate' % created['id'])
    return created


def test_an_n8n_tool_asks_another_department_through_the_gateway(gateway, n8n):
    # treasury's assistant: a webhook that answers with what it was asked and by whom
    activate(n8n, {'name': 'treasury: travel budget', 'nodes': [
        webhook('travel-budget'),
        respond("={{ JSON.stringify({department: 'treasury', caller: $json.headers['x-federation-caller'], "
                "authorization: $json.headers['authorization'] || null, question: $json.body.question, "
                "quarter: $json.query.quarter, budget: 125000}) }}")],
        'connections': {'Webhook': {'main': [[{'node': 'Respond', 'type': 'main', 'index': 0}]]}}})
    gateway.route('treasury', n8n.url + '/webhook')

    # hr's cross-department tool: its gateway identity as an n8n credential, no manual step
    credential = api(n8n, 'POST', '/credentials', json={
        'name': 'Federation gateway (hr)', 'type': 'httpHeaderAuth',
        'data': {'name': 'Authorization', 'value': 'Bearer ' + gateway.token('hr')}})
    ask = node('Ask treasury', 'n8n-nodes-base.httpRequest', 4.2, [200, 0], {
        'method': 'POST', 'url': gateway.url + '/dept/treasury/travel-budget?quarter=3',
        'authentication': 'genericCredentialType', 'genericAuthType': 'httpHeaderAuth',
        'sendBody': True, 'specifyBody': 'json', 'jsonBody': '={{ JSON.stringify({question: $json.body.question}) }}',
        'options': {}}, credentials={'httpHeaderAuth': {'id': credential['id'], 'name': credential['name']}})
    activate(n8n, {'name': 'hr: ask treasury', 'nodes': [webhook('hr-ask-treasury'), ask, respond('={{ JSON.stringify($json) }}')],
                   'connections': {'Webhook': {'main': [[{'node': 'Ask treasury', 'type': 'main', 'index': 0}]]},
                                   'Ask treasury': {'main': [[{'node': 'Respond', 'type': 'main', 'index': 0}]]}}})

    def asked():
        answer = requests.post(n8n.url + '/webhook/hr-ask-treasury', json={'question': 'What is the Q3 travel budget?'}, timeout=30)
        return answer if answer.status_code == 200 else None

    answer = wait_for(asked, 30, 'the hr tool workflow')  # activation takes effect asynchronously in n8n 2.x
    assert answer.json() == {'department': 'treasury', 'caller': 'hr', 'authorization': None,
                             'question': 'What is the Q3 travel budget?', 'quarter': '3', 'budget': 125000}

    # and the same webhook refuses a department that is not on treasury's list
    refused = gateway.call('/dept/treasury/travel-budget', gateway.token('audit'), method='POST', json={'question': 'x'})
    assert refused.status_code == 403
