"""What the decoding process sends the viewer (Qt-free; the decoding process imports it)."""

TRACE_SECONDS = 5.0  # of EEG the viewer shows
TRACE_POINTS = 1000  # per channel after decimation
PUBLISH_HZ = 30.0  # snapshots a second
