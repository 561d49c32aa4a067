"""Pure policy: no I/O, no clock reads, no global randomness. Time is an argument."""
