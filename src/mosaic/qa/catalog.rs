//! Catalogues: reading a reference catalogue (CSV, FITS binary table or VOTable, as VizieR
//! serves them; VOTables with TABLEDATA) and writing the found sources beside the mosaic (CSV and FITS binary table).
//!
//! Column recognition is by name, case-insensitively and ignoring spaces, underscores, dots and
//! brackets: RA from `ra`, `ra_deg`, `RAJ2000`, `RA(2000)`, `RA_ICRS`, `ALPHA_J2000`…; Dec likewise;
//! flux (optional) from `flux`, `peak`, `PEAK INT`, `S1.4`, `int_flux`, `total_flux`…; or exactly
//! the columns a [`CatalogSettings`] names (`qa --ra-column …`, `[qa.catalogues.NAME]`). The chosen
//! columns are reported. Positions are degrees, or sexagesimal strings (RA in hours); a flux whose
//! column name or unit says mJy is converted to Jy. The catalogue's resolution (for the match
//! radius) comes from the settings, else a `BMAJ` card (degrees) of a FITS table, a VOTable
//! `PARAM` named `beam_arcsec`/`BMAJ`/`resolution` (with its unit), or a CSV comment line
//! `# beam_arcsec = 45`. The frequency of its fluxes comes from the settings, a CSV comment
//! `# frequency_hz = 1.4e9`, or the flux column's name (`S1.4` is 1.4 GHz, `S843` 843 MHz).
//! What a catalogue leaves unsaid is filled from the survey its file name names, when it names
//! one of [`KNOWN_SURVEYS`] (NVSS, FIRST, SUMSS, VLSS, TGSS, RACS, WENSS).
//!
//! Invariants: every returned row has finite RA in [0, 360) and Dec in [−90, 90]; rows that
//! cannot be read are skipped and counted, never guessed; CSV goes through a real CSV parser
//! (quoted fields with commas, `#` comment lines), never a split on commas.

use std::path::{Path, PathBuf};

use fitsio::FitsFile;
use fitsio::hdu::HduInfo;
use fitsio::tables::{ColumnDataType, ColumnDescription};
use serde::{Deserialize, Serialize};

use super::sources::Source;
use crate::fits::write::{FitsWriteError, write_bytes_atomic};

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{path}: cannot read the reference catalogue: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a readable CSV catalogue: {source}")]
    Csv {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },
    #[error("{path}: not a readable FITS table: {source}")]
    Fits {
        path: PathBuf,
        #[source]
        source: fitsio::errors::Error,
    },
    #[error("{path}: not a readable VOTable (XML): {source}")]
    Xml {
        path: PathBuf,
        #[source]
        source: roxmltree::Error,
    },
    #[error("{path}: {what}; give a CSV, FITS table or VOTable catalogue")]
    NoTable { path: PathBuf, what: String },
    #[error(
        "{path}: no {what} column among {columns}; name it ra/dec (degrees) or RAJ2000/DEJ2000, or \
         choose one with `qa --{flag}-column NAME`"
    )]
    NoColumn {
        path: PathBuf,
        what: &'static str,
        flag: &'static str,
        columns: String,
    },
    #[error(
        "{path}: no column named {name:?} (asked for as the {what} column); columns: {columns}"
    )]
    UnknownColumn {
        path: PathBuf,
        what: &'static str,
        name: String,
        columns: String,
    },
    #[error("{path}: cannot write the source catalogue: {source}")]
    WriteFits {
        path: PathBuf,
        #[source]
        source: fitsio::errors::Error,
    },
    #[error("{path}: cannot write the source catalogue: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: FitsWriteError,
    },
    #[error("{path}: cannot put the source catalogue in place: {source}; check the directory")]
    Rename {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl CatalogError {
    /// Whether the user's input is at fault (an unreadable or unsuitable catalogue), not the
    /// machine (writing the products).
    pub fn is_input(&self) -> bool {
        !matches!(
            self,
            CatalogError::WriteFits { .. }
                | CatalogError::Write { .. }
                | CatalogError::Rename { .. }
        )
    }
}

/// What the user says about one reference catalogue (`[qa.catalogues."FILE NAME"]`, and the
/// `qa --*-column` flags): column choices and its resolution and position error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogSettings {
    pub ra_column: Option<String>,
    pub dec_column: Option<String>,
    pub flux_column: Option<String>,
    /// The catalogue's restoring beam FWHM (arcsec), e.g. 45 for NVSS.
    pub beam_arcsec: Option<f64>,
    /// The catalogue's 1σ position error per axis (arcsec).
    pub position_error_arcsec: Option<f64>,
    /// The frequency (Hz) of the catalogue's fluxes, e.g. 1.4e9 for NVSS.
    pub frequency_hz: Option<f64>,
}

impl CatalogSettings {
    /// `self` with the fields `over` sets replaced.
    pub fn overlaid(&self, over: &CatalogSettings) -> CatalogSettings {
        CatalogSettings {
            ra_column: over.ra_column.clone().or_else(|| self.ra_column.clone()),
            dec_column: over.dec_column.clone().or_else(|| self.dec_column.clone()),
            flux_column: over
                .flux_column
                .clone()
                .or_else(|| self.flux_column.clone()),
            beam_arcsec: over.beam_arcsec.or(self.beam_arcsec),
            position_error_arcsec: over.position_error_arcsec.or(self.position_error_arcsec),
            frequency_hz: over.frequency_hz.or(self.frequency_hz),
        }
    }
}

/// Radio surveys whose catalogues are recognised by file name when the catalogue and the
/// settings say nothing: (name, frequency Hz, resolution FWHM arcsec, 1σ position error arcsec).
pub const KNOWN_SURVEYS: &[(&str, f64, f64, f64)] = &[
    ("NVSS", 1.4e9, 45.0, 1.0),
    ("FIRST", 1.4e9, 5.4, 0.5),
    ("SUMSS", 843e6, 45.0, 1.5),
    ("VLSS", 73.8e6, 75.0, 3.0),
    ("TGSS", 147.5e6, 25.0, 2.0),
    ("RACS", 887.5e6, 25.0, 1.0),
    ("WENSS", 325e6, 54.0, 1.5),
];

/// The survey a catalogue's file name names, if any (case-insensitive, first match).
fn known_survey(path: &Path) -> Option<(f64, f64, f64)> {
    let name = path.file_name()?.to_string_lossy().to_ascii_uppercase();
    KNOWN_SURVEYS
        .iter()
        .find(|(n, ..)| name.contains(n))
        .map(|&(_, f, b, e)| (f, b, e))
}

/// The frequency a flux column's name states, e.g. `S1.4` → 1.4 GHz, `S843` → 843 MHz,
/// `S150MHz` → 150 MHz.
fn column_frequency_hz(name: &str) -> Option<f64> {
    let lower = name.trim().to_ascii_lowercase();
    let rest = lower.strip_prefix('s')?.trim_start_matches(['_', ' ']);
    let digits: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let v: f64 = digits.parse().ok()?;
    let unit = rest[digits.len()..].trim_start_matches(['_', ' ']);
    if unit.starts_with("ghz") {
        Some(v * 1e9)
    } else if unit.starts_with("mhz") {
        Some(v * 1e6)
    } else if unit.is_empty() || unit.starts_with("mjy") || unit.starts_with("jy") {
        // Bare numbers: GHz below 100 (S1.4, S20), MHz above (S843, S150).
        Some(if v < 100.0 { v * 1e9 } else { v * 1e6 })
    } else {
        None
    }
}

impl Reference {
    /// Fills what the catalogue did not say from the survey its file name names (NVSS, FIRST,
    /// SUMSS, VLSS, TGSS, RACS, WENSS) and the frequency its flux column's name states.
    fn fill_known(&mut self) {
        if self.frequency_hz.is_none() {
            self.frequency_hz = column_frequency_hz(&self.columns[2]);
        }
        if let Some((f, b, e)) = known_survey(&self.path) {
            self.frequency_hz.get_or_insert(f);
            self.beam_arcsec.get_or_insert(b);
            self.position_error_arcsec.get_or_insert(e);
        }
    }
}

/// A reference catalogue in memory (ICRS degrees; flux in Jy when known).
#[derive(Debug, Clone, Default)]
pub struct Reference {
    pub path: PathBuf,
    /// "csv", "fits" or "votable".
    pub format: &'static str,
    pub ra: Vec<f64>,
    pub dec: Vec<f64>,
    pub flux: Option<Vec<f64>>,
    /// Rows skipped because a position could not be read.
    pub skipped: usize,
    /// Which columns were used, for the report.
    pub columns: [String; 3],
    /// The catalogue's resolution (FWHM, arcsec), when known.
    pub beam_arcsec: Option<f64>,
    /// The catalogue's 1σ position error per axis (arcsec), when known.
    pub position_error_arcsec: Option<f64>,
    /// The frequency (Hz) of its fluxes, when known.
    pub frequency_hz: Option<f64>,
}

fn norm(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase()
}

const RA_NAMES: &[&str] = &[
    "ra",
    "radeg",
    "raj2000",
    "ra2000",
    "raicrs",
    "alphaj2000",
    "alpha",
    "raj2000deg",
    "rad",
    "rightascension",
    "racen",
];
const DEC_NAMES: &[&str] = &[
    "dec",
    "decdeg",
    "dej2000",
    "decj2000",
    "dec2000",
    "deicrs",
    "decicrs",
    "deltaj2000",
    "delta",
    "de",
    "declination",
    "deccen",
];
const FLUX_NAMES: &[&str] = &[
    "flux",
    "fluxjy",
    "peak",
    "peakint",
    "peakjy",
    "peakflux",
    "fluxpeak",
    "speak",
    "sint",
    "intflux",
    "fluxint",
    "totalflux",
    "fluxtotal",
    "s14",
    "s",
    "fluxmjy",
    "peakmjy",
    "s14mjy",
    // FIRST (VizieR VIII/92): Fpeak, Fint in mJy.
    "fpeak",
    "fint",
    "fluxdensity",
];
const BEAM_NAMES: &[&str] = &["beamarcsec", "beam", "bmaj", "resolution", "fwhm"];

/// The indices of the RA, Dec and (optional) flux columns among `names`.
struct Chosen {
    ra: usize,
    dec: usize,
    flux: Option<usize>,
}

impl Chosen {
    fn pick(path: &Path, names: &[String], s: &CatalogSettings) -> Result<Chosen, CatalogError> {
        let normed: Vec<String> = names.iter().map(|n| norm(n)).collect();
        let columns = || names.join(", ");
        let named = |what: &'static str, name: &String| {
            names
                .iter()
                .position(|n| n.eq_ignore_ascii_case(name.trim()))
                .or_else(|| normed.iter().position(|n| *n == norm(name)))
                .ok_or_else(|| CatalogError::UnknownColumn {
                    path: path.into(),
                    what,
                    name: name.clone(),
                    columns: columns(),
                })
        };
        let guess = |wanted: &[&str]| {
            wanted
                .iter()
                .find_map(|w| normed.iter().position(|n| n == w))
        };
        let find =
            |what: &'static str, flag: &'static str, over: &Option<String>, wanted| match over {
                Some(name) => named(what, name),
                None => guess(wanted).ok_or_else(|| CatalogError::NoColumn {
                    path: path.into(),
                    what,
                    flag,
                    columns: columns(),
                }),
            };
        Ok(Chosen {
            ra: find("RA", "ra", &s.ra_column, RA_NAMES)?,
            dec: find("Dec", "dec", &s.dec_column, DEC_NAMES)?,
            flux: match &s.flux_column {
                Some(name) => Some(named("flux", name)?),
                None => guess(FLUX_NAMES),
            },
        })
    }

    fn names(&self, names: &[String]) -> [String; 3] {
        [
            names[self.ra].clone(),
            names[self.dec].clone(),
            self.flux.map(|f| names[f].clone()).unwrap_or_default(),
        ]
    }
}

/// The factor to Jy of a flux column, from its name or unit.
fn flux_scale(name: &str, unit: &str) -> f64 {
    let n = name.to_ascii_lowercase();
    let u = unit.trim().to_ascii_lowercase();
    if n.contains("mjy") || u.starts_with("mjy") {
        1e-3
    } else if u.starts_with("ujy") || u.starts_with("µjy") {
        1e-6
    } else {
        1.0
    }
}

/// An angle in arcsec from a value and its unit (deg, arcmin, arcsec; degrees when unitless).
fn arcsec_from(value: f64, unit: &str) -> f64 {
    match unit.trim().to_ascii_lowercase().as_str() {
        "arcsec" | "\"" | "asec" => value,
        "arcmin" | "'" | "amin" => value * 60.0,
        _ => value * 3600.0,
    }
}

/// Parses degrees, or sexagesimal "h:m:s"/"d:m:s" (space or colon separated).
fn parse_angle(s: &str, hours: bool) -> Option<f64> {
    let s = s.trim().trim_matches('"');
    if let Ok(v) = s.parse::<f64>() {
        return Some(v);
    }
    let parts: Vec<&str> = s
        .split(|c: char| c == ':' || c.is_whitespace() || "hmsd'\"".contains(c))
        .filter(|p| !p.is_empty())
        .collect();
    if parts.len() < 2 || parts.len() > 3 {
        return None;
    }
    let neg = parts[0].starts_with('-');
    let mut v = 0.0;
    for (i, p) in parts.iter().enumerate() {
        let x: f64 = p.trim_start_matches(['-', '+']).parse().ok()?;
        v += x / 60f64.powi(i as i32);
    }
    let v = if neg { -v } else { v };
    Some(if hours { v * 15.0 } else { v })
}

/// Row-by-row filling of a [`Reference`] from text or numeric cells.
struct Rows {
    r: Reference,
    chosen: Chosen,
    flux_scale: f64,
}

impl Rows {
    fn new(
        path: &Path,
        format: &'static str,
        names: &[String],
        units: &[String],
        s: &CatalogSettings,
    ) -> Result<Rows, CatalogError> {
        let chosen = Chosen::pick(path, names, s)?;
        let flux_scale = chosen.flux.map_or(1.0, |f| {
            flux_scale(&names[f], units.get(f).map_or("", |u| u.as_str()))
        });
        Ok(Rows {
            r: Reference {
                path: path.into(),
                format,
                columns: chosen.names(names),
                flux: chosen.flux.map(|_| Vec::new()),
                beam_arcsec: s.beam_arcsec,
                position_error_arcsec: s.position_error_arcsec,
                frequency_hz: s.frequency_hz,
                ..Default::default()
            },
            chosen,
            flux_scale,
        })
    }

    /// Adds a row given as text cells (sexagesimal allowed).
    fn push_text(&mut self, cell: impl Fn(usize) -> Option<String>) {
        let ra = cell(self.chosen.ra).and_then(|v| parse_angle(&v, true));
        let dec = cell(self.chosen.dec).and_then(|v| parse_angle(&v, false));
        let flux = self.chosen.flux.map(|c| {
            cell(c)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        });
        self.push(ra, dec, flux);
    }

    fn push(&mut self, ra: Option<f64>, dec: Option<f64>, flux: Option<f64>) {
        let (Some(ra), Some(dec)) = (ra, dec) else {
            self.r.skipped += 1;
            return;
        };
        if !(ra.is_finite() && dec.is_finite() && dec.abs() <= 90.0) {
            self.r.skipped += 1;
            return;
        }
        self.r.ra.push(ra.rem_euclid(360.0));
        self.r.dec.push(dec);
        if let (Some(fl), Some(f)) = (self.r.flux.as_mut(), flux) {
            fl.push(f * self.flux_scale);
        }
    }
}

/// Reads a CSV catalogue: `#` lines are comments, the first record is the header, quoted fields
/// may hold commas; a comment `# beam_arcsec = X` gives the catalogue's resolution.
pub fn read_csv(path: &Path, settings: &CatalogSettings) -> Result<Reference, CatalogError> {
    let text = std::fs::read(path).map_err(|source| CatalogError::Io {
        path: path.into(),
        source,
    })?;
    let csv_err = |source| CatalogError::Csv {
        path: path.into(),
        source,
    };
    let mut reader = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_slice());
    let names: Vec<String> = reader
        .headers()
        .map_err(csv_err)?
        .iter()
        .map(str::to_string)
        .collect();
    if names.iter().all(std::string::String::is_empty) {
        return Err(CatalogError::NoTable {
            path: path.into(),
            what: "the file is empty".into(),
        });
    }
    let mut rows = Rows::new(path, "csv", &names, &[], settings)?;
    for record in reader.records() {
        let record = record.map_err(csv_err)?;
        rows.push_text(|i| record.get(i).map(str::to_string));
    }
    if rows.r.beam_arcsec.is_none() {
        rows.r.beam_arcsec = csv_comment(&text, "beamarcsec");
    }
    if rows.r.frequency_hz.is_none() {
        rows.r.frequency_hz = csv_comment(&text, "frequencyhz");
    }
    Ok(rows.r)
}

/// `# beam_arcsec = 45` or `# frequency_hz = 1.4e9` (or `:`) in a CSV comment line: the value
/// of the key whose normalised name is `key`.
fn csv_comment(text: &[u8], key: &str) -> Option<f64> {
    String::from_utf8_lossy(text).lines().find_map(|l| {
        let body = l.trim_start().strip_prefix('#')?;
        let (k, value) = body.split_once(['=', ':'])?;
        (norm(k) == key)
            .then(|| value.trim().parse::<f64>().ok())
            .flatten()
    })
}

/// Reads the first binary or ASCII table HDU of a FITS file (gzip is fine).
pub fn read_fits(path: &Path, settings: &CatalogSettings) -> Result<Reference, CatalogError> {
    let fits_err = |source| CatalogError::Fits {
        path: path.into(),
        source,
    };
    let mut f = FitsFile::open(path).map_err(fits_err)?;
    for i in 1..64 {
        let Ok(hdu) = f.hdu(i) else {
            break;
        };
        let HduInfo::TableInfo {
            column_descriptions,
            ..
        } = &hdu.info
        else {
            continue;
        };
        let names: Vec<String> = column_descriptions.iter().map(|c| c.name.clone()).collect();
        let units: Vec<String> = (1..=names.len())
            .map(|c| {
                hdu.read_key::<String>(&mut f, &format!("TUNIT{c}"))
                    .unwrap_or_default()
            })
            .collect();
        let mut rows = Rows::new(path, "fits", &names, &units, settings)?;
        let mut read = |c: usize| hdu.read_col::<f64>(&mut f, &names[c]).map_err(fits_err);
        let ra = read(rows.chosen.ra)?;
        let dec = read(rows.chosen.dec)?;
        let flux = rows.chosen.flux.map(&mut read).transpose()?;
        for k in 0..ra.len() {
            rows.push(Some(ra[k]), Some(dec[k]), flux.as_ref().map(|f| f[k]));
        }
        if rows.r.beam_arcsec.is_none() {
            rows.r.beam_arcsec = hdu
                .read_key::<f64>(&mut f, "BMAJ")
                .ok()
                .filter(|b| *b > 0.0)
                .map(|b| b * 3600.0);
        }
        return Ok(rows.r);
    }
    Err(CatalogError::NoTable {
        path: path.into(),
        what: "no table HDU in the FITS file".into(),
    })
}

/// Reads the first TABLE of a VOTable with inline TABLEDATA (what VizieR and astropy write by
/// default). BINARY/BINARY2 streams are refused with advice.
pub fn read_votable(path: &Path, settings: &CatalogSettings) -> Result<Reference, CatalogError> {
    let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Io {
        path: path.into(),
        source,
    })?;
    let doc = roxmltree::Document::parse(&text).map_err(|source| CatalogError::Xml {
        path: path.into(),
        source,
    })?;
    let no_table = |what: &str| CatalogError::NoTable {
        path: path.into(),
        what: what.into(),
    };
    let table = doc
        .descendants()
        .find(|n| n.has_tag_name("TABLE"))
        .ok_or_else(|| no_table("no TABLE in the VOTable"))?;
    let elements = |name: &'static str| table.children().filter(move |n| n.has_tag_name(name));
    let names: Vec<String> = elements("FIELD")
        .map(|f| f.attribute("name").unwrap_or("").to_string())
        .collect();
    let units: Vec<String> = elements("FIELD")
        .map(|f| f.attribute("unit").unwrap_or("").to_string())
        .collect();
    let beam = elements("PARAM")
        .filter(|p| BEAM_NAMES.contains(&norm(p.attribute("name").unwrap_or("")).as_str()))
        .find_map(|p| {
            let v: f64 = p.attribute("value")?.trim().parse().ok()?;
            Some(arcsec_from(v, p.attribute("unit").unwrap_or("deg")))
        });
    let mut rows = Rows::new(path, "votable", &names, &units, settings)?;
    let data = table
        .descendants()
        .find(|n| n.has_tag_name("DATA"))
        .ok_or_else(|| no_table("the TABLE has no DATA"))?;
    let tabledata = data
        .children()
        .find(|n| n.has_tag_name("TABLEDATA"))
        .ok_or_else(|| {
            no_table(
                "the TABLE's data are BINARY, BINARY2 or FITS, not TABLEDATA (save it with \
                 astropy's votable.writeto(..., tabledata_format='tabledata') or fetch it from \
                 VizieR as VOTable)",
            )
        })?;
    for tr in tabledata.children().filter(|n| n.has_tag_name("TR")) {
        let cells: Vec<String> = tr
            .children()
            .filter(|n| n.has_tag_name("TD"))
            .map(|td| td.text().unwrap_or("").trim().to_string())
            .collect();
        rows.push_text(|i| cells.get(i).filter(|c| !c.is_empty()).cloned());
    }
    if rows.r.beam_arcsec.is_none() {
        rows.r.beam_arcsec = beam;
    }
    Ok(rows.r)
}

/// Reads a reference catalogue, choosing the reader from the file's first bytes: FITS
/// (`SIMPLE`, or gzip), VOTable (XML), else CSV.
pub fn read_reference(path: &Path, settings: &CatalogSettings) -> Result<Reference, CatalogError> {
    use std::io::Read;
    let mut head = [0u8; 512];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|source| CatalogError::Io {
            path: path.into(),
            source,
        })?;
    let head = &head[..n];
    let is_fits = head.starts_with(b"SIMPLE") || head.starts_with(&[0x1f, 0x8b]);
    let text = String::from_utf8_lossy(head);
    let is_xml = text
        .trim_start_matches('\u{feff}')
        .trim_start()
        .starts_with('<');
    let mut r = if is_fits {
        read_fits(path, settings)
    } else if is_xml {
        read_votable(path, settings)
    } else {
        read_csv(path, settings)
    }?;
    r.fill_known();
    Ok(r)
}

/// The floating-point columns of the source catalogue, in order after `id`: name, FITS unit
/// (`TUNIT`, FITS/IAU unit strings that astropy reads; empty for a pure number), what the column
/// holds (the `TUNIT` card's comment), and the value of one source. The CSV has the same
/// columns, then `npix` and `fit`; the FITS table then `npix` and `gauss_fit` (1 for a Gaussian
/// fit, 0 for a centroid).
type Column = (&'static str, &'static str, &'static str, fn(&Source) -> f64);
const COLUMNS: [Column; 19] = [
    ("ra_deg", "deg", "ICRS right ascension", |s| s.ra_deg),
    ("dec_deg", "deg", "ICRS declination", |s| s.dec_deg),
    ("x", "pix", "0-based pixel position along NAXIS1", |s| s.x),
    ("y", "pix", "0-based pixel position along NAXIS2", |s| s.y),
    ("peak_jy", "Jy/beam", "peak above the background", |s| {
        s.peak_jy
    }),
    (
        "int_jy",
        "Jy",
        "integrated flux: fitted Gaussian volume / beam",
        |s| s.int_jy,
    ),
    ("island_jy", "Jy", "island sum / beam area", |s| s.island_jy),
    ("rms_jy", "Jy/beam", "local rms noise", |s| s.rms_jy),
    ("snr", "", "peak / local rms", |s| s.snr),
    (
        "maj_arcsec",
        "arcsec",
        "fitted FWHM major axis (NaN: centroid)",
        |s| s.maj_arcsec,
    ),
    (
        "min_arcsec",
        "arcsec",
        "fitted FWHM minor axis (NaN: centroid)",
        |s| s.min_arcsec,
    ),
    (
        "pa_deg",
        "deg",
        "fitted major axis PA, east of north",
        |s| s.pa_deg,
    ),
    (
        "ra_err_arcsec",
        "arcsec",
        "1 sigma error of RA*cos(Dec), Condon 1997",
        |s| s.ra_err_arcsec,
    ),
    (
        "dec_err_arcsec",
        "arcsec",
        "1 sigma error of Dec, Condon 1997",
        |s| s.dec_err_arcsec,
    ),
    (
        "peak_err_jy",
        "Jy/beam",
        "1 sigma error of peak_jy, Condon 1997",
        |s| s.peak_err_jy,
    ),
    (
        "int_err_jy",
        "Jy",
        "1 sigma error of int_jy, Condon 1997",
        |s| s.int_err_jy,
    ),
    (
        "maj_err_arcsec",
        "arcsec",
        "1 sigma error of maj_arcsec, Condon 1997",
        |s| s.maj_err_arcsec,
    ),
    (
        "min_err_arcsec",
        "arcsec",
        "1 sigma error of min_arcsec, Condon 1997",
        |s| s.min_err_arcsec,
    ),
    (
        "pa_err_deg",
        "deg",
        "1 sigma error of pa_deg (90: unconstrained)",
        |s| s.pa_err_deg,
    ),
];

/// How many decimals (or significant digits, `e`) each CSV column is written with.
fn csv_cell(name: &str, v: f64) -> String {
    match name {
        "ra_deg" | "dec_deg" => format!("{v:.7}"),
        "x" | "y" => format!("{v:.3}"),
        "peak_jy" | "int_jy" | "island_jy" | "peak_err_jy" | "int_err_jy" => format!("{v:.6e}"),
        "rms_jy" => format!("{v:.4e}"),
        "ra_err_arcsec" | "dec_err_arcsec" | "maj_err_arcsec" | "min_err_arcsec" => {
            format!("{v:.4}")
        }
        _ => format!("{v:.2}"),
    }
}

/// The found sources as CSV text: `id`, the [`COLUMNS`] up to `snr`, `npix`, `maj_arcsec`,
/// `min_arcsec`, `fit` (the fourteen columns as they always were), then the position angle and
/// the errors.
pub fn sources_csv(sources: &[Source]) -> String {
    // The original order: id, ra_deg … snr, npix, maj_arcsec, min_arcsec, fit; new ones after.
    let (head, shape, tail) = (&COLUMNS[..9], &COLUMNS[9..11], &COLUMNS[11..]);
    let names = |cols: &[Column]| cols.iter().map(|c| c.0).collect::<Vec<_>>().join(",");
    let mut out = String::with_capacity(256 * (sources.len() + 1));
    out.push_str(&format!(
        "id,{},npix,{},fit,{}\n",
        names(head),
        names(shape),
        names(tail)
    ));
    let cells = |s: &Source, cols: &[Column]| {
        cols.iter()
            .map(|(name, _, _, get)| csv_cell(name, get(s)))
            .collect::<Vec<_>>()
            .join(",")
    };
    for s in sources {
        out.push_str(&format!(
            "{},{},{},{},{},{}\n",
            s.id,
            cells(s, head),
            s.npix,
            cells(s, shape),
            s.fit,
            cells(s, tail)
        ));
    }
    out
}

/// Writes the CSV atomically.
pub fn write_sources_csv(path: &Path, sources: &[Source]) -> Result<(), CatalogError> {
    write_bytes_atomic(path, sources_csv(sources).as_bytes()).map_err(|source| {
        CatalogError::Write {
            path: path.into(),
            source,
        }
    })
}

/// Writes the sources as a FITS binary table (extension `SOURCES`), atomically: `id`, the
/// [`COLUMNS`] (each with its `TUNIT`, the card's comment saying what it holds), `npix`
/// (`TUNIT` pix) and `gauss_fit`.
pub fn write_sources_fits(path: &Path, sources: &[Source]) -> Result<(), CatalogError> {
    // The one write discipline (fsutil): a fresh temporary removed unless committed, synced,
    // given the workspace's file mode, renamed into place.
    let rename = |source| CatalogError::Rename {
        path: path.into(),
        source,
    };
    let tmp = crate::fsutil::TempGuard::new(crate::fsutil::temp_path(path).map_err(rename)?);
    sources_table(tmp.path(), sources).map_err(|source| CatalogError::WriteFits {
        path: path.into(),
        source,
    })?;
    if let Ok(f) = std::fs::File::open(tmp.path()) {
        f.sync_all().map_err(rename)?;
    }
    tmp.commit(path).map_err(rename)
}

/// The `SOURCES` table written to `tmp`.
fn sources_table(tmp: &Path, sources: &[Source]) -> Result<(), fitsio::errors::Error> {
    let mut f = FitsFile::create(tmp).open()?;
    let column = |name: &str, t: ColumnDataType| ColumnDescription::new(name).with_type(t).create();
    let mut desc = vec![column("id", ColumnDataType::Long)?];
    for (name, ..) in COLUMNS {
        desc.push(column(name, ColumnDataType::Double)?);
    }
    for c in ["npix", "gauss_fit"] {
        desc.push(column(c, ColumnDataType::Long)?);
    }
    let hdu = f.create_table("SOURCES".to_string(), &desc)?;
    // Column k (1-based) of the table: id is 1, COLUMNS follow, then npix and gauss_fit.
    for (k, (_, unit, what, _)) in COLUMNS.iter().enumerate() {
        if !unit.is_empty() {
            hdu.write_key(&mut f, &format!("TUNIT{}", k + 2), (*unit, *what))?;
        }
    }
    let npix_col = COLUMNS.len() + 2;
    hdu.write_key(
        &mut f,
        &format!("TUNIT{npix_col}"),
        ("pix", "pixels in the island"),
    )?;
    hdu.write_key(
        &mut f,
        "ERRMODEL",
        (
            "Condon 1997",
            "errors: Condon (1997) PASP 109 166, noise only",
        ),
    )?;
    if sources.is_empty() {
        return Ok(());
    }
    let ids: Vec<i32> = sources.iter().map(|s| s.id as i32).collect();
    hdu.write_col(&mut f, "id", &ids)?;
    for (name, _, _, get) in COLUMNS {
        let v: Vec<f64> = sources.iter().map(get).collect();
        hdu.write_col(&mut f, name, &v)?;
    }
    let np: Vec<i32> = sources.iter().map(|s| s.npix as i32).collect();
    hdu.write_col(&mut f, "npix", &np)?;
    let g: Vec<i32> = sources
        .iter()
        .map(|s| i32::from(s.fit == "gauss"))
        .collect();
    hdu.write_col(&mut f, "gauss_fit", &g)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_columns_and_sexagesimal() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.csv");
        std::fs::write(
            &p,
            "# comment\nName,RAJ2000,DEJ2000,S1.4 (mJy)\na,12:00:00,-30:30:00,150\nb,15.5,2.0,20\nc,x,1,1\n",
        )
        .unwrap();
        let r = read_reference(&p, &CatalogSettings::default()).unwrap();
        assert_eq!(r.ra.len(), 2);
        assert!((r.ra[0] - 180.0).abs() < 1e-9 && (r.dec[0] + 30.5).abs() < 1e-9);
        assert!((r.flux.as_ref().unwrap()[0] - 0.15).abs() < 1e-12);
        assert_eq!(r.skipped, 1);
        std::fs::write(&p, "x,y\n1,2\n").unwrap();
        let e = read_reference(&p, &CatalogSettings::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("no RA column") && e.contains("x, y"), "{e}");
    }
}
