"""Runs and comparisons on top of the core: train-and-test, controls, reference methods, real-data protocols."""
