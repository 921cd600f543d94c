"""The installed package's share folder, and the transport settings every fer_ros process uses."""
from __future__ import annotations

import os
import sys
from pathlib import Path

PROFILE_VARIABLE = 'FASTDDS_DEFAULT_PROFILES_FILE'


def share_dir() -> Path:
    """The installed share/fer_ros folder (ament index first, then this Python prefix)."""
    try:
        from ament_index_python.packages import get_package_share_directory
        return Path(get_package_share_directory('fer_ros'))
    except (ImportError, LookupError, OSError):
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
