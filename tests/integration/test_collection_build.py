"""The collection builds into a tarball that installs and documents its modules."""

import os
import subprocess

from tests.helpers import REPO, VENV_BIN


def test_build_install_and_document(tmp_path):
    # Outside the checkout: its ansible.cfg would show the collection as installed already.
    (tmp_path / 'ansible.cfg').write_text('[defaults]\n')
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(tmp_path / 'installed'), ANSIBLE_CONFIG=str(tmp_path / 'ansible.cfg'))
    build = subprocess.run([str(VENV_BIN / 'ansible-galaxy'), 'collection', 'build', '--output-path', str(tmp_path), str(REPO)],
                           capture_output=True, text=True, env=env, cwd=str(tmp_path), check=False)
    assert build.returncode == 0, build.stderr
    tarballs = list(tmp_path.glob('federation-platform-*.tar.gz'))
    assert len(tarballs) == 1
    install = subprocess.run([str(VENV_BIN / 'ansible-galaxy'), 'collection', 'install', '--offline', '--no-deps',
                              '-p', str(tmp_path / 'installed'), str(tarballs[0])], capture_output=True, text=True, env=env, cwd=str(tmp_path), check=False)
    assert install.returncode == 0, install.stdout + install.stderr
    installed = tmp_path / 'installed' / 'ansible_collections' / 'federation' / 'platform'
    assert (installed / 'plugins' / 'modules' / 'department.py').exists()
    assert not (installed / '.venv').exists() and not (installed / 'tests' / 'output').exists()
    doc = subprocess.run([str(VENV_BIN / 'ansible-doc'), 'federation.platform.department'], capture_output=True, text=True,
                         env=env, cwd=str(tmp_path), check=False)
    assert doc.returncode == 0, doc.stderr
    assert 'provisioning state machine' in ' '.join(doc.stdout.split())
