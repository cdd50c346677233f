//! Writing FITS images atomically (temporary name, then rename).
//!
//! Owns: turning an image (shape + `f32` pixels in FITS order) and a [`Header`] into a single-HDU
//! FITS file with BITPIX = −32, and the atomic-write discipline used for every product contimg
//! writes.
//!
//! Invariants:
//! - A reader never sees a half-written file: the file is written to `.NAME.tmp.PID.N` in the
//!   target's directory, flushed, closed, `fsync`ed and then renamed over `path`. On any error the
//!   temporary is removed and `path` is untouched (an existing file there stays as it was).
//! - The structural cards (SIMPLE, BITPIX, NAXIS, NAXISn, EXTEND) come from the writer, never from
//!   the header; cards that would make the pixels mean something else (BSCALE, BZERO, BLANK),
//!   cards that only belong to extensions (XTENSION, PCOUNT, GCOUNT, EXTNAME is kept), checksums
//!   that would be stale (CHECKSUM, DATASUM) and END are dropped. Every other card is written in
//!   the header's order: strings (long ones with the CONTINUE convention), integers, booleans,
//!   floats in the shortest decimal form that reads back to the same `f64`, HISTORY, COMMENT and
//!   blank-keyword cards. cfitsio's two standard "FITS (Flexible Image Transport System)..."
//!   COMMENT cards are written once, by cfitsio.
//! - NaN pixels are written as IEEE NaN (the FITS convention for blanks in float images).
//! - The output is plain (uncompressed) FITS whatever `path` ends with.
//! - The disk space a file needs is reserved before its first byte is written, so a full disk
//!   fails up front as [`FitsWriteError::DiskFull`] naming the path; a product made of several
//!   files (a mosaic with its weight and noise maps) is staged file by file with [`stage_image`]
//!   and appears together through [`commit_together`], or not at all.
//!
//! The file is written through `fitsio::sys` (cfitsio) rather than `fitsio`'s safe API because
//! the safe API parses the file name with cfitsio's extended syntax (a `[` in a directory name
//! breaks it), adds `EXTNAME = '_PRIMARY'` to a custom primary HDU and cannot report errors
//! from closing the file (a full disk shows up there).

// Unsafe: calls into cfitsio (`fitsio::sys`) to write an HDU from memory; each block says why it holds.
#![allow(unsafe_code)]

use std::ffi::{CString, c_char, c_int, c_long};
use std::fs;
use std::path::{Path, PathBuf};

use fitsio::sys;
use ndarray::ArrayView2;

use super::header::{Card, Header, Value};
use crate::fsutil::{TempGuard, temp_path};

/// Why an image could not be written. Nothing is left at the target path in every case.
#[derive(Debug, thiserror::Error)]
pub enum FitsWriteError {
    #[error(
        "image shape {shape:?} holds {expected} pixels but {got} values were given; pass the \
         pixels in FITS order (NAXIS1 fastest), one value per pixel"
    )]
    ShapeMismatch {
        shape: Vec<usize>,
        expected: usize,
        got: usize,
    },
    #[error("image shape {shape:?} cannot be written: {reason}")]
    BadShape { shape: Vec<usize>, reason: String },
    #[error("header card {key:?} cannot be written: {reason}")]
    BadCard { key: String, reason: String },
    #[error("output path {path} {reason}")]
    BadPath { path: PathBuf, reason: String },
    #[error("cfitsio failed while {action} {path}: {message} (status {status})")]
    Cfitsio {
        action: String,
        path: PathBuf,
        status: i32,
        message: String,
    },
    #[error(
        "disk full: cannot write {path} ({needed} bytes needed, {free} bytes free on its \
         filesystem); free some space and run again (nothing was left under the final name)"
    )]
    DiskFull {
        path: PathBuf,
        needed: u64,
        free: u64,
    },
    #[error(
        "I/O error while {action} {path}: {source}; check the directory exists and is writable"
    )]
    Io {
        action: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Keys the writer makes itself or refuses to copy (see the module documentation).
fn is_structural(key: &str) -> bool {
    matches!(
        key,
        "SIMPLE"
            | "BITPIX"
            | "NAXIS"
            | "EXTEND"
            | "END"
            | "XTENSION"
            | "PCOUNT"
            | "GCOUNT"
            | "BSCALE"
            | "BZERO"
            | "BLANK"
            | "CHECKSUM"
            | "DATASUM"
    ) || (key.len() > 5 && key.starts_with("NAXIS") && key[5..].bytes().all(|b| b.is_ascii_digit()))
}

/// The COMMENT cards cfitsio adds to every primary header; copies of them from an input header
/// are dropped so they are not duplicated.
fn is_cfitsio_boilerplate(card: &Card) -> bool {
    card.key == "COMMENT"
        && (card
            .comment
            .contains("FITS (Flexible Image Transport System) format is defined in")
            || card
                .comment
                .contains("and Astrophysics', volume 376, page 359; bibcode"))
}

/// Writes `contents` to `path` atomically (see [`crate::fsutil::write_atomic`]), with the
/// error type of this module. Used for the small text products that travel with images.
pub fn write_bytes_atomic(path: &Path, contents: &[u8]) -> Result<(), FitsWriteError> {
    crate::fsutil::write_atomic(path, contents)
        .map_err(|source| io_error("writing", path, contents.len() as u64, source))
}

/// An I/O error, or [`FitsWriteError::DiskFull`] when that is what it means.
fn io_error(action: &str, path: &Path, needed: u64, source: std::io::Error) -> FitsWriteError {
    if crate::fsutil::is_disk_full(&source) {
        return disk_full(path, needed);
    }
    FitsWriteError::Io {
        action: action.into(),
        path: path.to_path_buf(),
        source,
    }
}

fn disk_full(path: &Path, needed: u64) -> FitsWriteError {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    FitsWriteError::DiskFull {
        path: path.to_path_buf(),
        needed,
        free: crate::fsutil::free_bytes(dir.unwrap_or(Path::new("."))).unwrap_or(0),
    }
}

/// A FITS file written and synced under a temporary name, waiting to be renamed into place.
/// Dropping it removes the temporary.
pub struct StagedImage {
    guard: TempGuard,
    target: PathBuf,
}

impl StagedImage {
    /// Where the written (and synced) file waits until it is committed.
    pub fn staged_path(&self) -> &Path {
        self.guard.path()
    }

    /// Renames the file into place.
    pub fn commit(self) -> Result<(), FitsWriteError> {
        commit_together(vec![self])
    }
}

/// Renames staged files into place together: all of them appear, or none (see
/// [`crate::fsutil::commit_all`]).
pub fn commit_together(staged: Vec<StagedImage>) -> Result<(), FitsWriteError> {
    let first = staged.first().map(|s| s.target.clone()).unwrap_or_default();
    crate::fsutil::commit_all(staged.into_iter().map(|s| (s.guard, s.target)).collect())
        .map_err(|source| io_error("renaming into place", &first, 0, source))
}

/// Writes a 2-D image: `data` rows are y (NAXIS2), columns are x (NAXIS1). Any memory layout.
pub fn write_image_2d(
    path: &Path,
    data: ArrayView2<f32>,
    header: &Header,
) -> Result<(), FitsWriteError> {
    stage_image_2d(path, data, header)?.commit()
}

/// Like [`write_image_2d`], but leaves the file staged (see [`commit_together`]).
pub fn stage_image_2d(
    path: &Path,
    data: ArrayView2<f32>,
    header: &Header,
) -> Result<StagedImage, FitsWriteError> {
    let (ny, nx) = data.dim();
    let shape = [nx, ny];
    match data.as_slice() {
        Some(s) => stage_image(path, &shape, s, header),
        None => {
            let v: Vec<f32> = data.iter().copied().collect();
            stage_image(path, &shape, &v, header)
        }
    }
}

/// Writes a single-HDU FITS image with BITPIX = −32 (see [`stage_image`]) and renames it into
/// place.
pub fn write_image(
    path: &Path,
    shape: &[usize],
    data: &[f32],
    header: &Header,
) -> Result<(), FitsWriteError> {
    stage_image(path, shape, data, header)?.commit()
}

/// Bytes a file of `n_cards` header cards and `n_pixels` f32 pixels takes (FITS blocks of 2880).
fn fits_size(n_cards: usize, n_pixels: usize) -> u64 {
    let block = |b: u64| b.div_ceil(2880) * 2880;
    block((n_cards as u64 + 16) * 80) + block(n_pixels as u64 * 4)
}

/// Writes a single-HDU FITS image with BITPIX = −32 under a temporary name beside `path`.
///
/// `shape` is in FITS order (NAXIS1 first, e.g. `[nx, ny, 1, 1]`), `data` in FITS order (NAXIS1
/// varies fastest) with exactly `shape.iter().product()` values. See the module documentation
/// for which header cards are written and the atomicity guarantee.
pub fn stage_image(
    path: &Path,
    shape: &[usize],
    data: &[f32],
    header: &Header,
) -> Result<StagedImage, FitsWriteError> {
    if shape.is_empty() || shape.len() > 999 {
        return Err(FitsWriteError::BadShape {
            shape: shape.to_vec(),
            reason: "an image needs 1 to 999 axes".into(),
        });
    }
    if shape.contains(&0) {
        return Err(FitsWriteError::BadShape {
            shape: shape.to_vec(),
            reason: "every axis needs at least one pixel".into(),
        });
    }
    let expected = shape
        .iter()
        .try_fold(1usize, |acc, &n| acc.checked_mul(n))
        .ok_or_else(|| FitsWriteError::BadShape {
            shape: shape.to_vec(),
            reason: "the pixel count overflows".into(),
        })?;
    if expected != data.len() {
        return Err(FitsWriteError::ShapeMismatch {
            shape: shape.to_vec(),
            expected,
            got: data.len(),
        });
    }
    // Check every card before touching the disk.
    let cards: Vec<&Card> = header
        .cards
        .iter()
        .filter(|c| !is_structural(&c.key) && !is_cfitsio_boilerplate(c))
        .collect();
    for c in &cards {
        check_card(c)?;
    }

    let tmp = temp_path(path).map_err(|source| FitsWriteError::Io {
        action: "naming a temporary file for".into(),
        path: path.to_path_buf(),
        source,
    })?;
    if let Some(dir) = tmp.parent() {
        crate::fsutil::sweep_stale_temps(dir);
    }
    let guard = TempGuard::new(tmp.clone());
    let long_strings: usize = cards
        .iter()
        .filter_map(|c| c.value.as_str())
        .map(|v| v.len() / 60)
        .sum();
    let needed = fits_size(cards.len() + long_strings, data.len());
    write_pixels(&tmp, shape, data, &cards, needed).map_err(|e| match e {
        FitsWriteError::DiskFull { .. } => disk_full(path, needed),
        // cfitsio does not say why a write failed: a full disk is told by the space left.
        FitsWriteError::Cfitsio { .. } | FitsWriteError::Io { .. }
            if parent_free(path).is_some_and(|free| free < needed) =>
        {
            disk_full(path, needed)
        }
        e => e,
    })?;
    Ok(StagedImage {
        guard,
        target: path.to_path_buf(),
    })
}

fn parent_free(path: &Path) -> Option<u64> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    crate::fsutil::free_bytes(dir.unwrap_or(Path::new(".")))
}

/// Fills a chunk of pixels: `(first, chunk)` sets `chunk` to pixels `first..first + chunk.len()`.
pub type PixelFill<'a> = &'a (dyn Fn(usize, &mut [f32]) + Sync);

/// Writes a single-HDU BITPIX −32 image of `shape` (FITS order) under a temporary name like
/// [`stage_image`], its pixels (FITS order) produced chunk by chunk by `pixels(first, chunk)`
/// (fill `chunk` with the values of pixels `first..first + chunk.len()`), and returns the
/// SHA-256 of the file's bytes, hashed as they are written (the file is not read back).
///
/// The bytes are those [`stage_image`] writes (the header cards formatted by cfitsio, in a
/// memory file), but the file is written by this module in large chunks: on Linux with O_DIRECT
/// where the filesystem takes it, so the pixels are not copied into the page cache (a full copy
/// of every product, the largest cost of writing a mosaic on a small machine), else buffered.
pub fn stage_image_streamed(
    path: &Path,
    shape: &[usize],
    header: &Header,
    pixels: PixelFill<'_>,
) -> Result<(StagedImage, String), FitsWriteError> {
    let n = checked_pixels(shape)?;
    let cards: Vec<&Card> = header
        .cards
        .iter()
        .filter(|c| !is_structural(&c.key) && !is_cfitsio_boilerplate(c))
        .collect();
    for c in &cards {
        check_card(c)?;
    }
    let head = header_bytes(path, shape, &cards)?;
    let tmp = temp_path(path).map_err(|source| FitsWriteError::Io {
        action: "naming a temporary file for".into(),
        path: path.to_path_buf(),
        source,
    })?;
    if let Some(dir) = tmp.parent() {
        crate::fsutil::sweep_stale_temps(dir);
    }
    let guard = TempGuard::new(tmp.clone());
    let total = head.len() as u64 + (n as u64 * 4).div_ceil(2880) * 2880;
    let sha = match write_streamed(&tmp, &head, n, total, pixels, true) {
        // O_DIRECT refused (by the filesystem, or an alignment it wants that we do not meet).
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            write_streamed(&tmp, &head, n, total, pixels, false)
        }
        r => r,
    }
    .map_err(|source| io_error("writing", path, total, source))?;
    Ok((
        StagedImage {
            guard,
            target: path.to_path_buf(),
        },
        sha,
    ))
}

/// The number of pixels of `shape`, or why it cannot be written.
fn checked_pixels(shape: &[usize]) -> Result<usize, FitsWriteError> {
    if shape.is_empty() || shape.len() > 999 {
        return Err(FitsWriteError::BadShape {
            shape: shape.to_vec(),
            reason: "an image needs 1 to 999 axes".into(),
        });
    }
    if shape.contains(&0) {
        return Err(FitsWriteError::BadShape {
            shape: shape.to_vec(),
            reason: "every axis needs at least one pixel".into(),
        });
    }
    shape
        .iter()
        .try_fold(1usize, |acc, &n| acc.checked_mul(n))
        .ok_or_else(|| FitsWriteError::BadShape {
            shape: shape.to_vec(),
            reason: "the pixel count overflows".into(),
        })
}

/// The header block(s) [`stage_image`] writes for `shape` and `cards`: the cards formatted by
/// cfitsio in a memory file holding a 1×…×1 image (so that no data unit is ever allocated),
/// read back record by record, the NAXISn values set to `shape`, then END and blank fill to a
/// multiple of 2880 bytes (where cfitsio puts them).
fn header_bytes(path: &Path, shape: &[usize], cards: &[&Card]) -> Result<Vec<u8>, FitsWriteError> {
    let mut file = CfitsioFile::create_in_memory(path)?;
    let ones: Vec<c_long> = vec![1; shape.len()];
    file.call("formatting the header of", |f, st| unsafe {
        sys::ffcrim(
            f,
            -32,
            ones.len() as c_int,
            ones.as_ptr() as *mut c_long,
            st,
        )
    })?;
    for c in cards {
        write_card(&mut file, c)?;
    }
    let (mut nkeys, mut more) = (0 as c_int, 0 as c_int);
    file.call("formatting the header of", |f, st| unsafe {
        sys::ffghsp(f, &mut nkeys, &mut more, st)
    })?;
    let mut out = Vec::with_capacity((nkeys as usize + 1).div_ceil(36) * 2880);
    for k in 1..=nkeys {
        let mut rec = [0 as c_char; 81];
        file.call("formatting the header of", |f, st| unsafe {
            sys::ffgrec(f, k, rec.as_mut_ptr(), st)
        })?;
        let text = unsafe { std::ffi::CStr::from_ptr(rec.as_ptr()) }.to_bytes();
        let mut card = [b' '; 80];
        card[..text.len().min(80)].copy_from_slice(&text[..text.len().min(80)]);
        // NAXISn = 1 in the memory file; the real length, right-justified in columns 11-30
        // as cfitsio writes an integer.
        if let Some(axis) = std::str::from_utf8(&card[..8])
            .ok()
            .and_then(|key| key.trim_end().strip_prefix("NAXIS"))
            .and_then(|d| d.parse::<usize>().ok())
            .filter(|&a| (1..=shape.len()).contains(&a))
        {
            let v = format!("{:>20}", shape[axis - 1]);
            card[10..30].copy_from_slice(v.as_bytes());
        }
        out.extend_from_slice(&card);
    }
    let mut end = [b' '; 80];
    end[..3].copy_from_slice(b"END");
    out.extend_from_slice(&end);
    out.resize(out.len().div_ceil(2880) * 2880, b' ');
    file.close()?;
    Ok(out)
}

/// Bytes per write: a multiple of the O_DIRECT alignment (and of 4, so pixels never straddle
/// two chunks: the header is a multiple of 2880 bytes).
const CHUNK: usize = 1 << 21;
/// O_DIRECT's alignment of buffer addresses, file offsets and lengths (the largest logical
/// block size in use; 512 on most disks).
const DIRECT_ALIGN: usize = 4096;

/// Writes `head`, the `n` pixels and the zero fill to `total` bytes into a new `tmp`, hashing
/// every byte; reserves the space first and syncs the file. `direct`: open with O_DIRECT.
fn write_streamed(
    tmp: &Path,
    head: &[u8],
    n: usize,
    total: u64,
    pixels: PixelFill<'_>,
    direct: bool,
) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Write;
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(target_os = "linux")]
    if direct {
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut opts, libc::O_DIRECT);
    }
    #[cfg(not(target_os = "linux"))]
    if direct {
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    }
    let mut f = opts.open(tmp)?;
    crate::fsutil::reserve(&f, total)?;
    // One aligned buffer: a Vec over-allocated by the alignment, used from its aligned offset.
    let mut storage = vec![0u8; CHUNK + DIRECT_ALIGN];
    let off = storage
        .as_ptr()
        .align_offset(DIRECT_ALIGN)
        .min(DIRECT_ALIGN);
    let buf = &mut storage[off..off + CHUNK];
    let mut scratch = vec![0f32; CHUNK / 4];
    let mut h = Sha256::new();
    let mut pos = 0usize;
    let mut flush = |buf: &mut [u8], len: usize, last: bool| -> std::io::Result<()> {
        h.update(&buf[..len]);
        let mut wlen = len;
        if direct && last {
            wlen = len.div_ceil(DIRECT_ALIGN) * DIRECT_ALIGN;
            buf[len..wlen].fill(0);
        }
        f.write_all(&buf[..wlen])
    };
    // The header: a few blocks, in the first chunk (or several for a huge header).
    for part in head.chunks(CHUNK) {
        buf[..part.len()].copy_from_slice(part);
        pos = part.len();
        if pos == CHUNK {
            flush(buf, CHUNK, false)?;
            pos = 0;
        }
    }
    let mut first = 0usize;
    while first < n {
        let m = ((CHUNK - pos) / 4).min(n - first);
        let vals = &mut scratch[..m];
        pixels(first, vals);
        for (b, v) in buf[pos..pos + 4 * m].chunks_exact_mut(4).zip(vals.iter()) {
            b.copy_from_slice(&v.to_be_bytes());
        }
        pos += 4 * m;
        first += m;
        if pos == CHUNK {
            flush(buf, CHUNK, false)?;
            pos = 0;
        }
    }
    // Zero fill of the data unit's last block.
    let mut left = (total - head.len() as u64 - 4 * n as u64) as usize;
    while left > 0 {
        let k = left.min(CHUNK - pos);
        buf[pos..pos + k].fill(0);
        pos += k;
        left -= k;
        if pos == CHUNK {
            flush(buf, CHUNK, false)?;
            pos = 0;
        }
    }
    if pos > 0 {
        flush(buf, pos, true)?;
    }
    if direct {
        // The last write was rounded up to the alignment.
        f.set_len(total)?;
    }
    f.sync_all()?;
    Ok(crate::fsutil::hex(&h.finalize()))
}

/// Creates `tmp`, reserves `needed` bytes, writes header and pixels, closes and syncs it.
fn write_pixels(
    tmp: &Path,
    shape: &[usize],
    data: &[f32],
    cards: &[&Card],
    needed: u64,
) -> Result<(), FitsWriteError> {
    let mut file = CfitsioFile::create(tmp)?;
    let reserve = fs::OpenOptions::new()
        .write(true)
        .open(tmp)
        .and_then(|f| crate::fsutil::reserve(&f, needed));
    if let Err(source) = reserve {
        return Err(io_error("reserving space for", tmp, needed, source));
    }
    let naxes: Vec<c_long> = shape.iter().map(|&n| n as c_long).collect();
    file.call("creating the primary image in", |f, st| unsafe {
        sys::ffcrim(
            f,
            -32,
            naxes.len() as c_int,
            naxes.as_ptr() as *mut c_long,
            st,
        )
    })?;
    for c in cards {
        write_card(&mut file, c)?;
    }
    file.call("writing pixels to", |f, st| unsafe {
        sys::ffppre(
            f,
            0,
            1,
            data.len() as i64,
            data.as_ptr() as *mut f32, // cfitsio converts into its own buffer; input untouched
            st,
        )
    })?;
    file.close()?;
    let f = fs::File::open(tmp)
        .map_err(|source| io_error("reopening for fsync", tmp, needed, source))?;
    f.sync_all()
        .map_err(|source| io_error("syncing", tmp, needed, source))
}

/// A cfitsio file handle that is closed exactly once (explicitly with error checking, or on drop).
struct CfitsioFile {
    fptr: *mut sys::fitsfile,
    path: PathBuf,
}

impl CfitsioFile {
    /// A new file in memory (freed on close), `path` naming it in errors.
    fn create_in_memory(path: &Path) -> Result<CfitsioFile, FitsWriteError> {
        let mut fptr: *mut sys::fitsfile = std::ptr::null_mut();
        let mut status: c_int = 0;
        // SAFETY: valid out-pointers; the name is a NUL-terminated literal.
        unsafe { sys::ffinit(&mut fptr, c"mem://".as_ptr(), &mut status) };
        if status != 0 || fptr.is_null() {
            return Err(cfitsio_error("creating the memory header of", path, status));
        }
        Ok(CfitsioFile {
            fptr,
            path: path.to_path_buf(),
        })
    }

    fn create(path: &Path) -> Result<CfitsioFile, FitsWriteError> {
        let cpath = c_string(path.to_string_lossy().as_ref(), "path")?;
        let mut fptr: *mut sys::fitsfile = std::ptr::null_mut();
        let mut status: c_int = 0;
        // ffdkinit: plain disk file, no extended-filename parsing.
        unsafe { sys::ffdkinit(&mut fptr, cpath.as_ptr(), &mut status) };
        if status != 0 || fptr.is_null() {
            return Err(cfitsio_error("creating", path, status));
        }
        Ok(CfitsioFile {
            fptr,
            path: path.to_path_buf(),
        })
    }

    fn call(
        &mut self,
        action: &str,
        f: impl FnOnce(*mut sys::fitsfile, *mut c_int) -> c_int,
    ) -> Result<(), FitsWriteError> {
        let mut status: c_int = 0;
        f(self.fptr, &mut status);
        if status != 0 {
            return Err(cfitsio_error(action, &self.path, status));
        }
        Ok(())
    }

    fn close(mut self) -> Result<(), FitsWriteError> {
        let mut status: c_int = 0;
        unsafe { sys::ffclos(self.fptr, &mut status) };
        self.fptr = std::ptr::null_mut();
        if status != 0 {
            return Err(cfitsio_error("closing", &self.path, status));
        }
        Ok(())
    }
}

impl Drop for CfitsioFile {
    fn drop(&mut self) {
        if !self.fptr.is_null() {
            let mut status: c_int = 0;
            unsafe { sys::ffclos(self.fptr, &mut status) };
        }
    }
}

fn cfitsio_error(action: &str, path: &Path, status: c_int) -> FitsWriteError {
    let mut buf = [0 as c_char; 31];
    unsafe { sys::ffgerr(status, buf.as_mut_ptr()) };
    let mut message = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    // The error stack has the detailed messages; drain it so it does not leak into later calls.
    let mut detail = Vec::new();
    loop {
        let mut m = [0 as c_char; 81];
        unsafe { sys::ffgmsg(m.as_mut_ptr()) };
        let text = unsafe { std::ffi::CStr::from_ptr(m.as_ptr()) }
            .to_string_lossy()
            .trim()
            .to_string();
        if text.is_empty() || detail.len() > 20 {
            break;
        }
        detail.push(text);
    }
    if !detail.is_empty() {
        message = format!("{message} ({})", detail.join("; "));
    }
    FitsWriteError::Cfitsio {
        action: action.into(),
        path: path.to_path_buf(),
        status,
        message,
    }
}

fn c_string(s: &str, what: &str) -> Result<CString, FitsWriteError> {
    CString::new(s).map_err(|_| FitsWriteError::BadCard {
        key: what.into(),
        reason: "contains a NUL byte".into(),
    })
}

fn bad(card: &Card, reason: impl Into<String>) -> FitsWriteError {
    FitsWriteError::BadCard {
        key: card.key.clone(),
        reason: reason.into(),
    }
}

fn check_card(card: &Card) -> Result<(), FitsWriteError> {
    let printable = |s: &str| s.bytes().all(|b| (32..=126).contains(&b));
    if !card
        .key
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err(bad(
            card,
            "keywords may only hold A-Z, 0-9, '-' and '_' (build cards with Card::new)",
        ));
    }
    if !printable(&card.comment) {
        return Err(bad(
            card,
            "the comment holds non-ASCII or control characters",
        ));
    }
    match &card.value {
        Value::Str(s) if !printable(s) => Err(bad(
            card,
            "the string holds non-ASCII or control characters",
        )),
        Value::Float(x) if !x.is_finite() => Err(bad(
            card,
            format!("{x} cannot be written in a FITS header; leave the card out instead"),
        )),
        Value::None if card.key.len() > 8 => Err(bad(
            card,
            "a valueless card needs a keyword of at most 8 characters",
        )),
        _ => Ok(()),
    }
}

/// Shortest decimal text that reads back to exactly `x`, always with a decimal point (so FITS
/// readers see a float, not an integer), with an exponent for very large or small magnitudes.
pub(crate) fn format_float(x: f64) -> String {
    let ax = x.abs();
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    if (1e-4..1e15).contains(&ax) {
        let s = format!("{x}");
        if s.contains('.') { s } else { format!("{s}.0") }
    } else {
        let s = format!("{x:E}");
        let (mant, exp) = s.split_once('E').unwrap_or((&s, "0"));
        let mant = if mant.contains('.') {
            mant.to_string()
        } else {
            format!("{mant}.0")
        };
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        format!("{mant}E{sign}{digits:0>2}")
    }
}

/// The 80-character card image for a float-valued keyword.
fn float_card(card: &Card, x: f64) -> String {
    let value = format_float(x);
    let mut s = if card.key.len() <= 8 {
        format!("{:<8}= {:>20}", card.key, value)
    } else {
        format!("HIERARCH {} = {}", card.key, value)
    };
    if !card.comment.is_empty() && s.len() + 3 < 80 {
        s.push_str(" / ");
        s.push_str(&card.comment);
    }
    s.truncate(80);
    s
}

fn write_card(file: &mut CfitsioFile, card: &Card) -> Result<(), FitsWriteError> {
    let key = c_string(&card.key, &card.key)?;
    let comment = c_string(&card.comment, &card.key)?;
    let action = format!("writing card {} to", card.key);
    match (&card.value, card.key.as_str()) {
        (Value::None, "HISTORY") => file.call(&action, |f, st| unsafe {
            sys::ffphis(f, comment.as_ptr(), st)
        }),
        (Value::None, "COMMENT") => file.call(&action, |f, st| unsafe {
            sys::ffpcom(f, comment.as_ptr(), st)
        }),
        (Value::None, "") => {
            // Blank keyword: commentary text in columns 9-80.
            let rec = c_string(&format!("        {}", card.comment), "")?;
            file.call(&action, |f, st| unsafe { sys::ffprec(f, rec.as_ptr(), st) })
        }
        (Value::None, _) => file.call(&action, |f, st| unsafe {
            sys::ffpkyu(f, key.as_ptr(), comment.as_ptr(), st)
        }),
        (Value::Str(s), _) => {
            let v = c_string(s, &card.key)?;
            file.call(&action, |f, st| unsafe {
                // ffpkls writes a plain string card when it fits and CONTINUE cards otherwise.
                sys::ffpkls(f, key.as_ptr(), v.as_ptr(), comment.as_ptr(), st)
            })
        }
        (Value::Int(i), _) => file.call(&action, |f, st| unsafe {
            sys::ffpkyj(f, key.as_ptr(), *i, comment.as_ptr(), st)
        }),
        (Value::Bool(b), _) => file.call(&action, |f, st| unsafe {
            sys::ffpkyl(f, key.as_ptr(), c_int::from(*b), comment.as_ptr(), st)
        }),
        (Value::Float(x), _) => {
            let rec = c_string(&float_card(card, *x), &card.key)?;
            file.call(&action, |f, st| unsafe { sys::ffprec(f, rec.as_ptr(), st) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_round_trip_through_their_text() {
        for &x in &[
            0.1 + 0.2,
            -1.0 / 3.0,
            1.405e9,
            8.333333333333333e-3,
            1e-300,
            -2.5e20,
            1.0,
            12345678901234.5,
            5e-5,
            -0.0,
        ] {
            let s = format_float(x);
            assert!(s.contains('.'), "{s} needs a decimal point");
            let back: f64 = s.parse().unwrap();
            assert_eq!(back.to_bits(), x.to_bits(), "{x} -> {s}");
            let card = Card::new("CRVAL1", Value::Float(x), "a comment");
            let img = float_card(&card, x);
            assert!(img.len() <= 80);
            assert_eq!(Card::parse(&img).value, Value::Float(x), "{img}");
        }
    }

    #[test]
    fn structural_keys_are_recognised() {
        for k in [
            "SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS12", "EXTEND", "BZERO",
        ] {
            assert!(is_structural(k), "{k}");
        }
        for k in ["NAXISX", "CRVAL1", "BMAJ", "EXTNAME"] {
            assert!(!is_structural(k), "{k}");
        }
    }

    #[test]
    fn errors_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.fits");
        let h = Header::new();
        // Wrong pixel count.
        let e = write_image(&path, &[4, 3], &[0.0; 11], &h).unwrap_err();
        assert!(matches!(
            e,
            FitsWriteError::ShapeMismatch {
                expected: 12,
                got: 11,
                ..
            }
        ));
        // A card that cannot be written is refused before anything touches the disk.
        let mut bad_h = Header::new();
        bad_h.set("CRVAL1", Value::Float(f64::NAN), "");
        assert!(write_image(&path, &[2, 2], &[0.0; 4], &bad_h).is_err());
        // A failure after the whole file was written (the rename onto a non-empty directory)
        // also removes the temporary.
        let blocker = dir.path().join("blocker.fits");
        fs::create_dir(&blocker).unwrap();
        fs::write(blocker.join("inside"), b"x").unwrap();
        assert!(write_image(&blocker, &[2, 2], &[0.0; 4], &h).is_err());
        fs::remove_dir_all(&blocker).unwrap();
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "left behind: {left:?}");
        // A missing directory is an I/O/cfitsio error, not a panic.
        let missing = dir.path().join("no/such/dir/x.fits");
        assert!(write_image(&missing, &[2, 2], &[0.0; 4], &h).is_err());
    }

    #[test]
    fn existing_file_survives_a_failed_write_and_is_replaced_by_a_good_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.fits");
        fs::write(&path, b"old").unwrap();
        assert!(write_image(&path, &[2, 2], &[0.0; 3], &Header::new()).is_err());
        assert_eq!(fs::read(&path).unwrap(), b"old");
        write_image(&path, &[2, 2], &[1.0, 2.0, f32::NAN, 4.0], &Header::new()).unwrap();
        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 2 * 2880);
        assert!(bytes.starts_with(b"SIMPLE  ="));
        // Pixels are big-endian IEEE floats at the start of the data unit.
        let px: Vec<f32> = bytes[2880..2880 + 16]
            .chunks(4)
            .map(|c| f32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(&px[..2], &[1.0, 2.0]);
        assert!(px[2].is_nan());
        assert_eq!(px[3], 4.0);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn streamed_writes_the_bytes_of_stage_image_and_hashes_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = Header::new();
        h.set("OBJECT", Value::Str("a field".into()), "name");
        h.set("LONGSTR", Value::Str("x".repeat(150)), "a long string");
        h.set("CRVAL1", Value::Float(150.123_456_789), "deg");
        h.set("NITER", Value::Int(-42), "");
        h.set("PBCOR", Value::Bool(true), "corrected");
        for k in 0..40 {
            h.set(
                &format!("KEY{k}"),
                Value::Int(k),
                "fills a second header block",
            );
        }
        h.cards
            .push(Card::new("HISTORY", Value::None, "made by a test"));
        h.cards
            .push(Card::new("NAXIS1", Value::Int(7), "dropped: structural"));
        // Several chunks of pixels (CHUNK / 4 pixels each), a small image, and a 4-axis one.
        for shape in [vec![1000usize, 700], vec![3, 2], vec![5, 4, 1, 1]] {
            let n: usize = shape.iter().product();
            let data: Vec<f32> = (0..n)
                .map(|i| {
                    if i % 97 == 5 {
                        f32::NAN
                    } else {
                        i as f32 * 0.37 - 3.0
                    }
                })
                .collect();
            let (a, b) = (dir.path().join("a.fits"), dir.path().join("b.fits"));
            stage_image(&a, &shape, &data, &h)
                .unwrap()
                .commit()
                .unwrap();
            let fill = |first: usize, chunk: &mut [f32]| {
                let m = chunk.len();
                chunk.copy_from_slice(&data[first..first + m]);
            };
            let (staged, sha) = stage_image_streamed(&b, &shape, &h, &fill).unwrap();
            assert_eq!(
                sha,
                crate::fsutil::sha256_file(staged.staged_path()).unwrap()
            );
            staged.commit().unwrap();
            let (ba, bb) = (fs::read(&a).unwrap(), fs::read(&b).unwrap());
            assert_eq!(ba.len(), bb.len(), "{shape:?}");
            assert!(ba == bb, "{shape:?}: the streamed file differs");
        }
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }
}
