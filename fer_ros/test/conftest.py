import os
from pathlib import Path

import numpy as np
import pytest
import rclpy

from fer_ros.nodes.environment import use_transport_profile

SHARED = Path(__file__).resolve().parents[2].parent / 'shared'
MEDIA = SHARED / 'media'
DATA = SHARED / 'data'

needs_shared = pytest.mark.skipif(not MEDIA.is_dir(), reason='../shared is not present')

# Keep test traffic off other ROS graphs on the same network.
os.environ.setdefault('ROS_DOMAIN_ID', str(40 + os.getpid() % 150))
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
# The transport profile fer_ros's executables use, for this process's publishers too.
use_transport_profile()


@pytest.fixture(scope='session')
def astronaut_bgr() -> np.ndarray:
    import skimage.data
    return np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1])


@pytest.fixture
def ros_context():
    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    rclpy.try_shutdown(context=context)


@pytest.fixture
def small_disk(tmp_path):
    """A 96 kB tmpfs: a disk that fills up after a few frames (needs root)."""
    import subprocess
    mount = tmp_path / 'disk'
    mount.mkdir()
    if subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=96k', 'tmpfs', str(mount)],
                      capture_output=True).returncode:
        pytest.skip('cannot mount a tmpfs here (needs root)')
    yield mount
    subprocess.run(['umount', '-l', str(mount)], check=True)


@pytest.fixture(scope='session')
def hri_env() -> dict[str, str]:
    """hri_msgs and tf2_msgs from ../shared/interfaces, importable here; the environment a
    child process needs for them. Skips without ../shared (a user's clone has none)."""
    import interfaces
    if not interfaces.SOURCES.is_dir():
        pytest.skip('../shared/interfaces is not present')
    prefix = interfaces.build()
    interfaces.use_here(prefix)
    return interfaces.child_env(prefix)
