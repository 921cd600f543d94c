"""Start camera_node and fer_node with config/fer.yaml, over config/fastdds.xml's transport
(camera-sized frames through shared memory) unless FASTDDS_DEFAULT_PROFILES_FILE is set.

  ros2 launch fer_ros fer.launch.py source:=/dev/video0 device:=cuda rate:=15.0
  ros2 launch fer_ros fer.launch.py use_camera:=false image:=/camera/color/image_raw
  ros2 launch fer_ros fer.launch.py namespace:=robot1    # /robot1/image_raw, /robot1/emotions
  ros2 launch fer_ros fer.launch.py managed:=true        # fer_lifecycle_node, driven to active
  ros2 launch fer_ros fer.launch.py record:=true record_dir:=/data/faces   # + fer_record_node
  ros2 launch fer_ros fer.launch.py hri:=true rviz:=true  # + REP-155 faces, TF; rviz2 shows them
"""
import os

from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition

from fer_ros.nodes.overrides import OVERRIDES, node_overrides
from launch import LaunchDescription
from launch.actions import (DeclareLaunchArgument, EmitEvent, LogInfo, OpaqueFunction,
                            RegisterEventHandler, SetEnvironmentVariable)
from launch.conditions import IfCondition
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration

PROFILE_VARIABLE = 'FASTDDS_DEFAULT_PROFILES_FILE'
LEGACY_PROFILE_VARIABLE = 'FASTRTPS_DEFAULT_PROFILES_FILE'  # still read by rmw_fastrtps


def _transport_profile(context, profile):
    """fer_ros's Fast DDS profile for the nodes, unless the user chose one."""
    if PROFILE_VARIABLE in context.environment or LEGACY_PROFILE_VARIABLE in context.environment:
        return []
    return [SetEnvironmentVariable(PROFILE_VARIABLE, profile)]


def _rviz(context, config):
    """rviz2 with config/fer.rviz in the nodes' namespace, where rviz2 is installed."""
    if LaunchConfiguration('rviz').perform(context).lower() not in ('true', '1'):
        return []
    try:
        get_package_share_directory('rviz2')
    except PackageNotFoundError:
        return [LogInfo(msg='rviz:=true ignored: rviz2 is not installed '
                            '(apt install ros-$ROS_DISTRO-rviz2)')]
    return [Node(package='rviz2', executable='rviz2', name='rviz2', output='screen',
                 namespace=LaunchConfiguration('namespace').perform(context),
                 arguments=['-d', os.path.join(config, 'fer.rviz')])]


def _nodes(context):
    params_file = LaunchConfiguration('params_file').perform(context)
    overrides = node_overrides({o.name: LaunchConfiguration(o.name).perform(context)
                                for o in OVERRIDES})
    image = LaunchConfiguration('image').perform(context)
    namespace = LaunchConfiguration('namespace').perform(context)
    camera = Node(package='fer_ros', executable='camera_node', name='camera_node',
                  namespace=namespace, parameters=[params_file, overrides.get('camera_node', {})],
                  condition=IfCondition(LaunchConfiguration('use_camera')), output='screen')
    fer = dict(package='fer_ros', name='fer_node', namespace=namespace,
               parameters=[params_file, overrides.get('fer_node', {})],
               remappings=[('image', image)], output='screen')
    record = Node(package='fer_ros', executable='fer_record_node', name='fer_record',
                  namespace=namespace, remappings=[('image', image)], output='screen',
                  parameters=[{'out': LaunchConfiguration('record_dir').perform(context)}],
                  condition=IfCondition(LaunchConfiguration('record')))
    if LaunchConfiguration('managed').perform(context).lower() not in ('true', '1'):
        return [camera, Node(executable='fer_node', **fer), record]
    managed = LifecycleNode(executable='fer_lifecycle_node', **fer)

    def transition(id_):
        return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(managed),
                                           transition_id=id_))
    activate = RegisterEventHandler(OnStateTransition(
        target_lifecycle_node=managed, goal_state='inactive',
        entities=[transition(Transition.TRANSITION_ACTIVATE)]))
    return [camera, managed, activate, transition(Transition.TRANSITION_CONFIGURE), record]


def generate_launch_description():
    config = os.path.join(get_package_share_directory('fer_ros'), 'config')
    default_params = os.path.join(config, 'fer.yaml')
    return LaunchDescription([
        OpaqueFunction(function=_transport_profile, args=[os.path.join(config, 'fastdds.xml')]),
        DeclareLaunchArgument('params_file', default_value=default_params,
                              description='YAML file with camera_node and fer_node parameters'),
        DeclareLaunchArgument('use_camera', default_value='true',
                              description='start camera_node (false: use your own driver)'),
        DeclareLaunchArgument('image', default_value='image_raw',
                              description='image topic fer_node subscribes to'),
        DeclareLaunchArgument('namespace', default_value='',
                              description='namespace of the nodes and their relative topics'),
        DeclareLaunchArgument('managed', default_value='false',
                              description='run fer_lifecycle_node and drive it to active'),
        DeclareLaunchArgument('record', default_value='false',
                              description="also run fer_record_node on fer_node's image topic"),
        DeclareLaunchArgument('record_dir', default_value='fer_faces',
                              description="fer_record_node's dataset folder"),
        DeclareLaunchArgument('rviz', default_value='false',
                              description='also start rviz2 with config/fer.rviz (where rviz2 '
                              'is installed)'),
        *[DeclareLaunchArgument(o.name, default_value='',
                                description=f'{o.help} (empty: value from params_file)')
          for o in OVERRIDES],
        OpaqueFunction(function=_nodes),
        OpaqueFunction(function=_rviz, args=[config]),
    ])
