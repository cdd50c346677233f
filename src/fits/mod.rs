//! Reading and writing FITS images through `fitsio` (cfitsio built from source).

pub mod facts;
pub mod header;
pub mod read;
pub mod write;

pub use header::{Card, Header, Value};
