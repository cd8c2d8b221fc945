"""Department names that must be refused before anything is changed, and why each is hostile."""

HOSTILE_NAMES = [
    # SQL metacharacters and injection attempts
    "fin'; DROP TABLE federation_control.departments; --",
    'fin"ance',
    'fin;ance',
    "x' OR '1'='1",
    'finance--',
    'fin/*x*/ance',
    'dept_finance',
    # shell metacharacters
    'fin$(id)',
    'fin`id`',
    'fin|ance',
    'fin&ance',
    'fin>ance',
    'fin ance',
    'fin\nance',
    'finance\n',
    'fin\tance',
    'fin\x00ance',
    # unicode look-alikes and invisible characters
    'fіnance',          # Cyrillic i
    'ﬁnance',           # ligature fi
    'finance\u200b',    # zero-width space
    'ＦＩＮＡＮＣＥ',      # full-width letters
    'finañce',
    # empty, too short, too long, shape
    '',
    'f',
    'a' * 32,
    'a' * 300,
    'Finance',
    '9finance',
    '-finance',
    'finance-',
    'fin--ance',
    'fin.ance',
    'fin_ance',
    # path traversal
    '../finance',
    '..',
    'finance/../../etc',
    '/etc/passwd',
    # YAML and template tricks
    '{{ 7 * 7 }}',
    "{{ lookup('env', 'HOME') }}",
    '{% raw %}x{% endraw %}',
    '*anchor',
    '!!python/object:os.system',
    '~',
]
