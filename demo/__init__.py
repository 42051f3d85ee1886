"""`make demo` (`python -m demo`): a simulated day of curtailments through gridhook and the DPS
simulator, end to end, in about a minute. It drives both, so it lives beside them, not inside
either: `plan` (the day), `driver` (the run), `stores` (which store it plays into),
`processes` and `firestore_emulator` (child processes, shared with the tests' harness).
Development only; never deployed."""
