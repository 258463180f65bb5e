"""Hyper-parameter sweeps on Ray Tune: the search space, the runner, progress and the report."""
