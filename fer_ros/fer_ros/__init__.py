"""fer_ros: real-time facial expression recognition for ROS 2."""

__version__ = "0.1.0"
