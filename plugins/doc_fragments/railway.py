# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # Connection options of the modules that talk to Railway's public GraphQL API.
    DOCUMENTATION = r'''
options:
  api_token:
    description:
      - "An account (personal) or workspace token, sent as C(Authorization: Bearer)."
      - A workspace token reaches one workspace only; an account token every workspace of its user.
      - When not given, the environment variable E(RAILWAY_API_TOKEN) is used.
      - Give O(api_token) or O(project_token). When both are set, O(project_token) is used, as the Railway CLI does.
    type: str
  project_token:
    description:
      - A project token, sent as C(Project-Access-Token). It reaches one environment of one project, and cannot
        create projects or environments.
      - When not given, the environment variable E(RAILWAY_TOKEN) is used.
    type: str
  endpoint:
    description:
      - Railway's GraphQL endpoint.
      - Plain C(http://) is refused except on a loopback address (a local test server), so a token never crosses
        the network unencrypted.
    type: str
    default: https://backboard.railway.com/graphql/v2
  validate_certs:
    description:
      - Verify the endpoint's TLS certificate.
    type: bool
    default: true
  request_timeout:
    description:
      - Seconds to wait for one answer from Railway.
    type: int
    default: 30
  rate_limit_retries:
    description:
      - How many times a request that Railway rate-limits (HTTP 429) is retried before the module fails.
    type: int
    default: 5
  rate_limit_max_wait:
    description:
      - The longest single wait, in seconds, for Railway's rate limit (from C(Retry-After) or C(X-RateLimit-Reset)).
        When Railway asks for a longer wait, the module fails with a message saying so instead of sleeping.
    type: int
    default: 120
notes:
  - Railway limits API requests per token (per hour and per second, by plan). The modules read
    C(X-RateLimit-Remaining) and C(X-RateLimit-Reset) on every answer, wait for the reset when the window is used up,
    and on HTTP 429 wait for C(Retry-After) before retrying. The waits are bounded by O(rate_limit_max_wait) and
    O(rate_limit_retries).
'''
