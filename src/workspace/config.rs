//! `contimg.toml`: the workspace configuration, with every default spelled out.
//!
//! Invariants: a missing key takes its default; an unknown key is an error that names the file
//! and the key (a typo must not silently fall back to a default); `default_toml()` parses back
//! to `Config::default()`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::mosaic::engine::grid::{GridProjection, ProjectionChoice};
use crate::mosaic::engine::kernel::Interpolation;
use crate::mosaic::tiers::{self, TierConfig};
pub use crate::pipeline::notify::NotifyConfig;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read the configuration: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: invalid configuration: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: ParseError,
    },
    #[error("{path}: invalid configuration: {source}")]
    Mode {
        path: PathBuf,
        #[source]
        source: ModeError,
    },
    #[error("{path}: invalid configuration: {source}")]
    Tier {
        path: PathBuf,
        #[source]
        source: tiers::TierError,
    },
}

/// A `[files] mode` that cannot be used for product files.
#[derive(Debug, thiserror::Error)]
pub enum ModeError {
    #[error("[files] mode = {0:?} is not an octal mode like \"0640\"")]
    NotOctal(String),
    #[error("[files] mode = {0:?} must be at most 0777 and let the owner read and write (0600)")]
    OutOfRange(String),
}

/// Configuration text that is not valid TOML or does not fit the settings: the parser's message
/// folded onto one line (it names the line and the key).
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.to_string().trim().replace('\n', " "))]
pub struct ParseError(toml::de::Error);

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub paths: Paths,
    pub postgres: PostgresConfig,
    pub ingest: IngestConfig,
    pub build: BuildConfig,
    /// `[qa]`: detection, matching, pictures and per-tier verdict thresholds.
    pub qa: crate::mosaic::qa::QaConfig,
    /// `[tiers.NAME]` tables: override fields of a built-in tier or define a new one.
    pub tiers: BTreeMap<String, TierConfig>,
    /// `[pipelines.NAME]` tables: define a pipeline, or replace the built-in of the same name.
    pub pipelines: BTreeMap<String, crate::pipeline::PipelineDef>,
    pub cron: CronConfig,
    pub notify: NotifyConfig,
    pub files: FilesConfig,
    /// `[serve]`: the HTTP API and status page (`contimg serve`).
    pub serve: ServeConfig,
}

/// `[serve]`: who may use `contimg serve` and what it may start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// File holding the bearer token of the write endpoints ("" = none; `CONTIMG_API_TOKEN`
    /// wins). Relative to the workspace.
    pub token_file: String,
    /// File holding the bearer token for reading when serving beyond the loopback ("" = the
    /// write token reads too; `CONTIMG_API_READ_TOKEN` wins).
    pub read_token_file: String,
    /// Host names (as in the Host header, without the port) accepted besides the loopback ones.
    pub allowed_hosts: Vec<String>,
    /// The pipelines a request over HTTP may start.
    pub pipelines: Vec<String>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            token_file: String::new(),
            read_token_file: String::new(),
            allowed_hosts: Vec::new(),
            pipelines: vec!["on_demand_mosaic".into()],
        }
    }
}

/// Files contimg writes (products, the database, logs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilesConfig {
    /// Permission bits of every file written, in octal ("0640": owner read-write, group read).
    pub mode: String,
}

impl Default for FilesConfig {
    fn default() -> Self {
        FilesConfig {
            mode: format!("{:04o}", crate::fsutil::DEFAULT_FILE_MODE),
        }
    }
}

impl FilesConfig {
    /// The mode as bits; an error names what is wrong.
    pub fn mode_bits(&self) -> Result<u32, ModeError> {
        let m = u32::from_str_radix(self.mode.trim(), 8)
            .map_err(|_| ModeError::NotOctal(self.mode.clone()))?;
        if m > 0o777 || m & 0o600 != 0o600 {
            return Err(ModeError::OutOfRange(self.mode.clone()));
        }
        Ok(m)
    }
}

/// Scheduling by the system crontab (`contimg cron`, `run --catch-up`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CronConfig {
    /// The `crontab` program `cron install`/`remove` call (`crontab -l`, `crontab -`).
    pub crontab: String,
    /// `run --catch-up` runs at most this many missed slots (the newest ones).
    pub max_catch_up: u32,
}

impl Default for CronConfig {
    fn default() -> Self {
        CronConfig {
            crontab: "crontab".into(),
            max_catch_up: 7,
        }
    }
}

/// Mosaic build settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BuildConfig {
    /// Refuse an output grid with more pixels than this, before any pixel work.
    pub max_pixels: u64,
    /// Primary-beam cut-off: output pixels where an input's beam response is below this get
    /// nothing from that input.
    pub pb_cutoff: f64,
    /// Dish diameter (m) of a generic Gaussian beam (1.2 λ/D) for images of a telescope contimg
    /// has no model for and whose header has no DISHDIAM; unset (the default): such images are
    /// refused, naming the fix, never given another array's dish.
    pub dish_diameter_m: Option<f64>,
    /// Output projection: auto (SIN for compact fields, CAR for wide strips) or a projection.
    pub projection: ProjectionChoice,
    /// `[build.telescopes.NAME]`: primary-beam models by TELESCOP, over the built-in ones.
    pub telescopes: BTreeMap<String, crate::mosaic::beam::BeamModel>,
}

impl Default for BuildConfig {
    fn default() -> Self {
        BuildConfig {
            max_pixels: 400_000_000,
            pb_cutoff: 0.1,
            dish_diameter_m: None,
            projection: ProjectionChoice::Auto,
            telescopes: BTreeMap::new(),
        }
    }
}

/// Where the workspace keeps its files; relative paths are relative to the workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Paths {
    pub database: PathBuf,
    pub mosaics: PathBuf,
    pub logs: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            database: "pipeline.sqlite3".into(),
            mosaics: "mosaics".into(),
            logs: "logs".into(),
        }
    }
}

/// `[postgres]`: where contimg's records and queue live when `[paths] database` (or `--db`,
/// `CONTIMG_DB`) is a `postgres://` URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresConfig {
    /// contimg's own schema on the server (`CONTIMG_PG_SCHEMA` overrides it).
    pub schema: String,
    /// The ABSURD queue name (`CONTIMG_ABSURD_QUEUE` overrides it).
    pub queue: String,
    /// The task types a worker runs when another ABSURD client spawned them on the queue (see
    /// [`crate::pipeline::outside`]).
    pub accept_outside: Vec<String>,
    /// The pipelines a `contimg.run` task spawned by another ABSURD client may start.
    pub run_pipelines: Vec<String>,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            schema: crate::store::DEFAULT_PG_SCHEMA.into(),
            queue: "contimg".into(),
            accept_outside: crate::pipeline::outside::DEFAULT_ACCEPT
                .iter()
                .map(ToString::to_string)
                .collect(),
            run_pipelines: vec!["on_demand_mosaic".into()],
        }
    }
}

impl PostgresConfig {
    /// These settings with the environment's overrides applied (the environment wins):
    /// `CONTIMG_PG_SCHEMA` for the schema, `CONTIMG_ABSURD_QUEUE` for the queue.
    pub fn with_env(mut self) -> PostgresConfig {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        if let Some(v) = var("CONTIMG_PG_SCHEMA") {
            self.schema = v;
        }
        if let Some(v) = var("CONTIMG_ABSURD_QUEUE") {
            self.queue = v;
        }
        self
    }
}

/// Ingest settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Threads for reading files; 0 means one per core.
    pub threads: usize,
    /// Refuse a FITS file whose size, or whose pixel data as its header declares it
    /// (uncompressed), exceeds this many MiB, before reading or allocating for it.
    pub max_image_mb: u64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            threads: 0,
            max_image_mb: 4096,
        }
    }
}

impl IngestConfig {
    /// The ceiling in bytes.
    pub fn max_image_bytes(&self) -> u64 {
        self.max_image_mb.saturating_mul(1 << 20)
    }
}

/// Reads and checks a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let config = parse(&text).map_err(|source| ConfigError::Parse {
        path: path.to_path_buf(),
        source,
    })?;
    tiers::resolve(&config.tiers).map_err(|source| ConfigError::Tier {
        path: path.to_path_buf(),
        source,
    })?;
    config
        .files
        .mode_bits()
        .map_err(|source| ConfigError::Mode {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(config)
}

/// Parses configuration text; the error is a one-paragraph message with the line.
pub fn parse(text: &str) -> Result<Config, ParseError> {
    toml::from_str(text).map_err(ParseError)
}

/// The file `contimg init` writes: every setting at its default, each explained.
pub fn default_toml() -> String {
    let d = Config::default();
    format!(
        r#"# contimg workspace configuration.
# Every setting below is shown at its default value; edit a value to change it.
# Relative paths are relative to this file's directory.

[paths]
# The database holding images, plans, mosaics, QA and the job queue: an SQLite file, or a
# PostgreSQL server named by a postgres:// (or postgresql://) URL, e.g.
# "postgresql://contimg@db.example.org/contimg?sslmode=require" (password: PGPASSWORD).
database = "{db}"
# Where `contimg build` writes mosaics, weight and noise maps.
mosaics = "{mosaics}"
# Per-task logs and cron output.
logs = "{logs}"

[postgres]
# Used only when the database is a postgres:// URL. contimg keeps its tables in a schema of its
# own, created on first use (CONTIMG_PG_SCHEMA overrides it).
schema = "{pg_schema}"
# The ABSURD queue contimg's tasks go to (CONTIMG_ABSURD_QUEUE overrides it).
queue = "{pg_queue}"
# The task types a worker runs when another ABSURD client (not contimg's own pipelines) spawned
# them on the queue; any other such task fails once with the reason. Their params are checked as
# strictly as `run --param`: no replace, no path outside the workspace. Adding "command" lets
# anyone who can spawn on the queue run any program on every worker.
accept_outside = {pg_accept}
# The pipelines a `contimg.run` task (spawned by another ABSURD client, with params
# {{"pipeline": NAME, "slot": TIME}} or {{"pipeline": NAME, "params": {{...}}}}) may start; the task
# ends when the execution does, with its manifest as the task's result.
run_pipelines = {pg_run}

[ingest]
# Threads used to read and measure files; 0 = one per core.
threads = {threads}
# Refuse a FITS file larger than this (MiB), or whose header declares more pixel data than this
# (uncompressed), before reading it: a hostile or broken header cannot exhaust memory.
max_image_mb = {max_image_mb}

[files]
# Permission bits (octal) of every file contimg writes: products, database, logs.
# "0640" = owner read-write, group read, others nothing; "0644" makes them world-readable.
mode = "{mode}"

[build]
# Refuse an output grid with more pixels than this, before any pixel work is done.
max_pixels = {max_pixels}
# Primary-beam cut-off: an input contributes only where its beam response A >= this.
pb_cutoff = {pb_cutoff}
# Images of a telescope contimg has no beam model for (and no DISHDIAM card) are refused by
# default, naming the fix. Set a dish diameter in metres to give them a Gaussian of 1.2 lambda/D,
# or better, describe the telescope in a [build.telescopes.NAME] table as below.
# dish_diameter_m = 12.0
# Output projection: "auto" (SIN for compact fields, CAR for wide strips), or {projections}.
projection = "{projection}"
# Primary beams are chosen by each image's TELESCOP card: built in are {telescopes}
# (see the README, "Primary beams"; LOFAR, MWA and other phased arrays need a beam image beside
# each image, single dishes such as the GBT need none). A [build.telescopes.NAME] table adds a
# telescope or replaces a built-in model (FWHM = fwhm_factor * lambda / dish_m; shape "gaussian"
# or "airy"). Mosaics and survey coadds (Miriad LINMOS, AIPS FLATN, FIRST, NVSS) are recognised
# and weighted by their own noise, never corrected again.
# Example (uncomment and edit):
#
#   [build.telescopes.VLA]
#   dish_m = 25.0
#   shape = "airy"
#   fwhm_factor = 1.029

[cron]
# The crontab program `contimg cron install` / `cron remove` edit the user's crontab with.
crontab = "{crontab}"
# `contimg run PIPELINE --catch-up` runs at most this many missed slots (the newest).
max_catch_up = {max_catch_up}

[notify]
# Targets for notify rules that name none. An email is piped to `sendmail` (argv; it reads the
# recipients from the message's To: header); a webhook is an HTTP POST of JSON with a `text` field.
sendmail = {sendmail}
# From address ("" = contimg@HOSTNAME).
from = "{from}"
email_to = {email_to}
webhook_url = "{webhook_url}"
# Environment variable holding the webhook URL when webhook_url is "" (keeps secrets out of files).
webhook_url_env = "{webhook_url_env}"
command = {command}
# Longest one delivery may take, in seconds; attempts before a notification is given up.
timeout_s = {timeout_s:?}
max_attempts = {max_attempts}

[serve]
# `contimg serve`: the HTTP API and status page. Write endpoints (POST) need the bearer token
# read from token_file (CONTIMG_API_TOKEN wins); beyond the loopback every endpoint needs a token,
# the read token of read_token_file (CONTIMG_API_READ_TOKEN wins) or the write token, and serving
# there without one is refused. Paths are relative to this file's directory; "" = none.
token_file = "{serve_token_file}"
read_token_file = "{serve_read_token_file}"
# Host header names accepted besides localhost, 127.0.0.1 and [::1] (against DNS rebinding),
# e.g. ["contimg.example.org"] behind a reverse proxy.
allowed_hosts = {serve_hosts}
# The pipelines a POST /api/v1/runs may start.
pipelines = {serve_pipelines}

{qa}
# Tiers. Each [tiers.NAME] table overrides fields of a built-in tier; a new NAME defines a new
# tier and must set max_images, interpolation, require_astrometry and timeout_minutes.
# interpolation: {interpolations}. Which images of a window a plan takes
# (each image left out is named in the plan with why, and counted by QA's selection check):
# max_rms_factor leaves out images whose rms exceeds this x the median rms of the window's
# images (in the band chosen); inf turns it off. max_rms_jy is an absolute rms cut in Jy/beam,
# applied as well (unset in the built-in tiers, which fit any telescope: the noise a night
# reaches depends on the telescope and band). frequency_hz, [lo, hi] in Hz, takes only images
# observed in that range (unset: any). max_band_spread: frequencies within this fraction of their
# neighbour are one band; a plan never mixes bands and takes the band with the most images (ties:
# the lower frequency). max_beam_spread leaves out images whose restoring-beam area differs from
# the band's median by more than this fraction (a Jy/beam mosaic needs one resolution).
{tiers}
# Pipelines. A [pipelines.NAME] table defines a pipeline, or replaces the built-in of that name
# (nightly_mosaic, on_demand_mosaic; `contimg pipelines --json` prints them). Check with
# `contimg pipelines check`. Example (uncomment and edit):
#
#   [pipelines.my_nightly]
#   schedule = "0 3 * * *"       # 5-field cron, UTC; slot = the firing time
#   window = "24h"               # ${{slot.start}} = slot - window, ${{slot.end}} = slot
#                                # ${{slot.date}} = the slot's date, ${{slot.night}} = the date of
#                                # ${{slot.start}} (the night the window holds)
#   max_retries = 2              # attempts = max_retries + 1
#   retry = {{ kind = "exponential", base_s = 60, factor = 3, cap_s = 900 }}  # or fixed / none
#   max_active = 1               # executions of this pipeline running at once
#   when_busy = "skip"           # a new slot while max_active run: "skip" (catch up later) or "wait"
#   notify = [{{ on = "failure", channel = "email", to = ["you@example.org"] }},
#             {{ on = "failure", jobs = ["build"], channel = "webhook", url_env = "MY_HOOK" }}]
#
#   [[pipelines.my_nightly.jobs]]
#   id = "plan"
#   type = "mosaic_plan"         # mosaic_plan, mosaic_build, mosaic_qa or command
#   params = {{ tier = "science", start = "${{slot.start}}", end = "${{slot.end}}" }}
#   timeout = "10m"
#
#   [[pipelines.my_nightly.jobs]]
#   id = "build"
#   type = "mosaic_build"
#   params = {{ plan_id = "${{plan.plan_id}}" }}  # an upstream job's output
#   depends_on = ["plan"]
"#,
        db = d.paths.database.display(),
        mosaics = d.paths.mosaics.display(),
        logs = d.paths.logs.display(),
        pg_schema = d.postgres.schema,
        pg_queue = d.postgres.queue,
        pg_accept = toml::Value::Array(
            d.postgres
                .accept_outside
                .iter()
                .map(|s| toml::Value::String(s.clone()))
                .collect()
        ),
        pg_run = toml_list(&d.postgres.run_pipelines),
        threads = d.ingest.threads,
        max_image_mb = d.ingest.max_image_mb,
        mode = d.files.mode,
        max_pixels = d.build.max_pixels,
        pb_cutoff = d.build.pb_cutoff,
        projection = d.build.projection.name(),
        projections = or_list(
            &GridProjection::ALL
                .iter()
                .map(GridProjection::code)
                .collect::<Vec<_>>()
        ),
        telescopes = crate::mosaic::beam::builtin_telescopes().join(", "),
        qa = crate::mosaic::qa::QaConfig::default_toml(),
        tiers = tiers_toml(),
        interpolations = or_list(&Interpolation::names()),
        crontab = d.cron.crontab,
        max_catch_up = d.cron.max_catch_up,
        sendmail = toml_list(&d.notify.sendmail),
        from = d.notify.from,
        email_to = toml_list(&d.notify.email_to),
        webhook_url = d.notify.webhook_url,
        webhook_url_env = d.notify.webhook_url_env,
        command = toml_list(&d.notify.command),
        timeout_s = d.notify.timeout_s,
        max_attempts = d.notify.max_attempts,
        serve_token_file = d.serve.token_file,
        serve_read_token_file = d.serve.read_token_file,
        serve_hosts = toml_list(&d.serve.allowed_hosts),
        serve_pipelines = toml_list(&d.serve.pipelines),
    )
}

/// `a, b, c or d`.
fn or_list(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

fn toml_list(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", items.join(", "))
}

/// The built-in tiers as commented TOML tables (commented out: they are the defaults).
fn tiers_toml() -> String {
    let mut out = String::new();
    for t in tiers::builtin() {
        out.push_str(&format!(
            "# {desc}\n# [tiers.{name}]\n# max_images = {mi}\n# max_rms_factor = {factor:?}\n\
             # (max_rms_jy: unset)\n# (frequency_hz: unset)\n# max_band_spread = {band:?}\n\
             # max_beam_spread = {beam:?}\n# interpolation = \"{interp}\"\n\
             # require_astrometry = {astro}\n# timeout_minutes = {to}\n\n",
            desc = t.description,
            name = t.name,
            mi = t.max_images,
            factor = t.max_rms_factor,
            band = t.max_band_spread,
            beam = t.max_beam_spread,
            interp = t.interpolation.name(),
            astro = t.require_astrometry,
            to = t.timeout_minutes,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_text_parses_to_default() {
        assert_eq!(parse(&default_toml()).unwrap(), Config::default());
        // The commented tier tables, uncommented, are the built-in values.
        let uncommented: String = default_toml()
            .lines()
            .map(|l| {
                l.strip_prefix("# ")
                    .filter(|r| {
                        r.starts_with("[tiers")
                            || r.split_once(" = ").is_some_and(|(k, _)| {
                                k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                            })
                    })
                    .unwrap_or(l)
            })
            .collect::<Vec<_>>()
            .join("\n");
        let c = parse(&uncommented).unwrap();
        assert_eq!(tiers::resolve(&c.tiers).unwrap(), tiers::builtin());
    }

    #[test]
    fn unknown_key_is_refused_by_name() {
        let err = parse("[paths]\ndatabse = 'x'\n").unwrap_err().to_string();
        assert!(err.contains("databse"), "{err}");
    }

    #[test]
    fn missing_keys_take_defaults() {
        let c = parse("[ingest]\nthreads = 3\n").unwrap();
        assert_eq!(c.ingest.threads, 3);
        assert_eq!(c.paths, Paths::default());
    }

    #[test]
    fn the_example_in_the_default_config_is_a_valid_pipeline() {
        let text: String = default_toml()
            .lines()
            .filter_map(|l| l.strip_prefix("#   "))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(text.contains("[pipelines.my_nightly]"), "{text}");
        let cfg = parse(&text).unwrap();
        let all = crate::pipeline::def::resolve(&cfg.pipelines, crate::workspace::CONFIG_FILE);
        let p = all.iter().find(|p| p.name == "my_nightly").unwrap();
        assert_eq!(crate::pipeline::validate(p), vec![]);
        assert_eq!(p.def.jobs.len(), 2);
    }

    #[test]
    fn a_workspace_written_with_arcsecond_thresholds_still_opens_and_is_told() {
        let text = default_toml().replacen(
            "[qa.tiers.science]\n",
            "[qa.tiers.science]\nastrometry_warn_arcsec = 0.3\nastrometry_fail_arcsec = 0.5\n",
            1,
        );
        let c = parse(&text).unwrap();
        let warnings = c.qa.deprecations();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].contains("astrometry_warn_beams"),
            "{warnings:?}"
        );
        assert_eq!(
            c.qa.thresholds("science").astrometry_warn_beams,
            crate::mosaic::qa::QaConfig::default()
                .thresholds("science")
                .astrometry_warn_beams
        );
        assert!(Config::default().qa.deprecations().is_empty());
    }
}
