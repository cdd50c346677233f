-- Every image of a plan's window that the plan did not take, with why: a JSON array of
-- {image_id, path, reason_kind, reason} (reason_kind: region, no_frequency, band, resolution, rms,
-- duplicate, limit), so that QA can say what a night lost. NULL for plans recorded before this
-- migration: what they left out is unknown (QA then reports its selection check as not checked).
ALTER TABLE mosaic_plans ADD COLUMN left_out TEXT;
