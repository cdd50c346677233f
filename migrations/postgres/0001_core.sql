-- contimg core schema on PostgreSQL, version 1: images, mosaic_plans, mosaics, mosaic_qa.
-- The same columns and meanings as the SQLite schema after its migrations 0001-0005, in the same
-- representations (seed times are Unix seconds in BIGINT, other times ISO-8601 UTC text, JSON as
-- text), so one piece of Rust reads both. Flags are BOOLEAN here (0/1 integers on SQLite). The
-- statements run with the search_path set to contimg's schema.

CREATE TABLE images (
    id              BIGSERIAL PRIMARY KEY,
    path            TEXT UNIQUE NOT NULL,       -- absolute, canonical path of the FITS file
    rms_jy          DOUBLE PRECISION,           -- robust rms: 1.4826 * MAD of finite pixels
    ra_deg          DOUBLE PRECISION,           -- image centre, ICRS
    dec_deg         DOUBLE PRECISION,
    created_at      BIGINT NOT NULL,            -- Unix seconds when the row was first written
    content_sha256  TEXT NOT NULL,
    file_size       BIGINT NOT NULL,
    obs_time        TEXT,                       -- ISO-8601 UTC, from DATE-OBS or MJD-OBS
    obs_mjd         DOUBLE PRECISION,           -- the same instant as MJD (UTC); plan selects on it
    naxis1          BIGINT NOT NULL,
    naxis2          BIGINT NOT NULL,
    cell_arcsec     DOUBLE PRECISION NOT NULL,  -- mean pixel scale
    freq_hz         DOUBLE PRECISION,
    bmaj_arcsec     DOUBLE PRECISION,
    bmin_arcsec     DOUBLE PRECISION,
    bpa_deg         DOUBLE PRECISION,
    beam_source     TEXT,                       -- 'header', 'history' or NULL (no beam found)
    projection      TEXT NOT NULL,              -- e.g. SIN, NCP, TAN
    frame           TEXT NOT NULL,              -- the header's celestial frame, e.g. ICRS, FK4 B1950
    pb_corrected    BOOLEAN NOT NULL DEFAULT FALSE,
    telescope       TEXT,
    bunit           TEXT,
    peak_jy         DOUBLE PRECISION,
    n_blank         BIGINT NOT NULL DEFAULT 0,
    ingested_at     TEXT NOT NULL,              -- ISO-8601 UTC of the latest ingest that changed the row
    updated_at      TEXT NOT NULL
);
CREATE INDEX idx_images_obs_mjd ON images(obs_mjd);
CREATE INDEX idx_images_rms ON images(rms_jy);
CREATE INDEX idx_images_sha256 ON images(content_sha256);

CREATE TABLE mosaic_plans (
    id              BIGSERIAL PRIMARY KEY,
    name            TEXT UNIQUE NOT NULL,
    tier            TEXT NOT NULL,
    start_time      BIGINT NOT NULL,            -- Unix seconds
    end_time        BIGINT NOT NULL,
    image_ids       TEXT NOT NULL,              -- JSON array
    n_images        BIGINT NOT NULL,
    ra_min_deg      DOUBLE PRECISION,
    ra_max_deg      DOUBLE PRECISION,
    dec_min_deg     DOUBLE PRECISION,
    dec_max_deg     DOUBLE PRECISION,
    created_at      BIGINT NOT NULL,
    status          TEXT DEFAULT 'pending'
        CHECK(status IN ('pending', 'building', 'completed', 'failed'))
);
CREATE INDEX idx_mosaic_plans_tier ON mosaic_plans(tier);
CREATE INDEX idx_mosaic_plans_status ON mosaic_plans(status);
CREATE INDEX idx_mosaic_plans_created ON mosaic_plans(created_at);

CREATE TABLE mosaics (
    id                  BIGSERIAL PRIMARY KEY,
    plan_id             BIGINT NOT NULL REFERENCES mosaic_plans(id),
    path                TEXT UNIQUE NOT NULL,
    tier                TEXT NOT NULL,
    n_images            BIGINT NOT NULL,
    median_rms_jy       DOUBLE PRECISION,
    effective_noise_jy  DOUBLE PRECISION,
    coverage_sq_deg     DOUBLE PRECISION,
    qa_status           TEXT CHECK(qa_status IN ('PASS', 'WARN', 'FAIL')),
    qa_details          TEXT,                   -- the QA report, JSON
    created_at          BIGINT NOT NULL,
    sha256              TEXT,                   -- the product files as build wrote them
    weight_sha256       TEXT,
    noise_sha256        TEXT
);
CREATE INDEX idx_mosaics_tier ON mosaics(tier);
CREATE INDEX idx_mosaics_created ON mosaics(created_at);
CREATE INDEX idx_mosaics_plan ON mosaics(plan_id);

CREATE TABLE mosaic_qa (
    id                      BIGSERIAL PRIMARY KEY,
    mosaic_id               BIGINT NOT NULL REFERENCES mosaics(id),
    astrometry_rms_arcsec   DOUBLE PRECISION,
    n_reference_stars       BIGINT,
    median_noise_jy         DOUBLE PRECISION,
    dynamic_range           DOUBLE PRECISION,
    has_artifacts           BOOLEAN,
    artifact_score          DOUBLE PRECISION,
    passed                  BOOLEAN NOT NULL,
    warnings                TEXT,               -- JSON array
    created_at              BIGINT NOT NULL
);
CREATE INDEX idx_mosaic_qa_mosaic ON mosaic_qa(mosaic_id);
