"""native_stderr_silenced drops fd-2 output, and overlapping blocks in two threads restore it."""
import os
import threading

from fer_ros.native_log import native_stderr_silenced


def test_overlapping_blocks_restore_stderr(capfd):
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()

    def first():
        with native_stderr_silenced():
            first_in.set()
            second_in.wait(5)
            os.write(2, b'dropped-1\n')
        first_out.set()

    thread = threading.Thread(target=first)
    thread.start()
    first_in.wait(5)
    with native_stderr_silenced():  # starts inside the first block, ends after it
        second_in.set()
        first_out.wait(5)
        os.write(2, b'dropped-2\n')
    thread.join()
    os.write(2, b'kept\n')
    err = capfd.readouterr().err
    assert 'dropped' not in err and 'kept' in err
