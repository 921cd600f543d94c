from glob import glob

from setuptools import find_packages, setup

package_name = 'fer_ros'

setup(
    name=package_name,
    version='0.2.0',
    packages=find_packages(exclude=['test']),
    package_data={package_name: ['weights/*.pt', 'weights/*.md', 'weights/*.png',
                                 'weights/*.onnx', 'weights/*.json',
                                 'learning/label_page.html']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/launch', glob('launch/*.launch.py')),
        ('share/' + package_name + '/config', glob('config/*.yaml') + glob('config/*.xml')
         + glob('config/*.rviz')),
    ],
    install_requires=['setuptools'],
    zip_safe=False,
    maintainer='fer_ros maintainers',
    maintainer_email='maintainers@fer-ros.org',
    description='Real-time facial expression recognition for ROS 2 (MediaPipe + PyTorch)',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'camera_node = fer_ros.nodes.camera_node:main',
            'fer_node = fer_ros.nodes.fer_node:main',
            'fer_lifecycle_node = fer_ros.nodes.fer_lifecycle_node:main',
            'fer_bringup = fer_ros.nodes.bringup:main',
            'fer_record_node = fer_ros.nodes.fer_record_node:main',
            'fer_hri_node = fer_ros.nodes.fer_hri_node:main',
            'fer_benchmark = fer_ros.bench.benchmark:main',
            'fer_fetch_models = fer_ros.common.assets:main',
            'fer_train = fer_ros.learning.train:main',
            'fer_record = fer_ros.learning.record:main',
            'fer_label = fer_ros.learning.label:main',
            'fer_evaluate = fer_ros.learning.evaluate:main',
            'fer_panel = fer_ros.learning.panel:main',
            'fer_export_onnx = fer_ros.learning.export:main',
        ],
    },
)
