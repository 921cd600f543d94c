"""hri_msgs and tf2_msgs, built with rosidl from ../shared/interfaces into a test prefix (the
venv's test_interfaces/<digest>, reused while the sources are unchanged), as fer_msgs is built
into the venv; made importable here and in child processes. Never part of the project."""
from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import sys
from pathlib import Path

from conftest import SHARED

SOURCES = SHARED / 'interfaces'
PACKAGES = ('tf2_msgs', 'hri_msgs')  # build order
PRUNE = Path(__file__).resolve().parents[2] / 'fer_msgs' / 'cmake' / \
    'prune_missing_include_dirs.cmake'


def _digest() -> str:
    h = hashlib.sha256()
    for path in sorted(p for name in PACKAGES for p in (SOURCES / name).rglob('*')
                       if p.is_file()):
        h.update(str(path.relative_to(SOURCES)).encode() + path.read_bytes())
    h.update(PRUNE.read_bytes())
    return h.hexdigest()[:16]


def build() -> Path:
    """The install prefix (built now if not yet); RuntimeError with the build's log tail."""
    root = Path(sys.prefix) / 'test_interfaces' / _digest()
    prefix = root / 'install'
    if (root / 'done').is_file():
        return prefix
    root.mkdir(parents=True, exist_ok=True)
    include = root / 'prune.cmake'
    include.write_text(f'include({PRUNE})\nfer_msgs_prune_missing_include_dirs()\n')
    env = {**os.environ, 'AMENT_PREFIX_PATH': f'{prefix}{os.pathsep}{sys.prefix}',
           'CMAKE_PREFIX_PATH': f'{prefix}{os.pathsep}{sys.prefix}'}
    for name in PACKAGES:
        build_dir, log = root / f'build_{name}', root / f'{name}.log'
        steps = [['cmake', '-S', str(SOURCES / name), '-B', str(build_dir),
                  f'-DCMAKE_INSTALL_PREFIX={prefix}', f'-DPython3_EXECUTABLE={sys.executable}',
                  '-DBUILD_TESTING=OFF', f'-DCMAKE_PROJECT_INCLUDE={include}'],
                 ['cmake', '--build', str(build_dir), '-j', str(os.cpu_count() or 1)],
                 ['cmake', '--install', str(build_dir)]]
        with log.open('w') as out:
            for step in steps:
                if subprocess.run(step, env=env, stdout=out, stderr=subprocess.STDOUT).returncode:
                    raise RuntimeError(f'building {name} failed:\n'
                                       + '\n'.join(log.read_text().splitlines()[-30:]))
    (root / 'done').write_text('')
    return prefix


def site_packages(prefix: Path) -> Path:
    return prefix / 'lib' / f'python{sys.version_info.major}.{sys.version_info.minor}' / \
        'site-packages'


def use_here(prefix: Path) -> None:
    """Make the packages importable in this process: their libraries loaded before Python's
    extension modules ask for them (LD_LIBRARY_PATH counts only at process start)."""
    if str(site_packages(prefix)) not in sys.path:
        sys.path.insert(0, str(site_packages(prefix)))
    pending = sorted((prefix / 'lib').glob('*.so'))
    for _ in range(len(pending)):  # until each one's dependencies are loaded before it
        failed = []
        for library in pending:
            try:
                ctypes.CDLL(str(library), mode=ctypes.RTLD_GLOBAL)
            except OSError:
                failed.append(library)
        if not failed:
            return
        pending = failed
    raise RuntimeError(f'cannot load {pending[0]}')


def child_env(prefix: Path) -> dict[str, str]:
    """What a child process needs to import them, as a sourced ROS workspace gives."""
    def joined(name: str, value: Path) -> str:
        return os.pathsep.join(filter(None, [str(value), os.environ.get(name, '')]))
    return {'PYTHONPATH': joined('PYTHONPATH', site_packages(prefix)),
            'LD_LIBRARY_PATH': joined('LD_LIBRARY_PATH', prefix / 'lib'),
            'AMENT_PREFIX_PATH': os.pathsep.join(
                [str(prefix), os.environ.get('AMENT_PREFIX_PATH') or sys.prefix])}
