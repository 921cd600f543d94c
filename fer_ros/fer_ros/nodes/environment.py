"""Where installed ROS packages' files are, and the transport settings every fer_ros process
uses."""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

PROFILE_VARIABLE = 'FASTDDS_DEFAULT_PROFILES_FILE'


def package_share(package: str) -> Path:
    """share/<package> of the first ament prefix that has it: AMENT_PREFIX_PATH's (a sourced
    ROS install), else this Python's prefix (the venv, where the ROS wheels install).
    LookupError if none has it."""
    if not re.fullmatch(r'[A-Za-z][A-Za-z0-9_]*', package):
        raise LookupError(f'{package!r} is not a package name')
    for prefix in (os.environ.get('AMENT_PREFIX_PATH') or sys.prefix).split(os.pathsep):
        if prefix and (Path(prefix) / 'share' / 'ament_index' / 'resource_index' / 'packages'
                       / package).is_file():
            return Path(prefix) / 'share' / package
    raise LookupError(f'package {package!r} not found')


def share_dir() -> Path:
    """The installed share/fer_ros folder."""
    try:
        return package_share('fer_ros')
    except LookupError:
        return Path(sys.prefix) / 'share' / 'fer_ros'


def use_transport_profile() -> str | None:
    """Point Fast DDS at fer_ros's profile (config/fastdds.xml: camera-sized frames through
    shared memory) unless the user chose a profile; call before rclpy.init. Returns the
    profile in effect, if any."""
    if PROFILE_VARIABLE not in os.environ and 'FASTRTPS_DEFAULT_PROFILES_FILE' not in os.environ:
        profile = share_dir() / 'config' / 'fastdds.xml'
        if profile.is_file():
            os.environ[PROFILE_VARIABLE] = str(profile)
    return os.environ.get(PROFILE_VARIABLE) or os.environ.get('FASTRTPS_DEFAULT_PROFILES_FILE')
