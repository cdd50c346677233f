-- contimg core schema, version 1.
-- Seed tables keep the seed's names and columns; times in seed columns are Unix seconds (UTC).

CREATE TABLE images (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    path            TEXT UNIQUE NOT NULL,       -- absolute, canonical path of the FITS file
    rms_jy          REAL,                       -- robust rms: 1.4826 * MAD of finite pixels
    ra_deg          REAL,                       -- image centre, ICRS
    dec_deg         REAL,
    created_at      INTEGER NOT NULL,           -- Unix seconds when the row was first written
    -- added by contimg
    content_sha256  TEXT NOT NULL,
    file_size       INTEGER NOT NULL,
    obs_time        TEXT,                       -- ISO-8601 UTC, from DATE-OBS or MJD-OBS
    obs_mjd         REAL,                       -- the same instant as MJD (UTC); plan selects on it
    naxis1          INTEGER NOT NULL,
    naxis2          INTEGER NOT NULL,
    cell_arcsec     REAL NOT NULL,              -- mean pixel scale
    freq_hz         REAL,
    bmaj_arcsec     REAL,
    bmin_arcsec     REAL,
    bpa_deg         REAL,
    beam_source     TEXT,                       -- 'header', 'history' or NULL (no beam found)
    projection      TEXT NOT NULL,              -- e.g. SIN, NCP, TAN
    frame           TEXT NOT NULL,              -- the header's celestial frame, e.g. ICRS, FK4 B1950
    pb_corrected    INTEGER NOT NULL DEFAULT 0,
    telescope       TEXT,
    bunit           TEXT,
    peak_jy         REAL,
    n_blank         INTEGER NOT NULL DEFAULT 0,
    ingested_at     TEXT NOT NULL,              -- ISO-8601 UTC of the latest ingest that changed the row
    updated_at      TEXT NOT NULL
);
CREATE INDEX idx_images_obs_mjd ON images(obs_mjd);
CREATE INDEX idx_images_rms ON images(rms_jy);

CREATE TABLE mosaic_plans (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT UNIQUE NOT NULL,
    tier            TEXT NOT NULL,              -- the seed limited this to three tiers; ours come from config
    start_time      INTEGER NOT NULL,
    end_time        INTEGER NOT NULL,
    image_ids       TEXT NOT NULL,              -- JSON array
    n_images        INTEGER NOT NULL,
    ra_min_deg      REAL,
    ra_max_deg      REAL,
    dec_min_deg     REAL,
    dec_max_deg     REAL,
    created_at      INTEGER NOT NULL,
    status          TEXT DEFAULT 'pending'
        CHECK(status IN ('pending', 'building', 'completed', 'failed'))
);
CREATE INDEX idx_mosaic_plans_tier ON mosaic_plans(tier);
CREATE INDEX idx_mosaic_plans_status ON mosaic_plans(status);
CREATE INDEX idx_mosaic_plans_created ON mosaic_plans(created_at);

CREATE TABLE mosaics (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    plan_id             INTEGER NOT NULL REFERENCES mosaic_plans(id),
    path                TEXT UNIQUE NOT NULL,
    tier                TEXT NOT NULL,
    n_images            INTEGER NOT NULL,
    median_rms_jy       REAL,
    effective_noise_jy  REAL,
    coverage_sq_deg     REAL,
    qa_status           TEXT CHECK(qa_status IN ('PASS', 'WARN', 'FAIL')),
    qa_details          TEXT,
    created_at          INTEGER NOT NULL
);
CREATE INDEX idx_mosaics_tier ON mosaics(tier);
CREATE INDEX idx_mosaics_created ON mosaics(created_at);
CREATE INDEX idx_mosaics_plan ON mosaics(plan_id);

CREATE TABLE mosaic_qa (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    mosaic_id               INTEGER NOT NULL REFERENCES mosaics(id),
    astrometry_rms_arcsec   REAL,
    n_reference_stars       INTEGER,
    median_noise_jy         REAL,
    dynamic_range           REAL,
    has_artifacts           INTEGER,
    artifact_score          REAL,
    passed                  INTEGER NOT NULL,
    warnings                TEXT,
    created_at              INTEGER NOT NULL
);
CREATE INDEX idx_mosaic_qa_mosaic ON mosaic_qa(mosaic_id);

CREATE TABLE pipeline_executions (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    pipeline_name   TEXT NOT NULL,
    status          TEXT NOT NULL,
    started_at      TEXT,
    completed_at    TEXT,
    error           TEXT
);

CREATE TABLE pipeline_jobs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id    INTEGER NOT NULL REFERENCES pipeline_executions(id),
    job_id          TEXT NOT NULL,
    job_type        TEXT NOT NULL,
    status          TEXT NOT NULL,
    started_at      TEXT,
    completed_at    TEXT,
    result          TEXT,
    error           TEXT
);
CREATE INDEX idx_pipeline_jobs_execution ON pipeline_jobs(execution_id);
