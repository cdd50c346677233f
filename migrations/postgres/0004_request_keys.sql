-- 0004 (PostgreSQL): the same as SQLite's 0007. An execution requested with an idempotency key
-- (`serve`'s `Idempotency-Key` header) records the key and the request it came with, so the same
-- key finds the same execution after a restart of the server (on any node), and a key reused for
-- another request is refused. NULL for every other execution.
ALTER TABLE pipeline_executions ADD COLUMN request_key TEXT;
ALTER TABLE pipeline_executions ADD COLUMN request TEXT;
CREATE UNIQUE INDEX pipeline_executions_request_key
    ON pipeline_executions (request_key) WHERE request_key IS NOT NULL;
