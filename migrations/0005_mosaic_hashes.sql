-- The sha256 of each mosaic's files as build wrote them, so that qa (and anyone) can check that a
-- file named by a manifest is the recorded product. NULL for mosaics built before this migration.
ALTER TABLE mosaics ADD COLUMN sha256 TEXT;
ALTER TABLE mosaics ADD COLUMN weight_sha256 TEXT;
ALTER TABLE mosaics ADD COLUMN noise_sha256 TEXT;
