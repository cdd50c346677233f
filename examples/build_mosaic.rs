//! Builds a linmos mosaic of every snapshot listed in a simulator directory's `snapshots.csv`
//! (or of every `*.fits` in a directory, with `--rms`), with the library engine, and prints the
//! result as JSON. Used by `scripts/bench-build` until `contimg build` is wired.
//!
//! usage: build_mosaic DIR OUT_STEM [--interp bilinear|bicubic|lanczos3|nearest]
//!        [--rms JY] [--cell-arcsec X] [--projection SIN|TAN|CAR] [--limit N]
//!        [--weights table|direct]   (Lanczos-3 weights: the table, or the direct formula)
//!        build_mosaic simulate OUT_DIR IMAGES SIZE CELL_ARCSEC [SEED]   (until `contimg simulate`)

// A test or example reports on stdout, which its harness captures; only the binary is held to
// "stdout carries manifests only".
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use contimg::mosaic::engine::{
    BuildOptions, GridProjection, Interpolation, MosaicInput, OutputPaths, build_mosaic,
};

fn inputs_from(dir: &Path, rms: Option<f64>) -> anyhow::Result<Vec<MosaicInput>> {
    let csv = dir.join("snapshots.csv");
    if rms.is_none() && csv.exists() {
        let text = std::fs::read_to_string(&csv)?;
        let mut lines = text.lines();
        let head: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
        let col = |name: &str| {
            head.iter()
                .position(|h| *h == name)
                .with_context(|| format!("{}: no {name} column", csv.display()))
        };
        let (cf, cr) = (col("file")?, col("rms_jy")?);
        return lines
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                let rms: f64 = f[cr].parse().with_context(|| format!("bad rms in {l}"))?;
                Ok(MosaicInput::new(dir.join(f[cf]), rms))
            })
            .collect();
    }
    let Some(rms) = rms else {
        bail!("{} has no snapshots.csv: give --rms", dir.display())
    };
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "fits") && !p.to_string_lossy().ends_with(".pb.fits")
        })
        .collect();
    v.sort();
    Ok(v.into_iter().map(|p| MosaicInput::new(p, rms)).collect())
}

fn simulate(args: &[String]) -> anyhow::Result<()> {
    if args.len() < 4 {
        bail!("usage: build_mosaic simulate OUT_DIR IMAGES SIZE CELL_ARCSEC [SEED]");
    }
    let cfg = contimg::mosaic::sim::SimConfig {
        out: PathBuf::from(&args[0]),
        images: args[1].parse()?,
        size: args[2].parse()?,
        cell: args[3].parse()?,
        seed: args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(1),
        ra_start: Some(150.0),
        ..contimg::mosaic::sim::SimConfig::default()
    };
    let s = contimg::mosaic::sim::simulate(&cfg, &|_| {})?;
    eprintln!("{} snapshots in {}", s.snapshots.len(), cfg.out.display());
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "simulate") {
        return simulate(&args[1..]);
    }
    if args.len() < 2 {
        bail!(
            "usage: build_mosaic DIR OUT_STEM [--interp K] [--rms JY] [--cell-arcsec X] [--projection P] [--limit N] [--weights table|direct]"
        );
    }
    let (dir, stem) = (PathBuf::from(&args[0]), PathBuf::from(&args[1]));
    let mut opts = BuildOptions::default();
    let mut rms = None;
    let mut limit = usize::MAX;
    let mut it = args[2..].iter();
    while let Some(flag) = it.next() {
        let val = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--interp" => {
                opts.interpolation = Interpolation::parse(val)
                    .with_context(|| format!("unknown interpolation {val}"))?;
            }
            "--rms" => rms = Some(val.parse()?),
            "--cell-arcsec" => opts.grid.cell_deg = Some(val.parse::<f64>()? / 3600.0),
            "--projection" => {
                opts.grid.projection = Some(
                    GridProjection::parse(val)
                        .with_context(|| format!("unknown projection {val}"))?,
                );
            }
            "--limit" => limit = val.parse()?,
            "--weights" => {
                opts.direct_kernel = match val.as_str() {
                    "table" => false,
                    "direct" => true,
                    _ => bail!("--weights takes table or direct"),
                }
            }
            _ => bail!("unknown option {flag}"),
        }
    }
    let mut inputs = inputs_from(&dir, rms)?;
    inputs.truncate(limit);
    let out_dir = stem
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = stem
        .file_name()
        .context("OUT_STEM needs a file name")?
        .to_string_lossy();
    let out = OutputPaths::from_stem(out_dir, &name);
    opts.plan_label = Some(format!("example build_mosaic {}", dir.display()));
    let r = build_mosaic(&inputs, &opts, &out, &|p| {
        eprint!("\r{}/{}", p.done, p.total);
    })?;
    eprintln!();
    println!("{}", serde_json::to_string_pretty(&r)?);
    Ok(())
}
