-- 0002: the durable job queue (ABSURD semantics). Owned by src/queue.
--
-- Times are UTC text in one fixed-width form, 'YYYY-MM-DDTHH:MM:SS.ffffffZ', so that text order is time
-- order and `available_at <= now` compares correctly in SQL.
--
-- Invariants (kept by src/queue, checked where SQLite can check them):
--   * state 'running' <=> claimed_by and lease_expires_at are set and exactly one attempt row of the task
--     has outcome 'running' (the partial unique index task_attempts_one_running).
--   * attempts counts the attempts of the current generation; 1 <= attempts <= max_attempts once claimed.
--     `retry` of a failed/cancelled task starts a new generation with attempts = 0.
--   * a dependency always points at an older task (depends_on < task_id), so the graph has no cycles.

CREATE TABLE tasks (
    id               INTEGER PRIMARY KEY,
    execution_id     INTEGER REFERENCES pipeline_executions(id) ON DELETE CASCADE,
    job_id           TEXT,
    kind             TEXT NOT NULL CHECK (kind <> ''),
    params           TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(params)),
    priority         INTEGER NOT NULL DEFAULT 0,
    state            TEXT NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'running', 'sleeping', 'completed', 'failed', 'cancelled')),
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts     INTEGER NOT NULL DEFAULT 1 CHECK (max_attempts >= 1),
    generation       INTEGER NOT NULL DEFAULT 1 CHECK (generation >= 1),
    retry_kind       TEXT NOT NULL DEFAULT 'none' CHECK (retry_kind IN ('none', 'fixed', 'exponential')),
    retry_base_s     REAL NOT NULL DEFAULT 0 CHECK (retry_base_s >= 0),
    retry_factor     REAL NOT NULL DEFAULT 1 CHECK (retry_factor > 0),
    retry_cap_s      REAL,
    timeout_s        REAL CHECK (timeout_s IS NULL OR timeout_s > 0),
    available_at     TEXT NOT NULL,
    claimed_by       TEXT,
    lease_expires_at TEXT,
    result           TEXT CHECK (result IS NULL OR json_valid(result)),
    error            TEXT,
    created_at       TEXT NOT NULL,
    started_at       TEXT,
    finished_at      TEXT,
    UNIQUE (execution_id, job_id),
    CHECK ((state = 'running') = (claimed_by IS NOT NULL AND lease_expires_at IS NOT NULL))
);

-- The claim scan: walks ready candidates in claim order and stops at the first one that is due and whose
-- dependencies are completed.
CREATE INDEX tasks_ready ON tasks (priority DESC, available_at, id)
    WHERE state IN ('pending', 'sleeping');
-- The reaper: running tasks by lease expiry.
CREATE INDEX tasks_leases ON tasks (lease_expires_at) WHERE state = 'running';
CREATE INDEX tasks_execution ON tasks (execution_id, state);

CREATE TABLE task_deps (
    task_id    INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    depends_on INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    PRIMARY KEY (task_id, depends_on),
    CHECK (depends_on < task_id)
) WITHOUT ROWID;
CREATE INDEX task_deps_parent ON task_deps (depends_on, task_id);

CREATE TABLE task_attempts (
    id          INTEGER PRIMARY KEY,
    task_id     INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    generation  INTEGER NOT NULL,
    attempt     INTEGER NOT NULL CHECK (attempt >= 1),
    worker_id   TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    ended_at    TEXT,
    outcome     TEXT NOT NULL DEFAULT 'running'
                CHECK (outcome IN ('running', 'completed', 'failed', 'timed_out', 'lease_expired', 'cancelled')),
    error       TEXT,
    log_path    TEXT,
    UNIQUE (task_id, generation, attempt),
    CHECK ((outcome = 'running') = (ended_at IS NULL))
);
CREATE UNIQUE INDEX task_attempts_one_running ON task_attempts (task_id) WHERE outcome = 'running';
