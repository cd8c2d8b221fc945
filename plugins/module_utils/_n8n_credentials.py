# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: no compatibility promise outside federation.platform.
"""n8n credentials by name and type, with write-only data compared through fingerprints.

n8n never returns a credential's data. The module keeps a keyed fingerprint of what it wrote in the
managed state (see ``_n8n_state``) and compares the wanted data's fingerprint with it:

- 2.x: found by name in ``GET /credentials``; changed data is written with ``PATCH`` (same id, so
  workflows that use it are untouched);
- 1.x: no list, get or update. The id comes from the managed state (or, when the state is lost, from
  the workflows that use the credential), its existence is checked by a refused no-op transfer, and
  changed data means: create the new credential, point every workflow that used the old one at it
  (active ones stay active, their webhooks are checked), then delete the old one.

Data is checked against the type's JSON schema (``GET /credentials/schema/<type>``) before anything
is written, so a bad item fails the whole call with nothing changed.
"""

from __future__ import annotations

import copy

from ansible_collections.federation.platform.plugins.module_utils._n8n import N8nError, NotFound, quote_id
from ansible_collections.federation.platform.plugins.module_utils._n8n_state import (
    CredentialIndex, ManagedState, credential_exists_1x, fingerprint)
from ansible_collections.federation.platform.plugins.module_utils._n8n_workflows import (
    WorkflowError, all_workflows, repoint_credentials)


_DONE = {'none': 'unchanged', 'create': 'created', 'update': 'updated', 'replace': 'replaced'}


class CredentialError(Exception):
    """A credential could not be applied; the message names it and never contains its data."""


def schema_problems(schema, data, path='data'):
    """Check ``data`` against the JSON-schema subset n8n generates for credential types.

    Returns (coerced data, problems). Numbers and booleans given as strings are converted. The data's
    values never appear in a problem, only the property names.
    """
    problems = []
    if not isinstance(data, dict):
        return data, ['%s must be a mapping' % path]
    data = copy.deepcopy(data)
    props = schema.get('properties') or {}
    for key, spec in props.items():
        if key not in data:
            continue
        value = data[key]
        kind = spec.get('type')
        if kind == 'number':
            if isinstance(value, str):
                try:
                    value = int(value) if value.strip().lstrip('-').isdigit() else float(value)
                    data[key] = value
                except ValueError:
                    problems.append('%s.%s must be a number' % (path, key))
                    continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                problems.append('%s.%s must be a number' % (path, key))
        elif kind == 'boolean':
            if isinstance(value, str) and value.lower() in ('true', 'false', 'yes', 'no'):
                data[key] = value = value.lower() in ('true', 'yes')
            if not isinstance(value, bool):
                problems.append('%s.%s must be true or false' % (path, key))
        elif kind == 'string':
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                data[key] = value = str(value)
            if not isinstance(value, str):
                problems.append('%s.%s must be text' % (path, key))
        if 'enum' in spec and key in data and data[key] not in spec['enum']:
            problems.append('%s.%s must be one of %s' % (path, key, ', '.join(map(str, spec['enum']))))
    if schema.get('additionalProperties') is False and props:
        for key in sorted(data):
            if key not in props:
                problems.append('%s has unknown property %s (known: %s)' % (path, key, ', '.join(sorted(props))))
    problems.extend(_required(schema, data, path))
    return data, problems


def _matches(condition, data):
    """JSON-schema ``if``: true when every listed property that is present has an allowed value."""
    for key, spec in (condition.get('properties') or {}).items():
        if key in data and 'enum' in spec and data[key] not in spec['enum']:
            return False
    for key in condition.get('required') or []:
        if key not in data:
            return False
    return True


def _required(schema, data, path):
    problems = []
    for key in schema.get('required') or []:
        if key not in data:
            problems.append('%s needs property %s' % (path, key))
    for sub in schema.get('allOf') or []:
        if 'if' in sub:
            branch = sub.get('then') if _matches(sub['if'], data) else sub.get('else')
            if branch:
                problems.extend(_required(branch, data, path))
        else:
            if 'not' in sub:
                for key in (sub['not'].get('required') or []):
                    if key in data:
                        problems.append('%s must not have property %s here' % (path, key))
            problems.extend(_required(sub, data, path) if ('required' in sub or 'allOf' in sub) else [])
    return problems


class CredentialApplier(object):

    def __init__(self, client, fingerprint_key, check_mode=False, diff=False, webhook_base=None,
                 webhook_timeout=10.0, warn=None):
        self.client = client
        self.key = fingerprint_key
        self.check_mode = check_mode
        self.diff = diff
        self.webhook_base = webhook_base
        self.webhook_timeout = webhook_timeout
        self.warn = warn or (lambda text: None)
        self.state = None
        self.index = None
        self._workflows = None
        self.results = []
        self.repointed = []
        self.before = {}
        self.after = {}

    @property
    def workflows(self):
        if self._workflows is None:
            self._workflows = all_workflows(self.client)
        return self._workflows

    def _fail(self, verb, name, exc, hint=''):
        return CredentialError("Failed to %s credential '%s' on %s: %s.%s"
                               % (verb, name, self.client.where, str(exc).rstrip('.'), ' ' + hint if hint else ''))

    # -- finding -------------------------------------------------------------------------------

    def _used_ids(self, name, cred_type=None):
        """Ids that workflows use for a credential of this name (1.x recovery when the state is lost)."""
        ids = set()
        for workflow in self.workflows:
            for node in workflow.get('nodes') or []:
                for key, ref in (node.get('credentials') or {}).items():
                    if isinstance(ref, dict) and ref.get('name') == name and ref.get('id') and (
                            cred_type is None or key == cred_type):
                        ids.add(ref['id'])
        return sorted(ids)

    def existing(self, name, cred_type=None):
        """The credentials on the server named ``name``: a list of {id, type, recorded}."""
        recorded = self.state.credentials.get(name)
        if self.index.listed is not None:
            found = [c for c in self.index.listed if c.get('name') == name]
            if recorded and len(found) > 1:
                mine = [c for c in found if c['id'] == recorded.get('id')]
                found = mine or found
            return [{'id': c['id'], 'type': c.get('type'), 'recorded': bool(recorded and recorded.get('id') == c['id'])}
                    for c in found]
        out = []
        if recorded:
            exists = credential_exists_1x(self.client, recorded['id'], self.state.project_id)
            if exists is not False:
                out.append({'id': recorded['id'], 'type': recorded.get('type'), 'recorded': True})
        if not out:
            project = self.state.project_id or self._project_from_workflows()
            for cred_id in self._used_ids(name, cred_type):
                if credential_exists_1x(self.client, cred_id, project):
                    out.append({'id': cred_id, 'type': cred_type, 'recorded': False})
        return out

    def _project_from_workflows(self):
        for workflow in self.workflows:
            for share in workflow.get('shared') or []:
                if share.get('projectId'):
                    return share['projectId']
        for workflow in self.workflows[:1]:
            full = self.client.api('GET', '/workflows/%s' % quote_id(workflow['id']))
            for share in full.get('shared') or []:
                if share.get('projectId'):
                    return share['projectId']
        return None

    # -- checking ------------------------------------------------------------------------------

    def validate(self, items):
        problems = []
        schemas = {}
        for item in items:
            cred_type = item['type']
            if cred_type not in schemas:
                try:
                    schemas[cred_type] = self.client.api('GET', '/credentials/schema/%s' % quote_id(cred_type))
                except NotFound:
                    schemas[cred_type] = None
                except N8nError as exc:
                    raise self._fail('check', item['name'], exc, 'Could not read the schema of type %s.' % cred_type)
            schema = schemas[cred_type]
            if schema is None:
                problems.append("credential '%s': type '%s' is not a credential type this n8n knows (types are "
                                "case-sensitive, for example postgres or httpHeaderAuth)" % (item['name'], cred_type))
                continue
            item['data'], found = schema_problems(schema, item['data'])
            problems.extend("credential '%s' (%s): %s" % (item['name'], cred_type, p) for p in found)
        if problems:
            raise CredentialError('Invalid credentials for %s, nothing was changed: %s'
                                  % (self.client.where, '; '.join(problems)))

    # -- applying ------------------------------------------------------------------------------

    def run(self, items, state):
        self.state = ManagedState(self.client, self.check_mode).load()
        self.index = CredentialIndex(self.client, self.state)
        try:
            if state == 'present':
                self._present(items)
            else:
                self._absent(items)
        finally:
            try:
                self.state.save()
            except N8nError as exc:
                raise CredentialError('Failed to save the managed state (credential ids and fingerprints) on %s: %s. '
                                      'Run again; until then the next run may replace credentials it cannot compare.'
                                      % (self.client.where, exc))
        return self.results

    def _plan(self, item):
        name, cred_type = item['name'], item['type']
        wanted = fingerprint(self.key, cred_type, item['data'])
        found = self.existing(name, cred_type)
        if len(found) > 1 and self.index.listed is not None:
            raise CredentialError(
                "Failed to find credential '%s' on %s: n8n has %d credentials with that name (ids %s) and none is "
                "recorded as managed. Delete the extra ones in n8n." % (
                    name, self.client.where, len(found), ', '.join(sorted(c['id'] for c in found))))
        recorded = self.state.credentials.get(name) or {}
        if not found:
            action = 'create'
        elif (len(found) == 1 and found[0]['recorded'] and recorded.get('fingerprint') == wanted
              and recorded.get('type') == cred_type and found[0].get('type') in (None, cred_type)):
            action = 'none'
        elif self.client.major >= 2:
            action = 'update'
        else:
            action = 'replace'
        return [item, wanted, found, action]

    def _present(self, items):
        plans = [self._plan(item) for item in items]
        # Only what is to be written is checked against the type's schema (one request per type), all of it
        # before the first write. The check may convert values ("5432" -> 5432): compare once more after it.
        pending = [plan for plan in plans if plan[3] != 'none']
        if pending:
            self.validate([plan[0] for plan in pending])
            for plan in pending:
                item, dummy, found, action = plan
                plan[1] = fingerprint(self.key, item['type'], item['data'])
                recorded = self.state.credentials.get(item['name']) or {}
                if (action != 'create' and len(found) == 1 and found[0]['recorded']
                        and recorded.get('fingerprint') == plan[1] and recorded.get('type') == item['type']):
                    plan[3] = 'none'

        replaced = {}
        for item, wanted, found, action in plans:
            name, cred_type = item['name'], item['type']
            result = {'name': name, 'type': cred_type, 'id': found[0]['id'] if found else None,
                      'changed': action != 'none', 'action': _DONE[action]}
            self.results.append(result)
            if self.diff and action != 'none':
                self.before[name] = {'type': found[0].get('type') or cred_type, 'data': '(write-only: previous value)'} if found else {}
                self.after[name] = {'type': cred_type, 'data': '(write-only: new value)'}
            if action == 'none' or self.check_mode:
                if action == 'replace':
                    for old in found:
                        replaced[old['id']] = ('(new id)', name)
                continue
            body = {'name': name, 'type': cred_type, 'data': item['data']}
            try:
                if action == 'update':
                    self.client.api('PATCH', '/credentials/%s' % quote_id(found[0]['id']), body)
                    new_id = found[0]['id']
                else:
                    new_id = self.client.api('POST', '/credentials', body)['id']
            except N8nError as exc:
                raise self._fail(action, name, exc, _hint(exc))
            result['id'] = new_id
            self.state.credentials[name] = {'id': new_id, 'type': cred_type, 'fingerprint': wanted}
            if action == 'replace':
                for old in found:
                    replaced[old['id']] = (new_id, name)

        if replaced:
            try:
                self.repointed = repoint_credentials(self.client, replaced, self.check_mode, self.webhook_base,
                                                     self.webhook_timeout, workflows=self.workflows)
            except WorkflowError as exc:
                raise CredentialError(str(exc))
            if not self.check_mode:
                for old_id in replaced:
                    self._delete(old_id, replaced[old_id][1])

    def _delete(self, cred_id, name):
        try:
            self.client.api('DELETE', '/credentials/%s' % quote_id(cred_id))
        except NotFound:
            pass
        except N8nError as exc:
            raise self._fail('delete', name, exc, _hint(exc))

    def _absent(self, items):
        for item in items:
            name = item['name']
            found = self.existing(name, item.get('type'))
            if item.get('type'):
                found = [c for c in found if c.get('type') in (None, item['type'])]
            result = {'name': name, 'type': item.get('type') or (found[0].get('type') if found else None),
                      'id': found[0]['id'] if found else None, 'changed': bool(found),
                      'action': 'deleted' if found else 'unchanged'}
            self.results.append(result)
            if found and self.diff:
                self.before[name] = {'type': result['type'], 'data': '(write-only)'}
                self.after[name] = {}
            if not self.check_mode:
                for cred in found:
                    self._delete(cred['id'], name)
            self.state.credentials.pop(name, None)


def _hint(exc):
    if exc.status == 401:
        return 'Check the API key (the secret n8n_api_key).'
    if exc.status == 403:
        return 'The API key lacks a credential scope for this.'
    if exc.status == 400:
        return 'Fix the credential data for its type and run again.'
    if exc.status is None or exc.status >= 500:
        return 'n8n did not answer or failed; check that it runs and its log.'
    return ''
