"""The trainer's core: configuration, the fit loop (KD and contrastive objectives), splits, teacher, export."""
