//! What an image is, for its primary beam — decided the same way at ingest and at build.
//!
//! Owns: [`ImageKind`] (one pointing, a coadd of many pointings, or a single-dish map), the
//! pointing centre in ICRS ([`pointing_icrs`]: OBSRA/OBSDEC where the header has them, else the
//! reference pixel), whether the pixels are already corrected ([`pb_corrected`]: header cards,
//! HISTORY, and the file names real imagers give corrected images), and the beam images that
//! belong beside an image ([`beam_image_candidates`]: `<stem>.pb.fits`, WSClean's `-beam-0.fits`,
//! CASA's `.pb.fits`).
//!
//! Invariants: everything here is read from the header and the file name only (no pixels, no
//! configuration); a coadd is always treated as corrected; a fact that cannot be read is `None`,
//! never a guess.

use std::path::{Path, PathBuf};

use crate::fits::Header;
use crate::fits::facts;
use crate::mosaic::beam::Telescope;
use crate::wcs::{Frame, Wcs};

/// What kind of image this is, for its primary beam.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "evidence")]
pub enum ImageKind {
    /// One pointing of an array of dishes: attenuated by that pointing's beam.
    Pointing,
    /// A mosaic or survey coadd of many pointings (already corrected; its OBSRA is a field
    /// centre, not a pointing), with the evidence.
    Coadd(String),
    /// A single-dish map (not attenuated by a primary beam), with the evidence.
    SingleDish(String),
}

/// The kind of `h` (read from `path`): a coadd by its header ([`facts::coadd_evidence`]), a
/// single dish by its TELESCOP, else one pointing.
pub fn kind(h: &Header) -> ImageKind {
    if let Some(ev) = facts::coadd_evidence(h) {
        return ImageKind::Coadd(ev);
    }
    if let Some(t) = h.str("TELESCOP").map(str::trim)
        && Telescope::lookup(t) == Some(Telescope::SingleDish)
    {
        return ImageKind::SingleDish(format!("TELESCOP = '{t}' is a single dish"));
    }
    ImageKind::Pointing
}

/// Where a pointing centre came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PointingSource {
    /// OBSRA/OBSDEC (or RA_PNT/DEC_PNT) cards.
    Header,
    /// The WCS reference pixel (imagers that write no pointing put the phase centre there).
    ReferencePixel,
}

/// The pointing centre in ICRS degrees: OBSRA/OBSDEC (in the equatorial frame of the image's
/// equinox; ICRS for a Galactic-frame image) when the header has them, else the sky position of
/// the reference pixel. `None` when neither maps to the sky.
pub fn pointing_icrs(h: &Header, wcs: &Wcs) -> Option<((f64, f64), PointingSource)> {
    if let Some((ra, dec)) = facts::pointing_deg(h) {
        let frame = match wcs.frame() {
            Frame::Galactic => Frame::Icrs,
            f => f,
        };
        return Some((crate::wcs::to_icrs(frame, ra, dec), PointingSource::Header));
    }
    let (x, y) = wcs.crpix0();
    wcs.pix_to_icrs(x, y)
        .map(|p| (p, PointingSource::ReferencePixel))
}

/// The file name without directory, compression suffix and FITS suffix, lower case.
fn stem_lower(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let name = [".gz", ".fz", ".bz2"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(&name)
        .to_string();
    FITS_SUFFIXES
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(&name)
        .to_string()
}

/// The suffixes of FITS images (lower case), as real archives name them (NVAS: `.imfits`).
pub const FITS_SUFFIXES: &[&str] = &[".fits", ".fit", ".fts", ".imfits"];

/// Why the file's name says it is already corrected: WSClean's `-pb` / `-image-pb`, CASA's
/// `.pbcor`.
fn pb_corrected_by_name(path: &Path) -> Option<String> {
    let stem = stem_lower(path);
    let hit = stem.ends_with("-pb") || stem.ends_with(".pbcor") || stem.ends_with("-pbcor");
    hit.then(|| {
        format!(
            "its name ends in '{}' (a corrected image, as WSClean and CASA name them)",
            &stem[stem.rfind(['-', '.']).unwrap_or(0)..]
        )
    })
}

/// Why the image is already primary-beam corrected, if it is: an explicit PBCOR card decides;
/// else a coadd, a correcting task in HISTORY, or a corrected image's file name.
pub fn pb_corrected(path: &Path, h: &Header) -> Option<String> {
    match facts::pb_corrected_evidence(h) {
        Some(facts::PbEvidence::Corrected(ev)) => return Some(ev),
        Some(facts::PbEvidence::NotCorrected) => return None,
        None => {}
    }
    if let ImageKind::Coadd(ev) = kind(h) {
        return Some(ev);
    }
    pb_corrected_by_name(path)
}

/// The beam images that may sit beside `path`, in the order they are looked for:
/// `<stem>.pb.fits`; for WSClean names (`<prefix>-image.fits`, `<prefix>-image-pb.fits`,
/// `<prefix>-pb.fits`) `<prefix>-beam-0.fits` and `<prefix>-beam-I.fits`; for CASA names
/// (`<x>.image.fits`, `<x>.image.pbcor.fits`) `<x>.pb.fits`. Empty for a beam image itself.
pub fn beam_image_candidates(path: &Path) -> Vec<PathBuf> {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return vec![];
    };
    let lower = name.to_ascii_lowercase();
    let cut = [".fits.gz", ".fits", ".fit", ".imfits", ".fts"]
        .iter()
        .find_map(|s| lower.strip_suffix(s).map(str::len))
        .unwrap_or(name.len());
    let stem = &name[..cut];
    let ls = stem.to_ascii_lowercase();
    if ls.ends_with(".pb") || ls.contains("-beam-") {
        return vec![];
    }
    let mut out = vec![path.with_file_name(format!("{stem}.pb.fits"))];
    for wsclean in ["-image-pb", "-image", "-pb"] {
        if ls.ends_with(wsclean) {
            let prefix = &stem[..stem.len() - wsclean.len()];
            out.push(path.with_file_name(format!("{prefix}-beam-0.fits")));
            out.push(path.with_file_name(format!("{prefix}-beam-I.fits")));
            break;
        }
    }
    for casa in [".image.pbcor", ".image"] {
        if ls.ends_with(casa) {
            let prefix = &stem[..stem.len() - casa.len()];
            out.push(path.with_file_name(format!("{prefix}.pb.fits")));
            break;
        }
    }
    out.dedup();
    out
}

/// The first beam image of [`beam_image_candidates`] that exists.
pub fn beam_image(path: &Path) -> Option<PathBuf> {
    beam_image_candidates(path)
        .into_iter()
        .find(|p| p.is_file())
}

/// Whether a directory walk ingests this file: FITS names (any case, `.gz`/`.fz` too), but not
/// the beam images and auxiliary products that sit beside images (`*.pb.fits`, WSClean's
/// `-beam-N`, `-psf`, `-dirty`, `-residual`, `-model`; CASA's `.psf`, `.residual`, `.model`,
/// `.sumwt`; our own weight and noise maps).
pub fn looks_like_image(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let bare = [".gz", ".fz", ".bz2"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(&name);
    if !FITS_SUFFIXES.iter().any(|e| bare.ends_with(e)) {
        return false;
    }
    let stem = stem_lower(path);
    let aux_dot = [
        ".pb",
        ".weight",
        ".noise",
        ".psf",
        ".residual",
        ".model",
        ".sumwt",
    ];
    let aux_dash = ["-psf", "-dirty", "-residual", "-model"];
    let aux = aux_dot
        .iter()
        .any(|m| stem.ends_with(m) || stem.contains(&format!("{m}.")))
        || aux_dash.iter().any(|m| stem.ends_with(m))
        || stem.contains("-beam-");
    !aux
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wsclean_and_casa_names_give_their_beam_images_and_corrections() {
        let p = Path::new("/d/field-MFS-image-pb.fits");
        assert!(pb_corrected_by_name(p).is_some());
        let c = beam_image_candidates(p);
        assert!(
            c.contains(&PathBuf::from("/d/field-MFS-beam-0.fits")),
            "{c:?}"
        );
        assert_eq!(c[0], PathBuf::from("/d/field-MFS-image-pb.pb.fits"));
        let p = Path::new("/d/field-image.fits");
        assert!(pb_corrected_by_name(p).is_none());
        assert!(beam_image_candidates(p).contains(&PathBuf::from("/d/field-beam-0.fits")));
        let p = Path::new("/d/m31.image.pbcor.fits");
        assert!(pb_corrected_by_name(p).is_some());
        assert!(beam_image_candidates(p).contains(&PathBuf::from("/d/m31.pb.fits")));
        assert!(beam_image_candidates(Path::new("/d/x-beam-0.fits")).is_empty());
        assert!(beam_image_candidates(Path::new("/d/x.pb.fits")).is_empty());
    }

    #[test]
    fn directory_walks_take_images_and_leave_their_companions() {
        for yes in [
            "a.fits",
            "A.FITS",
            "b.fits.gz",
            "c.fit",
            "d.imfits",
            "e-image.fits",
            "e-image-pb.fits",
            "1934-638LModel.fits.gz",
            "x.fts.fz",
        ] {
            assert!(looks_like_image(Path::new(yes)), "{yes}");
        }
        for no in [
            "a.pb.fits",
            "e-beam-0.fits",
            "e-psf.fits",
            "e-dirty.fits",
            "e-model.fits",
            "e-residual.fits",
            "m.weight.fits",
            "m.noise.fits",
            "x.psf.fits",
            "notes.txt",
            "a.fits.json",
        ] {
            assert!(!looks_like_image(Path::new(no)), "{no}");
        }
    }
}
