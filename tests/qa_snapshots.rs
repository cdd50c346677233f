//! The build's record of its inputs through the real binary: `contimg init`, `simulate`,
//! `ingest`, `plan`, `build` write `<stem>.inputs.json` beside the mosaic; it parses back with
//! `qa::snapshots::read_inputs`, QA's subject finds it, and the snapshot check runs on it.

use std::path::Path;
use std::process::{Command, Stdio};

use contimg::mosaic::qa::snapshots::{read_inputs, snapshot_consistency};
use contimg::mosaic::qa::{QaConfig, Subject, find_sources_in};

/// Runs contimg in `dir` and parses its stdout as JSON, asserting success.
fn json_in(dir: &Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_contimg"))
        .env_remove("CONTIMG_WORKSPACE")
        .env_remove("CONTIMG_DB")
        .stdin(Stdio::null())
        .current_dir(dir)
        .args(args)
        .output()
        .expect("running contimg");
    assert!(
        out.status.success(),
        "contimg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

#[test]
fn build_writes_the_inputs_record_and_qa_reads_it() {
    let ws = tempfile::tempdir().unwrap();
    let dir = ws.path();
    json_in(dir, &["init", "."]);
    json_in(
        dir,
        &[
            "simulate",
            "--out",
            "snaps",
            "--images",
            "6",
            "--size",
            "160",
            "--cell",
            "40",
            "--start",
            "2026-11-20T03:00:00Z",
            "--cadence",
            "150",
        ],
    );
    json_in(dir, &["ingest", "snaps"]);
    let plan = json_in(
        dir,
        &[
            "plan",
            "--tier",
            "science",
            "--night",
            "2026-11-20",
            "--name",
            "night",
        ],
    );
    let built = json_in(dir, &["build", "--plan", &plan["plan_id"].to_string()]);
    let mosaic = Path::new(built["path"].as_str().unwrap()).to_path_buf();
    let record = mosaic.with_file_name("night.inputs.json");
    assert!(record.is_file(), "{} missing", record.display());

    let text: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    assert_eq!(text["schema"], "contimg.inputs/1");
    let inputs = read_inputs(&record).unwrap();
    assert_eq!(inputs.len(), 6);
    let planned: Vec<&str> = plan["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["path"].as_str().unwrap())
        .collect();
    for (rec, path) in inputs.iter().zip(&planned) {
        assert_eq!(rec.path, Path::new(path));
        assert_eq!(
            rec.primary_beam,
            contimg::mosaic::engine::linmos::AppliedBeam::Model
        );
        assert!(!rec.pb_corrected);
        assert!(rec.rms_jy > 0.0 && rec.freq_hz.is_some() && rec.beam_deg.is_some());
        assert_eq!(rec.telescope.as_deref(), Some("DSA-110"));
        assert!(rec.model.is_some() && rec.pb_image.is_none());
        assert!((rec.pointing_deg.1 - 35.0).abs() < 1e-6);
        assert!(rec.pb_cutoff > 0.0 && rec.pb_cutoff < 1.0);
    }

    // QA's subject finds the record beside the mosaic, and the snapshot check runs on it.
    let manifest: contimg::manifest::MosaicManifest = serde_json::from_value(built).unwrap();
    let subject = Subject::from_manifest(&manifest);
    assert_eq!(subject.inputs_path.as_deref(), Some(record.as_path()));
    let (sources, beam) = find_sources_in(&mosaic, &QaConfig::default()).unwrap();
    let report = snapshot_consistency(&inputs, &sources, &[], &beam, &|_, _, _| {});
    assert_eq!(report.n_inputs, 6);
    assert_eq!(report.n_read, 6, "{report:?}");
    for s in report.snapshots.iter().filter(|s| s.offset_beams.is_some()) {
        assert!(s.offset_beams.unwrap() < 0.5, "{s:?}");
    }
    let json = serde_json::to_string(&report).unwrap();
    let back: contimg::mosaic::qa::snapshots::SnapshotsReport =
        serde_json::from_str(&json).unwrap();
    // (serde_json reads floats back to within an ulp, not bit for bit.)
    assert_eq!(back.snapshots.len(), report.snapshots.len());
    assert_eq!(back.n_solved, report.n_solved);
    for (a, b) in back.snapshots.iter().zip(&report.snapshots) {
        assert_eq!(a.path, b.path);
        assert_eq!(a.connected, b.connected);
        assert_eq!(a.gain.is_some(), b.gain.is_some());
        assert!((a.gain.unwrap_or(0.0) - b.gain.unwrap_or(0.0)).abs() < 1e-12);
    }
}
