-- The trust boundary of a contimg queue on PostgreSQL, as grants.
--
--   psql "$ADMIN_URL" -v ON_ERROR_STOP=1 -v queue=contimg -v schema=contimg \
--        -v worker=contimg -v outside=contimg_spawner -f scripts/pg-roles.sql
--
-- Run it as a superuser or as the owner of ABSURD's schema, once the queue exists (a contimg worker
-- or `absurdctl create-queue` makes it), and again for each further queue. Create the roles first:
--
--   CREATE ROLE contimg LOGIN PASSWORD '...';          -- workers, `run`, `status`, cron
--   CREATE ROLE contimg_spawner LOGIN PASSWORD '...';  -- another ABSURD client
--
-- * `worker` (contimg's workers and commands) owns contimg's schema (it creates it on first use:
--   it needs CREATE on the database) and ABSURD's schema (it ran `absurdctl init`), so it may write
--   both. Nothing here widens it.
-- * `outside` may only spawn tasks on the queue (ABSURD's `spawn_task`, as the SDK's `spawn` calls
--   it) and read a task's result (`get_task_result`). It may not read or write contimg's schema,
--   and may not claim, complete, fail, cancel or retry a task: those functions need UPDATE on the
--   queue's tables, which it does not have. A contimg worker still runs what it spawns only when
--   `[postgres] accept_outside` in contimg.toml names the task's type.

\set tasks 't_' :queue
\set runs 'r_' :queue

-- Nothing in contimg's schema for anyone but its owner (PostgreSQL gives PUBLIC no access to a new
-- schema; this also undoes an earlier GRANT).
REVOKE ALL ON SCHEMA :"schema" FROM PUBLIC;
REVOKE ALL ON SCHEMA :"schema" FROM :"outside";
REVOKE ALL ON ALL TABLES IN SCHEMA :"schema" FROM :"outside";

-- Spawn on the queue: the function, what it calls, and rows in the queue's two tables. SELECT is
-- limited to the columns `spawn_task` reads back (an idempotency key spawned again) and
-- `get_task_result` reports; no UPDATE or DELETE.
GRANT USAGE ON SCHEMA absurd TO :"outside";
GRANT EXECUTE ON FUNCTION absurd.spawn_task(text, text, jsonb, jsonb),
                          absurd.get_task_result(text, uuid),
                          absurd.portable_uuidv7(),
                          absurd.current_time(),
                          absurd.retry_delay_seconds(jsonb, integer),
                          absurd.validate_queue_name(text)
   TO :"outside";
GRANT SELECT ON absurd.queues TO :"outside";
GRANT INSERT ON absurd.:"tasks", absurd.:"runs" TO :"outside";
GRANT SELECT (task_id, state, last_attempt_run, attempts, idempotency_key, completed_payload)
   ON absurd.:"tasks" TO :"outside";
GRANT SELECT (run_id, task_id, failure_reason) ON absurd.:"runs" TO :"outside";
