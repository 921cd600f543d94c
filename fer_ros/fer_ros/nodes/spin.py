"""Process entry helpers: transport profile, signals, and running one node until shutdown."""
from __future__ import annotations

import signal
from typing import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from fer_ros.nodes.environment import use_transport_profile


def prepare_process() -> None:
    """Call before rclpy.init. rclpy's SIGINT/SIGTERM handlers shut the context down, which ends
    spinning; the handlers found here are what they chain to and what is left once rclpy
    removes its own at shutdown. Ignoring the signals there means a repeated signal (launch
    and the terminal both send one) neither raises KeyboardInterrupt during the clean-up nor
    kills the process while it exits."""
    use_transport_profile()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)


def run_node(factory: Callable[[], Node], args: list[str] | None = None) -> None:
    prepare_process()
    rclpy.init(args=args)
    node = None
    try:
        node = factory()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if rclpy.ok():
            raise
        # a signal shut the context down while the node was starting: nothing to report
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
