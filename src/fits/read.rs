//! Reading FITS images: header cards and the celestial image plane.
