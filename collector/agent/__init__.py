"""The edge agent (`steward agent`): runs beside edge inference, often offline.

Local clients send it what they would send the collector (OTLP/HTTP, JSON inference
batches); it answers 200 only once the data is committed to a durable SQLite spool,
and a forwarder thread replays the spool to the collector, oldest first, deleting an
entry only after the collector answered 200. A crash therefore yields duplicates
upstream (same record ids, deduplicated downstream), never a loss.

Modules: `settings`, `signals` (what each route carries), `spool`, `batch` (merging
entries into one request), `upstream` (reading the collector's answers), `forwarder`,
`intake` (the local HTTP app), `metrics`, `main` (wiring and shutdown).
This package must not import kafka-python: the agent never talks to Kafka.
"""
