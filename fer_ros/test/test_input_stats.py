"""Input rate and loss: counted from publisher sequence numbers, else estimated from stamps."""
import numpy as np
import pytest

from fer_ros.nodes.input_stats import InputStats


def feed(stats, stamps, start=0.0):
    return [stats.add(s, start + s) for s in stamps]


def test_a_steady_stream_loses_nothing():
    stats = InputStats()
    feed(stats, [i / 30 for i in range(300)])
    hz, loss = stats.window(10.0)
    assert stats.lost == 0 and loss == pytest.approx(0.0, abs=1e-9)
    assert hz == pytest.approx(30.0, abs=0.5)
    assert stats.period() == pytest.approx(1 / 30)


def test_gaps_count_the_frames_that_never_arrived():
    stats = InputStats()
    sent = [i / 30 for i in range(300)]
    arrived = [s for i, s in enumerate(sent) if i < 30 or i % 5 != 0]  # lose every 5th
    feed(stats, arrived)
    assert stats.lost == pytest.approx(54, abs=1)
    _, loss = stats.window(10.0)
    assert loss == pytest.approx(0.2, abs=0.02)


def test_publishing_jitter_is_not_loss():
    """Stamps taken when a busy publisher gets to it: late, then catching up."""
    rng = np.random.default_rng(0)
    stamps = np.arange(300) / 30 + rng.uniform(-0.45, 0.45, 300) / 30
    stats = InputStats()
    feed(stats, stamps)
    assert stats.window(stamps[-1])[1] < 0.02 and stats.lost <= 6


def test_a_slower_camera_is_learnt_not_counted_as_loss():
    stats = InputStats()
    feed(stats, [i / 30 for i in range(60)])
    feed(stats, [2 + i / 15 for i in range(120)])
    lost_after_switch = stats.lost
    feed(stats, [10 + i / 15 for i in range(60)])
    assert stats.lost == lost_after_switch  # the new period is known by now
    assert stats.period() == pytest.approx(1 / 15)


def test_pauses_and_restarts_are_not_losses():
    stats = InputStats(max_gap_s=5.0)
    feed(stats, [i / 30 for i in range(60)])
    feed(stats, [60 + i / 30 for i in range(60)])  # camera stopped for a minute
    feed(stats, [62.5 + i / 30 for i in range(60)])  # and for half a second
    feed(stats, [i / 30 for i in range(60)])       # a bag replay loops back to its start
    assert stats.lost == 0 and stats.received == 240


def test_unstamped_images_are_counted_without_loss():
    stats = InputStats()
    for i in range(50):
        stats.add(0.0, i / 30)
    assert stats.received == 50 and stats.lost == 0


def test_sequence_numbers_count_each_publishers_losses_exactly():
    stats = InputStats()
    for i in range(1, 301):  # two interleaved 30 Hz cameras on one topic, unrelated stamps
        t = i / 30
        if i % 5:
            stats.add(t, t, b'left', i)  # loses every 5th frame
        if i % 10 != 3:
            stats.add(1000.0 - t, t + 0.01, b'right', i)  # every 10th, stamps running back
    assert stats.counted_exactly and stats.lost == 59 + 30  # the last lost one is not yet known
    hz, loss = stats.window(10.01)
    assert hz == pytest.approx(51.0, abs=0.5)
    assert loss == pytest.approx(45 / 300, abs=0.01)


def test_new_and_returning_publishers_lose_nothing():
    stats = InputStats(max_gap_s=5.0)
    stats.add(0.0, 0.0, b'cam', 1000)  # joined late: frames before it were not ours to see
    stats.add(0.1, 0.1, b'cam', 1001)
    stats.add(0.2, 10.0, b'cam', 1300)  # after 10 s unsubscribed (inactive lifecycle node)
    stats.add(0.3, 10.1, b'cam', 1302)
    assert stats.lost == 1


def test_publishers_are_forgotten_oldest_first():
    stats = InputStats()
    for i in range(100):
        stats.add(0.0, 0.0, bytes([i]), 1)
    stats.add(0.0, 0.0, bytes([0]), 5)  # forgotten: counted as a new publisher
    stats.add(0.0, 0.0, bytes([99]), 5)  # remembered: 3 lost
    assert stats.lost == 3
