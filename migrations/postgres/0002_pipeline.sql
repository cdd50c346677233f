-- 0002 (PostgreSQL): pipeline executions and their jobs, for the pipeline layer on ABSURD, and the
-- notification outbox (the same tables and rules as SQLite's 0004, owned by src/pipeline/notify.rs).
-- Owned by src/pipeline/pg.rs. ABSURD's own tables (schema `absurd`) are never written here: a job's
-- task lives in ABSURD, and these rows say which pipeline, execution and job it belongs to.
--
-- Invariants (kept by src/pipeline/pg.rs, every write under the schema's advisory lock):
--   * at most one execution per (pipeline_name, slot), across every machine;
--   * a job row exists for every job of an execution from the start; its ABSURD task (task_id) is
--     spawned only once every job it depends on has completed, in the same transaction that records
--     the last of those results here, with the idempotency key contimg:<schema>:<execution>:<job>;
--   * status mirrors the task (pending, sleeping, running, completed, failed, cancelled), or is
--     `waiting` (no task yet) or `skipped` (an upstream job failed or was cancelled: never spawned);
--   * pipeline_executions.status is derived from its jobs (running while any can still progress).

CREATE TABLE pipeline_executions (
    id              BIGSERIAL PRIMARY KEY,
    pipeline_name   TEXT NOT NULL,
    status          TEXT NOT NULL,
    started_at      TEXT,
    completed_at    TEXT,
    error           TEXT,
    slot            TEXT NOT NULL,            -- ISO-8601 UTC, the execution's key
    params          TEXT NOT NULL DEFAULT '{}',
    definition      TEXT,                     -- the pipeline as it was run (JSON)
    source          TEXT,
    queue           TEXT NOT NULL,            -- the ABSURD queue holding its tasks
    round           BIGINT NOT NULL DEFAULT 1, -- failure round: `contimg retry` starts the next
    UNIQUE (pipeline_name, slot)
);
CREATE INDEX pipeline_executions_status ON pipeline_executions (status);

CREATE TABLE pipeline_jobs (
    id              BIGSERIAL PRIMARY KEY,
    execution_id    BIGINT NOT NULL REFERENCES pipeline_executions(id),
    job_id          TEXT NOT NULL,
    job_type        TEXT NOT NULL,
    status          TEXT NOT NULL,
    started_at      TEXT,
    completed_at    TEXT,
    result          TEXT,                     -- the job's outputs (JSON object)
    error           TEXT,
    task_id         UUID UNIQUE,              -- the ABSURD task, once spawned
    attempts        BIGINT NOT NULL DEFAULT 0,
    position        BIGINT NOT NULL,          -- order in the definition
    depends_on      TEXT NOT NULL DEFAULT '[]', -- JSON array of job ids
    task            TEXT NOT NULL,            -- JSON: the task to spawn (name, params, options)
    log_path        TEXT,                     -- the latest attempt's log
    UNIQUE (execution_id, job_id)
);
CREATE INDEX pipeline_jobs_open ON pipeline_jobs (execution_id) WHERE status NOT IN ('completed', 'failed', 'cancelled', 'skipped');

CREATE TABLE notifications (
    id               BIGSERIAL PRIMARY KEY,
    execution_id     BIGINT NOT NULL REFERENCES pipeline_executions(id),
    rule_index       BIGINT NOT NULL,
    round            BIGINT NOT NULL,
    channel          TEXT NOT NULL,
    rule             TEXT NOT NULL,
    event            TEXT NOT NULL,
    state            TEXT NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'sending', 'delivered', 'failed', 'skipped')),
    attempts         BIGINT NOT NULL DEFAULT 0,
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
    id               BIGSERIAL PRIMARY KEY,
    notification_id  BIGINT NOT NULL REFERENCES notifications(id),
    attempt          BIGINT NOT NULL,
    started_at       TEXT NOT NULL,
    ended_at         TEXT NOT NULL,
    by_process       TEXT NOT NULL,
    ok               BOOLEAN NOT NULL,
    error            TEXT
);
CREATE INDEX notification_attempts_notification ON notification_attempts (notification_id);
