"""fer_lifecycle_node: fer_node as a managed (lifecycle) node, under the same name and
parameters. configure loads the models, activate subscribes and publishes, deactivate stops
processing, cleanup frees the models. ``ros2 launch fer_ros fer.launch.py managed:=true``
starts it and drives it to active."""
from __future__ import annotations

from rclpy.lifecycle import LifecycleNodeMixin, LifecycleState, TransitionCallbackReturn

from fer_ros.nodes.fer_base import FerNodeBase
from fer_ros.nodes.spin import run_node


class FerLifecycleNode(LifecycleNodeMixin, FerNodeBase):
    def __init__(self, **kwargs):
        FerNodeBase.__init__(self, 'fer_node', **kwargs)
        LifecycleNodeMixin.__init__(self, enable_communication_interface=True)
        self.declare_fer_parameters()

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        if not self.load():
            self.loaded = False
            return TransitionCallbackReturn.FAILURE
        self.open_outputs(self.create_lifecycle_publisher)
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.start_input()
        return super().on_activate(state)  # activates the lifecycle publishers

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop_input()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.close_outputs(self.destroy_lifecycle_publisher)
        self.unload()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop_input()
        self.unload()
        return TransitionCallbackReturn.SUCCESS


def main(args: list[str] | None = None) -> None:
    run_node(FerLifecycleNode, args)


if __name__ == '__main__':
    main()
