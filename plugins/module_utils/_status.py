# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: no compatibility promise outside federation.platform.
"""The status report: each registered department's registry state beside what is live.

Pure functions, so the judgement is tested without servers: ``plan`` says what to probe for each
department (n8n's URL, from the Docker host's containers or the gateway's record), ``evaluate`` turns the
registry, the facts read from the hosts and the probes' answers into one row per department, ``table``
prints them. The HTTP probes themselves run in the action plugin, side by side.

Health:

- ``active``: healthy when n8n answers ``/rest/settings`` with JSON 200, the gateway routes the department
  (when a gateway is in use) and its tenant (schema, login role, n8n database) exists; otherwise unhealthy.
- ``failed``: the last run failed (its error is shown).
- ``requested``, ``provisioning``, ``deprovisioning``: a run is under way; ``stuck`` once the state is older
  than the limit given.
- ``deleted``: nothing is expected; whatever is still found is named as left over.

A department needs attention (the playbook then exits non-zero) when it is active and unhealthy, failed,
or stuck.
"""

from __future__ import annotations

import datetime

from ansible_collections.federation.platform.plugins.module_utils._naming import n8n_database, tenant_role, tenant_schema

IN_PROGRESS = ('requested', 'provisioning', 'deprovisioning')
N8N_PATH = '/rest/settings'


def n8n_container(prefix, department):
    return '%s-%s-n8n' % (prefix, department)


def voice_container(prefix, department):
    return '%s-%s-voice' % (prefix, department)


def _container(containers, name):
    for container in containers or []:
        names = [n.lstrip('/') for n in container.get('Names') or []]
        if name in names:
            return container
    return None


def _published_port(container):
    for port in container.get('Ports') or []:
        if port.get('PrivatePort') == 5678 and port.get('PublicPort'):
            return port['PublicPort']
    return None


def _route(routes, department):
    for record in routes or []:
        if record.get('name') == department:
            return record
    return None


def _n8n_base_from_backend(backend):
    """n8n's base URL from a gateway backend (``<base>/webhook``), as the aio_instance role records it."""
    base = backend.rstrip('/')
    if base.endswith('/webhook'):
        base = base[:-len('/webhook')]
    for scheme, port in (('https://', ':443'), ('http://', ':80')):
        if base.startswith(scheme) and base.endswith(port):
            base = base[:-len(port)]
    return base


def plan(departments, containers=None, prefix='federation', address='127.0.0.1', routes=None, n8n_urls=None):
    """{department: {'url': n8n base URL or None, 'container': summary or None, 'why': why there is no URL}}."""
    out = {}
    for record in departments:
        name = record['name']
        target = (record.get('spec') or {}).get('target') or 'vps'
        container = _container(containers, n8n_container(prefix, name))
        entry = dict(url=None, container=container, why=None, target=target,
                     voice='voice' in (record.get('spec') or {}), voice_name=voice_container(prefix, name),
                     voice_container=_container(containers, voice_container(prefix, name)))
        given = (n8n_urls or {}).get(name)
        if given:
            entry['url'] = given.rstrip('/')
        elif target == 'vps':
            port = _published_port(container) if container else None
            if container is None:
                entry['why'] = 'no container %s' % n8n_container(prefix, name)
            elif port is None:
                entry['why'] = 'container %s publishes no port for n8n (%s)' % (
                    n8n_container(prefix, name), container.get('Status') or container.get('State'))
            else:
                entry['url'] = 'http://%s:%s' % (address, port)
        else:
            route = _route(routes, name)
            if route and route.get('backend'):
                entry['url'] = _n8n_base_from_backend(route['backend'])
            else:
                entry['why'] = 'its address is unknown (the gateway has no record of it)'
        out[name] = entry
    return out


def judge_n8n(answer):
    """(ok, detail) of one probe of /rest/settings: ``answer`` is (status, is_json) or an error text."""
    if isinstance(answer, str):
        return False, 'no answer (%s)' % answer
    status, is_json = answer
    if status == 200 and is_json:
        return True, 'answers'
    if status == 200:
        return False, 'HTTP 200 without JSON (still starting up)'
    return False, 'HTTP %s' % status


def _parse_time(text):
    if not text:
        return None
    try:
        value = datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)


def evaluate(departments, probes, answers, routes=None, gateway_answer=None, tenants=None, docker_error=None,
             stuck_after_minutes=60, now=None):
    """One row per registered department.

    ``probes`` is plan()'s result; ``answers`` maps a department to its n8n probe answer ((status, is_json) or an
    error text). ``routes`` is the gateway's record (a list) or None when no gateway is in use; ``gateway_answer``
    the gateway's own probe answer (any HTTP status means it is up). ``tenants`` has the names present in the
    platform database: ``schemas``, ``login_roles`` (roles that may log in), ``roles`` and ``databases``.
    """
    now = now or datetime.datetime.now(datetime.timezone.utc)
    tenants = tenants or {}
    schemas, roles = set(tenants.get('schemas') or []), set(tenants.get('roles') or [])
    login_roles, databases = set(tenants.get('login_roles') or []), set(tenants.get('databases') or [])
    gateway_up = gateway_answer is not None and not isinstance(gateway_answer, str)
    rows = []
    for record in departments:
        name, state = record['name'], record['state']
        probe = probes.get(name) or {}
        deleted = state == 'deleted'
        checks = {}
        leftovers = []

        # n8n
        container = probe.get('container')
        if deleted:
            if container is not None:
                leftovers.append('container %s' % container_name(container))
            answer = answers.get(name)
            if probe.get('url') and answer is not None and judge_n8n(answer)[0]:
                leftovers.append('n8n answering at %s' % probe['url'])
            checks['n8n'] = dict(ok=None, detail='left over' if container is not None else 'gone')
        elif docker_error and probe.get('target') == 'vps' and not probe.get('url'):
            checks['n8n'] = dict(ok=False, detail='the Docker host could not be read: %s' % docker_error)
        elif not probe.get('url'):
            checks['n8n'] = dict(ok=False, detail=probe.get('why') or 'no address')
        else:
            ok, detail = judge_n8n(answers.get(name, 'not probed'))
            if container is not None and container.get('Status'):
                detail = '%s; container %s' % (detail, container['Status'])
            checks['n8n'] = dict(ok=ok, detail=detail, url=probe['url'] + N8N_PATH)

        # phone line: the voice bridge's container, healthy by its image's own check
        bridge = probe.get('voice_container')
        if deleted:
            if bridge is not None:
                leftovers.append('container %s' % container_name(bridge))
        elif probe.get('voice') and probe.get('target') == 'vps' and not docker_error:
            status = (bridge or {}).get('Status') or ''
            if bridge is None:
                checks['voice'] = dict(ok=False, detail='no voice bridge (container %s)' % probe['voice_name'])
            elif '(healthy)' in status:
                checks['voice'] = dict(ok=True, detail='voice bridge %s' % status)
            else:
                checks['voice'] = dict(ok=False, detail='voice bridge not healthy: %s' % (status or bridge.get('State')))

        # gateway route
        if routes is None:
            checks['route'] = dict(ok=None, detail='no gateway in use')
        elif deleted:
            if _route(routes, name):
                leftovers.append('gateway route')
            checks['route'] = dict(ok=None, detail='left over' if _route(routes, name) else 'gone')
        elif not _route(routes, name):
            checks['route'] = dict(ok=False, detail='not routed by the gateway')
        elif not gateway_up:
            checks['route'] = dict(ok=False, detail='routed, but the gateway does not answer (%s)' % (gateway_answer or 'not probed'))
        else:
            checks['route'] = dict(ok=True, detail='routed')

        # tenant
        wanted = [('schema', tenant_schema(name), schemas), ('role', tenant_role(name), roles),
                  ('n8n database', n8n_database(name), databases)]
        present = ['%s %s' % (kind, obj) for kind, obj, found in wanted if obj in found]
        missing = ['%s %s' % (kind, obj) for kind, obj, found in wanted if obj not in found]
        if deleted:
            leftovers.extend(present)
            checks['tenant'] = dict(ok=None, detail='left over' if present else 'gone')
        elif missing:
            checks['tenant'] = dict(ok=False, detail='missing: %s' % ', '.join(missing))
        elif tenant_role(name) not in login_roles:
            checks['tenant'] = dict(ok=False, detail='role %s cannot log in' % tenant_role(name))
        else:
            checks['tenant'] = dict(ok=True, detail='present')

        failing = ['%s: %s' % (key, check['detail']) for key, check in checks.items() if check['ok'] is False]
        since = _parse_time(record.get('state_changed_at'))
        age_minutes = (now - since).total_seconds() / 60 if since else None
        if state == 'active':
            health = 'unhealthy' if failing else 'healthy'
            attention = bool(failing)
        elif state == 'failed':
            health, attention = 'failed', True
        elif state in IN_PROGRESS:
            stuck = age_minutes is not None and age_minutes > stuck_after_minutes
            health, attention = ('stuck' if stuck else 'in progress'), stuck
        else:
            health, attention = ('deleted, left over' if leftovers else 'deleted'), False
        detail = []
        if state == 'failed' and record.get('last_error'):
            detail.append('last error: %s' % record['last_error'])
        if health == 'stuck':
            detail.append('%s for %d minutes' % (state, int(age_minutes)))
        if not deleted and state in ('active', 'failed'):
            detail.extend(failing)
        if leftovers:
            detail.append('left over: %s' % ', '.join(leftovers))
        rows.append(dict(
            name=name, state=state, target=probe.get('target'), last_error=record.get('last_error'),
            state_changed_at=record.get('state_changed_at'), health=health, healthy=health == 'healthy',
            needs_attention=attention, checks=checks, leftovers=leftovers, detail='; '.join(detail)))
    return rows


def container_name(container):
    names = [n.lstrip('/') for n in container.get('Names') or []]
    return names[0] if names else container.get('Id', '?')[:12]


def _mark(check):
    if check['ok'] is None:
        return check['detail'] if check['detail'] in ('gone', 'left over') else '-'
    return 'ok' if check['ok'] else 'FAIL'


def table(rows):
    """A fixed-width text table: one line per department, the ones that need attention first."""
    headers = ('DEPARTMENT', 'STATE', 'SINCE', 'TARGET', 'N8N', 'ROUTE', 'TENANT', 'HEALTH', 'DETAIL')
    ordered = sorted(rows, key=lambda r: (not r['needs_attention'], r['state'] == 'deleted', r['name']))
    body = [(r['name'], r['state'], (r['state_changed_at'] or '-')[:19].replace('T', ' '), r['target'] or '-',
             _mark(r['checks']['n8n']), _mark(r['checks']['route']), _mark(r['checks']['tenant']),
             r['health'].upper() if r['needs_attention'] else r['health'], r['detail'] or '') for r in ordered]
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *body)] if body else [len(h) for h in headers]
    widths[-1] = min(widths[-1], 200)
    line = '  '.join('%%-%ds' % w for w in widths)
    out = [line % headers, line % tuple('-' * w for w in widths)]
    out += [line % tuple(str(x) for x in row) for row in body]
    return [text.rstrip() for text in out]


def summary(rows):
    attention = [r['name'] for r in rows if r['needs_attention']]
    counts = {}
    for row in rows:
        counts[row['health']] = counts.get(row['health'], 0) + 1
    if not rows:
        msg = 'no department is registered'
    elif attention:
        msg = '%d of %d departments need attention: %s' % (len(attention), len(rows), ', '.join(attention))
    else:
        msg = '%d department%s, all as expected (%s)' % (len(rows), '' if len(rows) == 1 else 's',
                                                         ', '.join('%d %s' % (n, h) for h, n in sorted(counts.items())))
    return dict(total=len(rows), counts=counts, needs_attention=attention, msg=msg)
