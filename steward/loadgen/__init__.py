"""The load generator behind `steward bench load`: simulated edge and cloud nodes sending
telemetry at a set rate, and what the stack did with it (see `steward.loadgen.run`)."""
