//! contimg: plan, build, quality-check and record radio continuum mosaics.
//!
//! Every step is a library function; the subcommands under [`cli`] parse arguments, check them and
//! call these functions, and the pipeline runner calls the same functions from queued tasks.

pub mod cli;
pub mod fits;
pub mod mosaic;
pub mod queue;
pub mod sim;
pub mod wcs;
