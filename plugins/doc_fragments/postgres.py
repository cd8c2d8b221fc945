# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # Connection options of every module that talks to the platform database.
    DOCUMENTATION = r'''
options:
  login_host:
    description:
      - Host name or address of the PostgreSQL server holding the platform database.
      - Falls back to the E(PGHOST) environment variable.
    type: str
    default: localhost
  login_port:
    description:
      - Port of the PostgreSQL server. Falls back to E(PGPORT).
    type: int
    default: 5432
  login_user:
    description:
      - Role to connect as. Falls back to E(PGUSER).
    type: str
    default: postgres
  login_password:
    description:
      - Password of O(login_user). Falls back to E(PGPASSWORD). Never returned or logged.
    type: str
  login_db:
    description:
      - The platform database. Falls back to E(PGDATABASE).
    type: str
    default: federation
  ssl_mode:
    description:
      - libpq C(sslmode) of the connection.
    type: str
    default: prefer
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
  connect_timeout:
    description:
      - Seconds to wait for the connection.
    type: int
    default: 10
requirements:
  - psycopg >= 3.1 on the host that runs the module
notes:
  - Each call runs in one transaction. In check mode the work is done inside the transaction,
    read back and rolled back, so C(changed) is what a real run would report.
'''
