"""fer_lifecycle_node in its own process, driven through its lifecycle services."""
import signal

from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from processes import Process
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient
from test_processes import good_image, peer  # noqa: F401  (fixtures)


def call(peer, client, request):
    assert client.wait_for_service(20.0)
    future = client.call_async(request)
    assert peer.spin_until(future.done, 60.0)
    return future.result()


def test_configure_activate_deactivate_cleanup(peer, good_image):
    proc = Process('fer_lifecycle_node', '--ros-args', '-p', 'device:=cpu',
                   '-r', 'image:=image_raw')
    change = peer.create_client(ChangeState, '/fer_node/change_state')
    get = peer.create_client(GetState, '/fer_node/get_state')

    def transition(id_):
        return call(peer, change, ChangeState.Request(transition=Transition(id=id_))).success

    def state():
        return call(peer, get, GetState.Request()).current_state.id

    try:
        assert state() == State.PRIMARY_STATE_UNCONFIGURED
        params = AsyncParameterClient(peer, 'fer_node')
        assert params.wait_for_services(10.0)
        future = params.set_parameters([Parameter('model', value='no_such_model')])
        assert peer.spin_until(future.done) and future.result().results[0].successful
        assert not transition(Transition.TRANSITION_CONFIGURE)  # the model cannot load
        assert state() == State.PRIMARY_STATE_UNCONFIGURED and proc.alive()
        future = params.set_parameters([Parameter('model', value='fer_cnn_fer2013_ft')])
        assert peer.spin_until(future.done) and future.result().results[0].successful

        assert transition(Transition.TRANSITION_CONFIGURE)
        assert state() == State.PRIMARY_STATE_INACTIVE
        assert peer.image_pub.get_subscription_count() == 0  # not subscribed while inactive
        assert 'inactive' in peer.diagnostics(0.0)['message']

        assert transition(Transition.TRANSITION_ACTIVATE)
        assert peer.emotions_for(good_image).faces[0].label == 'happy'

        assert transition(Transition.TRANSITION_DEACTIVATE)
        assert peer.spin_until(lambda: peer.image_pub.get_subscription_count() == 0)
        peer.emotions.clear()
        for _ in range(5):
            peer.image_pub.publish(good_image)
            peer.spin_for(0.2)
        assert not peer.emotions

        assert transition(Transition.TRANSITION_CLEANUP)
        assert state() == State.PRIMARY_STATE_UNCONFIGURED
        assert transition(Transition.TRANSITION_CONFIGURE)
        assert transition(Transition.TRANSITION_ACTIVATE)
        assert peer.emotions_for(good_image).faces[0].label == 'happy'
    finally:
        assert proc.stop(signal.SIGINT) == 0, proc.output
    assert 'Traceback' not in proc.output
