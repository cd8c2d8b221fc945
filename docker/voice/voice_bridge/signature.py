"""X-Twilio-Signature: HMAC-SHA1 of the public URL and the sorted POST parameters, with the auth token."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import parse_qs, urlsplit, urlunsplit


def compute(token: str, url: str, params=None) -> str:
    """The signature of ``url`` with ``params`` (a dict of name -> value or list of values)."""
    data = url
    for name in sorted(params or {}):
        values = params[name]
        for value in sorted(values if isinstance(values, (list, tuple)) else [values]):
            data += name + value
    digest = hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _with_and_without_port(url: str) -> list:
    parts = urlsplit(url)
    default = {'https': 443, 'wss': 443, 'http': 80, 'ws': 80}.get(parts.scheme)
    host = parts.hostname or ''
    if ':' in host:
        host = '[%s]' % host
    if parts.username or parts.password:
        userinfo = parts.netloc.rpartition('@')[0] + '@'
    else:
        userinfo = ''
    port = parts.port or default
    with_port = urlunsplit((parts.scheme, '%s%s:%s' % (userinfo, host, port), parts.path, parts.query, parts.fragment))
    without = urlunsplit((parts.scheme, userinfo + host, parts.path, parts.query, parts.fragment)) \
        if port == default else url
    return [url] + [u for u in (without, with_port) if u != url]


def valid(token: str, url: str, params, signature: str | None, body: bytes | None = None) -> bool:
    """Whether ``signature`` signs this request. With ``bodySHA256`` in the URL's query the raw body must
    hash to it and the URL alone is signed. Compared in constant time."""
    if not signature:
        return False
    query = parse_qs(urlsplit(url).query)
    if 'bodySHA256' in query:
        if body is None or not hmac.compare_digest(hashlib.sha256(body).hexdigest(), query['bodySHA256'][0]):
            return False
        params = {}
    ok = False
    for candidate in _with_and_without_port(url):
        # No early return: every candidate is computed and compared.
        ok |= hmac.compare_digest(compute(token, candidate, params).encode(), signature.encode())
    return ok


def public_url(base: str, path_qs: str) -> str:
    """The URL the platform called: the configured public base followed by the path the bridge saw."""
    return base.rstrip('/') + path_qs
