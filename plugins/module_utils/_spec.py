# -*- coding: utf-8 -*-
# Copyright: Federation platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to this collection: no compatibility promise outside federation.platform.
"""A department's spec: the fields it may have, their defaults, and the checks on them.

Every problem is reported with the department, the field and what to write instead,
and all problems of a spec are reported together so one edit fixes them all.
"""

from __future__ import annotations

import copy
import re

from ansible_collections.federation.platform.plugins.module_utils._naming import department_name_error

TARGETS = ('vps', 'railway')
TOOLS = ('log_call', 'ask_department')
ASSISTANTS = ('deterministic', 'llm')   # how the voice assistant answers (see docs/n8n-content.md)

DEFAULTS = {
    'display_name': None,          # defaults to the name, title-cased
    'target': None,                # defaults to the inventory's federation_default_target
    'tools': ['log_call'],
    'callers': [],                 # departments allowed to call this one through the gateway
    'rate_limit': {'requests': 60, 'per_seconds': 60},
    'resources': {'memory': '1g', 'cpus': 1.0},
    'assistant': 'deterministic',  # llm: answers from a language model, key in the secret llm_api_key
}

_MEMORY_RE = re.compile(r'^[1-9][0-9]{0,5}[kmg]$')


class SpecError(ValueError):
    def __init__(self, department, problems):
        self.department = department
        self.problems = problems
        super(SpecError, self).__init__(
            "Invalid spec for department '%s': %s" % (department, '; '.join(problems)))


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def normalize_spec(department, raw, default_target='vps'):
    """Return the complete spec for ``department`` from ``raw`` (a dict, or None for defaults).

    Raises SpecError listing every problem found.
    """
    problems = []
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise SpecError(department, ['the spec must be a mapping of fields, got %s' % type(raw).__name__])

    known = set(DEFAULTS) | {'name'}
    for key in sorted(raw, key=str):
        if key not in known:
            problems.append('unknown field %r (known fields: %s)' % (key, ', '.join(sorted(known))))

    spec = copy.deepcopy(DEFAULTS)
    spec.update({k: copy.deepcopy(v) for k, v in raw.items() if k in known})

    name = spec.pop('name', None)
    if name is not None and name != department:
        problems.append("field 'name' is %r but the department is %r: remove the field or make it match" % (name, department))

    display = spec['display_name']
    if display is None:
        spec['display_name'] = department.replace('-', ' ').title()
    elif not isinstance(display, str) or not 0 < len(display) <= 64 or any(ord(c) < 32 for c in display):
        problems.append("field 'display_name' must be text of 1-64 printable characters")

    target = spec['target'] if spec['target'] is not None else default_target
    if target not in TARGETS:
        problems.append("field 'target' is %r: use one of %s" % (target, ', '.join(TARGETS)))
    spec['target'] = target

    tools = spec['tools']
    if not isinstance(tools, list) or not all(isinstance(t, str) for t in tools):
        problems.append("field 'tools' must be a list of tool names (%s)" % ', '.join(TOOLS))
    else:
        for tool in tools:
            if tool not in TOOLS:
                problems.append("field 'tools' names unknown tool %r: use %s" % (tool, ', '.join(TOOLS)))
        if len(set(tools)) != len(tools):
            problems.append("field 'tools' lists a tool twice")

    callers = spec['callers']
    if not isinstance(callers, list):
        problems.append("field 'callers' must be a list of department names")
    else:
        for caller in callers:
            error = department_name_error(caller)
            if error:
                problems.append("field 'callers': %s" % error)
            elif caller == department:
                problems.append("field 'callers' lists the department itself")

    limit = spec['rate_limit']
    if not isinstance(limit, dict) or set(limit) - {'requests', 'per_seconds'}:
        problems.append("field 'rate_limit' must be a mapping with 'requests' and 'per_seconds'")
    else:
        merged = dict(DEFAULTS['rate_limit'], **limit)
        for key in ('requests', 'per_seconds'):
            if not _is_int(merged[key]) or not 0 < merged[key] <= 1000000:
                problems.append("field 'rate_limit.%s' must be a whole number from 1 to 1000000" % key)
        spec['rate_limit'] = merged

    resources = spec['resources']
    if not isinstance(resources, dict) or set(resources) - {'memory', 'cpus'}:
        problems.append("field 'resources' must be a mapping with 'memory' and 'cpus'")
    else:
        merged = dict(DEFAULTS['resources'], **resources)
        if not isinstance(merged['memory'], str) or not _MEMORY_RE.match(merged['memory']):
            problems.append("field 'resources.memory' must look like 512m or 2g")
        if not _is_number(merged['cpus']) or not 0 < merged['cpus'] <= 64:
            problems.append("field 'resources.cpus' must be a number above 0 and at most 64")
        spec['resources'] = merged

    if spec['assistant'] not in ASSISTANTS:
        problems.append("field 'assistant' is %r: use one of %s" % (spec['assistant'], ', '.join(ASSISTANTS)))

    if problems:
        raise SpecError(department, problems)
    return spec
