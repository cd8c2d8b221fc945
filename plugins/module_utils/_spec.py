# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: no compatibility promise outside federation.platform.
"""A department's spec: the fields it may have, their defaults, and the checks on them.

Every problem is reported with the department, the field and what to write instead,
and all problems of a spec are reported together so one edit fixes them all.
"""

from __future__ import annotations

import copy
import datetime
import re

from ansible_collections.federation.platform.plugins.module_utils._naming import department_name_error

TARGETS = ('vps', 'railway')
TOOLS = ('log_call', 'ask_department')
OAUTH_PROVIDERS = ('oidc', 'google_service_account', 'google_oauth')
OAUTH_GRANT_TYPES = ('client_credentials', 'authorization_code', 'refresh_token')
# One OAuth client a department's tools need; name and provider say which, the rest how.
OAUTH_CLIENT_DEFAULTS = {
    'name': None,                  # 1-40 of a-z 0-9 _, starting with a letter; names its secrets oauth_<name>_*
    'provider': 'oidc',            # oidc (RFC 7591 registration) | google_service_account | google_oauth
    'scopes': [],
    'grant_types': None,           # oidc: defaults to [client_credentials]
    'subject': None,               # google_service_account: the Workspace user it acts as (domain-wide delegation)
    'max_age_days': None,          # google_service_account: days after import that the key is due for rotation
    'expires_at': None,            # when the credential expires, if the provider does not say (YYYY-MM-DD)
}
ASSISTANTS = ('deterministic', 'llm')   # how the voice assistant answers (see docs/n8n-content.md)
# A department's phone line (docs/voice.md): present only in a spec that has a voice section.
VOICE_MODES = ('gather', 'relay', 'stream')
VOICE_LANGUAGES = {'gather': ('en-US', 'en-GB'), 'relay': ('en-US', 'en-GB'), 'stream': ('en-US',)}
VOICE_DEFAULTS = {
    'mode': 'gather',              # gather | relay | stream (speech recognised and spoken on the department's host)
    'language': 'en-US',
    'greeting': None,              # the bridge's default: "Hello, this is the <department> assistant. How can I help?"
    'topics': [],                  # phrases callers ask about: the recogniser's vocabulary
    'transfer_to': [],             # departments a caller may ask to be put through to (through the gateway)
    'public_url': None,            # what the telephony platform calls; default: the host's proxy address
    'max_calls': 2,                # recogniser processes (stream)
    'resources': {'memory': '384m', 'cpus': 1.0},
}
_PHRASE_RE = re.compile(r"^[A-Za-z][A-Za-z' -]{0,79}$")
_URL_RE = re.compile(r'^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$')

DEFAULTS = {
    'display_name': None,          # defaults to the name, title-cased
    'target': None,                # defaults to the inventory's federation_default_target
    'tools': ['log_call'],
    'callers': [],                 # departments allowed to call this one through the gateway
    'rate_limit': {'requests': 60, 'per_seconds': 60},
    'resources': {'memory': '1g', 'cpus': 1.0},
    'oauth_clients': [],           # the OAuth clients its tools need (see OAUTH_CLIENT_DEFAULTS)
    'assistant': 'deterministic',  # llm: answers from a language model, key in the secret llm_api_key
    # Sessions its login roles may hold at once in the platform's PostgreSQL (CONNECTION LIMIT): dept_<n> (its
    # workflows' Postgres credential) and n8n_<n> (n8n's pool of 4, plus room for boot, migrations and a restart).
    'database': {'connections': 5, 'n8n_connections': 8},
    # What its assistant answers about its topics: [{topic, answer}], kept in its tenant's knowledge table.
    'knowledge': [],
}
MAX_DATABASE_CONNECTIONS = 1000

_MEMORY_RE = re.compile(r'^[1-9][0-9]{0,5}[kmg]$')
_CLIENT_NAME_RE = re.compile(r'^[a-z][a-z0-9_]{0,39}$')
_SCOPE_RE = re.compile(r'^[\x21\x23-\x5b\x5d-\x7e]+$')   # RFC 6749 scope-token
_EMAIL_RE = re.compile(r'^[^@\s]+@[^@\s]+\.[^@\s]+$')
_DATE_RE = re.compile(r'^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}Z)?$')


class SpecError(ValueError):
    def __init__(self, department, problems):
        self.department = department
        self.problems = problems
        super(SpecError, self).__init__(
            "Invalid spec for department '%s': %s" % (department, '; '.join(problems)))


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def normalize_spec(department, raw, default_target='vps'):
    """Return the complete spec for ``department`` from ``raw`` (a dict, or None for defaults).

    Raises SpecError listing every problem found.
    """
    problems = []
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise SpecError(department, ['the spec must be a mapping of fields, got %s' % type(raw).__name__])

    known = set(DEFAULTS) | {'name', 'voice'}
    for key in sorted(raw, key=str):
        if key not in known:
            problems.append('unknown field %r (known fields: %s)' % (key, ', '.join(sorted(known))))

    spec = copy.deepcopy(DEFAULTS)
    spec.update({k: copy.deepcopy(v) for k, v in raw.items() if k in known})

    name = spec.pop('name', None)
    if name is not None and name != department:
        problems.append("field 'name' is %r but the department is %r: remove the field or make it match" % (name, department))

    display = spec['display_name']
    if display is None:
        spec['display_name'] = department.replace('-', ' ').title()
    elif not isinstance(display, str) or not 0 < len(display) <= 64 or any(ord(c) < 32 for c in display):
        problems.append("field 'display_name' must be text of 1-64 printable characters")

    target = spec['target'] if spec['target'] is not None else default_target
    if target not in TARGETS:
        problems.append("field 'target' is %r: use one of %s" % (target, ', '.join(TARGETS)))
    spec['target'] = target

    tools = spec['tools']
    if not isinstance(tools, list) or not all(isinstance(t, str) for t in tools):
        problems.append("field 'tools' must be a list of tool names (%s)" % ', '.join(TOOLS))
    else:
        for tool in tools:
            if tool not in TOOLS:
                problems.append("field 'tools' names unknown tool %r: use %s" % (tool, ', '.join(TOOLS)))
        if len(set(tools)) != len(tools):
            problems.append("field 'tools' lists a tool twice")

    _departments('callers', spec['callers'], department, problems)

    limit = spec['rate_limit']
    if not isinstance(limit, dict) or set(limit) - {'requests', 'per_seconds'}:
        problems.append("field 'rate_limit' must be a mapping with 'requests' and 'per_seconds'")
    else:
        merged = dict(DEFAULTS['rate_limit'], **limit)
        for key in ('requests', 'per_seconds'):
            if not _is_int(merged[key]) or not 0 < merged[key] <= 1000000:
                problems.append("field 'rate_limit.%s' must be a whole number from 1 to 1000000" % key)
        spec['rate_limit'] = merged

    spec['resources'] = _resources('resources', spec['resources'], DEFAULTS['resources'], problems)

    database = spec['database']
    if not isinstance(database, dict) or set(database) - set(DEFAULTS['database']):
        problems.append("field 'database' must be a mapping with 'connections' and 'n8n_connections'")
    else:
        merged = dict(DEFAULTS['database'], **database)
        for key in ('connections', 'n8n_connections'):
            if not _is_int(merged[key]) or not 0 < merged[key] <= MAX_DATABASE_CONNECTIONS:
                problems.append("field 'database.%s' must be a whole number of connections from 1 to %d"
                                % (key, MAX_DATABASE_CONNECTIONS))
        spec['database'] = merged

    clients = spec['oauth_clients']
    if clients is None:
        clients = []
    if not isinstance(clients, list):
        problems.append("field 'oauth_clients' must be a list of clients, each a mapping with at least 'name'")
        spec['oauth_clients'] = []
    else:
        spec['oauth_clients'] = [_oauth_client(index, client, problems) for index, client in enumerate(clients)]
        names = [c['name'] for c in spec['oauth_clients'] if c]
        for name in sorted(set(n for n in names if names.count(n) > 1)):
            problems.append("field 'oauth_clients' lists client %r twice: names must be unique" % name)
        spec['oauth_clients'] = [c for c in spec['oauth_clients'] if c]
    knowledge = spec['knowledge']
    if knowledge is None:
        spec['knowledge'] = knowledge = []
    if not isinstance(knowledge, list) or not all(isinstance(k, dict) and set(k) == {'topic', 'answer'}
                                                  for k in knowledge):
        problems.append("field 'knowledge' must be a list of {topic, answer}, such as "
                        "[{topic: opening hours, answer: We are open from nine to five.}]")
    else:
        for entry in knowledge:
            if not isinstance(entry['topic'], str) or not _PHRASE_RE.match(entry['topic']):
                problems.append("field 'knowledge': topic %r must be a phrase of letters, spaces, hyphens and "
                                "apostrophes (up to 80 characters)" % (entry['topic'],))
            if not isinstance(entry['answer'], str) or not 0 < len(entry['answer'].strip()) <= 1000:
                problems.append("field 'knowledge': the answer of topic %r must be text of 1-1000 characters"
                                % (entry['topic'],))
        topics = [str(k['topic']).lower() for k in knowledge]
        for topic in sorted(set(t for t in topics if topics.count(t) > 1)):
            problems.append("field 'knowledge' lists topic %r twice" % topic)
    if spec['assistant'] not in ASSISTANTS:
        problems.append("field 'assistant' is %r: use one of %s" % (spec['assistant'], ', '.join(ASSISTANTS)))
    if spec.get('voice') is not None:
        spec['voice'] = _voice(department, spec['voice'], problems)
        if spec['target'] == 'railway':
            problems.append("field 'voice': a phone line runs beside the department's n8n on a Docker host; "
                            "target railway has none yet. Use target vps, or remove the voice section")
    else:
        spec.pop('voice', None)

    if problems:
        raise SpecError(department, problems)
    return spec


def _resources(field, value, defaults, problems):
    """A container's memory and CPU limits, merged with ``defaults`` (problems recorded)."""
    if not isinstance(value, dict) or set(value) - {'memory', 'cpus'}:
        problems.append("field '%s' must be a mapping with 'memory' and 'cpus'" % field)
        return value
    merged = dict(defaults, **value)
    if not isinstance(merged['memory'], str) or not _MEMORY_RE.match(merged['memory']):
        problems.append("field '%s.memory' must look like 512m or 2g" % field)
    if not _is_number(merged['cpus']) or not 0 < merged['cpus'] <= 64:
        problems.append("field '%s.cpus' must be a number above 0 and at most 64" % field)
    return merged


def _departments(field, names, department, problems):
    """A field that lists other departments (problems recorded)."""
    if not isinstance(names, list):
        problems.append("field '%s' must be a list of department names" % field)
        return
    for name in names:
        error = department_name_error(name)
        if error:
            problems.append("field '%s': %s" % (field, error))
        elif name == department:
            problems.append("field '%s' lists the department itself" % field)


def _voice(department, raw, problems):
    """The normalised voice section (problems recorded): how the department's phone line works."""
    if not isinstance(raw, dict):
        problems.append("field 'voice' must be a mapping such as {mode: stream, topics: [opening hours]}")
        return None
    for key in sorted(raw, key=str):
        if key not in VOICE_DEFAULTS:
            problems.append("field 'voice' has unknown key %r (known keys: %s)" % (key, ', '.join(sorted(VOICE_DEFAULTS))))
    voice = copy.deepcopy(VOICE_DEFAULTS)
    voice.update({k: copy.deepcopy(v) for k, v in raw.items() if k in VOICE_DEFAULTS})
    mode = voice['mode']
    if mode not in VOICE_MODES:
        problems.append("field 'voice.mode' is %r: use one of %s" % (mode, ', '.join(VOICE_MODES)))
    elif voice['language'] not in VOICE_LANGUAGES[mode]:
        problems.append("field 'voice.language' is %r: mode %s speaks %s" % (voice['language'], mode, ', '.join(VOICE_LANGUAGES[mode])))
    greeting = voice['greeting']
    if greeting is not None and (not isinstance(greeting, str) or not 0 < len(greeting) <= 300
                                 or any(ord(c) < 32 for c in greeting)):
        problems.append("field 'voice.greeting' must be one line of 1-300 characters")
    topics = voice['topics']
    if not isinstance(topics, list) or not all(isinstance(t, str) and _PHRASE_RE.match(t) for t in topics):
        problems.append("field 'voice.topics' must be a list of phrases of letters, spaces, hyphens and apostrophes "
                        "(up to 80 characters each), such as [opening hours, payroll]")
    _departments('voice.transfer_to', voice['transfer_to'], department, problems)
    url = voice['public_url']
    if url is not None and (not isinstance(url, str) or not _URL_RE.match(url)):
        problems.append("field 'voice.public_url' must be an http(s) address without query, such as "
                        "https://voice.example.org/%s" % department)
    elif url:
        voice['public_url'] = url.rstrip('/')
    if not _is_int(voice['max_calls']) or not 0 < voice['max_calls'] <= 16:
        problems.append("field 'voice.max_calls' must be a whole number from 1 to 16")
    voice['resources'] = _resources('voice.resources', voice['resources'], VOICE_DEFAULTS['resources'], problems)
    return voice


def _oauth_client(index, raw, problems):
    """One normalised OAuth client, or None (with problems recorded) when it is not a mapping."""
    where = "field 'oauth_clients[%d]'" % index
    if not isinstance(raw, dict):
        problems.append("%s must be a mapping such as {name: crm, provider: oidc, scopes: [calls:read]}" % where)
        return None
    for key in sorted(raw, key=str):
        if key not in OAUTH_CLIENT_DEFAULTS:
            problems.append('%s has unknown key %r (known keys: %s)' % (where, key, ', '.join(sorted(OAUTH_CLIENT_DEFAULTS))))
    client = copy.deepcopy(OAUTH_CLIENT_DEFAULTS)
    client.update({k: copy.deepcopy(v) for k, v in raw.items() if k in OAUTH_CLIENT_DEFAULTS})
    name = client['name']
    if not isinstance(name, str) or not _CLIENT_NAME_RE.match(name):
        problems.append("%s.name must be 1-40 lowercase letters, digits and underscores, starting with a letter "
                        "(it names the client's secrets, oauth_<name>_*), got %r" % (where, name))
        name = None
    else:
        where = "field 'oauth_clients' client %r" % name
    provider = client['provider']
    if provider not in OAUTH_PROVIDERS:
        problems.append('%s: provider %r is unknown: use one of %s' % (where, provider, ', '.join(OAUTH_PROVIDERS)))
    scopes = client['scopes']
    if not isinstance(scopes, list) or not all(isinstance(x, str) and _SCOPE_RE.match(x) for x in scopes):
        problems.append('%s: scopes must be a list of scope names without spaces or quotes, such as [calls:read]' % where)
    elif len(set(scopes)) != len(scopes):
        problems.append('%s: scopes lists a scope twice' % where)
    grants = client['grant_types']
    if grants is None:
        client['grant_types'] = ['client_credentials'] if provider == 'oidc' else []
    elif provider != 'oidc':
        problems.append('%s: grant_types applies to provider oidc only; remove it' % where)
    elif not isinstance(grants, list) or not grants or not all(g in OAUTH_GRANT_TYPES for g in grants):
        problems.append('%s: grant_types must be a non-empty list of %s' % (where, ', '.join(OAUTH_GRANT_TYPES)))
    subject = client['subject']
    if subject is not None:
        if provider != 'google_service_account':
            problems.append('%s: subject applies to provider google_service_account only; remove it' % where)
        elif not isinstance(subject, str) or not _EMAIL_RE.match(subject):
            problems.append('%s: subject must be the e-mail address of the Workspace user to act as' % where)
    age = client['max_age_days']
    if age is not None:
        if provider != 'google_service_account':
            problems.append('%s: max_age_days applies to provider google_service_account only; remove it' % where)
        elif not _is_int(age) or not 0 < age <= 3650:
            problems.append('%s: max_age_days must be a whole number from 1 to 3650' % where)
    expiry = client['expires_at']
    if isinstance(expiry, datetime.datetime):
        client['expires_at'] = expiry.strftime('%Y-%m-%dT%H:%M:%SZ')
    elif isinstance(expiry, datetime.date):
        client['expires_at'] = expiry.isoformat()
    elif expiry is not None and (not isinstance(expiry, str) or not _DATE_RE.match(expiry)):
        problems.append('%s: expires_at must be a date such as 2030-01-31 or 2030-01-31T00:00:00Z' % where)
    return client if name else None
