#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: oauth_client
short_description: Register and manage a department's OAuth 2.0 clients, keeping their secrets in its vault
version_added: 0.1.0
description:
  - Runs on the controller. Brings the OAuth clients of one department to the state given in O(clients), and keeps
    their secrets in the department's secrets store (the ansible-vault file, or HashiCorp Vault), never in the
    task result.
  - "Provider V(oidc): registers the client at the authorization server by RFC 7591 dynamic client registration
    (with the initial access token O(initial_access_token)), and reads, updates and deletes it by RFC 7592 with
    the registration access token kept in the store. An update sends the client's full metadata, since the
    server resets fields left out; when the server rotates the registration access token, the new one replaces
    the old in the store at once."
  - Idempotent by client name and metadata. The store links a client to its registration (client id,
    registration access token and URI); a run reads the registration, compares the metadata this task sets
    (scope and list fields as sets), and updates only when they differ. A client the server no longer
    accepts the token of fails with a message, unless O(clients[].reregister) allows a new registration.
  - "Provider V(google_service_account): Google has no registration endpoint. A service-account JSON key (for
    domain-wide delegation, no consent screen) is checked and imported into the store from O(clients[].key_file);
    a key with another content replaces it (rotation). The file may be deleted once imported."
  - "Provider V(google_oauth): a user-consent OAuth client made in the Google Cloud console. Its client id and
    secret are imported from O(clients[].client_file); the redirect URI the department's n8n needs
    (C(<n8n url>/rest/oauth2-credential/callback)) is returned and recorded, with a mark that the credential waits
    for a person's consent, which C(federation.platform.credential_status) reports until it is given."
  - Beside each client's secret the store keeps metadata that is not secret (client id, expiry from
    C(client_secret_expires_at) or O(clients[].expires_at)/O(clients[].max_age_days), token endpoint, consent),
    which C(federation.platform.credential_status) and C(playbooks/monitor_credentials.yml) read.
  - "Secrets are stored as C(oauth_<name>_client_id), C(oauth_<name>_client_secret),
    C(oauth_<name>_registration_access_token), C(oauth_<name>_registration_client_uri) (V(oidc)),
    C(oauth_<name>_service_account_key) (V(google_service_account), the key JSON) and C(oauth_<name>_client_id),
    C(oauth_<name>_client_secret) (V(google_oauth))."
  - With O(token_check) (or O(clients[].token_check)) proves that each V(oidc) client with the
    C(client_credentials) grant works by a token request; a refused request fails the task after the secrets
    are stored.
author:
  - Federation platform team (@federation)
extends_documentation_fragment:
  - federation.platform.secret_store
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - Reads registrations (and discovers the server's endpoints) to predict the change; registers, updates,
        deletes and stores nothing, and makes no token request.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: The diff shows each client's stored metadata (client id, scope, expiry), never a secret.
options:
  department:
    description: The department whose clients and secrets these are.
    type: str
    required: true
  clients:
    description: The department's OAuth clients. Clients not listed are left alone.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - The client's name within the department (1-40 lowercase letters, digits and underscores, starting with
            a letter). Names its secrets (C(oauth_<name>_...)).
        type: str
        required: true
      provider:
        description: Where the client comes from.
        type: str
        default: oidc
        choices: [oidc, google_service_account, google_oauth]
      state:
        description: V(absent) deletes an V(oidc) client at the server and removes any client's secrets from the store.
        type: str
        default: present
        choices: [present, absent]
      client_name:
        description: The C(client_name) registered at the server. Defaults to C(federation-<department>-<name>).
        type: str
      grant_types:
        description: V(oidc) grant types. C(authorization_code) needs O(clients[].redirect_uris) or O(n8n_url).
        type: list
        elements: str
        default: [client_credentials]
      scopes:
        description: The scopes the client may ask for (registered as C(scope)), and asks for in the token check.
        type: list
        elements: str
        default: []
      redirect_uris:
        description:
          - V(oidc) redirect URIs. For the C(authorization_code) grant they default to the n8n OAuth callback of
            O(n8n_public_url).
        type: list
        elements: str
        default: []
      token_endpoint_auth_method:
        description: How the client authenticates at the token endpoint.
        type: str
        default: client_secret_basic
        choices: [client_secret_basic, client_secret_post, none]
      metadata:
        description: Further RFC 7591 client metadata (C(contacts), C(logo_uri), ...), sent on every registration and update.
        type: dict
        default: {}
      token_check:
        description: Overrides O(token_check) for this client.
        type: bool
      reregister:
        description:
          - When the server refuses the stored registration access token (the client was deleted there, or its
            token rotated elsewhere), register a new client instead of failing.
        type: bool
        default: false
      n8n_credential:
        description: The name of the n8n credential made from this client. Defaults to C(oauth-<name>).
        type: str
      key_file:
        description: V(google_service_account) only. The service account's JSON key on the controller; read when present.
        type: path
      subject:
        description: V(google_service_account) only. The Workspace user the service account acts as (domain-wide delegation).
        type: str
      client_file:
        description: V(google_oauth) only. The OAuth client JSON downloaded from the Google Cloud console; read when present.
        type: path
      client_id:
        description: V(google_oauth) only. The client id, when there is no O(clients[].client_file).
        type: str
      client_secret:
        description: V(google_oauth) only. The client secret, when there is no O(clients[].client_file).
        type: str
      expires_at:
        description: When the credential expires (V(2030-01-31) or V(2030-01-31T00:00:00Z)), when the server does not say.
        type: str
      max_age_days:
        description: V(google_service_account) only. Days after its import that a key is due for rotation (recorded as its expiry).
        type: int
  registration_endpoint:
    description: The authorization server's RFC 7591 registration endpoint. Needed by V(oidc) clients.
    type: str
  initial_access_token:
    description:
      - The initial access token the server requires for registration. Falls back to
        E(FEDERATION_OAUTH_INITIAL_ACCESS_TOKEN). Never returned or logged.
    type: str
  issuer:
    description:
      - The authorization server's issuer, to discover its token and authorization endpoints. Defaults to the origin
        of O(registration_endpoint).
    type: str
  token_endpoint:
    description: The token endpoint, when it is not to be discovered.
    type: str
  resource:
    description: An RFC 8707 resource indicator to send with the token check.
    type: str
  token_check:
    description: Prove each V(oidc) client with the C(client_credentials) grant works by a token request.
    type: bool
    default: false
  n8n_url:
    description: The department's n8n base URL as the controller reaches it, recorded for the consent check.
    type: str
  n8n_public_url:
    description: The department's n8n base URL as a browser reaches it, for OAuth redirect URIs. Defaults to O(n8n_url).
    type: str
  files_dir:
    description:
      - A folder on the controller where Google clients' files are looked for, as C(<name>.json), when
        O(clients[].key_file) or O(clients[].client_file) is not given.
    type: path
  validate_certs:
    description: Whether to verify the authorization server's TLS certificate.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for the authorization server.
    type: int
    default: 30
seealso:
  - module: federation.platform.department_secrets
  - module: federation.platform.credential_status
'''

EXAMPLES = r'''
- name: Register finance's client at the company's authorization server and prove it works
  federation.platform.oauth_client:
    department: finance
    path: "{{ federation_secrets_dir }}/finance.yml"
    registration_endpoint: https://login.example.com/reg
    initial_access_token: "{{ lookup('ansible.builtin.env', 'FEDERATION_OAUTH_INITIAL_ACCESS_TOKEN') }}"
    token_check: true
    clients:
      - name: crm
        scopes: [calls:read, calls:write]
  register: finance_oauth

- name: A Google service account with domain-wide delegation, and a user-consent Google client
  federation.platform.oauth_client:
    department: finance
    path: "{{ federation_secrets_dir }}/finance.yml"
    n8n_url: https://finance.n8n.example.com
    clients:
      - name: drive
        provider: google_service_account
        key_file: "{{ federation_home }}/oauth/finance/drive.json"
        subject: assistant@example.com
        scopes: [https://www.googleapis.com/auth/drive.readonly]
        max_age_days: 90
      - name: calendar
        provider: google_oauth
        client_file: "{{ federation_home }}/oauth/finance/calendar.json"
        scopes: [https://www.googleapis.com/auth/calendar]

- name: Delete the client at the server and its secrets
  federation.platform.oauth_client:
    department: finance
    path: "{{ federation_secrets_dir }}/finance.yml"
    registration_endpoint: https://login.example.com/reg
    clients:
      - name: crm
        state: absent
'''

RETURN = r'''
clients:
  description: One entry per client, in the order given. No secrets.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The client's name within the department.
      type: str
    provider:
      description: The provider.
      type: str
    action:
      description:
        - What happened - V(registered), V(reregistered), V(updated), V(unchanged), V(recorded) (only the stored
          metadata changed), V(deleted), V(forgotten) (gone at the server already), V(absent), V(imported), V(rotated).
      type: str
    changed:
      description: Whether this client changed.
      type: bool
    client_id:
      description: The client id (V(null) for a client only about to be registered in check mode).
      type: str
      sample: wVQRMGRTC3NPAWBrbwwiS
    client_name:
      description: The registered client name.
      type: str
    differences:
      description: V(oidc) only. The metadata fields that differed from the server's.
      type: list
      elements: str
    metadata:
      description: V(oidc) only. The client's metadata at the server, of the fields this task sets.
      type: dict
    expires_at:
      description: When the client's secret or key expires (ISO 8601 UTC), or V(null) for never / unknown.
      type: str
    token_endpoint:
      description: The token endpoint used for checks.
      type: str
    rotated_registration_access_token:
      description: V(oidc) only. Whether the server handed out a new registration access token (stored).
      type: bool
    token_check:
      description: The token check, when asked for - C(ok), C(token_type), C(expires_in), C(scope), C(audience), or C(error).
      type: dict
    redirect_uri:
      description: V(google_oauth) only. The redirect URI to add to the OAuth client in the Google Cloud console.
      type: str
    consent_required:
      description: Whether a person must still grant consent in n8n for the credential to work.
      type: bool
    n8n_credential:
      description: The name of the n8n credential made from this client.
      type: str
secrets_path:
  description: Where the secrets were stored (the file or the Vault secret; never a value).
  returned: always
  type: str
'''
