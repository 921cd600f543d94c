"""The run-time core, free of ROS: frames in, faces with expressions out."""
