"""The ring buffer: contiguous windows across the wrap, and marker times to sample indices."""

import numpy as np

from bci_stream.live.ring_buffer import RingBuffer


def test_windows_stay_contiguous_across_the_wrap():
    ring = RingBuffer(2, capacity=10)
    for start in range(0, 27, 4):  # chunks of 4 wrap the 10-sample buffer several times
        idx = np.arange(start, start + 4)
        ring.write(np.stack([idx, -idx], 1).astype(np.float32), idx / 1000.0)
    assert ring.count == 28 and ring.available == 10
    data, times = ring.window(end=28, length=10)
    np.testing.assert_array_equal(data[:, 0], np.arange(18, 28))
    np.testing.assert_array_equal(data[:, 1], -np.arange(18, 28))
    np.testing.assert_allclose(times, np.arange(18, 28) / 1000.0)


def test_nearest_index_maps_a_marker_time_to_its_sample():
    ring = RingBuffer(1, capacity=100)
    ring.write(np.zeros((50, 1), np.float32), 5.0 + np.arange(50) / 1000.0)
    assert ring.nearest_index(5.0200, tolerance=0.001) == 20
    assert ring.nearest_index(5.0204, tolerance=0.001) == 20  # rounds to the nearest sample
    assert ring.nearest_index(4.0, tolerance=0.001) is None  # before the buffer
    assert ring.nearest_index(6.0, tolerance=0.001) is None  # not arrived yet


def test_nearest_index_survives_overlapping_chunk_stamps():
    """A sender that stamps each chunk when it pushes it, and pushes two late chunks at once, gives
    the second chunk stamps that start before the first one's end; the marker of a sample still
    carries that sample's own stamp."""
    ring = RingBuffer(1, capacity=100)
    fs = 1000.0
    first = 1.0 + np.arange(20) / fs + 0.004  # pushed 4 ms late
    second = 1.0 + np.arange(20, 40) / fs + 0.0005  # pushed at once after it: overlaps the first
    ring.write(np.zeros((20, 1), np.float32), first)
    ring.write(np.zeros((20, 1), np.float32), second)
    assert ring.nearest_index(first[17], tolerance=1 / fs) == 17
    assert ring.nearest_index(second[2], tolerance=1 / fs) == 22
    sorted_search = int(np.searchsorted(np.concatenate([first, second]), first[17]))
    assert sorted_search != 17  # what a sorted search would have answered
