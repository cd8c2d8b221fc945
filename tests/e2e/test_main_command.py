"""`ansible-playbook provision.yml -e dept=...` on the local default, end to end: hr and finance get
their tenant, their n8n container, their route and identity at the gateway and their n8n content;
finance's voice assistant answers, logs the call in its tenant table and asks hr through the gateway; a phone
call to finance reaches its voice bridge through the host's proxy, is understood, logged and answered aloud.
Re-runs change nothing, check mode changes nothing, rotating finance's database passwords keeps its assistant
working, and no secret is ever printed.

The tests of this module run in order on one site (see conftest.py).
"""

from __future__ import annotations

import asyncio
import json
import re
import stat
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

import aiohttp
import psycopg
import pytest
import yaml
from twilio.request_validator import RequestValidator

from tests.harness.common import wait_for
from tests.harness.docker_objects import inspect
from tests.harness.voice import Listener, Phone
from tests.helpers import REPO, query, recap


def post(url, body, headers=None, timeout=30):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method='POST',
                                     headers=dict({'Content-Type': 'application/json'}, **(headers or {})))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b'null')
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors='replace')


def catalog(db):
    """What a run could change in the platform database: schemas, tables, roles, databases, registry rows."""
    snapshot = query(db, "SELECT nspname FROM pg_namespace ORDER BY 1")
    snapshot += query(db, "SELECT relname FROM pg_class WHERE relnamespace NOT IN "
                          "('pg_catalog'::regnamespace, 'information_schema'::regnamespace) ORDER BY 1")
    snapshot += query(db, "SELECT rolname, rolpassword FROM pg_authid ORDER BY 1")
    snapshot += query(db, "SELECT datname FROM pg_database ORDER BY 1")
    snapshot += query(db, "SELECT name, state, spec::text, updated_at FROM federation_control.departments ORDER BY 1")
    return snapshot


def test_first_run_provisions_hr_then_finance(site):
    for dept in ('hr', 'finance'):
        run = site.provision(dept, '-vvv')
        assert recap(run.stdout)['changed'] > 0
        # Progress: every phase is shown with its time.
        assert 'ROLES RECAP' in run.stdout and 'aio_instance' in run.stdout
    rows = query(site.db, 'SELECT name, state, last_error FROM federation_control.departments ORDER BY name')
    assert rows == [('finance', 'active', None), ('hr', 'active', None)]
    for dept in ('hr', 'finance'):
        state = site.container(dept)['State']
        assert state['Running'] and state['Health']['Status'] == 'healthy'


def test_secrets_are_encrypted_and_complete(site):
    path = site.home / 'secrets' / 'finance.yml'
    assert path.read_bytes().startswith(b'$ANSIBLE_VAULT;1.1;AES256')
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert {'tenant_db_password', 'n8n_db_password', 'n8n_encryption_key', 'n8n_owner_password', 'n8n_api_key',
            'gateway_token', 'voice_assistant_secret', 'voice_api_key', 'twilio_auth_token'} <= set(site.secrets('finance'))
    # The operator's telephony token, kept; hr has no phone line, so no voice key and no token.
    assert site.secrets('finance')['twilio_auth_token'] == site.telephony_token
    assert not {'voice_api_key', 'twilio_auth_token'} & set(site.secrets('hr'))


def test_tenant_login_sees_only_its_own_rows(site):
    finance = site.secrets('finance')
    db = dict(site.db, user='dept_finance', password=finance['tenant_db_password'])
    with psycopg.connect(autocommit=True, **{k: db[k] for k in ('host', 'port', 'user', 'password', 'dbname')}) as conn:
        conn.execute("INSERT INTO federation.call_log (call_id, question) VALUES ('direct-1', 'typed by hand')")
        tenants = {row[0] for row in conn.execute('SELECT tenant FROM federation.call_log')}
    assert tenants == {'dept_finance'}
    owner = query(site.db, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'n8n_finance'")
    assert owner == [('n8n_finance',)]


def test_voice_webhook_answers_and_logs_the_call(site):
    status, answer = post(site.webhook_base('finance') + '/finance/voice',
                          {'call_id': 'e2e-1', 'caller': '+4930123', 'question': 'What is the Q3 travel budget?'})
    assert status == 200, answer
    assert answer['call_id'] == 'e2e-1' and answer['department'] == 'finance' and answer['answer']
    logged = query(site.db, "SELECT tenant, question, answer FROM federation.call_log WHERE call_id = 'e2e-1'")
    assert logged == [('dept_finance', 'What is the Q3 travel budget?', answer['answer'])]


def test_finance_asks_hr_through_the_gateway_only_from_its_bridge_door(site):
    # The door the gateway opens to other departments never forwards: finance answers itself.
    status, answer = post(site.webhook_base('finance') + '/finance/voice',
                          {'call_id': 'e2e-2a', 'question': 'How many vacation days are left?', 'forward_to': 'hr'})
    assert status == 200 and answer['answer'].startswith('Finance heard'), answer
    assert query(site.db, "SELECT tenant FROM federation.call_log WHERE call_id = 'e2e-2a'") == [('dept_finance',)]
    # The voice bridge's door refuses a request without its secret, before the workflow runs.
    turn = {'call_id': 'e2e-2', 'from': '+4930123', 'text': 'How many vacation days are left?', 'forward_to': 'hr'}
    assert post(site.webhook_base('finance') + '/finance/turn', turn)[0] in (401, 403)
    status, answer = post(site.webhook_base('finance') + '/finance/turn', turn,
                          {'X-Federation-Voice-Secret': site.secrets('finance')['voice_assistant_secret']})
    assert status == 200, answer
    # hr's assistant answered (the gateway is the only way from finance's n8n to hr's), and finance's
    # assistant passed hr's answer on, in the field its bridge speaks.
    hr_rows = query(site.db, "SELECT answer FROM federation.call_log WHERE tenant = 'dept_hr' AND call_id = 'e2e-2'")
    assert len(hr_rows) == 1, hr_rows
    assert answer['answer'] == answer['text'] == hr_rows[0][0]


def test_the_gateway_refuses_what_it_must(site):
    hr_token = site.secrets('hr')['gateway_token']
    finance_token = site.secrets('finance')['gateway_token']
    body = {'question': 'x'}
    assert post(site.gateway_url + '/dept/hr/hr/voice', body)[0] == 401                   # no token
    assert post(site.gateway_url + '/dept/hr/hr/voice', body,                             # finance -> hr: allowed
                {'Authorization': 'Bearer ' + finance_token})[0] == 200
    assert post(site.gateway_url + '/dept/finance/finance/voice', body,                   # hr -> finance: allowed
                {'Authorization': 'Bearer ' + hr_token})[0] == 200
    assert post(site.gateway_url + '/dept/legal/legal/voice', body,                       # unknown department
                {'Authorization': 'Bearer ' + finance_token})[0] == 404
    assert post(site.gateway_url + '/dept/finance/finance/voice', body,                   # to itself: not listed
                {'Authorization': 'Bearer ' + finance_token})[0] == 403


def voice_url(site, path=''):
    return 'http://finance.federation.local:%d%s' % (site.runner.proxy_port, path)


def post_twilio(site, path, form, signature=None):
    """A request as the telephony platform sends it to finance's phone line, through the host's proxy."""
    if signature is None:
        signature = RequestValidator(site.telephony_token).compute_signature(voice_url(site, path), form)
    request = urllib.request.Request('http://127.0.0.1:%d%s' % (site.runner.proxy_port, path),
                                     data=urllib.parse.urlencode(form).encode(), method='POST',
                                     headers={'Host': 'finance.federation.local:%d' % site.runner.proxy_port,
                                              'Content-Type': 'application/x-www-form-urlencoded',
                                              'X-Twilio-Signature': signature})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors='replace')


CALL = {'CallSid': 'CAe2e0000000000000000000000000001', 'From': '+4930555', 'To': '+4930100', 'CallStatus': 'ringing',
        'AccountSid': 'ACe2e'}


def test_a_call_to_finance_is_answered_with_its_media_stream(site):
    # The platform's library signs the call; the TwiML connects it to finance's bridge on its public address.
    status, twiml = post_twilio(site, '/twilio/voice', CALL)
    assert status == 200, twiml
    stream = ET.fromstring(twiml).find('./Connect/Stream')
    assert stream is not None and stream.get('url') == voice_url(site, '/twilio/stream').replace('http://', 'ws://'), twiml
    # A request the platform did not sign, or signed with another account's token, is refused.
    assert post_twilio(site, '/twilio/voice', CALL, signature='bm90IGEgc2lnbmF0dXJl')[0] == 403
    forged = RequestValidator('0' * 32).compute_signature(voice_url(site, '/twilio/voice'), CALL)
    assert post_twilio(site, '/twilio/voice', CALL, signature=forged)[0] == 403


def test_a_phone_call_is_understood_logged_and_answered_aloud(site):
    """The test phone streams espeak-ng speech through the host's proxy to finance's bridge, exactly as the telephony
    platform frames it; finance's n8n answers; the phone recognises the answer it hears."""
    token = site.telephony_token
    url = voice_url(site, '/twilio/stream').replace('http://', 'ws://')
    headers = {'X-Twilio-Signature': RequestValidator(token).compute_signature(url, {}),
               'Host': 'finance.federation.local:%d' % site.runner.proxy_port}

    async def call():
        async with aiohttp.ClientSession() as session:
            # Unsigned: refused before the call starts.
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect('ws://127.0.0.1:%d/twilio/stream' % site.runner.proxy_port,
                                         headers={'Host': headers['Host']})
            assert refused.value.status == 403
            ws = await session.ws_connect('ws://127.0.0.1:%d/twilio/stream' % site.runner.proxy_port, headers=headers)
            phone = Phone(ws, 'finance', caller='+4930555')
            await phone.start()
            greeting = await phone.next_utterance()
            await phone.say('tell me about opening hours')
            answer = await phone.next_utterance()
            await phone.hang_up()
            return phone, greeting, answer

    phone, greeting, answer = asyncio.run(call())
    rows = query(site.db, "SELECT tenant, caller, question, answer FROM federation.call_log WHERE call_id = %s "
                          "AND question <> '(call ended)'", (phone.call_sid,))
    assert len(rows) == 1, rows
    tenant, caller, question, said = rows[0]
    assert (tenant, caller) == ('dept_finance', '+4930555') and 'hours' in question, rows
    # The answer of finance's knowledge (departments/finance.yml) on opening hours.
    assert said == 'The finance office is open from nine to five, Monday to Friday.'
    # The call is a conversation of finance's, its turn two messages.
    messages = query(site.db, "SELECT c.tenant, c.caller, m.role, m.content FROM federation.conversations c "
                              "JOIN federation.messages m ON m.conversation_id = c.id WHERE c.external_id = %s ORDER BY m.id",
                     (phone.call_sid,))
    assert messages == [('dept_finance', '+4930555', 'user', question), ('dept_finance', '+4930555', 'assistant', said)]
    # The end of the call closes the conversation, and its summary goes to the call log.
    ended = wait_for(lambda: query(site.db, "SELECT c.ended_at IS NOT NULL, l.answer FROM federation.conversations c "
                                            "JOIN federation.call_log l ON l.call_id = c.external_id "
                                            "AND l.question = '(call ended)' WHERE c.external_id = %s", (phone.call_sid,)),
                     30, 'the end of the call in the tables of finance')
    assert ended[0][0] is True and '1 question(s): ' + question in ended[0][1], ended
    # The greeting of finance's spec, then the answer n8n gave.
    listener = Listener(['Finance here.', 'Ask about opening hours or payroll.', said])
    assert {'finance', 'opening', 'hours'} <= listener.words(greeting)
    assert {'open', 'nine', 'five'} <= listener.words(answer)


def test_a_hosted_voice_platform_reaches_finance_and_is_put_through_to_hr(site):
    """The chat-completions endpoint with the department's key; 'put me through to hr' is asked of hr through the
    gateway (hr is in finance's voice.transfer_to)."""
    url = 'http://127.0.0.1:%d/v1/chat/completions' % site.runner.proxy_port
    host = {'Host': 'finance.federation.local:%d' % site.runner.proxy_port}
    body = {'model': 'finance', 'user': 'e2e-chat-1', 'messages': [{'role': 'user', 'content': 'Please put me through to HR'}]}
    assert post(url, body, dict(host, Authorization='Bearer not-the-key-of-finance'))[0] == 401
    status, answer = post(url, body, dict(host, Authorization='Bearer ' + site.secrets('finance')['voice_api_key']))
    assert status == 200, answer
    text = answer['choices'][0]['message']['content']
    hr_rows = query(site.db, "SELECT answer FROM federation.call_log WHERE tenant = 'dept_hr' AND call_id = 'e2e-chat-1'")
    assert hr_rows == [(text,)] and text.startswith('Human Resources heard'), (hr_rows, text)
    # finance records what it asked of hr, in its own rows.
    asked = query(site.db, "SELECT t.tenant, t.tool, t.arguments->>'department', t.result->>'answer', t.status "
                           "FROM federation.tool_invocations t JOIN federation.conversations c ON c.id = t.conversation_id "
                           "WHERE c.external_id = 'e2e-chat-1'")
    assert asked == [('dept_finance', 'ask_department', 'hr', text, 'ok')]


def test_rerun_changes_nothing(site):
    for dept in ('hr', 'finance'):
        run = site.provision(dept)
        assert recap(run.stdout)['changed'] == 0, run.stdout[-6000:]


def test_check_mode_changes_nothing(site):
    before = catalog(site.db)
    containers = site.container('finance')['Id']
    run = site.provision('finance', '--check', '--diff')
    assert recap(run.stdout)['changed'] == 0, run.stdout[-6000:]
    assert catalog(site.db) == before
    assert site.container('finance')['Id'] == containers


def files_under(folder):
    return sorted((str(path.relative_to(folder)), path.stat().st_mtime_ns) for path in folder.rglob('*'))


def test_check_mode_on_a_new_department_predicts_change_and_writes_nothing(site):
    before, files = catalog(site.db), files_under(site.home)
    run = site.provision('legal', '--check')
    assert recap(run.stdout)['changed'] > 0
    assert catalog(site.db) == before
    # Not even a lock file or a folder beside the secrets.
    assert files_under(site.home) == files
    assert site.container('legal') is None


def changed_tasks(output):
    """The names of the tasks that reported a change."""
    return set(re.findall(r'^TASK \[([^\]]+)\] \**\n(?:(?!TASK \[)[^\n]*\n)*?changed: \[', output, re.M))


def login(site, user, password, dbname):
    return psycopg.connect(host=site.db['host'], port=site.db['port'], dbname=dbname, user=user, password=password,
                           connect_timeout=10)


def test_rotation_refuses_what_cannot_be_rotated_before_any_change(site):
    before = site.secrets('finance')
    for args, says in ((('-e', 'rotate=n8n_encryption_key'), 'rotate names n8n_encryption_key, which cannot be rotated'),
                       (('-e', 'rotate=tenant_db_password,nope'), 'rotate names nope, which cannot be rotated'),
                       (('-e', 'rotate=,'), 'rotate names no credential')):
        run = site.playbook('rotate_credentials.yml', 'finance', *args, check_rc=False)
        assert run.returncode != 0 and "Department 'finance': " + says in run.stdout, run.stdout[-3000:]
        assert recap(run.stdout)['changed'] == 0
    run = site.playbook('rotate_credentials.yml', 'legal', check_rc=False)
    assert run.returncode != 0 and "Department 'legal' is not in the registry" in run.stdout, run.stdout[-3000:]
    assert recap(run.stdout)['changed'] == 0
    assert not (site.home / 'secrets' / 'legal.yml').exists()
    assert site.secrets('finance') == before


def test_rotation_in_check_mode_predicts_what_it_changes_and_changes_nothing(site):
    before, snapshot, container = site.secrets('finance'), catalog(site.db), site.container('finance')['Id']
    run = site.playbook('rotate_credentials.yml', 'finance', '--check', '--diff')
    tasks = changed_tasks(run.stdout)
    assert {"federation.platform.secrets : Keep the department's secrets in its encrypted file - finance",
            'federation.platform.tenant_database : Make the tenant database and the n8n database - finance',
            'federation.platform.aio_instance : Run n8n - %s-finance-n8n' % site.runner.docker_prefix,
            'federation.platform.n8n_content : Credentials - finance'} == tasks, run.stdout[-6000:]
    assert site.secrets('finance') == before
    assert catalog(site.db) == snapshot
    assert site.container('finance')['Id'] == container


def test_rotating_the_database_passwords_keeps_the_assistant_working(site):
    before = site.secrets('finance')
    run = site.playbook('rotate_credentials.yml', 'finance')
    after = site.secrets('finance')
    rotated = {'tenant_db_password', 'n8n_db_password'}
    assert {name for name in after if after[name] != before.get(name)} == rotated
    site.retired.update(('finance %s (retired)' % name, before[name]) for name in rotated)
    assert recap(run.stdout)['changed'] == 4, run.stdout[-6000:]

    for user, name, dbname in (('dept_finance', 'tenant_db_password', site.db['dbname']),
                               ('n8n_finance', 'n8n_db_password', 'n8n_finance')):
        with pytest.raises(psycopg.OperationalError, match='password authentication failed'):
            login(site, user, before[name], dbname)
        login(site, user, after[name], dbname).close()
    # n8n runs on its new database password, and its Postgres credential carries the tenant's new one.
    status, answer = post(site.webhook_base('finance') + '/finance/voice',
                          {'call_id': 'e2e-rotated', 'question': 'Still there after the rotation?'})
    assert status == 200, answer
    assert query(site.db, "SELECT tenant FROM federation.call_log WHERE call_id = 'e2e-rotated'") == [('dept_finance',)]
    assert recap(site.provision('finance').stdout)['changed'] == 0


def test_a_department_that_loses_its_phone_line_refuses_calls(site, tmp_path):
    specs = tmp_path / 'departments'
    specs.mkdir()
    for path in (REPO / 'departments').glob('*.yml'):
        spec = yaml.safe_load(path.read_text())
        spec.pop('voice', None)
        (specs / path.name).write_text(yaml.safe_dump(spec))
    run = site.provision('finance', '-e', 'federation_departments_dir=%s' % specs)
    assert "Remove the voice bridge of a department without a phone line" in run.stdout
    assert inspect('%s-finance-voice' % site.runner.docker_prefix) is None
    status, body = post_twilio(site, '/twilio/voice', CALL)
    assert status == 404 and 'no phone line' in body, (status, body)
    # Its n8n and its assistant are untouched.
    assert site.container('finance')['State']['Running']


def test_no_secret_appears_in_any_output(site):
    assert site.outputs, 'the runs above keep their outputs'
    leaks = []
    values = {'platform db password': site.db['password'], 'vault password': site.vault_password}
    values.update(site.retired)
    for dept in ('hr', 'finance'):
        values.update(('%s %s' % (dept, name), value) for name, value in site.secrets(dept).items())
    for output in site.outputs:
        leaks += [name for name, value in values.items() if len(value) >= 8 and value in output]
    assert not leaks, 'printed: %s' % sorted(set(leaks))
