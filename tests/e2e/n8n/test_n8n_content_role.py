"""The n8n_content role end to end (playbooks/n8n_content.yml), against a real n8n on PostgreSQL, for
each n8n version: provision, call the voice webhook, re-run, check mode, diff, rotation, no secret shown.

The tests of this module build on each other, in file order, for one department per n8n version.
"""

import re

from tests.harness.chat_completions import ChatCompletionsServer
from tests.helpers import recap
from tests.integration.n8n.support import wait


def call(dept, body):
    resp = dept.n8n.webhook('finance/voice', body)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_first_run_bootstraps_and_the_voice_webhook_answers_and_logs(department):
    run = department.playbook()
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-3000:]
    assert recap(run.stdout)['changed'] > 0
    stored = department.secrets()
    assert stored['n8n_api_key'] and stored['gateway_token']

    # The answer of the department's knowledge whose topic the question holds, the longest one.
    answer = call(department, {'call_id': 'call-1', 'caller': '+41 44 000 00 01', 'question': 'What is the Travel Budget?'})
    assert answer['answer'] == 'The travel budget is twelve thousand euros a quarter.'
    assert answer['call_id'] == 'call-1' and answer['department'] == 'finance'
    calls = department.tenant_db.calls()
    assert calls[-1][1:] == ('dept_finance', 'call-1', '+41 44 000 00 01', 'What is the Travel Budget?',
                             'The travel budget is twelve thousand euros a quarter.')
    assert str(answer['log_id']) == str(calls[-1][0])
    # Without a topic of its knowledge in the question, a fixed sentence.
    assert call(department, {'call_id': 'call-1b', 'question': 'Who is there?'})['answer'] == \
        'Finance heard your question: Who is there?'

    # The gateway's door never forwards: forward_to is dropped and the department answers itself.
    asked = len(department.gateway.requests)
    answer = call(department, {'call_id': 'call-2', 'question': 'Who approves?', 'forward_to': 'hr'})
    assert answer['answer'] == 'Finance heard your question: Who approves?'
    assert len(department.gateway.requests) == asked

    # The voice bridge's door needs its secret header: without it n8n refuses before the workflow runs.
    turn = {'call_id': 'call-3', 'from': '+41 44 000 00 02', 'text': 'Who approves?', 'mode': 'gather',
            'input': 'speech', 'forward_to': 'hr'}
    for headers in (None, {'X-Federation-Voice-Secret': 'not-the-secret-at-all'}):
        refused = department.n8n.webhook('finance/turn', turn, headers=headers)
        assert refused.status_code in (401, 403), refused.text
    assert len(department.gateway.requests) == asked

    # With it, the bridge's turn goes through the tool ask_department: to the gateway with the department's
    # token, the target's answer back, in the field the bridge speaks.
    resp = department.n8n.webhook('finance/turn', turn, headers={'X-Federation-Voice-Secret': stored['voice_assistant_secret']})
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer['answer'] == answer['text'] == 'hr answers: Who approves?'
    sent = department.gateway.requests[-1]
    assert sent['path'] == '/dept/hr/hr/voice'
    assert sent['headers']['Authorization'] == 'Bearer ' + stored['gateway_token']
    assert department.tenant_db.calls()[-1][2:4] == ('call-3', '+41 44 000 00 02')


def test_a_rerun_changes_nothing(department):
    before = department.n8n.snapshot()
    run = department.playbook()
    assert run.returncode == 0, run.stdout[-5000:]
    assert recap(run.stdout)['changed'] == 0
    assert department.n8n.snapshot() == before


def test_check_mode_writes_nothing_and_diff_shows_a_template_change(department):
    before = department.n8n.snapshot()
    run = department.playbook('--check')
    assert run.returncode == 0, run.stdout[-5000:]
    assert recap(run.stdout)['changed'] == 0

    run = department.playbook('--check', '--diff', '-e', 'n8n_content_display_name=Finanzen')
    assert run.returncode == 0, run.stdout[-5000:]
    assert recap(run.stdout)['changed'] == 1
    # The answer without knowledge names the department: the old name goes, the new one comes.
    assert re.search(r'^-.*"Finance"', run.stdout, re.M), run.stdout[-4000:]
    assert re.search(r'^\+.*"Finanzen"', run.stdout, re.M), run.stdout[-4000:]
    assert department.n8n.snapshot() == before


def test_a_rotated_tenant_password_reaches_the_workflow(department):
    old_ids = department.n8n.credential_rows('finance-tenant-db')
    new_password = 'Rotated-' + department.secrets()['n8n_encryption_key'][:6] + '-9x'
    department.store_secret('tenant_db_password', new_password)
    department.tenant_db.set_password('finance', new_password)

    run = department.playbook()
    assert run.returncode == 0, run.stdout[-5000:]
    assert recap(run.stdout)['changed'] >= 1
    new_ids = department.n8n.credential_rows('finance-tenant-db')
    assert len(new_ids) == 1
    if department.n8n.major >= 2:
        assert new_ids == old_ids           # updated in place
    else:
        assert new_ids != old_ids           # replaced; the log tool follows it
    answer = wait(lambda: call(department, {'call_id': 'call-3', 'caller': 'x', 'question': 'After rotation?'}))
    assert answer['answer'] == 'Finance heard your question: After rotation?'
    assert department.tenant_db.calls()[-1][2:5] == ('call-3', 'x', 'After rotation?')

    run = department.playbook()
    assert recap(run.stdout)['changed'] == 0


def test_the_llm_assistant_answers_through_a_chat_completions_server(department):
    """assistant: llm, against a local server speaking the chat-completions protocol (no model can be downloaded
    here): n8n sends the department's key, the model asked for and the question; the model's answer is the answer
    and is logged. Back to the deterministic assistant afterwards."""
    model = ChatCompletionsServer('sk-' + department.secrets()['n8n_encryption_key'][:20])
    try:
        department.store_secret('llm_api_key', model.api_key)
        run = department.playbook('-e', 'n8n_content_assistant=llm', '-e', 'n8n_content_llm_url=%s' % model.url,
                                  '-e', 'n8n_content_llm_model=federation-test')
        assert run.returncode == 0, run.stdout[-5000:]
        answer = wait(lambda: call(department, {'call_id': 'call-llm', 'caller': 'y', 'question': 'Who signs invoices?'}))
        assert answer['answer'] == 'federation-test says: Who signs invoices?'
        asked = model.requests[-1]
        assert asked['model'] == 'federation-test'
        assert [m['role'] for m in asked['messages']] == ['system', 'user']
        assert 'Finance' in asked['messages'][0]['content'] and asked['messages'][1]['content'] == 'Who signs invoices?'
        assert department.tenant_db.calls()[-1][2:] == ('call-llm', 'y', 'Who signs invoices?', answer['answer'])
    finally:
        model.stop()
    run = department.playbook()
    assert run.returncode == 0 and recap(run.stdout)['changed'] >= 1, run.stdout[-5000:]


def test_no_secret_appears_in_any_output(department):
    run = department.playbook('-vvv')
    assert run.returncode == 0
    secrets = department.secrets()
    assert set(secrets) >= {"tenant_db_password", "n8n_owner_password", "n8n_encryption_key", "n8n_api_key", "gateway_token"}
    for output in department.outputs:
        for name, value in secrets.items():
            assert value not in output, 'secret %s appears in the output' % name


def test_a_missing_gateway_fails_before_n8n_is_touched(department):
    before = department.n8n.snapshot()
    run = department.ansible.playbook('playbooks/n8n_content.yml', '-e', 'dept=finance', '-e',
                                      department.extra_vars.replace(department.gateway.url, ''))
    assert run.returncode != 0
    assert "Department 'finance' cannot get its n8n content: the tool ask_department needs the API gateway URL" in run.stdout
    assert department.n8n.snapshot() == before
