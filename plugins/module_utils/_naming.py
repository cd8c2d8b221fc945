# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: no compatibility promise outside federation.platform.
"""Department naming rules and the names derived from a department name."""

from __future__ import annotations

import re

# A DNS label that is also a safe SQL name once hyphens become underscores:
# 2-31 characters, lowercase ASCII letters, digits and single hyphens,
# starting with a letter and ending with a letter or digit.
DEPARTMENT_NAME_PATTERN = r'^[a-z](?:[a-z0-9]|-(?!-)){0,29}[a-z0-9]$'
_DEPARTMENT_NAME_RE = re.compile(DEPARTMENT_NAME_PATTERN)

NAME_RULE = ('2-31 characters: lowercase ASCII letters, digits and single hyphens, '
             'starting with a letter and ending with a letter or digit (for example "finance" or "field-ops")')


def department_name_error(name):
    """Return why ``name`` is not a valid department name, or None when it is valid.

    The message quotes the offending value with repr() so control characters,
    look-alike unicode and trailing spaces are visible to the reader.
    """
    if name is None:
        return 'no department name was given'
    if not isinstance(name, str):
        return 'the department name must be a string, got %s %r' % (type(name).__name__, name)
    shown = repr(name) if len(name) <= 64 else repr(name[:64]) + '... (%d characters)' % len(name)
    if name == '':
        return 'the department name is empty'
    if not name.isascii():
        return 'department name %s contains non-ASCII characters' % shown
    if len(name) < 2:
        return 'department name %s is too short' % shown
    if len(name) > 31:
        return 'department name %s is too long (%d characters, at most 31)' % (shown, len(name))
    if '--' in name:
        return 'department name %s contains a double hyphen' % shown
    if _DEPARTMENT_NAME_RE.fullmatch(name) is None:
        return 'department name %s is not allowed' % shown
    return None


def validate_department_name(name):
    """Raise ValueError with a message that says what to fix when ``name`` is invalid."""
    error = department_name_error(name)
    if error:
        raise ValueError('%s. A department name has %s.' % (error, NAME_RULE))
    return name


def sql_name(department):
    """The department name as it appears in SQL identifiers (hyphens become underscores)."""
    return validate_department_name(department).replace('-', '_')


def tenant_schema(department):
    return 'dept_' + sql_name(department)


def tenant_role(department):
    return 'dept_' + sql_name(department)


def n8n_database(department):
    return 'n8n_' + sql_name(department)


def n8n_role(department):
    return 'n8n_' + sql_name(department)
