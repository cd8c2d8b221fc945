# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: no compatibility promise outside federation.platform.
"""Department secrets: generation and the stores that keep them.

A store holds one mapping of secret name -> value per department. The default store is an
ansible-vault encrypted YAML file per department; every store offers read() and write().
Values are generated once and kept: a re-run never rotates a secret unless asked to.
"""

from __future__ import annotations

import fcntl
import os
import secrets as _random
import string
import tempfile

_ALPHABET = string.ascii_letters + string.digits

# Kinds of generated secret besides random passwords: private keys, kept as unencrypted PKCS#8 PEM text
# inside the encrypted file (the gateway's token signing key, for one).
KEY_KINDS = ('ec_p256', 'rsa_2048', 'rsa_3072')
KINDS = ('password',) + KEY_KINDS

# The identity written into the platform's own secrets file (department files carry their department).
PLATFORM_SCOPE = 'platform'


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


class VaultFileStore(object):
    """One ansible-vault encrypted YAML file per department (mode 0600 in a 0700 folder).

    ``department=None`` is the platform's own file (secrets that belong to no department, such as
    the gateway's signing key): it is written with ``scope: platform`` and never read as a department's.
    """

    def __init__(self, path, department, vault_lib, secret, vault_id=None):
        self.path = path
        self.department = department
        self.vault = vault_lib
        self.secret = secret
        self.vault_id = vault_id
        self._lock_fd = None

    def lock(self):
        folder = os.path.dirname(self.path) or '.'
        os.makedirs(folder, mode=0o700, exist_ok=True)
        self._lock_fd = os.open(self.path + '.lock', os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)

    def unlock(self):
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def read(self, yaml_load):
        if not os.path.exists(self.path):
            return {}
        with open(self.path, 'rb') as handle:
            data = handle.read()
        plain = self.vault.decrypt(data)
        doc = yaml_load(plain) or {}
        if not isinstance(doc, dict) or not isinstance(doc.get('secrets', {}), dict):
            raise ValueError('%s is not a department secrets file' % self.path)
        if self.department is None:
            if doc.get('department') is not None or doc.get('scope', PLATFORM_SCOPE) != PLATFORM_SCOPE:
                raise ValueError("%s holds the secrets of department '%s', not the platform's"
                                 % (self.path, doc.get('department')))
        elif doc.get('department') not in (None, self.department) or doc.get('scope') == PLATFORM_SCOPE:
            raise ValueError("%s holds the secrets of %s, not of department '%s'"
                             % (self.path, "department '%s'" % doc['department'] if doc.get('department') else 'the platform',
                                self.department))
        return dict(doc.get('secrets') or {})

    def write(self, mapping, yaml_dump):
        owner = {'scope': PLATFORM_SCOPE} if self.department is None else {'department': self.department}
        plain = yaml_dump(dict(owner, secrets=dict(sorted(mapping.items()))))
        encrypted = self.vault.encrypt(plain, self.secret, vault_id=self.vault_id)
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
