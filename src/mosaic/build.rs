//! Build: turn a recorded plan into a mosaic, its weight and noise maps, and a `mosaics` row.
//!
//! Invariants: a plan manifest is trusted no further than the database (its images must be the
//! plan's recorded images with their recorded paths and hashes); every input is checked against
//! the plan (the file exists and its bytes still hash to what was planned) before any pixel work; the plan goes pending/failed → building →
//! completed or failed; products are written under temporary names and renamed by the engine;
//! the `mosaics` row (one per product path: a rebuild updates it) and the plan's `completed`
//! status are written in one transaction after the files are in place.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::fsutil::sha256_file;
use crate::manifest::{MOSAIC_SCHEMA, MosaicManifest, PlanManifest, ProductHashes};
use crate::mosaic::beam::{BeamModel, telescope_key};
use crate::mosaic::engine::grid::{GridChoice, ProjectionChoice};
use crate::mosaic::engine::kernel::Interpolation;
use crate::mosaic::engine::linmos::{
    BuildOptions, INPUTS_SCHEMA, InputRecord, MosaicError, MosaicInput, MosaicResult, OutputPaths,
    PrimaryBeam, Progress, build_mosaic,
};
use crate::mosaic::tiers::Tier;
use crate::store::{Db, Sql, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(
        "the plan was recorded in {planned}, but this command uses {using}; run it in the same workspace \
         (-C) or pass --db {planned}"
    )]
    OtherDatabase { planned: PathBuf, using: PathBuf },
    #[error("plan {id} ({name:?}) is not in the database; plan again with `contimg plan`")]
    UnknownPlan { id: i64, name: String },
    #[error(
        "{path}: input image is missing ({err}); restore it, or re-run `contimg plan` to choose again"
    )]
    MissingInput { path: PathBuf, err: std::io::Error },
    #[error(
        "{path}: the file changed since it was planned (sha256 {now}, planned {planned}); \
         re-run `contimg ingest` and `contimg plan` (with --replace) to use the new data"
    )]
    ChangedInput {
        path: PathBuf,
        now: String,
        planned: String,
    },
    #[error(
        "the plan manifest does not match plan {plan_id} as recorded in the database: {detail}; \
         build from the manifest `contimg plan` printed, or with --plan {plan_id}"
    )]
    ManifestMismatch { plan_id: i64, detail: String },
    #[error("the plan has no images")]
    EmptyPlan,
    #[error(transparent)]
    Mosaic(#[from] MosaicError),
    #[error("{path}: cannot read the product to hash it: {err}")]
    Hash { path: PathBuf, err: std::io::Error },
    #[error(
        "{path}: cannot write the record of the inputs{}; check the disk and the directory",
        if crate::fsutil::is_disk_full(source) { " (disk full)" } else { "" }
    )]
    InputsRecord {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl BuildError {
    /// Whether the error is the caller's input (exit 2) rather than failed work (exit 1).
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            BuildError::OtherDatabase { .. }
                | BuildError::UnknownPlan { .. }
                | BuildError::MissingInput { .. }
                | BuildError::ChangedInput { .. }
                | BuildError::EmptyPlan
                | BuildError::ManifestMismatch { .. }
                | BuildError::Mosaic(
                    MosaicError::Grid(_)
                        | MosaicError::NoFrequency { .. }
                        | MosaicError::NoBeamImage { .. }
                        | MosaicError::BadBeamModel { .. }
                )
        )
    }
}

/// How to build, beyond the plan: the workspace's settings and command-line overrides.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub tier: Tier,
    /// Where products go (the workspace's `mosaics/`).
    pub out_dir: PathBuf,
    /// Pixel size override, arcsec.
    pub cell_arcsec: Option<f64>,
    pub projection: ProjectionChoice,
    /// Override of the tier's interpolation.
    pub interpolation: Option<Interpolation>,
    pub pb_cutoff: f64,
    pub max_pixels: u64,
    /// Dish diameter for inputs of a telescope without a model whose header has no DISHDIAM
    /// (`None`: such inputs are refused).
    pub dish_diameter_m: Option<f64>,
    /// Where the primary-beam response comes from.
    pub primary_beam: PrimaryBeam,
    /// Observing frequency (Hz) for inputs whose header gives none.
    pub freq_hz: Option<f64>,
    /// Beam models by TELESCOP (`[build.telescopes]`), over the built-in ones.
    pub telescopes: BTreeMap<String, BeamModel>,
}

/// A file name for a plan's products: the plan name with anything but `[A-Za-z0-9._-]` replaced.
pub fn product_stem(plan_name: &str) -> String {
    plan_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn set_plan_status(db: &mut Db, plan_id: i64, status: &str) -> Result<(), StoreError> {
    db.write(|tx| {
        tx.execute(
            "UPDATE mosaic_plans SET status = ?2 WHERE id = ?1",
            crate::vals![plan_id, status],
        )
    })?;
    Ok(())
}

/// Checks the plan's inputs against the files on disk (in parallel).
pub fn verify_inputs(plan: &PlanManifest) -> Result<(), BuildError> {
    plan.images.par_iter().try_for_each(|im| {
        let now = sha256_file(&im.path).map_err(|err| BuildError::MissingInput {
            path: im.path.clone(),
            err,
        })?;
        if now != im.sha256 {
            return Err(BuildError::ChangedInput {
                path: im.path.clone(),
                now,
                planned: im.sha256.clone(),
            });
        }
        Ok(())
    })
}

/// Checks a plan manifest against the database, which is what is trusted: its images must be
/// the plan's recorded images, each with its recorded path and content hash. (The files' bytes
/// are checked against those hashes by [`verify_inputs`].)
fn check_recorded(db: &mut Db, plan: &PlanManifest) -> Result<(), BuildError> {
    let mismatch = |detail: String| BuildError::ManifestMismatch {
        plan_id: plan.plan_id,
        detail,
    };
    let ids_json: String = db
        .query_one(
            "SELECT image_ids FROM mosaic_plans WHERE id = ?1",
            crate::vals![plan.plan_id],
        )?
        .get(0)?;
    let mut recorded: Vec<i64> = serde_json::from_str(&ids_json)
        .map_err(|e| mismatch(format!("its recorded image list is unreadable ({e})")))?;
    let mut given: Vec<i64> = plan.images.iter().map(|i| i.id).collect();
    recorded.sort_unstable();
    given.sort_unstable();
    if recorded != given {
        return Err(mismatch(format!(
            "it lists images {given:?}, the plan recorded {recorded:?}"
        )));
    }
    let records = crate::store::images::by_ids(db, &given)?;
    for im in &plan.images {
        let Some(rec) = records.iter().find(|r| r.id == Some(im.id)) else {
            return Err(mismatch(format!("image {} is no longer registered", im.id)));
        };
        if Path::new(&rec.path) != im.path {
            return Err(mismatch(format!(
                "image {} is {} in the manifest but {} in the database",
                im.id,
                im.path.display(),
                rec.path
            )));
        }
        if rec.content_sha256 != im.sha256 {
            return Err(mismatch(format!(
                "image {} ({}) has sha256 {} in the manifest but {} in the database",
                im.id, rec.path, im.sha256, rec.content_sha256
            )));
        }
    }
    Ok(())
}

/// Builds the plan's mosaic and records it. `progress(done, total)` is called per input.
pub fn build(
    db: &mut Db,
    plan: &PlanManifest,
    req: &BuildRequest,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<MosaicManifest, BuildError> {
    let database = check_plan(db, plan)?;
    let opts = engine_options(plan, req)?;
    verify_inputs(plan)?;
    let inputs = engine_inputs(db, plan)?;
    std::fs::create_dir_all(&req.out_dir).map_err(|err| BuildError::Hash {
        path: req.out_dir.clone(),
        err,
    })?;
    let out = OutputPaths::from_stem(&req.out_dir, &product_stem(&plan.name));

    set_plan_status(db, plan.plan_id, "building")?;
    let built = build_mosaic(&inputs, &opts, &out, &|p: &Progress| {
        progress(p.done, p.total);
    })
    .map_err(BuildError::from)
    .and_then(|result| {
        write_inputs_record(&out.inputs, &result.inputs)?;
        Ok((result.sha256.clone(), result))
    });
    let (hashes, result) = match built {
        Ok(b) => b,
        Err(e) => {
            let _ = set_plan_status(db, plan.plan_id, "failed");
            return Err(e);
        }
    };
    let mosaic_id = record_mosaic(db, plan, &out, &result, &hashes)?;
    Ok(manifest(database, mosaic_id, plan, &out, &result, hashes))
}

/// The plan must be this database's and recorded under its name, with images whose ids, paths and
/// hashes are the recorded ones. Returns the database as manifests name it ([`Db::label`]).
fn check_plan(db: &mut Db, plan: &PlanManifest) -> Result<PathBuf, BuildError> {
    let db_now = PathBuf::from(db.label());
    if !db.is_labelled(&plan.database) {
        return Err(BuildError::OtherDatabase {
            planned: plan.database.clone(),
            using: db_now,
        });
    }
    let known: Option<String> = db
        .query_opt(
            "SELECT name FROM mosaic_plans WHERE id = ?1",
            crate::vals![plan.plan_id],
        )?
        .map(|r| r.get(0))
        .transpose()?;
    if known.as_deref() != Some(plan.name.as_str()) {
        return Err(BuildError::UnknownPlan {
            id: plan.plan_id,
            name: plan.name.clone(),
        });
    }
    if plan.images.is_empty() {
        return Err(BuildError::EmptyPlan);
    }
    check_recorded(db, plan)?;
    Ok(db_now)
}

/// The engine's options from the request: projection, kernel (the request's, else the tier's),
/// primary beams and provenance.
fn engine_options(plan: &PlanManifest, req: &BuildRequest) -> Result<BuildOptions, BuildError> {
    Ok(BuildOptions {
        interpolation: req.interpolation.unwrap_or(req.tier.interpolation),
        grid: GridChoice {
            cell_deg: req.cell_arcsec.map(|c| c / 3600.0),
            projection: req.projection.fixed(),
            max_pixels: req.max_pixels,
            ..GridChoice::default()
        },
        pb_cutoff: req.pb_cutoff,
        default_dish_m: req.dish_diameter_m,
        primary_beam: req.primary_beam,
        default_freq_hz: req.freq_hz,
        telescopes: req
            .telescopes
            .iter()
            .map(|(name, model)| (telescope_key(name), model.clone()))
            .collect(),
        plan_label: Some(format!(
            "plan {} {:?} tier {}",
            plan.plan_id, plan.name, plan.tier
        )),
        ..BuildOptions::default()
    })
}

/// The engine's inputs: each planned file with the facts ingest measured (rms, beam from HISTORY
/// cards, pb-corrected flag, frequency, time).
fn engine_inputs(db: &mut Db, plan: &PlanManifest) -> Result<Vec<MosaicInput>, BuildError> {
    let ids: Vec<i64> = plan.images.iter().map(|i| i.id).collect();
    let records = crate::store::images::by_ids(db, &ids)?;
    Ok(plan
        .images
        .iter()
        .zip(&records)
        .map(|(im, rec)| MosaicInput {
            path: im.path.clone(),
            rms_jy: rec.rms_jy,
            pb_corrected: Some(rec.pb_corrected),
            freq_hz: rec.freq_hz,
            dish_m: None,
            beam_deg: match (rec.bmaj_arcsec, rec.bmin_arcsec) {
                (Some(a), Some(b)) => Some((a / 3600.0, b / 3600.0, rec.bpa_deg.unwrap_or(0.0))),
                _ => None,
            },
            date_obs: rec.obs_time.clone(),
            mjd_obs: rec.obs_mjd,
        })
        .collect())
}

/// `<stem>.inputs.json` (`contimg.inputs/1`): every input as the build used it, for QA's
/// snapshot checks. Written atomically once the FITS products are in place.
pub fn write_inputs_record(path: &Path, inputs: &[InputRecord]) -> Result<(), BuildError> {
    #[derive(serde::Serialize)]
    struct Record<'a> {
        schema: &'a str,
        inputs: &'a [InputRecord],
    }
    let err = |source: std::io::Error| BuildError::InputsRecord {
        path: path.to_path_buf(),
        source,
    };
    let mut text = serde_json::to_vec_pretty(&Record {
        schema: INPUTS_SCHEMA,
        inputs,
    })
    .map_err(|e| err(e.into()))?;
    text.push(b'\n');
    crate::fsutil::write_atomic(path, &text).map_err(err)
}

/// Records the mosaic (one row per product path: a rebuild updates it in place and clears its old
/// QA) and completes the plan, in one transaction. Returns the mosaic id.
fn record_mosaic(
    db: &mut Db,
    plan: &PlanManifest,
    out: &OutputPaths,
    result: &MosaicResult,
    hashes: &ProductHashes,
) -> Result<i64, BuildError> {
    db.write(|tx| {
        let mosaic_id: i64 = tx
            .query_one(
                "INSERT INTO mosaics (plan_id, path, tier, n_images, median_rms_jy, effective_noise_jy, \
                 coverage_sq_deg, created_at, sha256, weight_sha256, noise_sha256) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
                 ON CONFLICT(path) DO UPDATE SET plan_id = excluded.plan_id, tier = excluded.tier, \
                 n_images = excluded.n_images, median_rms_jy = excluded.median_rms_jy, \
                 effective_noise_jy = excluded.effective_noise_jy, \
                 coverage_sq_deg = excluded.coverage_sq_deg, qa_status = NULL, qa_details = NULL, \
                 created_at = excluded.created_at, sha256 = excluded.sha256, \
                 weight_sha256 = excluded.weight_sha256, noise_sha256 = excluded.noise_sha256 \
                 RETURNING id",
                crate::vals![
                    plan.plan_id,
                    out.mosaic.to_string_lossy().into_owned(),
                    &plan.tier,
                    result.n_images,
                    result.median_rms_jy,
                    result.effective_noise_jy,
                    result.coverage.area_deg2,
                    crate::time::now_unix(),
                    &hashes.mosaic,
                    &hashes.weight,
                    &hashes.noise
                ],
            )?
            .get(0)?;
        tx.execute(
            "UPDATE mosaic_plans SET status = 'completed' WHERE id = ?1",
            crate::vals![plan.plan_id],
        )?;
        Ok(mosaic_id)
    })
}

/// The `contimg.mosaic/1` manifest of a recorded mosaic.
fn manifest(
    database: PathBuf,
    mosaic_id: i64,
    plan: &PlanManifest,
    out: &OutputPaths,
    result: &MosaicResult,
    hashes: ProductHashes,
) -> MosaicManifest {
    let cov = &result.coverage;
    let g = &result.grid;
    MosaicManifest {
        schema: MOSAIC_SCHEMA.to_string(),
        database,
        mosaic_id,
        plan_id: plan.plan_id,
        plan_name: plan.name.clone(),
        tier: plan.tier.clone(),
        path: out.mosaic.clone(),
        weight_path: out.weight.clone(),
        noise_path: out.noise.clone(),
        sha256: hashes,
        window: plan.window.clone(),
        n_images: result.n_images,
        median_rms_jy: result.median_rms_jy,
        effective_noise_jy: result.effective_noise_jy,
        coverage: cov.sky.clone(),
        coverage_sq_deg: cov.area_deg2,
        shape: [g.nx, g.ny],
        projection: g.projection.code().to_string(),
        cell_arcsec: g.cdelt_deg.1.abs() * 3600.0,
        interpolation: result.interpolation.name().to_string(),
        created_at: crate::time::now_iso(),
        primary_beams: result
            .inputs
            .iter()
            .map(|i| crate::manifest::InputBeam {
                path: i.path.clone(),
                primary_beam: i.primary_beam,
                reason: i.beam_reason.clone(),
            })
            .collect(),
    }
}
