-- 0003: pipeline executions keyed by (pipeline, slot). Owned by src/pipeline.
--
-- Invariants (kept by src/pipeline):
--   * at most one execution per (pipeline_name, slot): a second `run` for the same slot finds this row;
--   * every task of an execution has exactly one pipeline_jobs row (task_id) mirroring its state,
--     result and error; pipeline_executions.status is derived from its tasks (running while any task
--     is pending, sleeping or running; then completed, failed or cancelled).

ALTER TABLE pipeline_executions ADD COLUMN slot TEXT;            -- ISO-8601 UTC, the execution's key
ALTER TABLE pipeline_executions ADD COLUMN params TEXT NOT NULL DEFAULT '{}'
    CHECK (json_valid(params));                                   -- the --param values, resolved
ALTER TABLE pipeline_executions ADD COLUMN definition TEXT
    CHECK (definition IS NULL OR json_valid(definition));         -- the pipeline as it was run
ALTER TABLE pipeline_executions ADD COLUMN source TEXT;           -- where the definition came from
CREATE UNIQUE INDEX pipeline_executions_slot ON pipeline_executions (pipeline_name, slot);
CREATE INDEX pipeline_executions_status ON pipeline_executions (status);

ALTER TABLE pipeline_jobs ADD COLUMN task_id INTEGER REFERENCES tasks(id);
ALTER TABLE pipeline_jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX pipeline_jobs_task ON pipeline_jobs (task_id);
CREATE UNIQUE INDEX pipeline_jobs_execution_job ON pipeline_jobs (execution_id, job_id);
