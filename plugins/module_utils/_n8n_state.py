# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: no compatibility promise outside federation.platform.
"""What the n8n modules remember inside the n8n instance itself, and the credential fingerprints.

n8n never returns a credential's data, and 1.x cannot even list credentials. So the modules keep a
small record in the instance: the static data of one inactive workflow, ``Federation managed state
(do not edit)``, holds ``{credentials: {<name>: {id, type, fingerprint}}}``. It lives in the same
database as the credentials it describes, so it can never describe another instance, and it is gone
when the instance is rebuilt, which is right: the credentials are gone too.

A fingerprint is ``v1:`` + HMAC-SHA256 over the credential's type and data (canonical JSON), keyed
with a key derived from a secret that n8n does not store (the department's ``n8n_encryption_key``),
so reading the record reveals nothing about the data, not even whether two credentials are equal
unless one holds the key.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from ansible_collections.federation.platform.plugins.module_utils._n8n import N8nError, quote_id

STATE_WORKFLOW_NAME = 'Federation managed state (do not edit)'
STATE_NOTE = (
    '## Federation managed state\n'
    'The Ansible collection federation.platform keeps the ids and fingerprints of the credentials it '
    'manages in the static data of this workflow. It never runs. Do not edit or delete it: without it, '
    'the next run cannot tell whether a credential changed and replaces every managed credential once.'
)
STATE_NOTE_ID = '6f6e7a1e-6a4b-4c39-9d6e-000000000001'
_FINGERPRINT_CONTEXT = b'federation.platform n8n credential fingerprint v1'


def fingerprint(key, cred_type, data):
    """The salted, keyed hash of a credential's type and data (never the data itself)."""
    if not key:
        raise ValueError('a fingerprint key is required')
    derived = hmac.new(str(key).encode('utf-8'), _FINGERPRINT_CONTEXT, hashlib.sha256).digest()
    message = json.dumps({'type': cred_type, 'data': data}, sort_keys=True, separators=(',', ':'),
                         ensure_ascii=False, default=str).encode('utf-8')
    return 'v1:' + hmac.new(derived, message, hashlib.sha256).hexdigest()


class ManagedState(object):
    """The record kept in the state workflow. ``load()`` once, change ``credentials``, ``save()`` once."""

    def __init__(self, client, check_mode=False):
        self.client = client
        self.check_mode = check_mode
        self.workflow = None
        self.credentials = {}
        self._loaded = None

    def load(self):
        matches = [w for w in self.client.paginate('/workflows', {'name': STATE_WORKFLOW_NAME})
                   if w.get('name') == STATE_WORKFLOW_NAME and not w.get('isArchived')]
        if matches:
            # The oldest one is the record; a copy made in the editor is ignored.
            matches.sort(key=lambda w: (str(w.get('createdAt') or ''), str(w.get('id'))))
            self.workflow = self.client.api('GET', '/workflows/%s' % quote_id(matches[0]['id']))
            data = (self.workflow.get('staticData') or {})
            if isinstance(data, str):
                try:
                    data = json.loads(data)
                except ValueError:
                    data = {}
            record = data.get('federation') if isinstance(data, dict) else None
            if isinstance(record, dict) and isinstance(record.get('credentials'), dict):
                self.credentials = {str(k): dict(v) for k, v in record['credentials'].items() if isinstance(v, dict)}
        self._loaded = json.dumps(self.credentials, sort_keys=True)
        return self

    @property
    def project_id(self):
        """The project that owns the state workflow (the owner's personal project), or None."""
        for share in (self.workflow or {}).get('shared') or []:
            if share.get('projectId'):
                return share['projectId']
        return None

    @property
    def changed(self):
        return self._loaded is not None and json.dumps(self.credentials, sort_keys=True) != self._loaded

    def body(self):
        return {
            'name': STATE_WORKFLOW_NAME,
            'nodes': [{
                'id': STATE_NOTE_ID, 'name': 'About this workflow', 'type': 'n8n-nodes-base.stickyNote',
                'typeVersion': 1, 'position': [0, 0],
                'parameters': {'content': STATE_NOTE, 'height': 260, 'width': 420},
            }],
            'connections': {},
            'settings': {},
            'staticData': {'federation': {'version': 1, 'credentials': self.credentials}},
        }

    def save(self):
        """Write the record when it changed (never in check mode)."""
        if self.check_mode or not self.changed:
            return False
        if self.workflow is None:
            self.workflow = self.client.api('POST', '/workflows', self.body())
        else:
            self.workflow = self.client.api('PUT', '/workflows/%s' % quote_id(self.workflow['id']), self.body())
        self._loaded = json.dumps(self.credentials, sort_keys=True)
        return True


class CredentialIndex(object):
    """Finds credentials by name: the server's list on 2.x, the managed state on 1.x."""

    def __init__(self, client, state):
        self.client = client
        self.state = state
        self._listed = None

    @property
    def listed(self):
        """Every credential on the server (2.x), or None (1.x)."""
        if self._listed is None and self.client.major >= 2:
            self._listed = self.client.credentials()
        return self._listed

    def candidates(self, name, cred_type=None):
        """Credentials named ``name`` (and of ``cred_type`` when given): a list of {id, name, type}."""
        if self.listed is not None:
            found = [c for c in self.listed if c.get('name') == name and (cred_type is None or c.get('type') == cred_type)]
            recorded = self.state.credentials.get(name)
            if recorded and len(found) > 1:
                mine = [c for c in found if c.get('id') == recorded.get('id')]
                if mine:
                    return mine
            return [{'id': c['id'], 'name': c['name'], 'type': c.get('type')} for c in found]
        recorded = self.state.credentials.get(name)
        if recorded and (cred_type is None or recorded.get('type') == cred_type):
            return [{'id': recorded['id'], 'name': name, 'type': recorded.get('type')}]
        return []

    def resolve(self, name, cred_type=None):
        """(id, type) of the one credential named ``name``; LookupError saying what to do otherwise."""
        found = self.candidates(name, cred_type)
        kind = "credential '%s'%s" % (name, " of type '%s'" % cred_type if cred_type else '')
        if not found:
            if self.listed is None:
                raise LookupError('%s is not known to this collection on n8n 1.x (which cannot list credentials): '
                                  'create it with federation.platform.n8n_credential first' % kind)
            raise LookupError('%s does not exist: create it with federation.platform.n8n_credential first' % kind)
        if len(found) > 1:
            raise LookupError('%s is ambiguous: n8n has %d of them (ids %s); delete or rename the extra ones'
                              % (kind, len(found), ', '.join(sorted(c['id'] for c in found))))
        return found[0]['id'], found[0].get('type')


def credential_exists_1x(client, credential_id, project_id):
    """Whether a credential id exists on n8n 1.x, which has no GET for credentials.

    Asks to move the credential into the project that already owns it: n8n refuses either way and
    says which case it is ("already owning it" or "Could not find the credential"), so nothing
    changes. Returns None when the answer says neither.
    """
    if not project_id:
        return None
    try:
        client.api('PUT', '/credentials/%s/transfer' % quote_id(credential_id), {'destinationProjectId': project_id},
                   retry=True)
    except N8nError as exc:
        text = exc.message.lower()
        if 'already owning' in text:
            return True
        if 'could not find the credential' in text or exc.status == 404:
            return False
        return None
    # Moved into its own project: it exists (and nothing changed).
    return True
