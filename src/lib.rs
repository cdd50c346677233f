//! contimg: plan, build, quality-check and record radio continuum mosaics.
//!
//! Every step is a library function; the subcommands under [`cli`] parse arguments, check them and
//! call these functions, and the pipeline runner calls the same functions from queued tasks.

pub mod beam;
pub mod build;
pub mod cli;
pub mod config;
pub mod cron;
pub mod fits;
pub mod fsutil;

pub mod ingest;
pub mod manifest;
pub mod mosaic;
pub mod notify;
pub mod pipeline;
pub mod plan;
pub mod qa;
pub mod queue;
pub mod sim;
pub mod stats;
pub mod store;
pub mod tiers;
pub mod wcs;
pub mod workspace;
