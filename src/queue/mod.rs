//! The durable job queue with ABSURD semantics on SQLite.
