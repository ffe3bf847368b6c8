"""`tvmc tune`: tasks, search space, measurement on the device, records, a board farm (docs/tuning.md)."""
