# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: no compatibility promise outside federation.platform.
"""PostgreSQL SCRAM-SHA-256 password verifiers, computed and compared on the controller.

A login role's password is set by sending a verifier computed here (the clear password never
reaches the server, so it cannot appear in a server log), and compared by recomputing the stored
verifier from its own salt and iteration count (RFC 5802 / RFC 7677, as PostgreSQL stores them in
``pg_authid.rolpassword``: ``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stringprep
import unicodedata

DEFAULT_ITERATIONS = 4096
SALT_BYTES = 16


def _saslprep(password):
    """The SASLprep form of ``password`` as PostgreSQL computes it (RFC 4013).

    PostgreSQL falls back to the raw bytes when the password is not valid UTF-8 or contains
    prohibited characters; so does this function.
    """
    if password.isascii() and all(32 <= ord(c) < 127 for c in password):
        return password.encode('utf-8')
    mapped = []
    for char in password:
        if stringprep.in_table_c12(char):
            char = ' '  # non-ASCII space (checked first, as PostgreSQL does: U+200B is in both tables)
        elif stringprep.in_table_b1(char):
            continue  # commonly mapped to nothing
        mapped.append(char)
    text = unicodedata.normalize('NFKC', ''.join(mapped))
    if not text:
        return password.encode('utf-8')
    prohibited = (stringprep.in_table_c12, stringprep.in_table_c21_c22, stringprep.in_table_c3, stringprep.in_table_c4,
                  stringprep.in_table_c5, stringprep.in_table_c6, stringprep.in_table_c7, stringprep.in_table_c8,
                  stringprep.in_table_c9, stringprep.in_table_a1)
    if any(test(c) for c in text for test in prohibited):
        return password.encode('utf-8')
    has_ral = any(stringprep.in_table_d1(c) for c in text)
    if has_ral and (any(stringprep.in_table_d2(c) for c in text)
                    or not stringprep.in_table_d1(text[0]) or not stringprep.in_table_d1(text[-1])):
        return password.encode('utf-8')
    return text.encode('utf-8')


def _keys(password, salt, iterations):
    salted = hashlib.pbkdf2_hmac('sha256', _saslprep(password), salt, iterations)
    client_key = hmac.new(salted, b'Client Key', hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b'Server Key', hashlib.sha256).digest()
    return stored_key, server_key


def scram_verifier(password, salt=None, iterations=DEFAULT_ITERATIONS):
    """A verifier for ``password`` in PostgreSQL's format, with a random salt unless one is given."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    stored_key, server_key = _keys(password, salt, iterations)
    return 'SCRAM-SHA-256$%d:%s$%s:%s' % (iterations, _b64(salt), _b64(stored_key), _b64(server_key))


def _b64(raw):
    return base64.b64encode(raw).decode('ascii')


def parse_verifier(stored):
    """(iterations, salt, stored_key, server_key) of a SCRAM verifier, or None when it is not one."""
    if not stored or not stored.startswith('SCRAM-SHA-256$'):
        return None
    try:
        head, keys = stored[len('SCRAM-SHA-256$'):].split('$', 1)
        iterations, salt = head.split(':', 1)
        stored_key, server_key = keys.split(':', 1)
        return (int(iterations), base64.b64decode(salt, validate=True),
                base64.b64decode(stored_key, validate=True), base64.b64decode(server_key, validate=True))
    except (ValueError, TypeError):
        return None


def password_matches(stored, password, role):
    """Whether ``password`` is the password whose verifier (or MD5 hash) is ``stored``.

    ``stored`` is ``pg_authid.rolpassword`` of ``role`` (MD5 hashes are salted with the role name).
    Comparisons are constant-time; nothing of the password or the verifier is returned.
    """
    if not stored:
        return False
    parsed = parse_verifier(stored)
    if parsed is not None:
        iterations, salt, stored_key, server_key = parsed
        want_stored, want_server = _keys(password, salt, iterations)
        return hmac.compare_digest(want_stored, stored_key) and hmac.compare_digest(want_server, server_key)
    if stored.startswith('md5') and len(stored) == 35:
        digest = 'md5' + hashlib.md5((password + role).encode('utf-8'), usedforsecurity=False).hexdigest()
        return hmac.compare_digest(digest, stored)
    return False
