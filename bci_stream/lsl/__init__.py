"""Every module that talks to liblsl: inlets, marker inlets, clocks, outlets' stream metadata."""
