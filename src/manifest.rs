//! JSON manifests: what one step prints on stdout and the next step reads.
//!
//! Invariant: every manifest carries a versioned `schema`; a consumer accepts only the schemas it
//! knows and refuses others with a message that names what it got and what it expected.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const PLAN_SCHEMA: &str = "contimg.plan/1";
pub const MOSAIC_SCHEMA: &str = "contimg.mosaic/1";
pub const QA_SCHEMA: &str = "contimg.qa/1";
pub const EXECUTION_SCHEMA: &str = "contimg.execution/1";

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{source_name}: cannot read the manifest: {err}")]
    Read {
        source_name: String,
        err: std::io::Error,
    },
    #[error(
        "{source_name}: more than {limit} bytes, far more than any manifest; is it the right file?"
    )]
    TooLarge { source_name: String, limit: u64 },
    #[error(
        "{source_name}: the manifest is empty; did the previous step fail? (it prints nothing on stdout when it does)"
    )]
    Empty { source_name: String },
    #[error(
        "{source_name} is a FITS image, not a JSON manifest: give the manifest the step before printed \
         (e.g. `contimg build --plan ID > mosaic.json`), or the recorded id"
    )]
    FitsImage { source_name: String },
    #[error("{source_name}: not a JSON manifest: {err}")]
    Json {
        source_name: String,
        err: serde_json::Error,
    },
    #[error(
        "{source_name}: manifest schema {found:?} is not one this command reads (expected {expected}); was it written by a newer contimg, or by a different step?"
    )]
    Schema {
        source_name: String,
        found: String,
        expected: String,
    },
}

/// The largest manifest read (a plan of 1000 images is about 0.5 MB).
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// Reads a manifest from a file (a pipe such as `<(contimg plan …)` too), or from stdin when
/// `source` is `-`; never more than [`MAX_MANIFEST_BYTES`].
pub fn read(source: &Path) -> Result<serde_json::Value, ManifestError> {
    let name = if source.as_os_str() == "-" {
        "stdin".to_string()
    } else {
        source.display().to_string()
    };
    let read_err = |err| ManifestError::Read {
        source_name: name.clone(),
        err,
    };
    let reader: Box<dyn Read> = if source.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(source).map_err(read_err)?)
    };
    let mut bytes = Vec::new();
    reader
        .take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.starts_with(b"SIMPLE  =") {
        return Err(ManifestError::FitsImage { source_name: name });
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        read_err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 text ({e})"),
        ))
    })?;
    if text.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(ManifestError::TooLarge {
            source_name: name,
            limit: MAX_MANIFEST_BYTES,
        });
    }
    if text.trim().is_empty() {
        return Err(ManifestError::Empty { source_name: name });
    }
    serde_json::from_str(&text).map_err(|err| ManifestError::Json {
        source_name: name,
        err,
    })
}

/// Parses a manifest value as `T` after checking its schema.
pub fn parse<T: for<'de> Deserialize<'de>>(
    value: serde_json::Value,
    expected: &str,
    source_name: &str,
) -> Result<T, ManifestError> {
    let found = value
        .get("schema")
        .and_then(|s| s.as_str())
        .unwrap_or("(none)")
        .to_string();
    if found != expected {
        return Err(ManifestError::Schema {
            source_name: source_name.to_string(),
            found,
            expected: expected.to_string(),
        });
    }
    serde_json::from_value(value).map_err(|err| ManifestError::Json {
        source_name: source_name.to_string(),
        err,
    })
}

/// The time window of a plan, ISO-8601 UTC, start inclusive, end exclusive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub start: String,
    pub end: String,
}

/// The sky a plan or mosaic covers. `ra_min > ra_max` means the range crosses RA 0h.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    pub ra_min_deg: f64,
    pub ra_max_deg: f64,
    pub dec_min_deg: f64,
    pub dec_max_deg: f64,
}

/// One selected image as the plan records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanImage {
    pub id: i64,
    pub path: PathBuf,
    pub sha256: String,
    pub rms_jy: f64,
    pub ra_deg: f64,
    pub dec_deg: f64,
    pub obs_time: Option<String>,
}

/// Why a plan left an image of its window out, from the first rule it failed (in this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeftOutKind {
    /// Outside the sky box the plan was asked for (a filter the user chose).
    Region,
    /// No frequency recorded while other images of the window have one.
    NoFrequency,
    /// In another band than the one planned, or outside the tier's `frequency_hz` range.
    Band,
    /// A restoring beam too different from the band's median.
    Resolution,
    /// Noisier than the tier allows (relative to the night's median, or absolutely), or no rms.
    Rms,
    /// The same bytes as an image that was taken.
    Duplicate,
    /// Past the tier's `max_images` (the noisiest go first).
    Limit,
}

impl LeftOutKind {
    pub const ALL: [LeftOutKind; 7] = [
        LeftOutKind::Region,
        LeftOutKind::NoFrequency,
        LeftOutKind::Band,
        LeftOutKind::Resolution,
        LeftOutKind::Rms,
        LeftOutKind::Duplicate,
        LeftOutKind::Limit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LeftOutKind::Region => "region",
            LeftOutKind::NoFrequency => "no_frequency",
            LeftOutKind::Band => "band",
            LeftOutKind::Resolution => "resolution",
            LeftOutKind::Rms => "rms",
            LeftOutKind::Duplicate => "duplicate",
            LeftOutKind::Limit => "limit",
        }
    }

    /// Whether leaving an image out for this reason loses data the night had for the mosaic
    /// asked for: not for `region` (the user's own filter) nor `limit` (the tier's count).
    pub fn is_loss(self) -> bool {
        !matches!(self, LeftOutKind::Region | LeftOutKind::Limit)
    }
}

impl std::fmt::Display for LeftOutKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An image of the window that a plan did not take, and why (the reason names the figures and
/// the fix).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeftOut {
    pub image_id: i64,
    pub path: PathBuf,
    pub reason_kind: LeftOutKind,
    pub reason: String,
}

/// How many images were left out for each reason, in [`LeftOutKind::ALL`] order, zeros omitted.
pub fn left_out_counts(left_out: &[LeftOut]) -> Vec<(LeftOutKind, usize)> {
    LeftOutKind::ALL
        .iter()
        .map(|k| (*k, left_out.iter().filter(|l| l.reason_kind == *k).count()))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// `contimg.plan/1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanManifest {
    pub schema: String,
    pub database: PathBuf,
    pub plan_id: i64,
    pub name: String,
    pub tier: String,
    pub window: Window,
    pub coverage: Coverage,
    pub n_images: usize,
    pub images: Vec<PlanImage>,
    /// Every image of the window the plan did not take, with why (empty for plans recorded
    /// before contimg kept this).
    #[serde(default)]
    pub left_out: Vec<LeftOut>,
    pub created_at: String,
    /// True when an identical plan already existed and was returned as it was.
    #[serde(default)]
    pub existing: bool,
}

/// SHA-256 of each product file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProductHashes {
    pub mosaic: String,
    pub weight: String,
    pub noise: String,
}

/// `contimg.mosaic/1`: what `build` made and where, for `qa` and for people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MosaicManifest {
    pub schema: String,
    pub database: PathBuf,
    pub mosaic_id: i64,
    pub plan_id: i64,
    pub plan_name: String,
    pub tier: String,
    /// The mosaic (2-D FITS, Jy/beam, primary-beam corrected, NaN where nothing covers).
    pub path: PathBuf,
    /// Σw per pixel (w = A²/σ², 1/Jy²).
    pub weight_path: PathBuf,
    /// Expected noise 1/√Σw per pixel (Jy/beam).
    pub noise_path: PathBuf,
    pub sha256: ProductHashes,
    pub window: Window,
    pub n_images: usize,
    pub median_rms_jy: f64,
    pub effective_noise_jy: f64,
    pub coverage: Coverage,
    pub coverage_sq_deg: f64,
    /// [NAXIS1, NAXIS2].
    pub shape: [usize; 2],
    pub projection: String,
    pub cell_arcsec: f64,
    pub interpolation: String,
    pub created_at: String,
    /// Each input's primary beam as the build chose it, in input order.
    #[serde(default)]
    pub primary_beams: Vec<InputBeam>,
}

/// What gave A for an input in a build: the one rule, used by the pixel loop, the footprint,
/// the noise of corrected inputs, the HISTORY provenance, the inputs record and the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppliedBeam {
    /// The input's telescope's model at its frequency, centred on its pointing.
    Model,
    /// A beam image beside the input.
    Image,
    /// A ≡ 1 (a coadd, a single-dish map, or `--primary-beam unity`).
    Unity,
}

/// How one input's primary beam was chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputBeam {
    pub path: PathBuf,
    pub primary_beam: AppliedBeam,
    /// Why, in words, e.g. "built-in model of VLA: polynomial …" or "a coadd of many pointings …".
    pub reason: String,
}
