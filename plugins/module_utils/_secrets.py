# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: no compatibility promise outside federation.platform.
"""Department secrets: generation and the stores that keep them.

A store holds one mapping of secret name -> value per department, and beside it a mapping of
secret name -> metadata (not secret: when it expires, what kind of credential it is, how to check
it). Two stores offer the same interface (lock/unlock, load/save, and the update() loop below):

- VaultFileStore: an ansible-vault encrypted YAML file per department (the default);
- HashiVaultKV2Store: a HashiCorp Vault KV version 2 secret per department, written with
  check-and-set so concurrent writers cannot lose each other's updates.

Either store also keeps secrets that belong to no department (the platform's own, such as the API
gateway's signing key): constructed with ``department=None``, see VaultFileStore and hashi_vault_path.

Values are generated once and kept: a re-run never rotates a secret unless asked to. A generated
secret is a random password or a private key (KINDS).
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets as _random
import string
import tempfile

from urllib.error import HTTPError, URLError
from urllib.parse import quote

from ansible.module_utils.urls import Request, make_context

_ALPHABET = string.ascii_letters + string.digits

# Kinds of generated secret besides random passwords: private keys, kept as unencrypted PKCS#8 PEM text
# inside the encrypted file (the gateway's token signing key, for one).
KEY_KINDS = ('ec_p256', 'rsa_2048', 'rsa_3072')
KINDS = ('password',) + KEY_KINDS

# The identity written into the platform's own secrets file (department files carry their department),
# and the folder of the platform's own secrets next to the departments' (a name no department can have).
PLATFORM_SCOPE = 'platform'
PLATFORM_FOLDER = '_platform'


def generate_secret(length=32):
    """A random string of ASCII letters and digits with at least one upper, one lower and one digit.

    Safe in URLs, connection strings, shell words and SQL literals, and accepted by n8n's
    password rule (8-64 characters with a digit and an uppercase letter).
    """
    if length < 8:
        raise ValueError('a generated secret needs at least 8 characters, got %d' % length)
    while True:
        value = ''.join(_random.choice(_ALPHABET) for dummy in range(length))
        if (any(c.isupper() for c in value) and any(c.islower() for c in value)
                and any(c.isdigit() for c in value)):
            return value


def generate_private_key(kind):
    """A new private key of ``kind`` (one of KEY_KINDS) as PKCS#8 PEM text."""
    # Imported here: only the controller generates keys, and only when asked to.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if kind == 'ec_p256':
        key = ec.generate_private_key(ec.SECP256R1())
    elif kind in ('rsa_2048', 'rsa_3072'):
        key = rsa.generate_private_key(public_exponent=65537, key_size=int(kind.split('_')[1]))
    else:
        raise ValueError('unknown key kind %r: use one of %s' % (kind, ', '.join(KEY_KINDS)))
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode('ascii')


def generate_value(spec):
    """A new secret for ``spec``: a length (a password of that length) or {'kind': ..., 'length': ...}."""
    if isinstance(spec, dict):
        kind = spec.get('kind', 'password')
        if kind == 'password':
            return generate_secret(spec.get('length', 32))
        return generate_private_key(kind)
    return generate_secret(spec)


def reconcile(current, generate, values, rotate):
    """Work out the new mapping of secrets.

    current  -- the stored mapping (possibly empty)
    generate -- name -> length (or {'kind': ...}, see generate_value) of secrets that must exist
    values   -- name -> value to store as given (for secrets obtained elsewhere, such as an API key)
    rotate   -- names to generate anew even when they exist

    Returns (new mapping, names generated, names set from values).
    """
    new = dict(current)
    generated, updated = [], []
    for name, length in sorted(generate.items()):
        if name not in new or name in rotate:
            new[name] = generate_value(length)
            generated.append(name)
    for name, value in sorted(values.items()):
        if value is None:
            continue
        if new.get(name) != value:
            new[name] = value
            updated.append(name)
    return new, generated, updated


def owner_of(department):
    """How messages name the owner of a store: a department, or the platform (``department`` None)."""
    return 'the platform' if department is None else "department '%s'" % department


def hashi_vault_path(path_prefix, department, name=None):
    """The default KV path of a department's secrets, ``<prefix>/<department>``, or of a set of the
    platform's own secrets (``department`` None), ``<prefix>/_platform/<name>``.

    ``_platform`` can never be a department (names start with a letter), so the two never meet.
    """
    prefix = (path_prefix or 'federation').strip('/')
    if department is None:
        if not name:
            raise ValueError("the platform's secrets in HashiCorp Vault need a name")
        return '%s/%s/%s' % (prefix, PLATFORM_FOLDER, name)
    return '%s/%s' % (prefix, department)


class StoreError(Exception):
    """A store could not be read or written; the message names the store and never a secret."""


class StoreConflict(StoreError):
    """Someone else wrote the store between our read and our write (check-and-set refused)."""


class Snapshot(object):
    """What a store held when it was loaded: secrets, metadata and the version they came from."""

    def __init__(self, secrets=None, metadata=None, version=0, exists=False):
        self.secrets = dict(secrets or {})
        self.metadata = dict(metadata or {})
        self.version = version
        self.exists = exists


def plain(value):
    """``value`` as plain Python types (str, int, float, bool, None, dict, list), whatever subclass it came as."""
    if isinstance(value, dict):
        return dict((str(k), plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


def merge_metadata(current, changes):
    """Metadata after ``changes`` (name -> dict to merge, or None to remove the entry)."""
    new = {k: dict(v) for k, v in current.items()}
    for name, value in changes.items():
        if value is None:
            new.pop(name, None)
        else:
            entry = dict(new.get(name) or {})
            for key, item in value.items():
                if item is None:
                    entry.pop(key, None)
                else:
                    entry[key] = item
            new[name] = entry
    return new


def update(store, change, attempts=5, write=True):
    """Load, change and save a store, trying again when a concurrent writer got there first.

    ``change(snapshot)`` returns (secrets, metadata) to save, or None when nothing changes; it may
    run more than once, each time on a fresh snapshot, so it must only compute. Returns
    (before snapshot, saved secrets, saved metadata), or (before, None, None) when nothing changed.
    With ``write`` false (check mode) nothing is saved.
    """
    store.lock(write=write)
    try:
        for attempt in range(attempts):
            before = store.load()
            outcome = change(before)
            if outcome is None:
                return before, None, None
            secrets, metadata = outcome
            if not write:
                return before, secrets, metadata
            try:
                store.save(before, secrets, metadata)
                return before, secrets, metadata
            except StoreConflict:
                if attempt == attempts - 1:
                    raise
        raise StoreConflict('%s: gave up after %d conflicting writes' % (store.describe(), attempts))
    finally:
        store.unlock()


class VaultFileStore(object):
    """One ansible-vault encrypted YAML file per department (mode 0600 in a 0700 folder).

    The file holds {department, secrets, metadata}. Writes happen under an exclusive lock on a
    sidecar lock file, so concurrent runs on one controller serialise instead of losing updates.

    ``department=None`` is a file of the platform's own (secrets that belong to no department, such as
    the gateway's signing key): it holds {scope: platform, secrets, metadata}, and a department's file
    is never read as the platform's nor the other way round.
    """

    backend = 'file'

    def __init__(self, path, department, vault_lib, secret, vault_id=None, yaml_load=None, yaml_dump=None):
        self.path = path
        self.department = department
        self.vault = vault_lib
        self.secret = secret
        self.vault_id = vault_id
        self.yaml_load = yaml_load
        self.yaml_dump = yaml_dump
        self._lock_fd = None
        self._lock_depth = 0

    def describe(self):
        return self.path

    def lock(self, write=True):
        """Take the store's lock; nested calls from the same caller only count.

        A reader (``write`` false: check mode) creates nothing: it shares the lock when a writer made its file,
        and needs none otherwise (a save is an atomic rename, so a read never sees half a file)."""
        self._lock_depth += 1
        if self._lock_depth > 1:
            return
        if not write:
            try:
                self._lock_fd = os.open(self.path + '.lock', os.O_RDONLY)
            except FileNotFoundError:
                return
            fcntl.flock(self._lock_fd, fcntl.LOCK_SH)
            return
        folder = os.path.dirname(self.path) or '.'
        os.makedirs(folder, mode=0o700, exist_ok=True)
        self._lock_fd = os.open(self.path + '.lock', os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)

    def unlock(self):
        if self._lock_depth > 0:
            self._lock_depth -= 1
        if self._lock_depth == 0 and self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def _document(self):
        if not os.path.exists(self.path):
            return None
        with open(self.path, 'rb') as handle:
            data = handle.read()
        text = self.vault.decrypt(data)
        doc = self.yaml_load(text) or {}
        if not isinstance(doc, dict) or not isinstance(doc.get('secrets', {}), dict) \
                or not isinstance(doc.get('metadata', {}) or {}, dict):
            raise ValueError('%s is not a Federation secrets file' % self.path)
        if self.department is None:
            if doc.get('department') is not None or doc.get('scope', PLATFORM_SCOPE) != PLATFORM_SCOPE:
                raise ValueError("%s holds the secrets of %s, not the platform's"
                                 % (self.path, owner_of(doc.get('department'))))
        elif doc.get('department') not in (None, self.department) or doc.get('scope') == PLATFORM_SCOPE:
            raise ValueError("%s holds the secrets of %s, not of department '%s'"
                             % (self.path, owner_of(doc.get('department')), self.department))
        return doc

    def load(self):
        doc = self._document()
        if doc is None:
            return Snapshot()
        return Snapshot(doc.get('secrets'), doc.get('metadata'), exists=True)

    def save(self, snapshot, secrets, metadata):
        """Write the file whole (a temporary file renamed over it). The lock held since load() is what
        makes this safe: no one wrote in between, so ``snapshot`` needs no check here."""
        owner = {'scope': PLATFORM_SCOPE} if self.department is None else {'department': str(self.department)}
        doc = dict(owner, secrets=plain(dict(sorted(secrets.items()))))
        if metadata:
            doc['metadata'] = plain(dict(sorted(metadata.items())))
        encrypted = self.vault.encrypt(self.yaml_dump(doc), self.secret, vault_id=self.vault_id)
        folder = os.path.dirname(self.path) or '.'
        os.makedirs(folder, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix='.%s.' % os.path.basename(self.path))
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, 'wb') as handle:
                handle.write(encrypted)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


class HashiVaultKV2Store(object):
    """A department's secrets as one HashiCorp Vault KV version 2 secret (``department=None``: a set of the
    platform's own secrets, whose ``path`` must then be given; see hashi_vault_path).

    The secret's data holds the secrets as top-level string keys (what `vault kv get` and the
    community.hashi_vault lookups show) and the metadata as JSON text under the reserved key
    METADATA_KEY, so both change together in one versioned, check-and-set write.
    """

    backend = 'hashi_vault'
    METADATA_KEY = '_federation_metadata'

    def __init__(self, department, url, token, engine_mount_point='secret', path=None, namespace=None,
                 validate_certs=True, ca_cert=None, timeout=30):
        self.department = department
        self.url = (url or '').rstrip('/')
        self.token = token
        self.mount = (engine_mount_point or 'secret').strip('/')
        self.path = (path or hashi_vault_path('federation', department)).strip('/')
        self.namespace = namespace
        self.validate_certs = validate_certs
        self.ca_cert = ca_cert
        self.timeout = timeout
        self._context = None

    def describe(self):
        return "Vault %s (KV v2 mount '%s', path '%s')" % (self.url, self.mount, self.path)

    def lock(self, write=True):
        pass

    def unlock(self):
        pass

    def _request(self, method, kind, body=None, query=''):
        url = '%s/v1/%s/%s/%s%s' % (self.url, quote(self.mount), kind, quote(self.path), query)
        headers = {'X-Vault-Token': self.token or '', 'Accept': 'application/json'}
        if self.namespace:
            headers['X-Vault-Namespace'] = self.namespace
        data = None
        if body is not None:
            data = json.dumps(body)
            headers['Content-Type'] = 'application/json'
        if self._context is None:
            # Built once (urls.Request builds one per request otherwise): loading the CA bundle costs
            # more than a request.
            self._context = make_context(cafile=self.ca_cert, validate_certs=self.validate_certs)
        try:
            response = Request().open(method, url, data=data, headers=headers, timeout=self.timeout,
                                      validate_certs=self.validate_certs, ca_path=self.ca_cert, context=self._context)
            raw = response.read()
            return response.getcode(), json.loads(raw) if raw else {}
        except HTTPError as exc:
            raw = exc.read() if hasattr(exc, 'read') else b''
            try:
                payload = json.loads(raw) if raw else {}
            except ValueError:
                payload = {'errors': [raw.decode('utf-8', 'replace')[:200]]}
            return exc.code, payload
        except (URLError, OSError, ValueError) as exc:
            raise StoreError('Vault at %s cannot be reached: %s. Check VAULT_ADDR / the hashi_vault url and that '
                             'Vault is running and unsealed.' % (self.url, getattr(exc, 'reason', exc)))

    def _fail(self, what, status, payload):
        errors = payload.get('errors') if isinstance(payload, dict) else None
        said = '; '.join(str(e).strip() for e in errors or []) or 'HTTP %s' % status
        hint = ''
        if status == 403:
            hint = (' Check the token (VAULT_TOKEN or hashi_vault.token): it must be valid and its policy must allow '
                    'read, create and update on %s/data/%s.' % (self.mount, self.path))
        elif status == 404:
            hint = " Check that a KV version 2 engine is mounted at '%s'." % self.mount
        return StoreError("Failed to %s the secrets of %s on %s: %s.%s"
                          % (what, owner_of(self.department), self.describe(), said, hint))

    def load(self):
        status, payload = self._request('GET', 'data')
        if status == 404 and not (payload.get('errors') or []):
            # Nothing written yet, or the latest version was deleted: payload may still carry its number.
            version = ((payload.get('data') or {}).get('metadata') or {}).get('version') or 0
            return Snapshot(version=version)
        if status != 200:
            raise self._fail('read', status, payload)
        data = (payload.get('data') or {}).get('data') or {}
        version = ((payload.get('data') or {}).get('metadata') or {}).get('version') or 0
        secrets = dict((k, v) for k, v in data.items() if k != self.METADATA_KEY)
        metadata = {}
        raw = data.get(self.METADATA_KEY)
        if raw:
            try:
                metadata = json.loads(raw) if isinstance(raw, str) else dict(raw)
            except ValueError:
                raise StoreError("The metadata under '%s' in %s is not JSON: fix or remove that key."
                                 % (self.METADATA_KEY, self.describe()))
        return Snapshot(secrets, metadata, version=version, exists=True)

    def delete_latest(self):
        """Soft-delete the latest version (`vault kv delete`): it reads as absent, `vault kv undelete` brings it
        back, and the version number carries on, so a later save() with the snapshot's version succeeds."""
        status, payload = self._request('DELETE', 'data')
        if status not in (200, 204):
            raise self._fail('delete', status, payload)

    def save(self, snapshot, secrets, metadata):
        data = plain(secrets)
        if metadata:
            data[self.METADATA_KEY] = json.dumps(plain(metadata), sort_keys=True)
        status, payload = self._request('POST', 'data', {'data': data, 'options': {'cas': snapshot.version}})
        if status == 400 and any('check-and-set parameter did not match' in str(e) for e in payload.get('errors') or []):
            raise StoreConflict('%s changed since it was read (version %s)' % (self.describe(), snapshot.version))
        if status not in (200, 204):
            raise self._fail('write', status, payload)
        return ((payload or {}).get('data') or {}).get('version')
