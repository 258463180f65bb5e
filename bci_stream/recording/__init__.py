"""Recording sessions (LabRecorder), their BIDS export, and the personal-decoder sitting built on them."""
