"""The Railway GraphQL client and the fake server it is tested against, over real HTTP on loopback.

Sleeping is injected (recorded, not slept) so the rate-limit logic is exercised without waiting.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import graphql
import pytest

from ansible_collections.federation.platform.plugins.module_utils._railway import (
    DOCUMENTS, RailwayClient, RailwayError, RailwayRateLimited, seconds_until)
from tests.harness.railway_fake import SCHEMA_PATH, load_schema


class Sleeps(list):
    def __call__(self, seconds):
        self.append(seconds)


def client_for(railway, token=None, **kwargs):
    sleeps = Sleeps()
    return RailwayClient(endpoint=railway.url, api_token=token or railway.token, sleep=sleeps, **kwargs), sleeps


def raw_post(railway, body, headers=None):
    request = urllib.request.Request(railway.url, data=json.dumps(body).encode(), method='POST',
                                     headers=dict({'Content-Type': 'application/json', 'Authorization': 'Bearer ' + railway.token},
                                                  **(headers or {})))
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


@pytest.mark.parametrize('name', sorted(DOCUMENTS))
def test_every_document_of_the_collection_validates_against_railways_schema(name):
    schema = load_schema(SCHEMA_PATH)
    document = graphql.parse(DOCUMENTS[name])
    assert graphql.validate(schema, document) == []
    operation = document.definitions[0]
    assert len(document.definitions) == 1 and operation.name.value == name, 'the operation is named like its key'


def test_the_schema_copy_is_railways_unmodified():
    import hashlib
    digest = hashlib.sha256(SCHEMA_PATH.read_bytes()).hexdigest()
    assert digest == '5e849390d4d43a2d7222d2f490005b853142b8158875d657efa1d8c37dbd0815'


def test_query_and_mutation_round_trip(railway):
    client, sleeps = client_for(railway)
    workspaces = client.execute('apiToken')['apiToken']['workspaces']
    assert workspaces == [{'id': railway.workspace_id, 'name': 'federation'}]
    created = client.execute('projectCreate', {'input': {'name': 'p', 'workspaceId': railway.workspace_id}})['projectCreate']
    assert created['name'] == 'p'
    assert [e['node']['name'] for e in created['environments']['edges']] == ['production']
    assert client.operations == [('apiToken', False), ('projectCreate', True)]
    assert client.rate_limit['limit'] == 1000 and client.rate_limit['remaining'] == 998
    assert sleeps == []


def test_429_is_retried_after_retry_after(railway):
    client, sleeps = client_for(railway)
    railway.throttle_next(2, retry_after=7)
    assert client.execute('apiToken')['apiToken']['workspaces']
    assert sleeps == [7.0, 7.0]
    assert client.retries == 2 and client.waited == 14.0
    assert [r['status'] for r in railway.records()] == [429, 429, 200]


def test_429_retries_are_bounded(railway):
    client, sleeps = client_for(railway, max_retries=2)
    railway.throttle_next(5, retry_after=1)
    with pytest.raises(RailwayRateLimited) as caught:
        client.execute('apiToken')
    assert 'rate limited 3 times in a row' in caught.value.message
    assert len(sleeps) == 2


def test_a_wait_longer_than_the_bound_is_refused_not_slept(railway):
    client, sleeps = client_for(railway, max_wait=10)
    railway.throttle_next(1, retry_after=3600)
    with pytest.raises(RailwayRateLimited) as caught:
        client.execute('apiToken')
    assert 'wait 3600 s, more than rate_limit_max_wait (10 s)' in caught.value.message
    assert sleeps == []


def test_a_used_up_window_is_waited_for_before_the_next_request(railway):
    railway.set_rate_limit(2, 30)
    client, sleeps = client_for(railway)
    client.execute('apiToken')
    client.execute('apiToken')
    assert client.remaining == 0
    # The window resets in about 30 s: the client waits for it instead of sending a request that would be refused.
    railway.set_rate_limit(2, 30)  # the fake forgets the used budget, as if the window had passed
    client.execute('apiToken')
    assert len(sleeps) == 1 and 25 < sleeps[0] <= 31
    assert [r['status'] for r in railway.records()] == [200, 200, 200]


def test_graphql_errors_and_auth_failures_raise_with_the_servers_message(railway):
    client, _sleeps = client_for(railway, token='wrong')
    with pytest.raises(RailwayError) as caught:
        client.execute('apiToken')
    assert caught.value.message == 'Not Authorized' and caught.value.status == 200

    client, _sleeps = client_for(railway)
    with pytest.raises(RailwayError) as caught:
        client.execute('project', {'id': '00000000-0000-4000-8000-000000000000'})
    assert caught.value.message == 'Project not found'


def test_project_tokens_use_their_own_header(railway):
    created = RailwayClient(endpoint=railway.url, api_token=railway.token).execute(
        'projectCreate', {'input': {'name': 'p', 'workspaceId': railway.workspace_id}})['projectCreate']
    env_id = created['environments']['edges'][0]['node']['id']
    token = railway.project_token(created['id'], env_id)
    client = RailwayClient(endpoint=railway.url, project_token=token)
    assert client.execute('projectToken')['projectToken'] == {'projectId': created['id'], 'environmentId': env_id}
    assert railway.records()[-1]['auth'] == 'project'
    # The same token as a Bearer token is not accepted, as on Railway.
    bearer = RailwayClient(endpoint=railway.url, api_token=token)
    with pytest.raises(RailwayError, match='Not Authorized'):
        bearer.execute('projectToken')


def test_an_answer_that_is_not_graphql_is_reported(railway):
    client = RailwayClient(endpoint=railway.base_url + '/elsewhere', api_token=railway.token)
    with pytest.raises(RailwayError) as caught:
        client.execute('apiToken')
    assert caught.value.status == 404


def test_an_unreachable_endpoint_is_reported():
    client = RailwayClient(endpoint='http://127.0.0.1:9/graphql/v2', api_token='x', timeout=2)
    with pytest.raises(RailwayError, match='cannot reach http://127.0.0.1:9/graphql/v2'):
        client.execute('apiToken')


@pytest.mark.parametrize('value, expected', [
    ('30', 30.0),
    ('1000000030', 30.0),                      # epoch seconds
    ('1000000030000', 30.0),                   # epoch milliseconds
    ('2001-09-09T01:47:10Z', 30.0),            # RFC 3339
    ('Sun, 09 Sep 2001 01:47:10 GMT', 30.0),   # HTTP date
    ('soon', None),
    (None, None),
])
def test_rate_limit_times_are_read_in_every_form_railway_might_send(value, expected):
    assert seconds_until(value, 1000000000.0) == expected


# The fake itself: it must refuse what Railway's schema refuses, or the tests above prove nothing.

def test_fake_refuses_unknown_fields(railway):
    status, body = raw_post(railway, {'query': 'query { projects { edges { node { id nickname } } } }'})
    assert status == 400 and body['errors'][0]['extensions']['code'] == 'GRAPHQL_VALIDATION_FAILED'
    assert "Cannot query field 'nickname' on type 'Project'" in body['errors'][0]['message']
    assert len(railway.violations()) == 1


def test_fake_refuses_wrong_variable_types(railway):
    document = DOCUMENTS['variableCollectionUpsert']
    for variables in (
        {'input': {'projectId': 'p', 'environmentId': 'e', 'variables': {'PORT': 5678}}},    # not a string
        {'input': {'projectId': 'p', 'environmentId': 'e', 'variables': {}, 'skipDeploy': True}},  # unknown input field
        {'input': {'projectId': 'p', 'variables': {}}},                                        # required field missing
    ):
        status, body = raw_post(railway, {'query': document, 'variables': variables})
        assert status == 400 and body['errors'][0]['extensions']['code'] == 'BAD_USER_INPUT', body
    status, body = raw_post(railway, {'query': DOCUMENTS['apiToken'], 'variables': {'stray': 1}})
    assert status == 400
    assert len(railway.violations()) == 4
    assert railway.mutations() == []


def test_fake_refuses_operations_it_does_not_model(railway):
    status, body = raw_post(railway, {'query': 'query { regions { id } }'})
    assert status == 200 and 'does not implement' in body['errors'][0]['message']
    assert len(railway.unsupported()) == 1


def test_fake_sends_rate_limit_headers(railway):
    railway.set_rate_limit(1, 60)
    request = urllib.request.Request(railway.url, data=json.dumps({'query': DOCUMENTS['apiToken']}).encode(), method='POST',
                                     headers={'Content-Type': 'application/json', 'Authorization': 'Bearer ' + railway.token})
    with urllib.request.urlopen(request) as response:
        assert response.headers['X-RateLimit-Limit'] == '1' and response.headers['X-RateLimit-Remaining'] == '0'
        assert int(response.headers['X-RateLimit-Reset']) > 1e9
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request)
    assert caught.value.code == 429 and 0 < int(caught.value.headers['Retry-After']) <= 60
