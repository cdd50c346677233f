//! The steps of a mosaic, each a library function that a subcommand and a queued job call alike:
//! [`ingest`] registers images, [`tiers`] says what a tier allows, [`plan`] selects images for a
//! window, [`build`] turns a plan into a mosaic through the pixel [`engine`], and [`qa`] judges the
//! result. [`sim`] makes synthetic nights [`beam`] holds the primary-beam models they share, and [`observation`] says what an image is
//! for its beam (one pointing, a coadd, a single dish; corrected or not; its pointing centre).
//!
//! These modules may use the queue-free lower layers (store, fits, wcs, manifest, time, stats,
//! fsutil) but never the pipeline layer, the workspace or the command line.

pub mod beam;
pub mod build;
pub mod engine;
pub mod ingest;
pub mod observation;
pub mod plan;
pub mod qa;
pub mod sim;
pub mod tiers;
