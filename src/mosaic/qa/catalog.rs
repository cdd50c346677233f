//! Catalogues: reading a reference catalogue (CSV or FITS binary table) and writing the found
//! sources beside the mosaic (CSV and FITS binary table).
//!
//! Column recognition is by name, case-insensitively and ignoring spaces, underscores, dots and
//! brackets: RA from `ra`, `ra_deg`, `RAJ2000`, `RA(2000)`, `RA_ICRS`, `ALPHA_J2000`…; Dec likewise;
//! flux (optional) from `flux`, `peak`, `PEAK INT`, `S1.4`, `int_flux`, `total_flux`…. Positions
//! are degrees, or sexagesimal strings in CSV (RA in hours); a flux column whose name or unit says
//! mJy is converted to Jy. Invariants: every returned row has finite RA in [0, 360) and Dec in
//! [−90, 90]; rows that cannot be read are skipped and counted, never guessed.

use std::path::{Path, PathBuf};

use fitsio::FitsFile;
use fitsio::hdu::HduInfo;
use fitsio::tables::{ColumnDataType, ColumnDescription};

use super::sources::Source;
use crate::fits::write::{FitsWriteError, write_bytes_atomic};

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{path}: cannot read the reference catalogue: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error(
        "{path}: no {what} column among {columns}; name it ra/dec (degrees) or RAJ2000/DEJ2000"
    )]
    NoColumn {
        path: PathBuf,
        what: &'static str,
        columns: String,
    },
    #[error("{path}: cannot write the source catalogue: {reason}")]
    Write { path: PathBuf, reason: String },
}

/// A reference catalogue in memory (ICRS degrees; flux in Jy when known).
#[derive(Debug, Clone, Default)]
pub struct Reference {
    pub path: PathBuf,
    pub ra: Vec<f64>,
    pub dec: Vec<f64>,
    pub flux: Option<Vec<f64>>,
    /// Rows skipped because a position could not be read.
    pub skipped: usize,
    /// Which columns were used, for the report.
    pub columns: [String; 3],
}

fn norm(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric())
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
];

fn pick(names: &[String], wanted: &[&str]) -> Option<usize> {
    let normed: Vec<String> = names.iter().map(|n| norm(n)).collect();
    wanted
        .iter()
        .find_map(|w| normed.iter().position(|n| n == w))
}

fn mjy(name: &str, unit: &str) -> bool {
    let n = name.to_ascii_lowercase();
    let u = unit.to_ascii_lowercase();
    n.contains("mjy") || u.starts_with("mjy")
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

fn finish(mut r: Reference) -> Reference {
    let mut keep = Vec::with_capacity(r.ra.len());
    for i in 0..r.ra.len() {
        let ok = r.ra[i].is_finite() && r.dec[i].is_finite() && r.dec[i].abs() <= 90.0;
        keep.push(ok);
    }
    let filt = |v: &Vec<f64>| {
        v.iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(x, _)| *x)
            .collect::<Vec<f64>>()
    };
    r.skipped += keep.iter().filter(|k| !**k).count();
    r.ra = filt(&r.ra)
        .into_iter()
        .map(|a| a.rem_euclid(360.0))
        .collect();
    r.dec = filt(&r.dec);
    r.flux = r.flux.as_ref().map(filt);
    r
}

/// Reads a CSV catalogue (first non-`#` line is the header).
pub fn read_csv(path: &Path) -> Result<Reference, CatalogError> {
    let text = std::fs::read_to_string(path).map_err(|e| CatalogError::Read {
        path: path.into(),
        reason: e.to_string(),
    })?;
    let mut lines = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let header = lines.next().ok_or_else(|| CatalogError::Read {
        path: path.into(),
        reason: "the file is empty".into(),
    })?;
    let names: Vec<String> = header
        .split(',')
        .map(|s| s.trim().trim_matches('"').to_string())
        .collect();
    let missing = |what| CatalogError::NoColumn {
        path: path.into(),
        what,
        columns: names.join(", "),
    };
    let ic = pick(&names, RA_NAMES).ok_or_else(|| missing("RA"))?;
    let id = pick(&names, DEC_NAMES).ok_or_else(|| missing("Dec"))?;
    let fc = pick(&names, FLUX_NAMES);
    let scale = fc.map_or(1.0, |f| if mjy(&names[f], "") { 1e-3 } else { 1.0 });
    let mut r = Reference {
        path: path.into(),
        columns: [
            names[ic].clone(),
            names[id].clone(),
            fc.map(|f| names[f].clone()).unwrap_or_default(),
        ],
        flux: fc.map(|_| Vec::new()),
        ..Default::default()
    };
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let get = |i: usize| f.get(i).copied().unwrap_or("");
        let (Some(ra), Some(dec)) = (parse_angle(get(ic), true), parse_angle(get(id), false))
        else {
            r.skipped += 1;
            continue;
        };
        r.ra.push(ra);
        r.dec.push(dec);
        if let (Some(fl), Some(c)) = (r.flux.as_mut(), fc) {
            fl.push(
                get(c)
                    .trim()
                    .parse::<f64>()
                    .map(|v| v * scale)
                    .unwrap_or(f64::NAN),
            );
        }
    }
    Ok(finish(r))
}

/// Reads the first binary or ASCII table HDU of a FITS file (gzip is fine).
pub fn read_fits(path: &Path) -> Result<Reference, CatalogError> {
    let err = |reason: String| CatalogError::Read {
        path: path.into(),
        reason,
    };
    let mut f = FitsFile::open(path).map_err(|e| err(format!("not a FITS file ({e})")))?;
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
        let missing = |what| CatalogError::NoColumn {
            path: path.into(),
            what,
            columns: names.join(", "),
        };
        let ic = pick(&names, RA_NAMES).ok_or_else(|| missing("RA"))?;
        let id = pick(&names, DEC_NAMES).ok_or_else(|| missing("Dec"))?;
        let fc = pick(&names, FLUX_NAMES);
        let read = |f: &mut FitsFile, c: usize| {
            hdu.read_col::<f64>(f, &names[c])
                .map_err(|e| err(format!("column {:?}: {e}", names[c])))
        };
        let ra = read(&mut f, ic)?;
        let dec = read(&mut f, id)?;
        let flux = match fc {
            Some(c) => {
                let unit: String = hdu
                    .read_key::<String>(&mut f, &format!("TUNIT{}", c + 1))
                    .unwrap_or_default();
                let scale = if mjy(&names[c], &unit) { 1e-3 } else { 1.0 };
                Some(read(&mut f, c)?.into_iter().map(|v| v * scale).collect())
            }
            None => None,
        };
        return Ok(finish(Reference {
            path: path.into(),
            ra,
            dec,
            flux,
            skipped: 0,
            columns: [
                names[ic].clone(),
                names[id].clone(),
                fc.map(|c| names[c].clone()).unwrap_or_default(),
            ],
        }));
    }
    Err(err("no table HDU in the file".into()))
}

/// Reads a reference catalogue, choosing the reader from the file's first bytes.
pub fn read_reference(path: &Path) -> Result<Reference, CatalogError> {
    use std::io::Read;
    let mut head = [0u8; 6];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| CatalogError::Read {
            path: path.into(),
            reason: e.to_string(),
        })?;
    let is_fits = (n >= 6 && &head[..6] == b"SIMPLE") || (n >= 2 && head[..2] == [0x1f, 0x8b]);
    if is_fits {
        read_fits(path)
    } else {
        read_csv(path)
    }
}

const CSV_HEADER: &str =
    "id,ra_deg,dec_deg,x,y,peak_jy,int_jy,island_jy,rms_jy,snr,npix,maj_arcsec,min_arcsec,fit";

/// The found sources as CSV text.
pub fn sources_csv(sources: &[Source]) -> String {
    let mut out = String::with_capacity(128 * (sources.len() + 1));
    out.push_str(CSV_HEADER);
    out.push('\n');
    for s in sources {
        out.push_str(&format!(
            "{},{:.7},{:.7},{:.3},{:.3},{:.6e},{:.6e},{:.6e},{:.4e},{:.2},{},{:.2},{:.2},{}\n",
            s.id,
            s.ra_deg,
            s.dec_deg,
            s.x,
            s.y,
            s.peak_jy,
            s.int_jy,
            s.island_jy,
            s.rms_jy,
            s.snr,
            s.npix,
            s.maj_arcsec,
            s.min_arcsec,
            s.fit
        ));
    }
    out
}

/// Writes the CSV atomically.
pub fn write_sources_csv(path: &Path, sources: &[Source]) -> Result<(), CatalogError> {
    write_bytes_atomic(path, sources_csv(sources).as_bytes()).map_err(|e: FitsWriteError| {
        CatalogError::Write {
            path: path.into(),
            reason: e.to_string(),
        }
    })
}

/// Writes the sources as a FITS binary table (extension `SOURCES`), atomically.
pub fn write_sources_fits(path: &Path, sources: &[Source]) -> Result<(), CatalogError> {
    let err = |reason: String| CatalogError::Write {
        path: path.into(),
        reason,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let result = (|| -> Result<(), String> {
        let mut f = FitsFile::create(&tmp).open().map_err(|e| e.to_string())?;
        let dcols = [
            "ra_deg",
            "dec_deg",
            "x",
            "y",
            "peak_jy",
            "int_jy",
            "island_jy",
            "rms_jy",
            "snr",
            "maj_arcsec",
            "min_arcsec",
        ];
        let mut desc = vec![
            ColumnDescription::new("id")
                .with_type(ColumnDataType::Long)
                .create()
                .map_err(|e| e.to_string())?,
        ];
        for c in dcols {
            desc.push(
                ColumnDescription::new(c)
                    .with_type(ColumnDataType::Double)
                    .create()
                    .map_err(|e| e.to_string())?,
            );
        }
        for c in ["npix", "gauss_fit"] {
            desc.push(
                ColumnDescription::new(c)
                    .with_type(ColumnDataType::Long)
                    .create()
                    .map_err(|e| e.to_string())?,
            );
        }
        let hdu = f
            .create_table("SOURCES".to_string(), &desc)
            .map_err(|e| e.to_string())?;
        if sources.is_empty() {
            return Ok(());
        }
        let ids: Vec<i32> = sources.iter().map(|s| s.id as i32).collect();
        hdu.write_col(&mut f, "id", &ids)
            .map_err(|e| e.to_string())?;
        let getters: [fn(&Source) -> f64; 11] = [
            |s| s.ra_deg,
            |s| s.dec_deg,
            |s| s.x,
            |s| s.y,
            |s| s.peak_jy,
            |s| s.int_jy,
            |s| s.island_jy,
            |s| s.rms_jy,
            |s| s.snr,
            |s| s.maj_arcsec,
            |s| s.min_arcsec,
        ];
        for (c, g) in dcols.iter().zip(getters) {
            let v: Vec<f64> = sources.iter().map(g).collect();
            hdu.write_col(&mut f, *c, &v).map_err(|e| e.to_string())?;
        }
        let np: Vec<i32> = sources.iter().map(|s| s.npix as i32).collect();
        hdu.write_col(&mut f, "npix", &np)
            .map_err(|e| e.to_string())?;
        let g: Vec<i32> = sources
            .iter()
            .map(|s| i32::from(s.fit == "gauss"))
            .collect();
        hdu.write_col(&mut f, "gauss_fit", &g)
            .map_err(|e| e.to_string())?;
        Ok(())
    })();
    match result {
        Ok(()) => std::fs::rename(&tmp, path).map_err(|e| err(e.to_string())),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(err(e))
        }
    }
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
        let r = read_reference(&p).unwrap();
        assert_eq!(r.ra.len(), 2);
        assert!((r.ra[0] - 180.0).abs() < 1e-9 && (r.dec[0] + 30.5).abs() < 1e-9);
        assert!((r.flux.as_ref().unwrap()[0] - 0.15).abs() < 1e-12);
        assert_eq!(r.skipped, 1);
        std::fs::write(&p, "x,y\n1,2\n").unwrap();
        let e = read_reference(&p).unwrap_err().to_string();
        assert!(e.contains("no RA column") && e.contains("x, y"), "{e}");
    }
}
