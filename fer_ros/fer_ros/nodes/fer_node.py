"""fer_node: detects faces in ``image``, classifies expressions, publishes ``emotions``
(fer_msgs/FaceEmotionArray) and ``image_annotated``, both stamped with the input header.
Starts processing at once; fer_lifecycle_node is the managed variant."""
from __future__ import annotations

from fer_ros.nodes.fer_base import FerNodeBase
from fer_ros.nodes.spin import run_node


class FerNode(FerNodeBase):
    def __init__(self, **kwargs):
        super().__init__('fer_node', **kwargs)
        self.declare_fer_parameters()
        if not self.load():
            self.get_logger().error('the node stays up and processes frames once model/device '
                                    'are fixed (ros2 param set)')
        self.open_outputs(self.create_publisher)
        self.start_input()


def main(args: list[str] | None = None) -> None:
    run_node(FerNode, args)


if __name__ == '__main__':
    main()
