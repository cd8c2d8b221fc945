# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # Connection options of every module that talks to an n8n instance.
    DOCUMENTATION = r'''
options:
  url:
    description:
      - Base URL of the n8n instance as the host running the module reaches it, for example V(http://127.0.0.1:5678).
        The public API is under C(/api/v1), the internal REST API under C(/rest).
      - Falls back to the E(N8N_URL) environment variable.
    type: str
    required: true
  api_key:
    description:
      - Key of n8n's public API (header C(X-N8N-API-KEY)). Falls back to E(N8N_API_KEY). Never returned or logged.
    type: str
  validate_certs:
    description:
      - Whether to check the TLS certificate of an V(https) O(url).
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for each HTTP answer.
    type: int
    default: 30
  retries:
    description:
      - How often to repeat a request that failed on the server's side, with a pause that doubles each time
        (0.5 s, 1 s, 2 s...). GET, PUT and DELETE are repeated after a 5xx answer or a broken connection;
        POST and PATCH only when the request cannot have been processed (connection refused, 502, 503, 504).
    type: int
    default: 3
notes:
  - Works with n8n 1.x and 2.x; the version is told apart from what the API offers (1.x has no credential list).
  - Errors carry n8n's own message (never its stack trace) and the name of the object, never a secret.
'''
