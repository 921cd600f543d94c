"""Camera calibrations as camera_info_manager keeps them: URLs, YAML files and scaling.

A calibration file is camera_calibration's YAML (what ``cameracalibrator`` commits and
camera_calibration_parsers reads). URLs are ``file:///abs/path.yaml``,
``package://<package>/<path>`` or empty for camera_info_manager's default,
``file://${ROS_HOME}/camera_info/${NAME}.yaml``; ``${NAME}`` and ``${ROS_HOME}`` are
substituted in any URL. An uncalibrated camera has all-zero intrinsics, the ROS convention.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from fer_ros.common.untrusted import quoted, read_regular_file
from fer_ros.nodes.environment import package_share

DEFAULT_URL = 'file://${ROS_HOME}/camera_info/${NAME}.yaml'
MAX_FILE_BYTES = 1 << 20
# Distortion models camera_calibration writes, with their number of coefficients.
DISTORTION_MODELS = {'plumb_bob': 5, 'rational_polynomial': 8, 'equidistant': 4}
_NAME = re.compile(r'[A-Za-z0-9_]+')


class CalibrationError(ValueError):
    """A calibration URL or file that cannot be used, with the reason."""


@dataclass(frozen=True)
class Calibration:
    """sensor_msgs/CameraInfo's calibration fields, row-major, for an image of width x height."""
    width: int
    height: int
    camera_name: str = ''
    distortion_model: str = 'plumb_bob'
    d: tuple[float, ...] = ()
    k: tuple[float, ...] = (0.0,) * 9
    r: tuple[float, ...] = (0.0,) * 9
    p: tuple[float, ...] = (0.0,) * 12

    @property
    def calibrated(self) -> bool:
        return self.k[0] != 0.0

    def scaled(self, width: int, height: int) -> Calibration:
        """The calibration of the same camera resized to width x height (as image_proc's
        resize does it: focal lengths, principal point and P's Tx/Ty scale per axis)."""
        if (width, height) == (self.width, self.height):
            return self
        sx, sy = width / self.width, height / self.height
        k, p = list(self.k), list(self.p)
        for i in (0, 2):
            k[i] *= sx
        for i in (4, 5):
            k[i] *= sy
        for i in (0, 2, 3):
            p[i] *= sx
        for i in (5, 6, 7):
            p[i] *= sy
        return replace(self, width=width, height=height, k=tuple(k), p=tuple(p))


def check_camera_name(name: str) -> str | None:
    """Why a camera name cannot be used in a URL (camera_info_manager allows [A-Za-z0-9_])."""
    return None if _NAME.fullmatch(name) else 'use letters, digits and _ only'


def url_path(url: str, camera_name: str) -> Path:
    """The file a file:// or package:// URL names, after ${NAME}/${ROS_HOME} substitution."""
    ros_home = os.environ.get('ROS_HOME') or str(Path.home() / '.ros')
    resolved = (url or DEFAULT_URL).replace('${NAME}', camera_name).replace('${ROS_HOME}', ros_home)
    if resolved.startswith('file://'):
        path = Path(resolved[len('file://'):])
        if not path.is_absolute():
            raise CalibrationError(f'{quoted(url)}: a file:// URL needs an absolute path '
                                   '(file:///home/...)')
        return path
    if resolved.startswith('package://'):
        package, _, rest = resolved[len('package://'):].partition('/')
        try:
            return package_share(package) / rest
        except LookupError:
            raise CalibrationError(f'{quoted(url)}: package {quoted(package)} not found') from None
    raise CalibrationError(f'{quoted(url)}: only file:// and package:// URLs are supported')


_YAML_KEYS = {'D': 'distortion_coefficients', 'K': 'camera_matrix',
              'R': 'rectification_matrix', 'P': 'projection_matrix'}


def checked(width: int, height: int, camera_name: str, distortion_model: str, d, k, r,
            p) -> Calibration:
    """A Calibration from values of a file or a request, or CalibrationError saying what is
    wrong with them."""
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 65535
               for v in (width, height)):
        raise CalibrationError('image width and height must be integers 1-65535')
    if distortion_model not in DISTORTION_MODELS:
        raise CalibrationError(f'distortion model {quoted(str(distortion_model))} is not one '
                               f"of {', '.join(DISTORTION_MODELS)}")
    arrays = {}
    for key, values, sizes in (('D', d, (0, DISTORTION_MODELS[distortion_model])),
                               ('K', k, (9,)), ('R', r, (9,)), ('P', p, (12,))):
        try:
            arrays[key] = tuple(float(v) for v in values)
        except (TypeError, ValueError):
            raise CalibrationError(f'{key} ({_YAML_KEYS[key]}) must be a list of numbers') from None
        if len(arrays[key]) not in sizes or not all(map(math.isfinite, arrays[key])):
            raise CalibrationError(f"{key} ({_YAML_KEYS[key]}) must hold "
                                   f"{' or '.join(map(str, sizes))} finite numbers")
    if arrays['K'][0] <= 0 or arrays['K'][4] <= 0:
        raise CalibrationError('K (camera_matrix) must have positive focal lengths fx and fy')
    return Calibration(width, height, str(camera_name), distortion_model, arrays['D'],
                       arrays['K'], arrays['R'], arrays['P'])


def parse_calibration(text: str | bytes) -> Calibration:
    """A Calibration from camera_calibration YAML; CalibrationError says what is wrong."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CalibrationError(f'not YAML ({str(exc).splitlines()[0]})') from None
    if not isinstance(doc, dict):
        raise CalibrationError('not a camera_calibration YAML mapping')
    data = {}
    for key, name in _YAML_KEYS.items():
        entry = doc.get(name)
        data[key] = entry.get('data') if isinstance(entry, dict) else None
        if not isinstance(data[key], list):
            raise CalibrationError(f"'{name}' needs a 'data' list")
    return checked(doc.get('image_width'), doc.get('image_height'), doc.get('camera_name') or '',
                   doc.get('distortion_model', 'plumb_bob'),
                   **{key.lower(): values for key, values in data.items()})


def load_calibration(path: Path) -> Calibration | None:
    """The calibration in a file; None where the file does not exist (uncalibrated)."""
    if not path.exists():
        return None
    try:
        return parse_calibration(read_regular_file(path, MAX_FILE_BYTES))
    except CalibrationError as exc:
        raise CalibrationError(f'{path}: {exc}') from None
    except (OSError, ValueError) as exc:
        raise CalibrationError(f'{path}: cannot be read ({exc})') from None


def _yaml_matrix(rows: int, cols: int, data: list[float]) -> dict:
    return {'rows': rows, 'cols': cols, 'data': [float(v) for v in data]}


def save_calibration(calibration: Calibration, path: Path) -> None:
    """Write a calibration as camera_calibration YAML, creating folders, replacing the file
    at once (never half-written). OSError on failure."""
    doc = {
        'image_width': calibration.width, 'image_height': calibration.height,
        'camera_name': calibration.camera_name,
        'camera_matrix': _yaml_matrix(3, 3, calibration.k),
        'distortion_model': calibration.distortion_model,
        'distortion_coefficients': _yaml_matrix(1, len(calibration.d), calibration.d),
        'rectification_matrix': _yaml_matrix(3, 3, calibration.r),
        'projection_matrix': _yaml_matrix(3, 4, calibration.p),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + '.partial')
    partial.write_text(yaml.safe_dump(doc, sort_keys=False, default_flow_style=None))
    partial.replace(path)
