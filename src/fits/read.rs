//! Reading FITS images: every header card, and the first celestial plane of the pixels.
//!
//! Invariants: the image read is the first HDU that holds an image with at least two axes
//! (the primary HDU for nearly every radio image); pixels come back as `f32` with BSCALE/BZERO
//! applied and integer BLANK pixels turned into NaN by cfitsio; the plane is the first one along
//! every axis beyond the second (FREQ, STOKES), which for a continuum image is the whole image.
//!
//! Bounded reads ([`read_image_bytes`]): nothing is allocated for more than the caller's ceiling.
//! A gzip file is decompressed here, not by cfitsio (which inflates it whole into memory), and
//! its header is read first: pixel data larger than the ceiling is refused before it is
//! inflated, and at most what the header declares is ever inflated, so a few hundred bytes
//! claiming 20000 × 20000 pixels cost a few kilobytes. The header's sizes are checked against
//! the bytes actually present before the pixel plane is allocated.

// Unsafe: calls into cfitsio (`fitsio::sys`) for what the safe crate lacks; each block says why it holds.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int, c_void};
use std::path::{Path, PathBuf};

use fitsio::FitsFile;
use fitsio::sys;
use ndarray::Array2;

use super::header::Header;

/// What went wrong reading a FITS file; each variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum FitsReadError {
    #[error("{path}: cannot open as FITS ({reason}); is it a FITS image?")]
    Open { path: PathBuf, reason: String },
    #[error("{path}: no image with two or more axes in any HDU")]
    NoImage { path: PathBuf },
    #[error("{path}: cannot read the header ({reason})")]
    Header { path: PathBuf, reason: String },
    #[error("{path}: cannot read the pixels ({reason}); the file may be truncated")]
    Pixels { path: PathBuf, reason: String },
    #[error(
        "{path}: {what} needs {bytes} bytes, more than the limit of {limit} \
         ([ingest] max_image_mb in contimg.toml); refused before reading it"
    )]
    TooLarge {
        path: PathBuf,
        what: &'static str,
        bytes: u128,
        limit: u64,
    },
    #[error("{path}: cannot decompress (gzip): {source}; the file may be truncated or not gzip")]
    Gzip {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// An image's header and its first celestial plane.
#[derive(Debug, Clone)]
pub struct FitsImage {
    pub header: Header,
    /// Axis lengths in FITS order (NAXIS1 first).
    pub shape: Vec<usize>,
    /// The first plane: rows are y (NAXIS2), columns are x (NAXIS1); blanks are NaN.
    pub plane: Array2<f32>,
}

/// An open FITS file positioned on its image HDU.
struct Opened {
    file: FitsFile,
    shape: Vec<usize>,
    /// For a memory file, the buffer pointer and size cfitsio keeps addresses of: they must stay
    /// at a fixed place while the file is open (dropped after `file`).
    _mem: Option<Box<(*mut c_void, usize)>>,
}

fn cfitsio_message(status: c_int) -> String {
    let mut buf = [0 as c_char; 32];
    // SAFETY: ffgerr writes at most 31 characters and a NUL into a 31+1 byte buffer.
    unsafe { sys::ffgerr(status, buf.as_mut_ptr()) };
    // SAFETY: the buffer is NUL-terminated by ffgerr (or all zero).
    let text = unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    format!("cfitsio status {status}: {text}")
}

/// Where cfitsio reads the file from.
enum Source<'a> {
    Disk,
    /// The file's bytes, already read (kept alive by the caller for as long as the file is open).
    Memory(&'a [u8]),
}

fn open(path: &Path, source: Source<'_>) -> Result<Opened, FitsReadError> {
    let open_err = |reason: String| FitsReadError::Open {
        path: path.to_path_buf(),
        reason,
    };
    // Open through the raw call so that cfitsio's extended filename syntax ("file.fits[1]")
    // and non-UTF-8 names are not an issue: we pass the path as bytes.
    let c_path = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| open_err("path contains a NUL byte".into()))?;
    let mut fptr: *mut sys::fitsfile = std::ptr::null_mut();
    let mut status: c_int = 0;
    let mut mem = None;
    match source {
        // SAFETY: valid out-pointers; c_path outlives the call. READONLY = 0.
        Source::Disk => unsafe { sys::ffdkopn(&mut fptr, c_path.as_ptr(), 0, &mut status) },
        Source::Memory(bytes) => {
            let cell: &mut Box<(*mut c_void, usize)> =
                mem.insert(Box::new((bytes.as_ptr() as *mut c_void, bytes.len())));
            let (ptr, size) = &mut **cell;
            // SAFETY: READONLY "memkeep" file over the caller's buffer: cfitsio neither writes
            // to it nor frees it; it keeps the addresses of `ptr` and `size`, which live in a
            // Box owned by the returned `Opened`, and the caller keeps `bytes` alive meanwhile.
            unsafe {
                sys::ffomem(
                    &mut fptr,
                    c_path.as_ptr(),
                    0,
                    ptr,
                    size,
                    0,
                    None,
                    &mut status,
                )
            }
        }
    };
    if status != 0 || fptr.is_null() {
        return Err(open_err(cfitsio_message(status)));
    }
    // SAFETY: fptr is a valid, open cfitsio handle; FitsFile takes ownership and closes it.
    let mut file = unsafe { FitsFile::from_raw(fptr, fitsio::FileOpenMode::READONLY) }
        .map_err(|e| open_err(e.to_string()))?;
    let n_hdus = file.num_hdus().map_err(|e| open_err(e.to_string()))?;
    for hdu_index in 0..n_hdus {
        let raw = unsafe { file.as_raw() };
        let mut status: c_int = 0;
        let mut hdu_type: c_int = 0;
        // SAFETY: valid handle; HDU numbers are 1-based.
        unsafe { sys::ffmahd(raw, hdu_index as c_int + 1, &mut hdu_type, &mut status) };
        if status != 0 {
            return Err(open_err(cfitsio_message(status)));
        }
        if hdu_type != 0 {
            continue; // not an IMAGE_HDU
        }
        let mut naxis: c_int = 0;
        // SAFETY: valid handle and out-pointer.
        unsafe { sys::ffgidm(raw, &mut naxis, &mut status) };
        if status != 0 || naxis < 2 {
            continue;
        }
        let mut dims = vec![0 as sys::LONGLONG; naxis as usize];
        // SAFETY: dims has room for naxis values.
        unsafe { sys::ffgiszll(raw, naxis, dims.as_mut_ptr(), &mut status) };
        if status != 0 {
            return Err(open_err(cfitsio_message(status)));
        }
        if dims[0] <= 0 || dims[1] <= 0 {
            continue;
        }
        if let Some(cell) = &mem {
            // A memory file shorter than its header says must be refused here: cfitsio does not
            // check a memory file's end the way it checks a disk file's.
            let (mut head, mut data_start, mut data_end) = (0, 0, 0);
            // SAFETY: valid handle and out-pointers.
            unsafe { sys::ffghadll(raw, &mut head, &mut data_start, &mut data_end, &mut status) };
            let unpadded = data_start as u128
                + dims.iter().map(|&d| d.max(0) as u128).product::<u128>()
                    * u128::from(bitpix_bytes(raw));
            if status != 0 || unpadded > cell.1 as u128 {
                return Err(FitsReadError::Pixels {
                    path: path.to_path_buf(),
                    reason: format!(
                        "the file has {} bytes but its header needs {unpadded}",
                        cell.1
                    ),
                });
            }
        }
        let shape = dims.iter().map(|&d| d.max(0) as usize).collect();
        return Ok(Opened {
            file,
            shape,
            _mem: mem,
        });
    }
    Err(FitsReadError::NoImage {
        path: path.to_path_buf(),
    })
}

/// Bytes per pixel of the current image HDU (from BITPIX).
fn bitpix_bytes(raw: *mut sys::fitsfile) -> u64 {
    let mut status: c_int = 0;
    let mut bitpix: c_int = 0;
    // SAFETY: valid handle and out-pointer.
    unsafe { sys::ffgidt(raw, &mut bitpix, &mut status) };
    u64::from((bitpix.unsigned_abs() / 8).max(1))
}

/// Whether the current image HDU stores floating-point pixels (BITPIX -32 or -64).
fn is_float_image(raw: *mut sys::fitsfile) -> bool {
    let mut status: c_int = 0;
    let mut bitpix: c_int = 0;
    // SAFETY: valid handle and out-pointer.
    unsafe { sys::ffgidt(raw, &mut bitpix, &mut status) };
    bitpix < 0
}

fn header_of(opened: &mut Opened, path: &Path) -> Result<Header, FitsReadError> {
    let raw = unsafe { opened.file.as_raw() };
    let mut status: c_int = 0;
    let mut nkeys: c_int = 0;
    let mut nmore: c_int = 0;
    // SAFETY: valid handle positioned on the image HDU.
    unsafe { sys::ffghsp(raw, &mut nkeys, &mut nmore, &mut status) };
    if status != 0 {
        return Err(FitsReadError::Header {
            path: path.to_path_buf(),
            reason: cfitsio_message(status),
        });
    }
    let mut records = Vec::with_capacity(nkeys as usize);
    let mut buf = [0 as c_char; 81];
    for i in 1..=nkeys {
        // SAFETY: ffgrec writes at most 80 characters plus NUL into an 81-byte buffer.
        unsafe { sys::ffgrec(raw, i, buf.as_mut_ptr(), &mut status) };
        if status != 0 {
            return Err(FitsReadError::Header {
                path: path.to_path_buf(),
                reason: cfitsio_message(status),
            });
        }
        // SAFETY: NUL-terminated by ffgrec.
        let card = unsafe { CStr::from_ptr(buf.as_ptr()) };
        records.push(card.to_string_lossy().into_owned());
    }
    Ok(Header::from_records(records))
}

/// Reads the header of the file's image HDU.
pub fn read_header(path: &Path) -> Result<Header, FitsReadError> {
    let mut opened = open(path, Source::Disk)?;
    header_of(&mut opened, path)
}

/// Reads the header and the first plane of the file's image HDU.
pub fn read_image(path: &Path) -> Result<FitsImage, FitsReadError> {
    read_opened(open(path, Source::Disk)?, path, u64::MAX)
}

/// Reads the first plane of the file's image HDU into `buf` (resized to NAXIS1 × NAXIS2 and
/// reused, so a caller reading many images allocates once), returning (NAXIS1, NAXIS2). A plain
/// (uncompressed) BITPIX −32 image without BSCALE/BZERO scaling, the usual case, is read as raw
/// bytes straight into `buf` with one bounded read at the data unit's offset (the file must hold
/// the whole plane) and byte-swapped in place in a loop the compiler vectorises; anything else
/// is read through cfitsio as [`read_image`] reads it.
pub fn read_plane_into(path: &Path, buf: &mut Vec<f32>) -> Result<(usize, usize), FitsReadError> {
    use std::io::Read;
    use std::os::unix::fs::FileExt;
    let mut opened = open(path, Source::Disk)?;
    let (nx, ny) = (opened.shape[0], opened.shape[1]);
    let header = header_of(&mut opened, path)?;
    let raw = unsafe { opened.file.as_raw() };
    let (mut status, mut bitpix): (c_int, c_int) = (0, 0);
    let (mut head, mut data_start, mut data_end) = (0, 0, 0);
    // SAFETY: valid handle positioned on the image HDU, and out-pointers.
    unsafe {
        sys::ffgidt(raw, &mut bitpix, &mut status);
        sys::ffghadll(raw, &mut head, &mut data_start, &mut data_end, &mut status);
    }
    let unscaled = header.f64("BSCALE").is_none_or(|v| v == 1.0)
        && header.f64("BZERO").is_none_or(|v| v == 0.0);
    let pix_err = |reason: String| FitsReadError::Pixels {
        path: path.to_path_buf(),
        reason,
    };
    let n = nx
        .checked_mul(ny)
        .ok_or_else(|| pix_err("the plane is too large".into()))?;
    let bytes = n as u64 * 4;
    if status == 0 && bitpix == -32 && unscaled && data_start >= 0 {
        let mut file = std::fs::File::open(path).map_err(|e| pix_err(e.to_string()))?;
        let mut magic = [0u8; 6];
        let plain = file.read_exact(&mut magic).is_ok() && &magic == b"SIMPLE";
        let len = file.metadata().map_err(|e| pix_err(e.to_string()))?.len();
        if plain && len >= data_start as u64 + bytes {
            if buf.len() != n {
                buf.clear();
                buf.resize(n, 0.0);
            }
            // SAFETY: the n f32 of `buf` are 4n initialised bytes; any bit pattern is a valid
            // f32, and the byte view is dropped before `buf` is used again.
            let view =
                unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<u8>(), n * 4) };
            file.read_exact_at(view, data_start as u64)
                .map_err(|e| pix_err(e.to_string()))?;
            for v in buf.iter_mut() {
                *v = f32::from_bits(u32::from_be(v.to_bits()));
            }
            return Ok((nx, ny));
        }
    }
    let img = read_opened(opened, path, u64::MAX)?;
    buf.clear();
    buf.extend(img.plane.iter().copied());
    Ok((nx, ny))
}

/// Like [`read_image`], from the file's bytes already in memory (so a caller that also hashes
/// the file reads it once), allocating at most `limit` bytes for decompressed data and for the
/// pixel plane. Gzip files are decompressed here, header first (see the module documentation).
pub fn read_image_bytes(path: &Path, bytes: &[u8], limit: u64) -> Result<FitsImage, FitsReadError> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let inflated = gunzip_bounded(path, bytes, limit)?;
        return read_opened(open(path, Source::Memory(&inflated))?, path, limit);
    }
    read_opened(open(path, Source::Memory(bytes))?, path, limit)
}

/// Bytes of data a primary header declares (BITPIX, NAXISn; 0 without axes), padded to 2880.
fn declared_data_bytes(h: &Header) -> Option<u128> {
    let bitpix = h.i64("BITPIX")?;
    let naxis = h.i64("NAXIS")?;
    if !(0..=999).contains(&naxis) {
        return None;
    }
    if naxis == 0 {
        return Some(0);
    }
    let mut n: u128 = u128::from(bitpix.unsigned_abs() / 8);
    for i in 1..=naxis {
        let len = h.i64(&format!("NAXIS{i}"))?;
        n = n.checked_mul(u128::try_from(len).ok()?)?;
    }
    Some(n.div_ceil(2880) * 2880)
}

/// Inflates a gzip FITS file: the primary header first (at most 1000 blocks), then no more data
/// than that header declares (or `limit` + 1 bytes when it declares none), refusing more than
/// `limit`.
fn gunzip_bounded(path: &Path, bytes: &[u8], limit: u64) -> Result<Vec<u8>, FitsReadError> {
    use std::io::Read;
    let gz_err = |source| FitsReadError::Gzip {
        path: path.to_path_buf(),
        source,
    };
    let header_err = |reason: &str| FitsReadError::Header {
        path: path.to_path_buf(),
        reason: reason.into(),
    };
    let too_large = |what, bytes| FitsReadError::TooLarge {
        path: path.to_path_buf(),
        what,
        bytes,
        limit,
    };
    let mut dec = flate2::read::MultiGzDecoder::new(bytes);
    let mut out: Vec<u8> = Vec::new();
    let is_end = |c: &[u8]| c.starts_with(b"END") && c[3..].iter().all(|&b| b == b' ');
    loop {
        if out.len() >= 1000 * 2880 {
            return Err(header_err("no END card in the first 1000 header blocks"));
        }
        let before = out.len();
        (&mut dec)
            .take(2880)
            .read_to_end(&mut out)
            .map_err(gz_err)?;
        if out.len() - before < 2880 {
            return Err(header_err("the decompressed file ends inside its header"));
        }
        if out[before..].chunks(80).any(is_end) {
            break;
        }
    }
    let header = Header::from_records(out.chunks(80).map(String::from_utf8_lossy));
    let want = match declared_data_bytes(&header) {
        Some(d) if d > u128::from(limit) => {
            return Err(too_large("the pixel data its header declares", d));
        }
        Some(d) if d > 0 => d as u64,
        // The image is in an extension: inflate up to the limit and refuse more.
        _ => limit.saturating_add(1),
    };
    (&mut dec)
        .take(want)
        .read_to_end(&mut out)
        .map_err(gz_err)?;
    if out.len() as u64 > limit {
        return Err(too_large("the decompressed file", out.len() as u128));
    }
    Ok(out)
}

fn read_opened(mut opened: Opened, path: &Path, limit: u64) -> Result<FitsImage, FitsReadError> {
    let header = header_of(&mut opened, path)?;
    let (nx, ny) = (opened.shape[0], opened.shape[1]);
    let n = nx * ny;
    let plane_bytes = nx as u128 * ny as u128 * 4;
    if plane_bytes > u128::from(limit) {
        return Err(FitsReadError::TooLarge {
            path: path.to_path_buf(),
            what: "the pixel plane (as 32-bit floats)",
            bytes: plane_bytes,
            limit,
        });
    }
    let mut data = vec![0f32; n];
    let raw = unsafe { opened.file.as_raw() };
    let mut status: c_int = 0;
    let mut anynul: c_int = 0;
    let mut nulval = f32::NAN;
    // Float images carry blanks as NaN already: skip cfitsio's per-pixel null check for them.
    let nulval_ptr = if is_float_image(raw) {
        std::ptr::null_mut()
    } else {
        &mut nulval as *mut f32 as *mut c_void
    };
    // SAFETY: data holds n floats; TFLOAT converts any BITPIX with scaling; for integer images
    // BLANK pixels become nulval (NaN).
    unsafe {
        sys::ffgpv(
            raw,
            sys::TFLOAT as c_int,
            1,
            n as sys::LONGLONG,
            nulval_ptr,
            data.as_mut_ptr() as *mut c_void,
            &mut anynul,
            &mut status,
        )
    };
    if status != 0 {
        return Err(FitsReadError::Pixels {
            path: path.to_path_buf(),
            reason: cfitsio_message(status),
        });
    }
    let plane = Array2::from_shape_vec((ny, nx), data).map_err(|e| FitsReadError::Pixels {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(FitsImage {
        header,
        shape: opened.shape,
        plane,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_plane_into_matches_read_image_and_reuses_the_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let mut buf = Vec::new();
        for (k, shape) in [vec![37usize, 23], vec![5, 4, 1, 1], vec![37, 23]]
            .into_iter()
            .enumerate()
        {
            let n: usize = shape.iter().product();
            let data: Vec<f32> = (0..n)
                .map(|i| {
                    if i % 11 == 3 {
                        f32::NAN
                    } else {
                        i as f32 * -0.25 + k as f32
                    }
                })
                .collect();
            let path = dir.path().join(format!("i{k}.fits"));
            crate::fits::write::write_image(&path, &shape, &data, &Header::new()).unwrap();
            let img = read_image(&path).unwrap();
            let (nx, ny) = read_plane_into(&path, &mut buf).unwrap();
            assert_eq!((nx, ny), (shape[0], shape[1]));
            assert_eq!(buf.len(), nx * ny);
            let same = buf
                .iter()
                .zip(img.plane.iter())
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{shape:?}");
        }
        // A file cut short inside its data unit is an error, not a short plane.
        let path = dir.path().join("i0.fits");
        let bytes = std::fs::read(&path).unwrap();
        let cut = dir.path().join("cut.fits");
        std::fs::write(&cut, &bytes[..2880 + 100]).unwrap();
        assert!(read_plane_into(&cut, &mut buf).is_err());
    }
}
