"""Work over many objects at once: the reconcile sweep, backfill (with its checkpoints) and the SCF
fan-out that spreads a backfill over many invocations."""
