"""Every benchmark runs as its docstring says, `.venv/bin/python bench/<name>.py`, from any folder and with
nothing set by hand (no PYTHONPATH): its imports work and it answers --help."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / 'bench'
SCRIPTS = sorted(path.name for path in BENCH.glob('*.py') if not path.name.startswith('_'))


def test_every_benchmark_is_listed():
    assert {'gateway.py', 'provision_local.py', 'tenant_scale.py'} <= set(SCRIPTS)


@pytest.mark.parametrize('script', SCRIPTS)
def test_benchmark_starts_without_a_python_path(script, tmp_path):
    env = {key: value for key, value in os.environ.items() if key != 'PYTHONPATH'}
    proc = subprocess.run([sys.executable, str(BENCH / script), '--help'], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'usage:' in proc.stdout
