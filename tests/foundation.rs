//! Workspace, configuration, database schema and exit codes, through the real binary.

mod common;

use common::{contimg, json_in, run_in, workspace};

#[test]
fn init_creates_everything_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("night");
    let first = json_in(dir.path(), &["init", "night"], 0);
    assert_eq!(first["schema"], "contimg.init/1");
    for name in ["contimg.toml", "pipeline.sqlite3", "mosaics", "logs"] {
        assert!(ws.join(name).exists(), "{name} missing");
    }
    assert_eq!(first["created"].as_array().unwrap().len(), 4);
    let toml_before = std::fs::read(ws.join("contimg.toml")).unwrap();
    let second = json_in(dir.path(), &["init", "night"], 0);
    assert_eq!(second["created"].as_array().unwrap().len(), 0);
    assert_eq!(second["existing"].as_array().unwrap().len(), 4);
    assert_eq!(std::fs::read(ws.join("contimg.toml")).unwrap(), toml_before);
    // The config states every default and parses back.
    let text = String::from_utf8(toml_before).unwrap();
    for key in [
        "database = \"pipeline.sqlite3\"",
        "mosaics = \"mosaics\"",
        "logs = \"logs\"",
        "threads = 0",
    ] {
        assert!(text.contains(key), "{key} not written out in contimg.toml");
    }
}

#[test]
fn database_has_seed_tables_pragmas_and_version() {
    let ws = workspace();
    let conn = rusqlite::Connection::open(ws.path().join("pipeline.sqlite3")).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, contimg::store::SCHEMA_VERSION);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    for (table, cols) in [
        (
            "images",
            vec![
                "id",
                "path",
                "rms_jy",
                "ra_deg",
                "dec_deg",
                "created_at",
                "content_sha256",
                "obs_mjd",
                "freq_hz",
                "bmaj_arcsec",
                "pb_corrected",
                "ingested_at",
            ],
        ),
        (
            "mosaic_plans",
            vec![
                "id",
                "name",
                "tier",
                "start_time",
                "end_time",
                "image_ids",
                "n_images",
                "ra_min_deg",
                "ra_max_deg",
                "dec_min_deg",
                "dec_max_deg",
                "created_at",
                "status",
            ],
        ),
        (
            "mosaics",
            vec![
                "id",
                "plan_id",
                "path",
                "tier",
                "n_images",
                "median_rms_jy",
                "effective_noise_jy",
                "coverage_sq_deg",
                "qa_status",
                "qa_details",
                "created_at",
            ],
        ),
        (
            "mosaic_qa",
            vec![
                "id",
                "mosaic_id",
                "astrometry_rms_arcsec",
                "n_reference_stars",
                "median_noise_jy",
                "dynamic_range",
                "has_artifacts",
                "artifact_score",
                "passed",
                "warnings",
                "created_at",
            ],
        ),
        (
            "pipeline_executions",
            vec![
                "id",
                "pipeline_name",
                "status",
                "started_at",
                "completed_at",
                "error",
            ],
        ),
        (
            "pipeline_jobs",
            vec![
                "id",
                "execution_id",
                "job_id",
                "job_type",
                "status",
                "started_at",
                "completed_at",
                "result",
                "error",
            ],
        ),
    ] {
        let mut stmt = conn
            .prepare(&format!("PRAGMA table_info({table})"))
            .unwrap();
        let have: Vec<String> = stmt
            .query_map([], |r| r.get(1))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for c in cols {
            assert!(
                have.iter().any(|h| h == c),
                "{table}.{c} missing (have {have:?})"
            );
        }
    }
}

#[test]
fn newer_database_is_refused_and_not_altered() {
    let ws = workspace();
    let db = ws.path().join("pipeline.sqlite3");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.pragma_update(None, "user_version", 999).unwrap();
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    let out = run_in(ws.path(), &["images", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("schema version 999") && err.contains("newer"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the database was altered"
    );
}

#[test]
fn workspace_is_found_from_subdirectories_flag_and_variable() {
    let ws = workspace();
    let sub = ws.path().join("mosaics");
    let listed = json_in(&sub, &["images", "--json"], 0);
    assert_eq!(listed, serde_json::json!([]));
    let elsewhere = tempfile::tempdir().unwrap();
    let out = run_in(elsewhere.path(), &["images", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("contimg init"),
        "should say how to create a workspace: {err}"
    );
    let ws_arg = ws.path().to_str().unwrap();
    json_in(elsewhere.path(), &["-C", ws_arg, "images", "--json"], 0);
    let out = contimg()
        .current_dir(elsewhere.path())
        .env("CONTIMG_WORKSPACE", ws.path())
        .args(["images", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    // --db works with no workspace at all, and creates the schema.
    let db = elsewhere.path().join("other.sqlite3");
    json_in(
        elsewhere.path(),
        &["--db", db.to_str().unwrap(), "images", "--json"],
        0,
    );
    assert!(db.exists());
}

#[test]
fn bad_config_key_is_an_input_error_naming_file_and_key() {
    let ws = workspace();
    std::fs::write(
        ws.path().join("contimg.toml"),
        "[paths]\ndatabse = \"x.db\"\n",
    )
    .unwrap();
    let out = run_in(ws.path(), &["images", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("contimg.toml") && err.contains("databse"),
        "{err}"
    );
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        run_in(dir.path(), &["no-such-command"]).status.code(),
        Some(2)
    );
    assert_eq!(
        run_in(
            dir.path(),
            &["images", "--since", "yesterday-ish", "--db", "x.db"]
        )
        .status
        .code(),
        Some(2)
    );
    let help = run_in(dir.path(), &["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("ingest"));
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = contimg()
        .current_dir(dir.path())
        .args(["completions", "bash"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Close the read end before contimg writes (like `contimg … | head -c0`).
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn listings_and_summaries_carry_a_schema_tag() {
    let ws = workspace();
    let listings = [
        (vec!["tiers", "--json"], "contimg.tier/1"),
        (vec!["pipelines", "--json"], "contimg.pipeline/1"),
    ];
    for (args, schema) in listings {
        let rows = json_in(ws.path(), &args, 0);
        let rows = rows.as_array().unwrap();
        assert!(!rows.is_empty(), "{args:?}");
        for row in rows {
            assert_eq!(row["schema"], schema, "{args:?}: {row}");
            assert!(
                row["name"].is_string(),
                "{args:?}: the row's own fields stay: {row}"
            );
        }
    }
    for (args, schema) in [
        (vec!["images", "--json"], "contimg.image/1"),
        (vec!["status", "--json"], "contimg.execution-summary/1"),
        (vec!["notifications", "--json"], "contimg.notification/1"),
    ] {
        // Empty in a new workspace: still an array, so `jq '.[]'` works.
        assert!(
            json_in(ws.path(), &args, 0).is_array(),
            "{args:?} ({schema})"
        );
    }
    let check = json_in(ws.path(), &["pipelines", "check"], 0);
    assert_eq!(check["schema"], "contimg.pipelines-check/1");
    let stats = json_in(ws.path(), &["worker", "--once"], 0);
    assert_eq!(stats["schema"], "contimg.worker/1");
    assert_eq!(stats["attempts"], 0, "{stats}");
}
