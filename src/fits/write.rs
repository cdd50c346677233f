//! Writing FITS images atomically (temporary name, then rename).
