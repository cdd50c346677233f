-- 0004: the notification outbox (owned by src/notify) and execution runners (owned by src/pipeline/runner.rs).
--
-- Invariants:
--   * one notification per (execution, notify rule, failure round): the row is written in the same
--     transaction that marks the execution failed; `round` is the highest task generation of the
--     execution, so `contimg retry` that fails again notifies again;
--   * state pending -> sending (claimed by one process until claim_expires_at) -> delivered | failed
--     (attempts exhausted) | skipped (the channel has no target configured); a failed delivery goes back
--     to pending with next_attempt_at later; every delivery attempt is a notification_attempts row;
--   * at most one live runner (`contimg run` process working the execution) per execution.

CREATE TABLE notifications (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id     INTEGER NOT NULL REFERENCES pipeline_executions(id),
    rule_index       INTEGER NOT NULL,                        -- position in the pipeline's notify list
    round            INTEGER NOT NULL,
    channel          TEXT NOT NULL,
    rule             TEXT NOT NULL CHECK (json_valid(rule)),  -- the rule as it was when the execution failed
    event            TEXT NOT NULL CHECK (json_valid(event)), -- the execution facts the message is made of
    state            TEXT NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'sending', 'delivered', 'failed', 'skipped')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL,
    next_attempt_at  TEXT NOT NULL,
    claimed_by       TEXT,
    claim_expires_at TEXT,
    delivered_at     TEXT,
    last_error       TEXT,
    UNIQUE (execution_id, rule_index, round)
);
CREATE INDEX notifications_due ON notifications (state, next_attempt_at);

CREATE TABLE notification_attempts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    notification_id  INTEGER NOT NULL REFERENCES notifications(id),
    attempt          INTEGER NOT NULL,
    started_at       TEXT NOT NULL,
    ended_at         TEXT NOT NULL,
    by_process       TEXT NOT NULL,
    ok               INTEGER NOT NULL CHECK (ok IN (0, 1)),
    error            TEXT
);
CREATE INDEX notification_attempts_notification ON notification_attempts (notification_id);

CREATE TABLE execution_runners (
    execution_id     INTEGER PRIMARY KEY REFERENCES pipeline_executions(id),
    host             TEXT NOT NULL,
    pid              INTEGER NOT NULL,
    started_at       TEXT NOT NULL,
    expires_at       TEXT NOT NULL                            -- renewed by the runner's heartbeat
);
