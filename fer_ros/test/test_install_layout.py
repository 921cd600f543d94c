"""The install prefix the tests run in has <prefix>/lib/fer_ros/<executable> for every console
script: `ros2 run` and launch_ros's Node look executables up there (setup.cfg's
install_scripts, which colcon honours and pip ignores; scripts/setup.sh links them)."""
import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PREFIX = Path(sys.prefix)
LIBEXEC = PREFIX / 'lib' / 'fer_ros'

pytestmark = pytest.mark.skipif(
    not (PREFIX / 'share' / 'fer_ros' / 'package.xml').is_file(),
    reason=f'fer_ros is not installed in this Python prefix ({PREFIX})')


def console_scripts() -> list[str]:
    """The console_scripts names of setup.py's setup(entry_points=...), read without running it."""
    for node in ast.walk(ast.parse((ROOT / 'setup.py').read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, 'id', None) == 'setup':
            for keyword in node.keywords:
                if keyword.arg == 'entry_points':
                    specs = ast.literal_eval(keyword.value)['console_scripts']
                    return sorted(spec.split('=', 1)[0].strip() for spec in specs)
    raise AssertionError('setup.py has no setup(entry_points=...)')


SCRIPTS = console_scripts()


def test_setup_py_has_the_nodes():
    assert {'camera_node', 'fer_node', 'fer_lifecycle_node', 'fer_bringup'} <= set(SCRIPTS)


@pytest.mark.parametrize('name', SCRIPTS)
def test_libexec_runs_the_bin_script(name):
    """What ros2pkg's get_executable_paths and launch_ros's ExecutableInPackage accept: an
    executable file in <prefix>/lib/fer_ros, here the script pip wrote to <prefix>/bin."""
    path = LIBEXEC / name
    assert path.is_file(), f'{path} is missing (scripts/setup.sh links the console scripts)'
    assert os.access(path, os.X_OK), f'{path} is not executable'
    script = PREFIX / 'bin' / name
    assert script.is_file(), f'{script} is missing'
    assert path.resolve() == script.resolve()


def test_libexec_holds_only_console_scripts():
    """`ros2 pkg executables fer_ros` lists every file there: no stale or dangling entries."""
    assert sorted(p.name for p in LIBEXEC.iterdir()) == SCRIPTS


def test_libexec_script_starts():
    """Started by its libexec path as ros2 run does (no shell, the script's own interpreter)."""
    result = subprocess.run([str(LIBEXEC / 'fer_fetch_models'), '--help'],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert 'usage:' in result.stdout
