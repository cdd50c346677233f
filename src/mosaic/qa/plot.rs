//! Pictures for people: the mosaic quicklook, the astrometric-offset scatter plot and the noise
//! histogram, drawn on an RGB canvas with the embedded font and written as PNG.
//!
//! Invariants: output sizes are fixed by the inputs (see [`quicklook_layout`]; the offset plot
//! is [`OFFSETS_SIZE`], the histogram [`HIST_SIZE`]) so that tests and people know what to
//! expect; every PNG is written atomically.

use std::path::Path;

use ndarray::ArrayView2;

use super::font;
use super::scan::{HIST_BINS, HIST_MAX, HIST_MIN};
use super::sources::{BeamPx, Source};
use super::xmatch::Match;
use crate::fits::write::write_bytes_atomic;
use crate::wcs::Wcs;

pub type Rgb = [u8; 3];
const WHITE: Rgb = [255, 255, 255];
const BLACK: Rgb = [0, 0, 0];
const GREY: Rgb = [150, 150, 150];
const LIGHT: Rgb = [225, 225, 225];
const BLUE: Rgb = [31, 119, 180];
const RED: Rgb = [214, 39, 40];
const GREEN: Rgb = [44, 200, 60];
const ORANGE: Rgb = [255, 140, 0];
const GRID: Rgb = [90, 170, 255];

pub const OFFSETS_SIZE: (usize, usize) = (640, 640);
pub const HIST_SIZE: (usize, usize) = (800, 500);

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("{path}: cannot encode the picture as PNG: {source}")]
    Encode {
        path: std::path::PathBuf,
        #[source]
        source: png::EncodingError,
    },
    #[error("{path}: cannot write the picture: {source}")]
    Write {
        path: std::path::PathBuf,
        #[source]
        source: crate::fits::write::FitsWriteError,
    },
}

/// An RGB raster.
pub struct Canvas {
    pub w: usize,
    pub h: usize,
    pub px: Vec<u8>,
}

impl Canvas {
    pub fn new(w: usize, h: usize, bg: Rgb) -> Canvas {
        let mut px = Vec::with_capacity(w * h * 3);
        for _ in 0..w * h {
            px.extend_from_slice(&bg);
        }
        Canvas { w, h, px }
    }

    pub fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            let k = (y as usize * self.w + x as usize) * 3;
            self.px[k..k + 3].copy_from_slice(&c);
        }
    }

    pub fn fill_rect(&mut self, x0: i64, y0: i64, w: i64, h: i64, c: Rgb) {
        for y in y0..y0 + h {
            for x in x0..x0 + w {
                self.set(x, y, c);
            }
        }
    }

    /// A line from (x0, y0) to (x1, y1), `dash` > 0 for a dashed line (pixels on, then off).
    pub fn line(&mut self, x0: f64, y0: f64, x1: f64, y1: f64, c: Rgb, dash: usize) {
        let n = ((x1 - x0).abs().max((y1 - y0).abs()).ceil() as usize).max(1);
        if n > 100_000 {
            return;
        }
        for i in 0..=n {
            if dash > 0 && (i / dash) % 2 == 1 {
                continue;
            }
            let t = i as f64 / n as f64;
            self.set(
                (x0 + t * (x1 - x0)).round() as i64,
                (y0 + t * (y1 - y0)).round() as i64,
                c,
            );
        }
    }

    pub fn circle(&mut self, cx: f64, cy: f64, r: f64, c: Rgb) {
        let n = ((r * 6.3).ceil() as usize).max(8);
        for i in 0..n {
            let a = i as f64 / n as f64 * std::f64::consts::TAU;
            self.set(
                (cx + r * a.cos()).round() as i64,
                (cy + r * a.sin()).round() as i64,
                c,
            );
        }
    }

    pub fn disc(&mut self, cx: f64, cy: f64, r: f64, c: Rgb) {
        let ri = r.ceil() as i64;
        for dy in -ri..=ri {
            for dx in -ri..=ri {
                if ((dx * dx + dy * dy) as f64) <= r * r {
                    self.set(cx.round() as i64 + dx, cy.round() as i64 + dy, c);
                }
            }
        }
    }

    /// Text with its top-left corner at (x, y); `scale` multiplies the 5×7 font.
    pub fn text(&mut self, x: i64, y: i64, s: &str, c: Rgb, scale: usize) {
        for (k, ch) in s.chars().enumerate() {
            let g = font::glyph(ch);
            let ox = x + (k * font::ADVANCE * scale) as i64;
            for (row, bits) in g.iter().enumerate() {
                for col in 0..5 {
                    if bits & (1 << (4 - col)) != 0 {
                        self.fill_rect(
                            ox + (col * scale) as i64,
                            y + (row * scale) as i64,
                            scale as i64,
                            scale as i64,
                            c,
                        );
                    }
                }
            }
        }
    }

    /// Text rotated 90° anticlockwise, reading upwards, its bottom-left corner at (x, y).
    pub fn text_up(&mut self, x: i64, y: i64, s: &str, c: Rgb, scale: usize) {
        for (k, ch) in s.chars().enumerate() {
            let g = font::glyph(ch);
            let oy = y - (k * font::ADVANCE * scale) as i64;
            for (row, bits) in g.iter().enumerate() {
                for col in 0..5 {
                    if bits & (1 << (4 - col)) != 0 {
                        self.fill_rect(
                            x + (row * scale) as i64,
                            oy - ((col + 1) * scale) as i64,
                            scale as i64,
                            scale as i64,
                            c,
                        );
                    }
                }
            }
        }
    }

    pub fn text_width(s: &str, scale: usize) -> i64 {
        (s.chars().count() * font::ADVANCE * scale) as i64
    }

    /// Encodes as PNG (8-bit RGB).
    pub fn png_bytes(&self) -> Result<Vec<u8>, png::EncodingError> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, self.w as u32, self.h as u32);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut wr = enc.write_header()?;
            wr.write_image_data(&self.px)?;
        }
        Ok(out)
    }

    pub fn save(&self, path: &Path) -> Result<(), PlotError> {
        let bytes = self.png_bytes().map_err(|source| PlotError::Encode {
            path: path.to_path_buf(),
            source,
        })?;
        write_bytes_atomic(path, &bytes).map_err(|source| PlotError::Write {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Tick values: a "nice" step giving about `n` ticks over [lo, hi].
pub fn nice_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater)
        || !lo.is_finite()
        || !hi.is_finite()
    {
        return Vec::new();
    }
    let raw = (hi - lo) / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let mut v = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while v <= hi + 1e-9 * step {
        out.push(if v.abs() < 1e-12 * step { 0.0 } else { v });
        v += step;
    }
    out
}

fn fmt_tick(v: f64) -> String {
    if v == v.round() && v.abs() < 1e6 {
        format!("{v:.0}")
    } else if (v * 10.0) == (v * 10.0).round() {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A plot panel mapping data to canvas pixels.
struct Panel {
    x0: f64,
    y0: f64,
    w: f64,
    h: f64,
    xr: (f64, f64),
    yr: (f64, f64),
}

impl Panel {
    fn px(&self, x: f64) -> f64 {
        self.x0 + (x - self.xr.0) / (self.xr.1 - self.xr.0) * self.w
    }
    fn py(&self, y: f64) -> f64 {
        self.y0 + self.h - (y - self.yr.0) / (self.yr.1 - self.yr.0) * self.h
    }
    fn frame(&self, c: &mut Canvas) {
        let (x0, y0, x1, y1) = (self.x0, self.y0, self.x0 + self.w, self.y0 + self.h);
        c.line(x0, y0, x1, y0, BLACK, 0);
        c.line(x0, y1, x1, y1, BLACK, 0);
        c.line(x0, y0, x0, y1, BLACK, 0);
        c.line(x1, y0, x1, y1, BLACK, 0);
    }
    /// Ticks, tick labels and grid lines; `ylabel_fmt` formats y tick labels.
    fn axes(&self, c: &mut Canvas, xlabel: &str, ylabel: &str, ylabel_fmt: &dyn Fn(f64) -> String) {
        for t in nice_ticks(self.xr.0.min(self.xr.1), self.xr.0.max(self.xr.1), 6) {
            let x = self.px(t);
            c.line(x, self.y0, x, self.y0 + self.h, LIGHT, 0);
            c.line(x, self.y0 + self.h, x, self.y0 + self.h + 5.0, BLACK, 0);
            let s = fmt_tick(t);
            c.text(
                x as i64 - Canvas::text_width(&s, 2) / 2,
                (self.y0 + self.h + 9.0) as i64,
                &s,
                BLACK,
                2,
            );
        }
        for t in nice_ticks(self.yr.0, self.yr.1, 6) {
            let y = self.py(t);
            c.line(self.x0, y, self.x0 + self.w, y, LIGHT, 0);
            c.line(self.x0 - 5.0, y, self.x0, y, BLACK, 0);
            let s = ylabel_fmt(t);
            c.text(
                self.x0 as i64 - 9 - Canvas::text_width(&s, 2),
                y as i64 - 7,
                &s,
                BLACK,
                2,
            );
        }
        c.text(
            (self.x0 + self.w / 2.0) as i64 - Canvas::text_width(xlabel, 2) / 2,
            (self.y0 + self.h + 32.0) as i64,
            xlabel,
            BLACK,
            2,
        );
        c.text_up(
            8,
            (self.y0 + self.h / 2.0) as i64 + Canvas::text_width(ylabel, 2) / 2,
            ylabel,
            BLACK,
            2,
        );
        self.frame(c);
    }
}

/// Quicklook geometry: block size (input pixels per output pixel, ≥ 1), zoom (output pixels per
/// block, ≥ 1), image panel size, margins (left, top) and the canvas size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuicklookLayout {
    pub block: usize,
    pub zoom: usize,
    pub panel: (usize, usize),
    pub margin: (usize, usize),
    pub canvas: (usize, usize),
}

/// The quicklook layout for an `nx` × `ny` mosaic and a longest side of `max_px`.
pub fn quicklook_layout(nx: usize, ny: usize, max_px: usize) -> QuicklookLayout {
    let m = nx.max(ny).max(1);
    let (block, zoom) = if m > max_px {
        (m.div_ceil(max_px), 1)
    } else {
        (1, (800 / m).clamp(1, 4))
    };
    let panel = (nx.div_ceil(block) * zoom, ny.div_ceil(block) * zoom);
    let margin = (130, 96);
    let canvas = ((panel.0 + margin.0 + 30).max(1000), panel.1 + margin.1 + 80);
    QuicklookLayout {
        block,
        zoom,
        panel,
        margin,
        canvas,
    }
}

fn fmt_ra(ra: f64, step_deg: f64) -> String {
    let h = ra.rem_euclid(360.0) / 15.0;
    let total_s = (h * 3600.0).round() as i64;
    let (hh, mm, ss) = (total_s / 3600, (total_s / 60) % 60, total_s % 60);
    if step_deg >= 15.0 {
        format!("{hh}h")
    } else if step_deg >= 0.25 {
        format!("{hh}h{mm:02}m")
    } else {
        format!("{hh}h{mm:02}m{ss:02}s")
    }
}

fn fmt_dec(dec: f64, step_deg: f64) -> String {
    let sign = if dec < 0.0 { "-" } else { "+" };
    let a = dec.abs();
    if step_deg >= 1.0 {
        format!("{sign}{:.0}°", a)
    } else {
        let total_m = (a * 60.0).round() as i64;
        format!("{sign}{}°{:02}'", total_m / 60, total_m % 60)
    }
}

fn pick_step(span: f64, choices: &[f64], max_lines: f64) -> f64 {
    choices
        .iter()
        .copied()
        .find(|s| span / s <= max_lines.max(2.0))
        .unwrap_or(*choices.last().unwrap_or(&30.0))
}

/// What the quicklook shows besides the pixels.
pub struct QuicklookText<'a> {
    pub title: &'a str,
    pub subtitle: &'a str,
    pub verdict: &'a str,
}

/// Draws the mosaic quicklook: asinh stretch from −2σ to the 99.95th percentile (at least 20σ)
/// of the (block-maximum) downsampled image, NaN in dark blue-grey, sources circled (green when
/// matched to the reference, orange otherwise; at most the 2000 brightest), an ICRS coordinate
/// grid with RA/Dec labels.
#[allow(clippy::too_many_arguments)]
pub fn quicklook(
    path: &Path,
    image: ArrayView2<f32>,
    wcs: &Wcs,
    sources: &[Source],
    matched: &[bool],
    beam: &BeamPx,
    max_px: usize,
    text: &QuicklookText,
) -> Result<QuicklookLayout, PlotError> {
    let (ny, nx) = image.dim();
    let lay = quicklook_layout(nx, ny, max_px);
    let small = Downsampled::block_maximum(image, lay.block);
    let stretch = Stretch::of(&small.values);
    let mut c = Canvas::new(lay.canvas.0, lay.canvas.1, WHITE);
    let panel = ImagePanel::new(&lay);
    paint_pixels(&mut c, &small, &stretch, &lay);
    draw_coordinate_grid(&mut c, wcs, nx, ny, &panel);
    let r = (beam.fwhm_px() * panel.scale * 1.5).max(4.0);
    for (s, m) in sources.iter().zip(matched).take(2000) {
        let (cx, cy) = panel.to_canvas(s.x, s.y);
        c.circle(cx, cy, r, if *m { GREEN } else { ORANGE });
    }
    draw_frame_and_text(&mut c, &panel, &stretch, text);
    c.save(path)?;
    Ok(lay)
}

/// The image reduced to block maxima (rows = y), NaN where a block has no finite pixel.
struct Downsampled {
    values: Vec<f32>,
    w: usize,
    h: usize,
}

impl Downsampled {
    fn block_maximum(image: ArrayView2<f32>, block: usize) -> Downsampled {
        let (ny, nx) = image.dim();
        let (w, h) = (nx.div_ceil(block), ny.div_ceil(block));
        let mut values = vec![f32::NAN; w * h];
        for by in 0..h {
            for bx in 0..w {
                let mut m = f32::NAN;
                for y in by * block..((by + 1) * block).min(ny) {
                    for x in bx * block..((bx + 1) * block).min(nx) {
                        let v = image[[y, x]];
                        if v.is_finite() && (m.is_nan() || v > m) {
                            m = v;
                        }
                    }
                }
                values[by * w + bx] = m;
            }
        }
        Downsampled { values, w, h }
    }
}

/// The asinh grey scale from `lo` (−2σ) to `hi` (99.95th percentile, at least 20σ).
struct Stretch {
    lo: f64,
    hi: f64,
}

impl Stretch {
    const SOFTENING: f64 = 10.0;

    fn of(values: &[f32]) -> Stretch {
        let (med, sig) = crate::stats::robust_stats(values).unwrap_or((0.0, 1.0));
        let sig = if sig > 0.0 { sig } else { 1.0 };
        let mut fin: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
        let p = if fin.is_empty() {
            med + 20.0 * sig
        } else {
            let k = ((fin.len() as f64 * 0.9995) as usize).min(fin.len() - 1);
            f64::from(*fin.select_nth_unstable_by(k, f32::total_cmp).1)
        };
        Stretch {
            lo: med - 2.0 * sig,
            hi: p.max(med + 20.0 * sig),
        }
    }

    fn colour(&self, v: f64) -> Rgb {
        if !v.is_finite() {
            return [40, 44, 60];
        }
        let t = ((v - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0);
        let a = Self::SOFTENING;
        let g = (f64::asinh(a * t) / f64::asinh(a) * 255.0).round() as u8;
        [g, g, g]
    }
}

/// Paints the downsampled pixels; FITS y increases upwards, so output rows are flipped.
fn paint_pixels(c: &mut Canvas, small: &Downsampled, stretch: &Stretch, lay: &QuicklookLayout) {
    let (mx, my) = (lay.margin.0 as i64, lay.margin.1 as i64);
    let z = lay.zoom as i64;
    for by in 0..small.h {
        for bx in 0..small.w {
            let col = stretch.colour(f64::from(small.values[by * small.w + bx]));
            let oy = ((small.h - 1 - by) * lay.zoom) as i64;
            c.fill_rect(mx + bx as i64 * z, my + oy, z, z, col);
        }
    }
}

/// The image panel on the canvas: margins, size and mosaic pixels → canvas pixels.
struct ImagePanel {
    mx: f64,
    my: f64,
    w: f64,
    h: f64,
    /// Canvas pixels per mosaic pixel.
    scale: f64,
}

impl ImagePanel {
    fn new(lay: &QuicklookLayout) -> ImagePanel {
        ImagePanel {
            mx: lay.margin.0 as f64,
            my: lay.margin.1 as f64,
            w: lay.panel.0 as f64,
            h: lay.panel.1 as f64,
            scale: lay.zoom as f64 / lay.block as f64,
        }
    }

    fn to_canvas(&self, x: f64, y: f64) -> (f64, f64) {
        (
            self.mx + (x + 0.5) * self.scale,
            self.my + self.h - (y + 0.5) * self.scale,
        )
    }

    fn inside(&self, cx: f64, cy: f64) -> bool {
        cx >= self.mx && cy >= self.my && cx <= self.mx + self.w && cy <= self.my + self.h
    }
}

/// The sky span of the mosaic: RA relative to the central sample's (so spans across 0h are
/// continuous) and Dec, from a 25 × 25 grid of pixel samples.
struct SkySpan {
    ra_c: f64,
    rmin: f64,
    rmax: f64,
    dmin: f64,
    dmax: f64,
}

impl SkySpan {
    fn of(wcs: &Wcs, nx: usize, ny: usize) -> Option<SkySpan> {
        let n = 24;
        let samples: Vec<(f64, f64)> = (0..=n)
            .flat_map(|j| (0..=n).map(move |i| (i, j)))
            .filter_map(|(i, j)| {
                wcs.pix_to_icrs(
                    f64::from(i) / f64::from(n) * (nx - 1) as f64,
                    f64::from(j) / f64::from(n) * (ny - 1) as f64,
                )
            })
            .collect();
        let &(ra_c, _) = samples.get(samples.len() / 2)?;
        let rel = samples
            .iter()
            .map(|s| (s.0 - ra_c + 540.0).rem_euclid(360.0) - 180.0);
        let (rmin, rmax) = rel.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
        let (dmin, dmax) = samples
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v.1), b.max(v.1)));
        Some(SkySpan {
            ra_c,
            rmin,
            rmax,
            dmin,
            dmax,
        })
    }
}

const RA_STEPS_DEG: [f64; 13] = [
    10.0 / 240.0,
    20.0 / 240.0,
    30.0 / 240.0,
    0.25,
    0.5,
    1.25,
    2.5,
    5.0,
    7.5,
    15.0,
    30.0,
    45.0,
    90.0,
];
const DEC_STEPS_DEG: [f64; 12] = [
    1.0 / 60.0,
    2.0 / 60.0,
    5.0 / 60.0,
    10.0 / 60.0,
    0.25,
    0.5,
    1.0,
    2.0,
    5.0,
    10.0,
    15.0,
    30.0,
];

/// Where a grid line is labelled: where it crosses the panel's bottom edge (RA) or its left
/// edge (Dec).
#[derive(Clone, Copy)]
enum LabelEdge {
    Bottom,
    Left,
}

/// Dashed lines of constant RA and Dec across the panel, labelled at the bottom and left edges.
fn draw_coordinate_grid(c: &mut Canvas, wcs: &Wcs, nx: usize, ny: usize, panel: &ImagePanel) {
    let Some(sp) = SkySpan::of(wcs, nx, ny) else {
        return;
    };
    let rs = pick_step(sp.rmax - sp.rmin, &RA_STEPS_DEG, (panel.w / 130.0).min(8.0));
    let ds = pick_step(sp.dmax - sp.dmin, &DEC_STEPS_DEG, (panel.h / 40.0).min(8.0));
    let mut k = ((sp.ra_c + sp.rmin) / rs).ceil();
    while k * rs <= sp.ra_c + sp.rmax {
        let ra = k * rs;
        let dec_at = |t: f64| sp.dmin - 0.1 * (sp.dmax - sp.dmin) + 1.2 * (sp.dmax - sp.dmin) * t;
        let label = fmt_ra(ra, rs);
        trace(
            c,
            wcs,
            panel,
            |t| (ra, dec_at(t)),
            LabelEdge::Bottom,
            &label,
        );
        k += 1.0;
    }
    let mut k = (sp.dmin / ds).ceil();
    while k * ds <= sp.dmax {
        let dec = k * ds;
        let ra_at =
            |t: f64| sp.ra_c + sp.rmin - 0.1 * (sp.rmax - sp.rmin) + 1.2 * (sp.rmax - sp.rmin) * t;
        let label = fmt_dec(dec, ds);
        trace(c, wcs, panel, |t| (ra_at(t), dec), LabelEdge::Left, &label);
        k += 1.0;
    }
}

/// Draws the sky curve `at(t)`, t in [0, 1], in 200 segments (skipping jumps across the
/// projection's edge), and its label where it first crosses `edge`.
fn trace(
    c: &mut Canvas,
    wcs: &Wcs,
    panel: &ImagePanel,
    at: impl Fn(f64) -> (f64, f64),
    edge: LabelEdge,
    label: &str,
) {
    let bottom = panel.my + panel.h;
    let left = panel.mx;
    let mut prev: Option<(f64, f64)> = None;
    let mut labelled = false;
    for t in 0..=200 {
        let (ra, dec) = at(f64::from(t) / 200.0);
        let cur = wcs
            .icrs_to_pix(ra.rem_euclid(360.0), dec)
            .map(|(x, y)| panel.to_canvas(x, y));
        if let (Some(p0), Some(p1)) = (prev, cur)
            && (p1.0 - p0.0).abs() + (p1.1 - p0.1).abs() < 200.0
        {
            if panel.inside(p0.0, p0.1) && panel.inside(p1.0, p1.1) {
                c.line(p0.0, p0.1, p1.0, p1.1, GRID, 3);
            }
            if !labelled {
                labelled = match edge {
                    LabelEdge::Bottom => {
                        let crosses = (p0.1 - bottom) * (p1.1 - bottom) <= 0.0
                            && panel.inside(p0.0, bottom - 1.0);
                        if crosses {
                            let x = p0.0 as i64 - Canvas::text_width(label, 2) / 2;
                            c.text(x, bottom as i64 + 6, label, BLACK, 2);
                        }
                        crosses
                    }
                    LabelEdge::Left => {
                        let crosses =
                            (p0.0 - left) * (p1.0 - left) <= 0.0 && panel.inside(left + 1.0, p0.1);
                        if crosses {
                            let x = left as i64 - 6 - Canvas::text_width(label, 2);
                            c.text(x, p0.1 as i64 - 7, label, BLACK, 2);
                        }
                        crosses
                    }
                };
            }
        }
        prev = cur;
    }
}

/// The panel's frame, the verdict, title and subtitle, the footnote and the Dec axis label.
fn draw_frame_and_text(
    c: &mut Canvas,
    panel: &ImagePanel,
    stretch: &Stretch,
    text: &QuicklookText,
) {
    let (pw, ph) = (panel.w, panel.h);
    let (fx, fy) = (panel.mx - 1.0, panel.my - 1.0);
    c.line(fx, fy, fx + pw + 1.0, fy, BLACK, 0);
    c.line(fx, fy + ph + 1.0, fx + pw + 1.0, fy + ph + 1.0, BLACK, 0);
    c.line(fx, fy, fx, fy + ph + 1.0, BLACK, 0);
    c.line(fx + pw + 1.0, fy, fx + pw + 1.0, fy + ph + 1.0, BLACK, 0);
    let vcol = match text.verdict {
        "PASS" => [20, 140, 40],
        "WARN" => [200, 130, 0],
        _ => RED,
    };
    c.text(10, 10, text.verdict, vcol, 3);
    let title_x = 10 + Canvas::text_width(text.verdict, 3) + 14;
    c.text(title_x, 12, text.title, BLACK, 2);
    for (k, line) in text.subtitle.lines().take(2).enumerate() {
        c.text(10, 42 + 22 * k as i64, line, [60, 60, 60], 2);
    }
    let foot = (panel.my + ph) as i64 + 34;
    let note = format!(
        "RA, Dec (ICRS). asinh stretch {:.3e} to {:.3e} Jy/beam. circles: sources (green = matched)",
        stretch.lo, stretch.hi
    );
    c.text(panel.mx as i64, foot, &note, [60, 60, 60], 1);
    c.text_up(12, (panel.my + ph / 2.0) as i64 + 30, "Dec", BLACK, 2);
}

/// Draws ΔRA·cos δ against ΔDec (arcsec) of the matches, the median offset (red cross) and the
/// restoring beam (FWHM ellipse, grey) when it fits the axes.
pub fn offsets(
    path: &Path,
    matches: &[Match],
    beam: &BeamPx,
    title: &str,
) -> Result<(), PlotError> {
    let (w, h) = OFFSETS_SIZE;
    let mut c = Canvas::new(w, h, WHITE);
    let mut mags: Vec<f64> = matches
        .iter()
        .map(|m| m.dra_arcsec.abs().max(m.ddec_arcsec.abs()))
        .collect();
    mags.sort_by(f64::total_cmp);
    let p95 = mags
        .get(((mags.len() as f64) * 0.95) as usize)
        .or(mags.last())
        .copied()
        .unwrap_or(1.0);
    let mut lim = (p95 * 1.2).max(1.0);
    let beam_fits = beam.bmaj_arcsec * 0.5 <= lim * 1.5;
    if beam_fits {
        lim = lim.max(beam.bmaj_arcsec * 0.55);
    }
    let panel = Panel {
        x0: 100.0,
        y0: 70.0,
        w: 500.0,
        h: 500.0,
        xr: (lim, -lim), // RA increases to the left, as on the sky
        yr: (-lim, lim),
    };
    panel.axes(&mut c, "ΔRA·cos(Dec) [arcsec]", "ΔDec [arcsec]", &fmt_tick);
    c.line(
        panel.px(0.0),
        panel.y0,
        panel.px(0.0),
        panel.y0 + panel.h,
        GREY,
        4,
    );
    c.line(
        panel.x0,
        panel.py(0.0),
        panel.x0 + panel.w,
        panel.py(0.0),
        GREY,
        4,
    );
    if beam_fits {
        let pa = beam.bpa_deg.to_radians();
        let (a, b) = (beam.bmaj_arcsec / 2.0, beam.bmin_arcsec / 2.0);
        for i in 0..720 {
            let t = f64::from(i) / 720.0 * std::f64::consts::TAU;
            // Position angle from north through east: east is +ΔRA.
            let (u, v) = (b * t.cos(), a * t.sin());
            let dx = u * pa.cos() + v * pa.sin();
            let dy = -u * pa.sin() + v * pa.cos();
            c.set(
                panel.px(dx).round() as i64,
                panel.py(dy).round() as i64,
                GREY,
            );
        }
    }
    for m in matches {
        let (x, y) = (panel.px(m.dra_arcsec), panel.py(m.ddec_arcsec));
        if x >= panel.x0 && x <= panel.x0 + panel.w && y >= panel.y0 && y <= panel.y0 + panel.h {
            c.disc(x, y, 2.5, BLUE);
        }
    }
    if !matches.is_empty() {
        let med = |f: fn(&Match) -> f64| {
            let mut v: Vec<f64> = matches.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (mx, my) = (
            panel.px(med(|m| m.dra_arcsec)),
            panel.py(med(|m| m.ddec_arcsec)),
        );
        c.line(mx - 9.0, my, mx + 9.0, my, RED, 0);
        c.line(mx, my - 9.0, mx, my + 9.0, RED, 0);
        c.line(mx - 9.0, my + 1.0, mx + 9.0, my + 1.0, RED, 0);
        c.line(mx + 1.0, my - 9.0, mx + 1.0, my + 9.0, RED, 0);
    }
    let mut lines = title.lines();
    c.text(10, 10, lines.next().unwrap_or(""), BLACK, 2);
    let legend = if beam_fits {
        format!(
            "blue: matches (found - reference); red +: median; grey ellipse: beam {:.1}\"×{:.1}\"",
            beam.bmaj_arcsec, beam.bmin_arcsec
        )
    } else {
        format!(
            "blue: matches (found - reference); red +: median; beam {:.1}\"×{:.1}\" is off this scale",
            beam.bmaj_arcsec, beam.bmin_arcsec
        )
    };
    if let Some(l) = lines.next() {
        c.text(10, 32, l, [60, 60, 60], 1);
    }
    c.text(10, 46, &legend, [60, 60, 60], 1);
    if matches.is_empty() {
        c.text(250, 300, "no matches", RED, 3);
    }
    c.save(path)
}

/// Draws the S/N histogram (log counts) with the Gaussian expected for pure noise and ±5σ marks.
pub fn noise_histogram(
    path: &Path,
    hist: &[u64],
    n_finite: u64,
    title: &str,
) -> Result<(), PlotError> {
    let (w, h) = HIST_SIZE;
    let mut c = Canvas::new(w, h, WHITE);
    let maxc = hist.iter().copied().max().unwrap_or(1).max(1) as f64;
    let top = maxc.log10().ceil().max(1.0) + 0.2;
    let panel = Panel {
        x0: 110.0,
        y0: 60.0,
        w: 660.0,
        h: 360.0,
        xr: (HIST_MIN, HIST_MAX),
        yr: (0.0, top),
    };
    panel.axes(
        &mut c,
        "(pixel - background) / local rms [σ]",
        "pixels",
        &|t| {
            if t == t.round() {
                format!("1e{t:.0}")
            } else {
                String::new()
            }
        },
    );
    let bw = (HIST_MAX - HIST_MIN) / HIST_BINS as f64;
    for (i, &n) in hist.iter().enumerate() {
        if n == 0 {
            continue;
        }
        let x0 = panel.px(HIST_MIN + i as f64 * bw);
        let x1 = panel.px(HIST_MIN + (i + 1) as f64 * bw);
        let y = panel.py((n as f64).log10().max(0.0));
        let base = panel.py(0.0);
        c.fill_rect(
            x0.round() as i64,
            y.round() as i64,
            (x1 - x0).round().max(1.0) as i64,
            (base - y).round() as i64,
            BLUE,
        );
    }
    let mut prev: Option<(f64, f64)> = None;
    for i in 0..=400 {
        let s = HIST_MIN + (HIST_MAX - HIST_MIN) * f64::from(i) / 400.0;
        let e = n_finite as f64 * bw * (-0.5 * s * s).exp() / (std::f64::consts::TAU).sqrt();
        if e < 1.0 {
            prev = None;
            continue;
        }
        let p = (panel.px(s), panel.py(e.log10()));
        if let Some(q) = prev {
            c.line(q.0, q.1, p.0, p.1, RED, 0);
            c.line(q.0, q.1 + 1.0, p.0, p.1 + 1.0, RED, 0);
        }
        prev = Some(p);
    }
    for s in [-5.0, 5.0] {
        c.line(
            panel.px(s),
            panel.y0,
            panel.px(s),
            panel.y0 + panel.h,
            BLACK,
            5,
        );
    }
    c.text(10, 10, title, BLACK, 2);
    c.text(
        10,
        36,
        "blue: pixels; red: Gaussian noise of the same count; dashed: +-5σ",
        [60, 60, 60],
        1,
    );
    c.save(path)
}
