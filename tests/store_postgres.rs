//! The mosaic steps on PostgreSQL through the real binary: `simulate` → `ingest` → `plan` →
//! `build` → `qa` against a server and against an SQLite file give the same manifests and the same
//! recorded values; ingest is idempotent; the migration is recorded and a newer schema is refused
//! untouched; bad URLs fail in one line naming the masked URL, with nothing recorded.
//!
//! The server is the one `scripts/pg-cluster start` runs (scripts/test and .ci/run start it), found
//! through CONTIMG_TEST_PG; without it these tests fail and say how to start one. Each test works in
//! a schema of its own (CONTIMG_PG_SCHEMA=t_…), dropped at the end.

mod common;

use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicU32, Ordering};

use common::{contimg, json_in};

/// The test server's URL; fails (never skips) when there is none.
fn pg_url() -> String {
    std::env::var("CONTIMG_TEST_PG").unwrap_or_else(|_| {
        panic!(
            "CONTIMG_TEST_PG is not set: these tests need a PostgreSQL server. Run them with \
             scripts/test (it starts one), or start one with `eval \"$(scripts/pg-cluster start)\"` \
             (needs apt-get install postgresql and pip install absurdctl absurd-sdk)"
        )
    })
}

fn client() -> postgres::Client {
    postgres::Client::connect(&pg_url(), postgres::NoTls)
        .unwrap_or_else(|e| panic!("cannot connect to the test server ({e})"))
}

/// A schema name no other test uses, dropped with everything in it when the test ends.
struct Schema(String);

impl Schema {
    fn new() -> Schema {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        Schema(format!(
            "t_{}_{}_{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ))
    }

    fn exists(&self) -> bool {
        client()
            .query_one(
                "SELECT count(*) FROM pg_namespace WHERE nspname = $1",
                &[&self.0],
            )
            .unwrap()
            .get::<_, i64>(0)
            == 1
    }

    /// Rows of a query in this schema, each column as text (numbers and booleans as [`num`]).
    fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        use postgres::types::Type;
        let mut c = client();
        c.batch_execute(&format!("SET search_path TO \"{}\"", self.0))
            .unwrap();
        let column = |r: &postgres::Row, i: usize| -> Option<String> {
            let t = r.columns()[i].type_().clone();
            if t == Type::INT8 {
                r.get::<_, Option<i64>>(i).and_then(|x| num(x as f64))
            } else if t == Type::FLOAT8 {
                r.get::<_, Option<f64>>(i).and_then(num)
            } else if t == Type::BOOL {
                r.get::<_, Option<bool>>(i)
                    .and_then(|b| num(f64::from(u8::from(b))))
            } else {
                r.get::<_, Option<String>>(i)
            }
        };
        c.query(sql, &[])
            .unwrap()
            .iter()
            .map(|r| (0..r.len()).map(|i| column(r, i)).collect())
            .collect()
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&pg_url(), postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.0));
        }
    }
}

/// A number as the tests compare it: its `f64` value (SQLite keeps 40.0 in a REAL column as 40,
/// and flags as 0/1).
fn num(x: f64) -> Option<String> {
    Some(format!("{x:?}"))
}

/// What `schema_migrations` holds once this binary has migrated a schema: (version, name) of
/// every PostgreSQL migration it embeds.
fn every_migration() -> Vec<Vec<Option<String>>> {
    contimg::store::PG_MIGRATIONS
        .iter()
        .enumerate()
        .map(|(i, (name, _))| vec![num((i + 1) as f64), Some((*name).to_string())])
        .collect()
}

/// The same query on an SQLite file, each column as text.
fn sqlite_rows(db: &Path, sql: &str) -> Vec<Vec<Option<String>>> {
    use rusqlite::types::ValueRef;
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        Ok((0..n)
            .map(|i| match r.get_ref(i).unwrap() {
                ValueRef::Null => None,
                ValueRef::Integer(x) => num(x as f64),
                ValueRef::Real(x) => num(x),
                ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(_) => panic!("blob"),
            })
            .collect())
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Runs contimg in `dir` against the PostgreSQL `url` in `schema`.
fn run_pg(dir: &Path, url: &str, schema: &Schema, args: &[&str]) -> Output {
    contimg()
        .current_dir(dir)
        .env("CONTIMG_DB", url)
        .env("CONTIMG_PG_SCHEMA", &schema.0)
        .args(args)
        .output()
        .expect("running contimg")
}

fn json_pg(dir: &Path, schema: &Schema, args: &[&str]) -> serde_json::Value {
    let out = run_pg(dir, &pg_url(), schema, args);
    assert!(
        out.status.success(),
        "contimg {args:?} on PostgreSQL: stderr={}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A manifest with what legitimately differs between two databases and two workspaces taken
/// out: ids, the database, creation and ingest times, timings and the workspace directory in
/// paths.
fn comparable(v: &serde_json::Value, ws: &Path) -> serde_json::Value {
    const DIFFER: &[&str] = &[
        "database",
        "id",
        "plan_id",
        "mosaic_id",
        "qa_id",
        "created_at",
        "ingested_at",
        "elapsed_s",
        "timings_s",
        "measure_s",
        "solve_s",
    ];
    match v {
        serde_json::Value::Object(m) => serde_json::Value::Object(
            m.iter()
                .filter(|(k, _)| !DIFFER.contains(&k.as_str()))
                .map(|(k, x)| (k.clone(), comparable(x, ws)))
                .collect(),
        ),
        serde_json::Value::Array(a) => a.iter().map(|x| comparable(x, ws)).collect(),
        serde_json::Value::String(s) => {
            serde_json::Value::String(s.replace(&*ws.to_string_lossy(), "<workspace>"))
        }
        other => other.clone(),
    }
}

const WINDOW: &[&str] = &[
    "--tier",
    "quicklook",
    "--start",
    "2026-01-01T00:00Z",
    "--end",
    "2026-01-02T00:00Z",
];

/// What each database recorded, in the same column order on both backends.
const RECORDED: &[&str] = &[
    "SELECT path, rms_jy, ra_deg, dec_deg, content_sha256, obs_time, obs_mjd, naxis1, naxis2, \
     cell_arcsec, freq_hz, bmaj_arcsec, projection, frame, pb_corrected, n_blank FROM images ORDER BY path",
    "SELECT name, tier, start_time, end_time, n_images, ra_min_deg, ra_max_deg, dec_min_deg, \
     dec_max_deg, status, left_out FROM mosaic_plans",
    "SELECT tier, n_images, median_rms_jy, effective_noise_jy, coverage_sq_deg, qa_status, \
     sha256, weight_sha256, noise_sha256 FROM mosaics",
    "SELECT astrometry_rms_arcsec, n_reference_stars, median_noise_jy, dynamic_range, \
     has_artifacts, artifact_score, passed, warnings FROM mosaic_qa",
];

#[test]
fn the_mosaic_steps_record_the_same_on_postgres_and_sqlite() {
    let schema = Schema::new();
    let snaps = tempfile::tempdir().unwrap();
    json_in(
        snaps.path(),
        &[
            "simulate",
            "--out",
            ".",
            "--images",
            "4",
            "--size",
            "160",
            "--cell",
            "40",
            "--start",
            "2026-01-01T03:00:00Z",
        ],
        0,
    );
    let snaps_dir = snaps.path().to_string_lossy().into_owned();
    let steps = |ws: &Path, run: &dyn Fn(&[&str]) -> serde_json::Value| {
        let ingest = run(&["ingest", &snaps_dir]);
        let plan = run(&[&["plan"], WINDOW].concat());
        std::fs::write(ws.join("plan.json"), plan.to_string()).unwrap();
        let mosaic = run(&["build", "plan.json"]);
        std::fs::write(ws.join("mosaic.json"), mosaic.to_string()).unwrap();
        let qa = run(&["qa", "mosaic.json", "--no-pictures"]);
        [ingest, plan, mosaic, qa].map(|m| comparable(&m, ws))
    };
    let lite = common::workspace();
    let on_sqlite = steps(lite.path(), &|args| json_in(lite.path(), args, 0));
    let pg = common::workspace();
    let on_pg = steps(pg.path(), &|args| json_pg(pg.path(), &schema, args));
    for (a, b) in on_sqlite.iter().zip(&on_pg) {
        assert_eq!(a, b, "the manifests differ between SQLite and PostgreSQL");
    }
    assert_eq!(on_pg[3]["verdict"], "PASS", "{:#}", on_pg[3]);

    let lite_db = lite.path().join("pipeline.sqlite3");
    for sql in RECORDED {
        let (l, p) = (sqlite_rows(&lite_db, sql), schema.rows(sql));
        assert!(!l.is_empty(), "nothing recorded for {sql}");
        assert_eq!(l, p, "{sql}");
    }
    // The PostgreSQL workspace's own SQLite file got nothing: everything went to the server.
    assert!(sqlite_rows(&pg.path().join("pipeline.sqlite3"), "SELECT id FROM images").is_empty());

    // Ingesting again changes nothing.
    let again = json_pg(pg.path(), &schema, &["ingest", &snaps_dir]);
    assert_eq!(again["added"].as_array().unwrap().len(), 0, "{again:#}");
    assert_eq!(again["updated"].as_array().unwrap().len(), 0, "{again:#}");
    assert_eq!(again["unchanged"].as_array().unwrap().len(), 4, "{again:#}");
    assert_eq!(schema.rows(RECORDED[0]), sqlite_rows(&lite_db, RECORDED[0]));
    // And `images` lists the same rows from either database.
    let listed = |v: serde_json::Value, ws: &Path| comparable(&v, ws);
    assert_eq!(
        listed(json_in(lite.path(), &["images", "--json"], 0), lite.path()),
        listed(
            json_pg(pg.path(), &schema, &["images", "--json"]),
            pg.path()
        )
    );
}

#[test]
fn the_migration_is_recorded_and_a_newer_schema_is_refused_untouched() {
    let schema = Schema::new();
    let ws = common::workspace();
    let listed = json_pg(ws.path(), &schema, &["images", "--json"]);
    assert_eq!(listed, serde_json::json!([]));
    let migrations = schema.rows("SELECT version, name FROM schema_migrations ORDER BY version");
    assert_eq!(migrations, every_migration());
    assert_eq!(migrations[0], [num(1.0), Some("0001_core".to_string())]);

    // A newer contimg migrated this schema further.
    client()
        .execute(
            &format!(
                "INSERT INTO \"{}\".schema_migrations VALUES (99, '0099_future', 'now')",
                schema.0
            ),
            &[],
        )
        .unwrap();
    let tables = "SELECT table_name::text FROM information_schema.tables \
                  WHERE table_schema = current_schema() ORDER BY 1";
    let before = (
        schema.rows(tables),
        schema.rows("SELECT * FROM schema_migrations"),
    );
    json_in(
        ws.path(),
        &[
            "simulate", "--out", "snaps", "--images", "2", "--size", "96",
        ],
        0,
    );
    let out = run_pg(ws.path(), &pg_url(), &schema, &["ingest", "snaps"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("version 99") && stderr.contains(&schema.0) && stderr.contains(":***@"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    let after = (
        schema.rows(tables),
        schema.rows("SELECT * FROM schema_migrations"),
    );
    assert_eq!(before, after);
    assert!(schema.rows("SELECT id FROM images").is_empty());
}

#[test]
fn unusable_urls_fail_in_one_line_naming_the_masked_url() {
    let good = pg_url();
    let (scheme_user, rest) = good.split_once('@').expect("a URL with user@");
    let (user_part, password) = scheme_user
        .rsplit_once(':')
        .expect("CONTIMG_TEST_PG holds a password");
    let query = &rest[rest.find('?').expect("a URL with ?host=")..];
    let wrong_password = format!("{user_part}:not-{password}@{rest}");
    let missing_db = format!("{user_part}:{password}@/no_such_database_here{query}");
    let unreachable = format!("{user_part}:{password}@127.0.0.1:1/contimg");
    let ws = common::workspace();
    json_in(
        ws.path(),
        &[
            "simulate", "--out", "snaps", "--images", "1", "--size", "96",
        ],
        0,
    );
    for (url, says) in [
        (&wrong_password, "password"),
        (&missing_db, "does not exist"),
        (&unreachable, "server running"),
    ] {
        let schema = Schema::new();
        let out = run_pg(ws.path(), url, &schema, &["ingest", "snaps"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{url}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(&contimg::pg::mask_url(url)), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
        assert!(!stderr.contains(password), "the password leaked: {stderr}");
        assert!(out.stdout.is_empty());
        assert!(!schema.exists(), "{url}: schema {} was created", schema.0);
    }
    let none = sqlite_rows(&ws.path().join("pipeline.sqlite3"), "SELECT id FROM images");
    assert!(none.is_empty());
}

#[test]
fn the_workspace_config_names_the_server_and_its_schema() {
    let schema = Schema::new();
    let ws = common::workspace();
    let cfg = ws.path().join("contimg.toml");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(
            "database = \"pipeline.sqlite3\"",
            &format!("database = \"{}\"", pg_url()),
        )
        .replace(
            "schema = \"contimg\"",
            &format!("schema = \"{}\"", schema.0),
        );
    std::fs::write(&cfg, text).unwrap();
    let run = |extra_env: &[(&str, &str)], args: &[&str]| {
        let mut c = contimg();
        c.current_dir(ws.path())
            .env_remove("CONTIMG_PG_SCHEMA")
            .envs(extra_env.iter().copied())
            .args(args);
        c.output().unwrap()
    };
    let out = run(&[], &["images", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(schema.exists(), "[postgres] schema was not used");
    assert_eq!(
        schema.rows("SELECT version, name FROM schema_migrations ORDER BY version"),
        every_migration()
    );

    // A schema name that is not a plain identifier is refused before anything is done.
    let out = run(
        &[("CONTIMG_PG_SCHEMA", "x; DROP TABLE images")],
        &["images"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("CONTIMG_PG_SCHEMA"), "{stderr}");
}

#[test]
fn two_ingests_at_once_on_a_new_schema_record_each_image_once() {
    let schema = Schema::new();
    let ws = common::workspace();
    json_in(
        ws.path(),
        &[
            "simulate", "--out", "snaps", "--images", "8", "--size", "96",
        ],
        0,
    );
    // Both processes find the schema missing, create and migrate it, and race on every file.
    let spawn = || {
        contimg()
            .current_dir(ws.path())
            .env("CONTIMG_DB", pg_url())
            .env("CONTIMG_PG_SCHEMA", &schema.0)
            .args(["ingest", "snaps"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let mut added = Vec::new();
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        added.extend(
            m["added"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["path"].as_str().unwrap().to_string()),
        );
        assert!(m["updated"].as_array().unwrap().is_empty(), "{m:#}");
    }
    added.sort();
    let recorded: Vec<String> = schema
        .rows("SELECT path FROM images ORDER BY path")
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect();
    assert_eq!(recorded.len(), 8);
    assert_eq!(
        added, recorded,
        "each image is added by exactly one of the two"
    );
    assert_eq!(
        schema.rows("SELECT version, name FROM schema_migrations ORDER BY version"),
        every_migration(),
        "each migration is applied once"
    );
}

#[test]
fn the_mosaic_steps_reach_the_server_over_tls() {
    let tls = std::env::var("CONTIMG_TEST_PG_TLS").unwrap_or_else(|_| {
        panic!(
            "CONTIMG_TEST_PG_TLS is not set: start the test server with \
             `eval \"$(scripts/pg-cluster start)\"`"
        )
    });
    assert!(tls.contains("sslmode=require"), "{tls}");
    let schema = Schema::new();
    let ws = common::workspace();
    json_in(
        ws.path(),
        &[
            "simulate", "--out", "snaps", "--images", "2", "--size", "96",
        ],
        0,
    );
    // sslmode=require: contimg connects over TLS (checking the server against PGSSLROOTCERT) or
    // not at all.
    let out = run_pg(ws.path(), &tls, &schema, &["ingest", "snaps"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(schema.rows("SELECT id FROM images").len(), 2);
}

/// A connection the server drops (a restart, an administrator's `pg_terminate_backend`) between
/// two statements: the next read and the next write transaction reopen it and succeed, and the
/// write is recorded once.
#[test]
fn a_dropped_connection_is_reopened_for_the_next_read_and_write() {
    use contimg::store::{Db, Sql, Target};
    let schema = Schema::new();
    let mut db = Db::open(&Target::Postgres {
        url: pg_url(),
        schema: schema.0.clone(),
    })
    .unwrap();
    let pid = |db: &mut Db| -> i64 {
        db.query("SELECT pg_backend_pid()::int8", &[]).unwrap()[0]
            .get::<i64>(0)
            .unwrap()
    };
    let kill = |pid: i64| {
        let killed: bool = client()
            .query_one("SELECT pg_terminate_backend($1::int4)", &[&(pid as i32)])
            .unwrap()
            .get(0);
        assert!(killed, "backend {pid} terminated");
    };
    db.write(|tx| tx.execute("CREATE TABLE marks (n INT8)", &[]))
        .unwrap();
    let first = pid(&mut db);
    kill(first);
    // The read finds its connection gone and runs again on a new one.
    let second = pid(&mut db);
    assert_ne!(first, second);
    // So does a write transaction cut before its COMMIT (here in its middle); it is recorded once.
    let mut tries = 0;
    db.write(|tx| {
        tries += 1;
        if tries == 1 {
            kill(second);
        }
        tx.execute("INSERT INTO marks VALUES (?1)", &[7i64.into()])
    })
    .unwrap();
    assert_eq!(tries, 2, "the transaction ran again after the reconnect");
    assert_eq!(schema.rows("SELECT count(*) FROM marks"), [[num(1.0)]]);
}
