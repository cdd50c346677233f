-- 0003 (PostgreSQL): the same as SQLite's 0006. Every image of a plan's window that the plan did
-- not take, with why: a JSON array of {image_id, path, reason_kind, reason}, as text. NULL for
-- plans recorded before this migration: what they left out is unknown.
ALTER TABLE mosaic_plans ADD COLUMN left_out TEXT;
