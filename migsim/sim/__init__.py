"""One replication at run time: the batch engine, ramp policy and operations.

- `engine`: the day loop; `run_replication`, `state_after`.
- `cohort`: a cohort segment's counts and due-day ledgers, and the day's phases.
- `initial_state`: a mid-programme start shared between a cohort's parts.
- `draws`: one uniform per attempt read on its outcome-and-aftermath table;
  `stalls`: stall ledgers with results drawn ahead.
- `delays`: delay tables, their residuals, scheduling onto due-day ledgers.
- `streams`: the replication's random streams (up-front, per-unit, per-day);
  `inputs`: per-replication input draws; `records`: `STATES`, `FLOWS`,
  `IN_FLIGHT` and the `RunLog` a replication hands back.
- `policy`: the cap of each day; `calendar`: working days, bank holidays and
  go/no-go incidents; `dates`: uncertain dates and gates, drawn once.
- `operations`: the operations sections together; `segments` (supplier splits,
  hard and excluded classes), `allocation` (sharing whole installations),
  `defects` (latent defects), `els` (the ELS / MCC desk).
"""
