# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: no compatibility promise outside federation.platform.
"""Gateway identities: JWTs signed with the platform's gateway key, minted and renewed on the controller.

A token carries ``iss`` (the gateway's issuer), ``sub`` (the department), ``iat``, ``exp`` and, when the
gateway asks for one, ``aud``. The algorithm follows the key: ES256 for an EC P-256 key, RS256 for RSA.
"""

from __future__ import annotations

import time

try:
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    HAS_LIBS = True
    IMPORT_ERROR = None
except ImportError as exc:  # reported by the caller with missing_required_lib-style advice
    HAS_LIBS = False
    IMPORT_ERROR = exc

DAY = 86400


class TokenError(ValueError):
    """The signing key or a claim is not usable; the message never carries the key or a token."""


def load_signing_key(pem):
    """The private key in ``pem`` and the JWT algorithm that goes with it."""
    try:
        key = serialization.load_pem_private_key(pem.encode('ascii') if isinstance(pem, str) else pem, password=None)
    except (ValueError, TypeError) as exc:
        raise TokenError('the signing key is not an unencrypted PEM private key (%s)' % type(exc).__name__)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.name != 'secp256r1':
            raise TokenError('the signing key is an EC key on %s; the gateway takes P-256 (ES256)' % key.curve.name)
        return key, 'ES256'
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 2048:
            raise TokenError('the signing key is RSA %d; use at least 2048 bits' % key.key_size)
        return key, 'RS256'
    raise TokenError('the signing key is a %s; use an EC P-256 or an RSA key' % type(key).__name__)


def public_pem(key):
    """The public half of ``key`` as SubjectPublicKeyInfo PEM text (what HAProxy's jwt_verify reads)."""
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode('ascii')


def claims_for(subject, issuer, audience, lifetime_days, now):
    claims = {'iss': issuer, 'sub': subject, 'iat': int(now), 'exp': int(now) + int(lifetime_days * DAY)}
    if audience:
        claims['aud'] = audience
    return claims


def mint(key, algorithm, subject, issuer, audience=None, lifetime_days=365, now=None):
    now = time.time() if now is None else now
    return jwt.encode(claims_for(subject, issuer, audience, lifetime_days, now), key, algorithm=algorithm)


def assess(token, key, algorithm, subject, issuer, audience=None, renew_before_days=30, now=None):
    """Why ``token`` must be replaced, or None when it is valid for longer than the renewal window.

    Returns (reason or None, expiry as epoch seconds or None).
    """
    now = time.time() if now is None else now
    if not token:
        return 'no token yet', None
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, key.public_key(), algorithms=[algorithm], issuer=issuer,
                            audience=audience or None, options={'require': ['exp', 'iss', 'sub'], 'verify_aud': bool(audience)},
                            leeway=0)
    except jwt.ExpiredSignatureError:
        return 'the token has expired', None
    except (jwt.InvalidTokenError, TypeError, ValueError) as exc:
        # The exception text names a claim or a check, never the token itself.
        return 'the token is not valid for this gateway (%s)' % type(exc).__name__, None
    if header.get('alg') != algorithm:
        return 'the token uses %s, the gateway %s' % (header.get('alg'), algorithm), None
    if claims.get('sub') != subject:
        return 'the token belongs to another department', None
    if not audience and 'aud' in claims:
        return 'the token names an audience the gateway no longer asks for', None
    expires = int(claims['exp'])
    if expires - now <= renew_before_days * DAY:
        return 'the token expires within %s days' % renew_before_days, expires
    return None, expires
