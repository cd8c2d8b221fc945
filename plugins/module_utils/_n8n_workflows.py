# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: no compatibility promise outside federation.platform.
"""n8n workflows: definitions cleaned for the API, symbolic references, comparison, webhooks.

A definition may come from a template, from the editor's export or from a GET: ``clean()`` keeps
what the public API accepts on write (which differs between 1.x and 2.x), so a round trip never
fails on a read-only or unknown field. ``comparable()`` normalises a definition so an unchanged
workflow compares equal to what n8n returns.

References are symbolic and resolved at apply time:

- a node's ``credentials`` entry names the credential: ``{"postgres": {"name": "finance-postgres"}}``
  or ``{"postgres": "finance-postgres"}``; the id is looked up (a stale id is replaced);
- any string that is exactly ``${workflow:<key>}`` becomes the id of the workflow with that key in
  the same call, or else of the workflow with that exact name on the server;
- any string that is exactly ``${credential:<name>}`` becomes that credential's id.

A webhook is live when n8n routes its path. ``webhook_live()`` asks with a method the webhook does not
accept: n8n then answers "not registered for <M> requests. Did you mean to make a <N> request?" when
the path is registered, and "The requested webhook ... is not registered" when it is not. Nothing
runs, since the method does not match.
"""

from __future__ import annotations

import copy
import json
import re
import time
import uuid

from ansible_collections.federation.platform.plugins.module_utils._n8n import N8nError, Conflict, quote_id

WEBHOOK_NODE = 'n8n-nodes-base.webhook'
SUBWORKFLOW_TRIGGER = 'n8n-nodes-base.executeWorkflowTrigger'
# Node types that start a workflow without being named ...Trigger.
_STARTERS = frozenset((WEBHOOK_NODE, 'n8n-nodes-base.cron', 'n8n-nodes-base.interval'))
# Triggers that cannot make a workflow active on their own.
_NOT_ACTIVATING = frozenset(('n8n-nodes-base.manualTrigger', 'n8n-nodes-base.start', 'n8n-nodes-base.errorTrigger',
                             SUBWORKFLOW_TRIGGER))

_NODE_KEYS = ('id', 'name', 'webhookId', 'disabled', 'notesInFlow', 'notes', 'type', 'typeVersion', 'executeOnce',
              'alwaysOutputData', 'retryOnFail', 'maxTries', 'waitBetweenTries', 'continueOnFail', 'onError',
              'position', 'parameters', 'credentials')
NODE_KEYS = {1: frozenset(_NODE_KEYS), 2: frozenset(_NODE_KEYS + ('customTelemetryTags',))}

_SETTINGS_1 = ('saveExecutionProgress', 'saveManualExecutions', 'saveDataErrorExecution', 'saveDataSuccessExecution',
               'executionTimeout', 'errorWorkflow', 'timezone', 'executionOrder', 'callerPolicy', 'callerIds',
               'timeSavedPerExecution', 'availableInMCP')
SETTINGS_KEYS = {1: frozenset(_SETTINGS_1),
                 2: frozenset(_SETTINGS_1 + ('binaryMode', 'credentialResolverId', 'timeSavedMode', 'redactionPolicy',
                                             'customTelemetryTags'))}
# Settings n8n fills in by itself; equal to these, a setting the definition leaves out is no difference.
SERVER_SETTING_DEFAULTS = {'callerPolicy': 'workflowsFromSameOwner', 'availableInMCP': False}

# Fields of a workflow as n8n returns it that are never written through the body (read-only, or
# managed by other endpoints such as tags and activation): dropped without a warning.
_READ_ONLY = frozenset(('id', 'name', 'active', 'tags', 'createdAt', 'updatedAt', 'versionId', 'activeVersionId',
                        'activeVersion', 'versionCounter', 'triggerCount', 'meta', 'pinData', 'isArchived', 'shared',
                        'description', 'nodeGroups', 'parentFolder', 'parentFolderId', 'projectId', 'homeProject',
                        'sourceWorkflowId', 'usedCredentials', 'scopes', 'checksum'))
_NODE_READ_ONLY = frozenset(('createdAt', 'updatedAt', 'extendsCredential'))

REFERENCE = re.compile(r'^\$\{(workflow|credential):(.+)\}$')
_UUID_NAMESPACE = uuid.UUID('0b7f8c4e-62a2-4d4f-9a59-3f1f2b0e5a11')


class WorkflowError(Exception):
    """A workflow could not be prepared or applied; the message names it and says what to do."""


# -- definitions ---------------------------------------------------------------------------------

def clean(definition, major):
    """(definition with only the keys the API accepts on write, [names of unknown keys dropped])."""
    dropped = []
    out = {}
    for key, value in (definition or {}).items():
        if key in ('nodes', 'connections', 'settings', 'staticData'):
            out[key] = copy.deepcopy(value)
        elif key not in _READ_ONLY:
            dropped.append(key)
    out.setdefault('nodes', [])
    out.setdefault('connections', {})
    settings = out.get('settings') or {}
    kept = {}
    for key, value in settings.items():
        if value == 'DEFAULT':
            continue  # GET may answer it; a write refuses it
        if key in SETTINGS_KEYS[major]:
            kept[key] = value
        else:
            dropped.append('settings.%s' % key)
    out['settings'] = kept
    if out.get('staticData') is None:
        out.pop('staticData', None)
    nodes = []
    for node in out['nodes'] or []:
        if not isinstance(node, dict):
            nodes.append(node)
            continue
        kept_node = {}
        for key, value in node.items():
            if key in NODE_KEYS[major]:
                kept_node[key] = value
            elif key not in _NODE_READ_ONLY:
                dropped.append('nodes[%s].%s' % (node.get('name'), key))
        nodes.append(kept_node)
    out['nodes'] = nodes
    return out, sorted(set(dropped))


def problems_of(name, definition):
    """What is wrong with a definition's shape, as a list of sentences (empty when fine)."""
    problems = []
    if not isinstance(definition, dict):
        return ["workflow '%s': definition must be a mapping with nodes, connections and settings" % name]
    nodes = definition.get('nodes')
    if not isinstance(nodes, list) or not nodes:
        problems.append("workflow '%s': definition.nodes must be a non-empty list of nodes" % name)
        nodes = []
    seen = set()
    for index, node in enumerate(nodes):
        if not isinstance(node, dict):
            problems.append("workflow '%s': node %d is not a mapping" % (name, index))
            continue
        for field in ('name', 'type', 'typeVersion'):
            if node.get(field) in (None, ''):
                problems.append("workflow '%s': node %s has no %s" % (name, node.get('name') or index, field))
        if node.get('name') in seen:
            problems.append("workflow '%s': two nodes are named '%s'" % (name, node.get('name')))
        seen.add(node.get('name'))
        if node.get('parameters') is not None and not isinstance(node.get('parameters'), dict):
            problems.append("workflow '%s': node '%s' parameters must be a mapping" % (name, node.get('name')))
        creds = node.get('credentials')
        if creds is not None and not isinstance(creds, dict):
            problems.append("workflow '%s': node '%s' credentials must map a credential type to a name"
                            % (name, node.get('name')))
    connections = definition.get('connections', {})
    if not isinstance(connections, dict):
        problems.append("workflow '%s': definition.connections must be a mapping" % name)
    else:
        for source, outputs in connections.items():
            if source not in seen:
                problems.append("workflow '%s': connections start at unknown node '%s'" % (name, source))
            for kind in (outputs or {}).values() if isinstance(outputs, dict) else []:
                for branch in kind or []:
                    for link in branch or []:
                        if isinstance(link, dict) and link.get('node') not in seen:
                            problems.append("workflow '%s': node '%s' connects to unknown node '%s'"
                                            % (name, source, link.get('node')))
    settings = definition.get('settings', {})
    if settings is not None and not isinstance(settings, dict):
        problems.append("workflow '%s': definition.settings must be a mapping" % name)
    return problems


def fill_defaults(workflow_name, definition):
    """Stable node ids and webhook ids (derived from the workflow and node names), and positions."""
    for index, node in enumerate(definition['nodes']):
        seed = '%s\x00%s' % (workflow_name, node.get('name'))
        node.setdefault('id', str(uuid.uuid5(_UUID_NAMESPACE, seed)))
        node.setdefault('parameters', {})
        node.setdefault('position', [index * 220, 0])
        if node.get('type') == WEBHOOK_NODE:
            node.setdefault('webhookId', str(uuid.uuid5(_UUID_NAMESPACE, seed + '\x00webhook')))
    return definition


def _walk_strings(value, visit):
    """A copy of ``value`` with every string replaced by ``visit(string)``."""
    if isinstance(value, dict):
        return dict((k, _walk_strings(v, visit)) for k, v in value.items())
    if isinstance(value, list):
        return [_walk_strings(v, visit) for v in value]
    if isinstance(value, str):
        return visit(value)
    return value


def references(definition):
    """The symbolic references of a definition: a set of (kind, target)."""
    found = set()

    def visit(text):
        match = REFERENCE.match(text)
        if match:
            found.add((match.group(1), match.group(2)))
        return text

    for node in definition.get('nodes') or []:
        if isinstance(node, dict):
            _walk_strings(node.get('parameters') or {}, visit)
            for ref in (node.get('credentials') or {}).values():
                if isinstance(ref, str):
                    found.add(('credential', ref))
                elif isinstance(ref, dict) and ref.get('name'):
                    found.add(('credential', ref['name']))
    return found


def order(items):
    """``items`` (dicts with key and definition) sorted so a workflow comes after those it references.

    Raises WorkflowError on a cycle.
    """
    by_key = dict((item['key'], item) for item in items)
    deps = {}
    for item in items:
        refs = references(item['definition']) if isinstance(item.get('definition'), dict) else set()
        deps[item['key']] = sorted(target for kind, target in refs if kind == 'workflow' and target in by_key
                                   and target != item['key'])
        if ('workflow', item['key']) in refs:
            deps[item['key']].append(item['key'])
    done, visiting, result = set(), [], []

    def visit(key):
        if key in done:
            return
        if key in visiting:
            cycle = visiting[visiting.index(key):] + [key]
            raise WorkflowError('workflows reference each other in a cycle (%s): n8n needs the id of a workflow '
                                'before another can call it; break the cycle' % ' -> '.join(cycle))
        visiting.append(key)
        for dep in deps[key]:
            visit(dep)
        visiting.pop()
        done.add(key)
        result.append(by_key[key])

    for item in items:
        visit(item['key'])
    return result


def resolve(workflow_name, definition, workflow_id, credential):
    """A copy of ``definition`` with references replaced by ids.

    ``workflow_id(key)`` and ``credential(name, type)`` return an id or raise LookupError.
    ``credential`` returns (id, type).
    """
    problems = []
    out = copy.deepcopy(definition)

    def visit(text):
        match = REFERENCE.match(text)
        if not match:
            return text
        kind, target = match.groups()
        try:
            if kind == 'workflow':
                return workflow_id(target)
            return credential(target, None)[0]
        except LookupError as exc:
            problems.append("workflow '%s': reference %s: %s" % (workflow_name, text, exc))
            return text

    for node in out['nodes']:
        node['parameters'] = _walk_strings(node.get('parameters') or {}, visit)
        creds = node.get('credentials')
        if not creds:
            continue
        resolved = {}
        for cred_type, ref in creds.items():
            name = ref if isinstance(ref, str) else (ref or {}).get('name')
            given_id = None if isinstance(ref, str) else (ref or {}).get('id')
            if not name and not given_id:
                problems.append("workflow '%s': node '%s' credential '%s' names no credential"
                                % (workflow_name, node.get('name'), cred_type))
                continue
            if not name:
                resolved[cred_type] = {'id': given_id, 'name': (ref or {}).get('name')}
                continue
            try:
                cred_id, found_type = credential(name, cred_type)
                resolved[cred_type] = {'id': cred_id, 'name': name}
            except LookupError as exc:
                if given_id:
                    resolved[cred_type] = {'id': given_id, 'name': name}
                else:
                    problems.append("workflow '%s': node '%s': %s" % (workflow_name, node.get('name'), exc))
        node['credentials'] = resolved
    if problems:
        raise WorkflowError('; '.join(problems))
    return out


def _number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    return float(value)


def _normal_settings(settings):
    out = {}
    for key, value in (settings or {}).items():
        if value == 'DEFAULT' or value is None:
            continue
        if key in SERVER_SETTING_DEFAULTS and value == SERVER_SETTING_DEFAULTS[key]:
            continue
        out[key] = value
    return out


def comparable(definition):
    """The parts of a definition that are compared, in a normal form (node order does not matter)."""
    nodes = []
    for node in definition.get('nodes') or []:
        node = dict((k, v) for k, v in node.items() if v is not None)
        if 'position' in node and isinstance(node['position'], list):
            node['position'] = [_number(v) for v in node['position']]
        if 'typeVersion' in node:
            node['typeVersion'] = _number(node['typeVersion'])
        if not node.get('credentials'):
            node.pop('credentials', None)
        nodes.append(node)
    nodes.sort(key=lambda n: str(n.get('name')))
    return {
        'nodes': nodes,
        'connections': definition.get('connections') or {},
        'settings': _normal_settings(definition.get('settings')),
    }


def same(desired, current):
    return json.dumps(comparable(desired), sort_keys=True) == json.dumps(comparable(current), sort_keys=True)


def activatable(definition):
    """Whether n8n 1.x can activate the workflow: it has a trigger other than the sub-workflow one."""
    for node in definition.get('nodes') or []:
        if node.get('disabled'):
            continue
        kind = str(node.get('type', ''))
        if kind in _NOT_ACTIVATING:
            continue
        if kind in _STARTERS or kind.endswith('Trigger'):
            return True
    return False


def is_subworkflow(definition):
    return any(n.get('type') == SUBWORKFLOW_TRIGGER and not n.get('disabled') for n in definition.get('nodes') or [])


# -- webhooks ------------------------------------------------------------------------------------

def webhooks(definition):
    """The static production webhooks of a definition: [{node, path, methods}]."""
    found = []
    for node in definition.get('nodes') or []:
        if node.get('type') != WEBHOOK_NODE or node.get('disabled'):
            continue
        params = node.get('parameters') or {}
        path = params.get('path') or node.get('webhookId') or ''
        if not isinstance(path, str) or path.startswith('=') or ':' in path:
            continue  # an expression or a dynamic path cannot be probed
        path = path.strip().strip('/')
        if params.get('multipleMethods'):
            methods = params.get('httpMethod') or ['GET', 'POST']
            methods = methods if isinstance(methods, list) else [methods]
        else:
            methods = [params.get('httpMethod') or 'GET']
        found.append({'node': node.get('name'), 'path': path, 'methods': sorted(str(m).upper() for m in methods)})
    return found


def probe_method(methods):
    for method in ('PUT', 'PATCH', 'DELETE', 'POST', 'GET'):
        if method not in methods:
            return method
    return None


def webhook_live(client, base, hook):
    """True when n8n routes the webhook's path (asked with a method it does not accept, so nothing runs)."""
    method = probe_method(hook['methods'])
    if method is None:
        return None
    url = '%s/%s' % (base.rstrip('/'), '/'.join(quote_id(part) for part in hook['path'].split('/')))
    status, dummy, payload = client.raw(method, url, body=None, retry=False)
    if status != 404:
        return True
    text = payload.decode('utf-8', 'replace') if isinstance(payload, bytes) else str(payload)
    return 'did you mean to make a' in text.lower()


def wait_live(client, base, hook, timeout, interval=0.25, clock=time.monotonic):
    deadline = clock() + timeout
    while True:
        live = webhook_live(client, base, hook)
        if live or live is None or clock() >= deadline:
            return live
        client.sleep(interval)


# -- server calls --------------------------------------------------------------------------------

def activate(client, workflow_id):
    client.api('POST', '/workflows/%s/%s' % (quote_id(workflow_id), 'activate' if client.major < 2 else 'publish'))


def deactivate(client, workflow_id):
    client.api('POST', '/workflows/%s/%s' % (quote_id(workflow_id), 'deactivate' if client.major < 2 else 'unpublish'))


def delete(client, workflow, timeout=15.0, clock=time.monotonic):
    """Delete a workflow; an active one is deactivated first (2.x refuses to delete a published one)."""
    if workflow.get('active'):
        deactivate(client, workflow['id'])
    deadline = clock() + timeout
    while True:
        try:
            return client.api('DELETE', '/workflows/%s' % quote_id(workflow['id']))
        except Conflict:
            # 2.x unpublishes asynchronously; the delete is refused until it is done.
            if clock() >= deadline:
                raise
            client.sleep(0.25)


def body_for_write(name, definition):
    body = {'name': name, 'nodes': definition['nodes'], 'connections': definition['connections'],
            'settings': definition.get('settings') or {}}
    if definition.get('staticData') is not None:
        body['staticData'] = definition['staticData']
    return body


def all_workflows(client):
    """Every workflow that is not archived, with its definition."""
    return [w for w in client.paginate('/workflows', {'excludePinnedData': True}) if not w.get('isArchived')]


def repoint_credentials(client, replaced, check_mode, webhook_base=None, webhook_timeout=10.0, workflows=None):
    """Point every node that uses a replaced credential at its replacement.

    ``replaced`` maps an old credential id to (new id, name). Returns the names of the workflows
    changed (or that would change, in check mode). Active workflows stay active; their webhooks are
    checked afterwards and repaired when n8n left them unregistered.
    """
    changed = []
    for workflow in workflows if workflows is not None else all_workflows(client):
        touched = False
        nodes = copy.deepcopy(workflow.get('nodes') or [])
        for node in nodes:
            for cred_type, ref in list((node.get('credentials') or {}).items()):
                if isinstance(ref, dict) and ref.get('id') in replaced:
                    new_id, name = replaced[ref['id']]
                    node['credentials'][cred_type] = {'id': new_id, 'name': name}
                    touched = True
        if not touched:
            continue
        changed.append(workflow['name'])
        if check_mode:
            continue
        cleaned, dummy = clean(dict(workflow, nodes=nodes), client.major)
        try:
            client.api('PUT', '/workflows/%s' % quote_id(workflow['id']), body_for_write(workflow['name'], cleaned))
        except N8nError as exc:
            raise WorkflowError("Failed to point workflow '%s' at the replaced credential on %s: %s"
                                % (workflow['name'], client.where, exc))
        if workflow.get('active') and webhook_base:
            ensure_webhooks(client, workflow['id'], workflow['name'], cleaned, webhook_base, webhook_timeout,
                            just_activated=True)
    return changed


def ensure_webhooks(client, workflow_id, name, definition, base, timeout, just_activated=False, check_mode=False):
    """Check every webhook of an active workflow; repair (deactivate, activate) the ones n8n lost.

    Returns (report, repaired) where report is a list of {node, path, methods, live}.
    """
    hooks = webhooks(definition)
    if not hooks:
        return [], False

    def probe(hook, wait):
        if wait:
            return wait_live(client, base, hook, timeout)
        return webhook_live(client, base, hook)

    state = [(hook, probe(hook, just_activated)) for hook in hooks]
    repaired = False
    if any(live is False for dummy, live in state):
        if check_mode:
            return [dict(h, live=live) for h, live in state], True
        # An n8n bug leaves API-activated webhooks unregistered while the workflow says active,
        # and activating again then changes nothing: deactivate and activate.
        try:
            deactivate(client, workflow_id)
            if client.major >= 2:
                client.sleep(0.5)
            activate(client, workflow_id)
        except N8nError as exc:
            raise WorkflowError("Failed to repair the webhooks of workflow '%s' on %s: %s"
                                % (name, client.where, exc))
        repaired = True
        state = [(hook, probe(hook, True)) for hook in hooks]
        dead = [h for h, live in state if live is False]
        if dead:
            raise WorkflowError(
                "Webhook %s of workflow '%s' on %s is not live after reactivating the workflow: n8n does not "
                "route %s. Check the n8n log and that no other workflow uses the path."
                % (', '.join("'%s' (%s %s)" % (h['node'], '/'.join(h['methods']), h['path']) for h in dead), name,
                   client.where, ', '.join(h['path'] for h in dead)))
    return [dict(h, live=live) for h, live in state], repaired


# -- the reconciler ------------------------------------------------------------------------------

def _pretty(definition, active, tags):
    shown = comparable(definition)
    shown['active'] = active
    shown['tags'] = tags
    return shown


class WorkflowApplier(object):
    """Brings a list of workflows to their wanted state on one instance.

    ``items``: dicts with name, key, definition, active (True/False/None = leave), tags (list or None
    = leave). ``credential_index`` is a CredentialIndex (or anything with ``resolve(name, type)``).
    """

    def __init__(self, client, check_mode=False, diff=False, webhook_base=None, webhook_timeout=10.0,
                 credential_index=None, warn=None):
        self.client = client
        self.check_mode = check_mode
        self.diff = diff
        self.webhook_base = webhook_base
        self.webhook_timeout = webhook_timeout
        self.credential_index = credential_index
        self.warn = warn or (lambda text: None)
        self._by_name = None
        self._tags = None
        self.ids = {}          # key -> id (or a placeholder in check mode)
        self.results = []
        self.before = {}
        self.after = {}

    # lookups ---------------------------------------------------------------------------------

    @property
    def by_name(self):
        if self._by_name is None:
            self._by_name = {}
            for workflow in all_workflows(self.client):
                self._by_name.setdefault(workflow['name'], []).append(workflow)
        return self._by_name

    def existing(self, name):
        found = self.by_name.get(name) or []
        if len(found) > 1:
            raise WorkflowError("Failed to find workflow '%s' on %s: n8n has %d workflows with that exact name "
                                "(ids %s). Delete or rename the extra ones in n8n."
                                % (name, self.client.where, len(found), ', '.join(sorted(w['id'] for w in found))))
        return found[0] if found else None

    def workflow_id(self, key):
        if key in self.ids:
            return self.ids[key]
        found = self.existing(key)
        if found:
            return found['id']
        raise LookupError("no workflow with key or name '%s': list it in the same call or create it first" % key)

    def credential(self, name, cred_type):
        if self.credential_index is None:
            raise LookupError("credential '%s' cannot be looked up" % name)
        return self.credential_index.resolve(name, cred_type)

    def tag_ids(self, names):
        if self._tags is None:
            self._tags = dict((t['name'], t['id']) for t in self.client.paginate('/tags'))
        ids = []
        for name in names:
            if name not in self._tags:
                if self.check_mode:
                    self._tags[name] = '(new tag %s)' % name
                else:
                    try:
                        self._tags[name] = self.client.api('POST', '/tags', {'name': name})['id']
                    except Conflict:
                        self._tags = dict((t['name'], t['id']) for t in self.client.paginate('/tags'))
            ids.append(self._tags[name])
        return ids

    # the work --------------------------------------------------------------------------------

    def present(self, items):
        for item in order(items):
            self._present(item)
        return self.results

    def _fail(self, verb, name, exc, hint=''):
        return WorkflowError("Failed to %s workflow '%s' on %s: %s.%s"
                             % (verb, name, self.client.where, str(exc).rstrip('.'), ' ' + hint if hint else ''))

    def _present(self, item):
        name, key = item['name'], item['key']
        major = self.client.major
        desired, dropped = clean(item['definition'], major)
        if dropped:
            self.warn("workflow '%s': dropped fields n8n %d.x does not accept: %s" % (name, major, ', '.join(dropped)))
        fill_defaults(name, desired)
        desired = resolve(name, desired, self.workflow_id, self.credential)
        current = self.existing(name)
        result = {'name': name, 'key': key, 'id': current['id'] if current else None, 'changed': False,
                  'actions': [], 'webhooks': []}
        want_active = item.get('active')
        want_tags = item.get('tags')
        if want_active and major < 2 and not activatable(desired) and is_subworkflow(desired):
            # 1.x cannot activate a workflow whose only trigger is "Execute Workflow Trigger"; it runs
            # such a sub-workflow without activation. 2.x requires it published before its callers.
            want_active = None
            result['note'] = 'sub-workflow: n8n 1.x runs it when called, without activation'

        current_def = None
        if current:
            current_def, dummy = clean(current, major)
        is_active = bool(current and current.get('active'))
        final_active = is_active if want_active is None else bool(want_active)
        current_tags = sorted(t['name'] for t in (current or {}).get('tags') or [])
        final_tags = current_tags if want_tags is None else sorted(set(want_tags))

        needs_write = current is None or not same(desired, current_def)
        stale_publish = bool(current and major >= 2 and is_active and current.get('activeVersionId')
                             and current.get('versionId') and current['activeVersionId'] != current['versionId'])

        try:
            if current and is_active and not final_active:
                result['actions'].append('deactivate')
                if not self.check_mode:
                    deactivate(self.client, current['id'])
            if current is None:
                result['actions'].append('create')
                if self.check_mode:
                    result['id'] = None
                    self.ids[key] = '(id of workflow %s)' % name
                else:
                    created = self.client.api('POST', '/workflows', body_for_write(name, desired))
                    result['id'] = created['id']
            elif needs_write:
                result['actions'].append('update')
                if not self.check_mode:
                    self.client.api('PUT', '/workflows/%s' % quote_id(current['id']), body_for_write(name, desired))
            if result['id']:
                self.ids[key] = result['id']
            if final_tags != current_tags:
                result['actions'].append('tag')
                ids = self.tag_ids(final_tags)
                if not self.check_mode:
                    self.client.api('PUT', '/workflows/%s/tags' % quote_id(result['id']), [{'id': i} for i in ids])
            activated = False
            if final_active and (not is_active or stale_publish):
                result['actions'].append('activate')
                activated = True
                if not self.check_mode:
                    activate(self.client, result['id'])
        except N8nError as exc:
            self.results.append(result)
            raise self._fail(result['actions'][-1] if result['actions'] else 'apply', name, exc, _hint(exc))

        if final_active and self.webhook_base and result['id'] and not (self.check_mode and current is None):
            just = activated or (needs_write and is_active)
            if not (self.check_mode and just):
                report, repaired = ensure_webhooks(self.client, result['id'], name, desired, self.webhook_base,
                                                   self.webhook_timeout, just_activated=just, check_mode=self.check_mode)
                result['webhooks'] = report
                if repaired:
                    result['actions'].append('repair webhooks')
        result['active'] = final_active
        result['tags'] = final_tags
        result['changed'] = bool(result['actions'])
        if result['changed'] and self.diff:
            self.before[name] = _pretty(current_def, is_active, current_tags) if current else {}
            self.after[name] = _pretty(desired, final_active, final_tags)
        self.results.append(result)

    def absent(self, names):
        for name in names:
            current = self.existing(name)
            result = {'name': name, 'key': name, 'id': current['id'] if current else None,
                      'changed': current is not None, 'actions': ['delete'] if current else [], 'webhooks': []}
            if current:
                if self.diff:
                    cleaned, dummy = clean(current, self.client.major)
                    self.before[name] = _pretty(cleaned, bool(current.get('active')),
                                                sorted(t['name'] for t in current.get('tags') or []))
                    self.after[name] = {}
                if not self.check_mode:
                    try:
                        delete(self.client, current)
                    except N8nError as exc:
                        raise self._fail('delete', name, exc, _hint(exc))
            self.results.append(result)
        return self.results


def _hint(exc):
    if exc.status == 401:
        return 'Check the API key (the secret n8n_api_key).'
    if exc.status == 403:
        return 'The API key lacks a scope for this, or the feature needs an n8n license.'
    if exc.status == 400:
        return 'Fix the workflow definition (its template) and run again.'
    if exc.status is None or exc.status >= 500:
        return 'n8n did not answer or failed; check that it runs and its log.'
    return ''
