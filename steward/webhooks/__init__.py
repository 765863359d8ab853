"""Alert webhooks: subscriptions (kept by the API), a durable outbox and signed delivery.

The API owns the subscriptions because it owns the DuckDB file; the delivery service
(`steward webhooks run`) reads them over HTTP, queues one delivery per matching
subscription in its own SQLite outbox before the runner commits the Kafka offsets, and
delivers from there with Standard Webhooks signatures, backoff and a dead-letter state.
"""
