"""Streams to decode without an amplifier: the phantom headset, simulated and replayed streams, BrainFlow boards."""
