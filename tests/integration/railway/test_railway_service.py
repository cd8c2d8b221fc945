"""federation.platform.railway_service against the fake Railway API (real HTTP, schema-checked, stateful)."""

from __future__ import annotations

import json

from tests.integration.railway.support import MODULE, SECRETS, service_args


def state_of(railway, project='federation-finance', service='federation-finance-n8n', environment='production'):
    p = railway.find_project(project)
    if p is None:
        return None
    s = railway.find_service(p['id'], service)
    e = railway.find_environment(p['id'], environment)
    return p, s, e


def no_secret_in(result):
    text = json.dumps(result)
    for value in SECRETS.values():
        assert value not in text


def test_check_mode_plans_everything_and_changes_nothing(runner, railway):
    result = runner.module(MODULE, service_args(railway), check=True, diff=True)
    assert result['changed'] is True, result
    assert result['operations'] == [
        'projectCreate federation-finance',
        'serviceCreate federation-finance-n8n',
        'variableCollectionUpsert skipDeploys: DB_POSTGRESDB_PASSWORD, DB_TYPE, N8N_DIAGNOSTICS_ENABLED, '
        'N8N_ENCRYPTION_KEY, N8N_PORT, WEBHOOK_URL',
        'serviceInstanceUpdate healthcheckPath, source.image',
        'volumeCreate /home/node/.n8n',
        'serviceDomainCreate targetPort 5678',
        'serviceInstanceDeployV2',
    ]
    assert result['diff']['before'] == {}
    assert result['diff']['after']['variables']['N8N_ENCRYPTION_KEY'] == '(new)'
    assert result['project']['id'] is None and result['deployment'] is None
    assert railway.mutations() == []
    assert railway.projects == {}
    assert railway.violations() == []
    no_secret_in(result)


def test_create_then_rerun_is_idempotent(runner, railway):
    first = runner.module(MODULE, service_args(railway), diff=True)
    assert first['changed'] is True, first['msg']
    assert [r['operation'] for r in railway.mutations()] == [
        'projectCreate', 'serviceCreate', 'variableCollectionUpsert', 'serviceInstanceUpdate', 'volumeCreate',
        'serviceDomainCreate', 'serviceInstanceDeployV2']
    assert first['deployment']['status'] == 'SUCCESS'
    assert first['deployment']['statuses'] == ['QUEUED', 'BUILDING', 'DEPLOYING', 'SUCCESS']
    project, service, env = state_of(railway)
    assert first['project'] == {'id': project['id'], 'name': 'federation-finance', 'workspace_id': railway.workspace_id}
    assert first['service']['id'] == service['id'] and first['environment']['id'] == env['id']
    assert first['url'] == 'https://%s' % first['domain'] and first['domain'].endswith('.up.railway.app')
    assert first['volume']['mount_path'] == '/home/node/.n8n'
    assert [d['status'] for d in railway.service_deployments(service['id'])] == ['SUCCESS']
    stored = railway.variables[(env['id'], service['id'])]
    assert stored == {'DB_TYPE': 'postgresdb', 'N8N_PORT': '5678', 'N8N_DIAGNOSTICS_ENABLED': 'false',
                      'WEBHOOK_URL': 'https://${{RAILWAY_PUBLIC_DOMAIN}}/', **SECRETS}
    instance = railway.instances[(service['id'], env['id'])]
    assert instance['source']['image'] == 'registry.example.test/federation/aio:1.0.0'
    assert instance['healthcheckPath'] == '/healthz'
    no_secret_in(first)

    mark = railway.mark()
    again = runner.module(MODULE, service_args(railway), diff=True)
    assert again['changed'] is False, again['operations']
    assert again['operations'] == []
    assert railway.mutations(mark) == []
    assert again['diff']['before'] == again['diff']['after']
    assert again['deployment']['id'] == first['deployment']['id']
    assert railway.operation_names(mark) == ['apiToken', 'projects', 'project', 'serviceState'], 'four reads, nothing else'

    mark = railway.mark()
    by_id = runner.module(MODULE, service_args(railway, workspace=railway.workspace_id))
    assert by_id['changed'] is False
    assert railway.operation_names(mark) == ['projects', 'project', 'serviceState'], 'a workspace id saves a read'

    checked = runner.module(MODULE, service_args(railway), check=True)
    assert checked['changed'] is False
    assert railway.violations() == [] and railway.unsupported() == []


def test_one_changed_secret_sets_only_that_variable_and_deploys_once(runner, railway):
    runner.module(MODULE, service_args(railway))
    service, env = state_of(railway)[1:]
    rotated = dict(SECRETS, N8N_ENCRYPTION_KEY='Rotated-encryption-key-0002')

    mark = railway.mark()
    planned = runner.module(MODULE, service_args(railway, secret_variables=rotated), check=True, diff=True)
    assert planned['changed'] is True
    assert planned['operations'] == ['variableCollectionUpsert skipDeploys: N8N_ENCRYPTION_KEY', 'serviceInstanceDeployV2']
    assert planned['diff']['after']['variables']['N8N_ENCRYPTION_KEY'] == '(changed)'
    assert planned['diff']['before']['variables']['N8N_ENCRYPTION_KEY'] == '(set)'
    assert railway.mutations(mark) == []

    changed = runner.module(MODULE, service_args(railway, secret_variables=rotated), diff=True)
    assert changed['variables_changed'] == ['N8N_ENCRYPTION_KEY']
    assert changed['operations'] == planned['operations']
    assert 'Rotated-encryption-key-0002' not in json.dumps(changed)
    assert railway.variables[(env['id'], service['id'])]['N8N_ENCRYPTION_KEY'] == 'Rotated-encryption-key-0002'
    assert [d['status'] for d in railway.service_deployments(service['id'])] == ['REMOVED', 'SUCCESS'], \
        'skipDeploys: one deployment for the change, not one per variable'


def test_new_image_and_settings_update_the_instance(runner, railway):
    runner.module(MODULE, service_args(railway))
    service, env = state_of(railway)[1:]
    result = runner.module(MODULE, service_args(railway, image='registry.example.test/federation/aio:1.1.0', replicas=2,
                                                restart_policy='always', healthcheck_timeout=120))
    assert result['operations'] == [
        'serviceInstanceUpdate healthcheckTimeout, numReplicas, restartPolicyType, source.image', 'serviceInstanceDeployV2']
    instance = railway.instances[(service['id'], env['id'])]
    assert (instance['source']['image'], instance['numReplicas'], instance['restartPolicyType'], instance['healthcheckTimeout']) == \
        ('registry.example.test/federation/aio:1.1.0', 2, 'ALWAYS', 120)
    assert railway.violations() == []


def test_purge_variables_removes_what_the_options_do_not_name(runner, railway):
    runner.module(MODULE, service_args(railway))
    service, env = state_of(railway)[1:]
    railway.variables[(env['id'], service['id'])]['LEFTOVER'] = 'x'

    kept = runner.module(MODULE, service_args(railway))
    assert kept['changed'] is False, 'without purge_variables, other variables are left alone'

    purged = runner.module(MODULE, service_args(railway, purge_variables=True), diff=True)
    assert purged['variables_removed'] == ['LEFTOVER']
    assert purged['operations'][0] == 'variableCollectionUpsert replace, skipDeploys: set none; remove LEFTOVER'
    assert 'LEFTOVER' not in railway.variables[(env['id'], service['id'])]
    assert 'LEFTOVER' in purged['diff']['before']['variables'] and 'LEFTOVER' not in purged['diff']['after']['variables']
    assert runner.module(MODULE, service_args(railway, purge_variables=True))['changed'] is False


def test_failed_deployment_fails_with_its_status_and_logs_then_a_rerun_deploys_again(runner, railway):
    railway.deploy_outcomes.append('FAILED')
    failed = runner.module(MODULE, service_args(railway))
    assert failed.get('failed') is True
    assert "Failed to deploy service 'federation-finance-n8n' on Railway project 'federation-finance' environment 'production'" in failed['msg']
    assert 'ended FAILED (statuses seen: QUEUED -> BUILDING -> FAILED)' in failed['msg']
    assert 'manifest unknown' in failed['msg'], 'the last build log lines are quoted'
    assert failed['deployment']['status'] == 'FAILED'
    no_secret_in(failed)

    mark = railway.mark()
    again = runner.module(MODULE, service_args(railway))
    assert again['changed'] is True
    assert again['operations'] == ['serviceInstanceDeployV2']
    assert again['deployment']['status'] == 'SUCCESS'
    assert [r['operation'] for r in railway.mutations(mark)] == ['serviceInstanceDeployV2']


def test_deployment_still_running_at_the_timeout_is_waited_for_again_without_a_second_deploy(runner, railway):
    railway.deploy_outcomes.append('STUCK')
    stuck = runner.module(MODULE, service_args(railway, wait_timeout=1, poll_interval=0.2))
    assert stuck.get('failed') is True
    assert 'is still BUILDING after 1 s' in stuck['msg'] and 'without deploying twice' in stuck['msg']
    service = state_of(railway)[1]
    deployment = railway.service_deployments(service['id'])[0]
    deployment['plan'] = ['QUEUED', 'BUILDING', 'DEPLOYING', 'SUCCESS']  # the build goes on

    mark = railway.mark()
    done = runner.module(MODULE, service_args(railway))
    assert done['changed'] is False and done['operations'] == []
    assert done['deployment']['id'] == deployment['id'] and done['deployment']['status'] == 'SUCCESS'
    assert railway.mutations(mark) == []


def test_crashed_deployment_is_not_success(runner, railway):
    railway.deploy_outcomes.append('CRASHED')
    crashed = runner.module(MODULE, service_args(railway))
    assert crashed.get('failed') is True
    assert 'ended CRASHED' in crashed['msg'] and 'process exited with code 1' in crashed['msg']


def test_rate_limit_answers_are_waited_out(runner, railway):
    railway.throttle_next(2, retry_after=1)
    result = runner.module(MODULE, service_args(railway))
    assert result['changed'] is True, result.get('msg')
    assert result['rate_limit']['retries'] == 2
    assert result['rate_limit']['waited_seconds'] >= 2
    assert [r['status'] for r in railway.records()[:3]] == [429, 429, 200]
    assert railway.violations() == []


def test_a_small_rate_limit_window_slows_the_run_down_but_it_completes(runner, railway):
    railway.set_rate_limit(4, 1.0)
    result = runner.module(MODULE, service_args(railway))
    assert result['changed'] is True, result.get('msg')
    assert result['deployment']['status'] == 'SUCCESS'
    assert result['rate_limit']['limit'] == 4
    assert result['rate_limit']['waited_seconds'] > 0
    assert railway.mutations() and railway.violations() == []


def test_a_rate_limit_wait_beyond_the_bound_fails_clearly(runner, railway):
    railway.throttle_next(1, retry_after=300)
    result = runner.module(MODULE, service_args(railway, rate_limit_max_wait=5))
    assert result.get('failed') is True
    assert 'Railway asks to wait 300 s, more than rate_limit_max_wait (5 s)' in result['msg']
    assert 'raise rate_limit_max_wait' in result['msg']
    assert railway.mutations() == []


def test_project_token_works_within_its_project_and_environment(runner, railway):
    runner.module(MODULE, service_args(railway))
    project, service, env = state_of(railway)
    token = railway.project_token(project['id'], env['id'])
    args = service_args(railway, api_token=None, project_token=token, image='registry.example.test/federation/aio:1.2.0')
    mark = railway.mark()
    result = runner.module(MODULE, args)
    assert result['changed'] is True, result.get('msg')
    assert result['operations'] == ['serviceInstanceUpdate source.image', 'serviceInstanceDeployV2']
    assert {r['auth'] for r in railway.records(mark)} == {'project'}
    assert railway.operation_names(mark)[:2] == ['projectToken', 'project']

    other = runner.module(MODULE, dict(args, project='federation-hr'))
    assert other.get('failed') is True
    assert "the project token belongs to project 'federation-finance'" in other['msg']


def test_the_environment_variable_tokens_are_used(runner, railway):
    args = service_args(railway)
    del args['api_token']
    result = runner.module(MODULE, args, env={'RAILWAY_API_TOKEN': railway.token})
    assert result['changed'] is True, result.get('msg')
    assert {r['auth'] for r in railway.records()} == {'account'}


def test_a_bad_token_is_refused_with_advice(runner, railway):
    result = runner.module(MODULE, service_args(railway, api_token='not-a-token'))
    assert result.get('failed') is True
    assert 'Not Authorized' in result['msg'] and 'api_token (RAILWAY_API_TOKEN)' in result['msg']
    assert 'not-a-token' not in json.dumps(result)


def test_workspace_must_be_named_when_the_token_reaches_several(runner, railway):
    other = railway.add_workspace('elsewhere')
    ambiguous = runner.module(MODULE, service_args(railway))
    assert ambiguous.get('failed') is True
    assert "the token reaches 2 workspaces ('federation', 'elsewhere')" in ambiguous['msg'] or \
        "the token reaches 2 workspaces ('elsewhere', 'federation')" in ambiguous['msg']
    assert railway.mutations() == []

    placed = runner.module(MODULE, service_args(railway, workspace='elsewhere'))
    assert placed['project']['workspace_id'] == other
    by_id = runner.module(MODULE, service_args(railway, workspace=other))
    assert by_id['changed'] is False


def test_workspace_token_creates_in_its_workspace(runner, railway):
    railway.add_workspace('elsewhere')
    token = railway.workspace_token(railway.workspace_id)
    result = runner.module(MODULE, service_args(railway, api_token=token))
    assert result['changed'] is True, result.get('msg')
    assert result['project']['workspace_id'] == railway.workspace_id


def test_bad_options_fail_before_any_request(runner, railway):
    result = runner.module(MODULE, service_args(
        railway, variables={'RAILWAY_X': '1', 'N8N_ENCRYPTION_KEY': 'x', '1BAD': 'y', 'NESTED': {'a': 1}}, volume_mount_path='data',
        endpoint=railway.url.replace('127.0.0.1', 'railway.example.test')))
    assert result.get('failed') is True
    msg = result['msg']
    assert msg.startswith("Invalid options for service 'federation-finance-n8n' on Railway project 'federation-finance':")
    assert "variable 'RAILWAY_X' uses the prefix RAILWAY_" in msg
    assert "variable name '1BAD' is not allowed" in msg
    assert 'N8N_ENCRYPTION_KEY are in both variables and secret_variables' in msg
    assert "volume_mount_path 'data' must be an absolute path" in msg
    assert 'variables NESTED have a list or mapping as value' in msg
    assert 'is plain http: the token would cross the network unencrypted' in msg
    assert railway.records() == []


def test_no_project_creation_when_not_allowed(runner, railway):
    result = runner.module(MODULE, service_args(railway, create_project=False))
    assert result.get('failed') is True
    assert "Failed to find project 'federation-finance' on Railway: it does not exist and create_project is false" in result['msg']


def test_new_environment_is_created_in_an_existing_project(runner, railway):
    runner.module(MODULE, service_args(railway, service='other'))
    result = runner.module(MODULE, service_args(railway, environment='staging', service='staged'))
    assert result['operations'][:2] == ['environmentCreate staging', 'serviceCreate staged']
    assert result['environment']['name'] == 'staging'
    assert runner.module(MODULE, service_args(railway, environment='staging', service='staged'))['changed'] is False


def test_target_port_and_mount_path_changes_are_applied(runner, railway):
    runner.module(MODULE, service_args(railway))
    result = runner.module(MODULE, service_args(railway, target_port=8080, volume_mount_path='/data'))
    assert result['operations'] == ['volumeInstanceUpdate mountPath /data', 'serviceDomainUpdate targetPort 8080',
                                    'serviceInstanceDeployV2']
    assert result['volume']['mount_path'] == '/data'
    assert runner.module(MODULE, service_args(railway, target_port=8080, volume_mount_path='/data'))['changed'] is False


def test_deploy_never_configures_only_and_always_redeploys(runner, railway):
    configured = runner.module(MODULE, service_args(railway, deploy='never'))
    assert 'serviceInstanceDeployV2' not in configured['operations']
    assert configured['deployment'] is None
    deployed = runner.module(MODULE, service_args(railway))
    assert deployed['operations'] == ['serviceInstanceDeployV2'], 'no deployment yet: auto deploys'
    again = runner.module(MODULE, service_args(railway, deploy='always'))
    assert again['changed'] is True and again['operations'] == ['serviceInstanceDeployV2']


def test_absent_removes_the_service_and_optionally_its_volume(runner, railway):
    runner.module(MODULE, service_args(railway))
    project, service, env = state_of(railway)
    planned = runner.module(MODULE, service_args(railway, state='absent', purge_volume=True), check=True)
    assert planned['operations'] == ['volumeDelete /home/node/.n8n', 'serviceDelete federation-finance-n8n']
    assert railway.find_service(project['id'], 'federation-finance-n8n') is not None

    removed = runner.module(MODULE, service_args(railway, state='absent', purge_volume=True), diff=True)
    assert removed['changed'] is True
    assert removed['diff']['after'] == {} and removed['diff']['before']['service'] == 'federation-finance-n8n'
    assert railway.find_service(project['id'], 'federation-finance-n8n') is None
    assert railway.volumes == {}
    again = runner.module(MODULE, service_args(railway, state='absent'))
    assert again['changed'] is False
    missing_project = runner.module(MODULE, service_args(railway, state='absent', project='never-made'))
    assert missing_project['changed'] is False
    assert railway.violations() == []


def test_a_service_missing_from_its_environment_is_reported_not_duplicated(runner, railway):
    runner.module(MODULE, service_args(railway))
    # Railway creates a new environment without the project's services unless it is forked from another.
    result = runner.module(MODULE, service_args(railway, environment='staging'))
    assert result.get('failed') is True
    assert ("Failed to read service 'federation-finance-n8n' on Railway project 'federation-finance' environment 'staging': "
            "the service exists in the project but not in this environment") in result['msg']
    assert [r['operation'] for r in railway.mutations()][-1] == 'environmentCreate'
    assert len([s for s in railway.services.values() if s['name'] == 'federation-finance-n8n']) == 1
