//! The status page at `/`: server-rendered HTML (no JavaScript), refreshing itself every
//! [`REFRESH_S`] seconds, for the person who checks the nights: the latest execution of each
//! pipeline with its status and QA verdict, the latest mosaic's QA pictures, the failed jobs with
//! their error and log tail, and the images ingested per night.
//!
//! Invariant: every text from the database is HTML-escaped and redacted of the secrets.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::App;
use super::auth::redact;
use super::routes::{ApiError, log_tail};
use crate::pipeline::exec::ExecutionSummary;
use crate::workspace::products::{self, MosaicFilter, MosaicRecord};

/// Seconds between the page's own refreshes.
const REFRESH_S: u32 = 30;
/// Executions read for the page.
const RECENT: usize = 200;
/// Failed executions whose jobs the page details.
const FAILED_SHOWN: usize = 5;

/// What the page shows, read in one blocking call.
struct Facts {
    executions: Vec<ExecutionSummary>,
    failed: Vec<crate::pipeline::ExecutionManifest>,
    mosaic: Option<MosaicRecord>,
    /// The pictures its QA recorded: (URL segment, what it shows).
    pictures: Vec<(&'static str, &'static str)>,
    nights: Vec<(String, usize)>,
    database: String,
    errors: Vec<String>,
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn gather(app: &App) -> Facts {
    let mut errors = Vec::new();
    let executions = app.executions(RECENT).unwrap_or_else(|e| {
        errors.push(format!("executions: {e}"));
        Vec::new()
    });
    let mut failed = Vec::new();
    for e in executions
        .iter()
        .filter(|e| e.status.as_str() == "failed")
        .take(FAILED_SHOWN)
    {
        match app.execution(e.execution_id) {
            Ok(m) => failed.push(m),
            Err(e) => errors.push(format!("execution: {e}")),
        }
    }
    let (mosaic, pictures, nights) = match app.mosaic_db_plain() {
        Ok(mut db) => {
            let latest_with_qa = products::mosaics(
                &mut db,
                &MosaicFilter {
                    tier: None,
                    limit: 20,
                    offset: 0,
                },
            )
            .map(|v| v.into_iter().find(|m| m.qa_verdict.is_some()))
            .unwrap_or_else(|e| {
                errors.push(format!("mosaics: {e}"));
                None
            });
            let nights = products::images_per_night(&mut db, 14).unwrap_or_else(|e| {
                errors.push(format!("images: {e}"));
                Vec::new()
            });
            let qa = latest_with_qa
                .as_ref()
                .and_then(|m| products::qa(&mut db, m.mosaic_id).ok().flatten());
            let pictures = qa.map_or_else(Vec::new, |q| {
                let p = &q.report.pictures;
                [
                    (p.quicklook.is_some(), "quicklook.png", "quicklook"),
                    (p.offsets.is_some(), "offsets.png", "astrometric offsets"),
                    (
                        p.noise_histogram.is_some(),
                        "noise_hist.png",
                        "noise histogram",
                    ),
                ]
                .into_iter()
                .filter(|(has, _, _)| *has)
                .map(|(_, seg, alt)| (seg, alt))
                .collect()
            });
            (latest_with_qa, pictures, nights)
        }
        Err(e) => {
            errors.push(format!("database: {e}"));
            (None, Vec::new(), Vec::new())
        }
    };
    Facts {
        executions,
        failed,
        mosaic,
        pictures,
        nights,
        database: app.database.target.to_string(),
        errors,
    }
}

fn verdict_cell(v: Option<&str>) -> String {
    match v {
        Some(v) => format!(
            "<td class=\"qa qa-{}\">QA {}</td>",
            esc(&v.to_ascii_lowercase()),
            esc(v)
        ),
        None => "<td class=\"qa\">–</td>".into(),
    }
}

fn render(app: &App, f: &Facts) -> String {
    let r = |s: &str| esc(&redact(s, &app.secrets));
    let mut h = String::new();
    h.push_str(&format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_S}\">\
         <title>contimg status</title><style>\
         body{{font-family:sans-serif;margin:1.5em;color:#222}}\
         table{{border-collapse:collapse;margin-bottom:1.5em}}\
         td,th{{border:1px solid #ccc;padding:.25em .6em;text-align:left;font-size:.9em}}\
         .completed{{background:#e6f4e6}} .failed,.interrupted{{background:#fbe3e3}}\
         .running{{background:#fff6d6}} .cancelled{{background:#eee}}\
         .qa-pass{{color:#176117}} .qa-warn{{color:#8a6100}} .qa-fail{{color:#a11}}\
         pre{{background:#f6f6f6;padding:.5em;max-height:20em;overflow:auto;font-size:.8em}}\
         img{{max-width:32%;border:1px solid #ccc;margin-right:.5em}}\
         </style></head><body>\n<h1>contimg status</h1>\n<p>Database {}; refreshed every \
         {REFRESH_S} s; generated {}.</p>\n",
        r(&f.database),
        esc(&crate::time::now_iso())
    ));
    for e in &f.errors {
        h.push_str(&format!(
            "<p class=\"failed\">Could not read {}</p>\n",
            r(e)
        ));
    }

    h.push_str("<h2>Latest execution of each pipeline</h2>\n");
    let mut latest: BTreeMap<&str, &ExecutionSummary> = BTreeMap::new();
    for e in &f.executions {
        latest.entry(e.pipeline.as_str()).or_insert(e);
    }
    h.push_str(
        "<table id=\"latest\"><tr><th>pipeline</th><th>execution</th><th>slot</th>\
         <th>status</th><th>QA</th><th>started</th><th>completed</th></tr>\n",
    );
    if latest.is_empty() {
        h.push_str("<tr><td colspan=\"7\">No executions yet.</td></tr>\n");
    }
    for (p, e) in &latest {
        h.push_str(&format!(
            "<tr class=\"{st}\"><td>{p}</td><td><a href=\"/api/v1/executions/{id}\">{id}</a></td>\
             <td>{slot}</td><td class=\"status\">{st}</td>{qa}<td>{start}</td><td>{end}</td></tr>\n",
            p = r(p),
            id = e.execution_id,
            slot = r(e.slot.as_deref().unwrap_or("-")),
            st = esc(e.status.as_str()),
            qa = verdict_cell(e.qa_verdict.as_deref()),
            start = r(e.started_at.as_deref().unwrap_or("-")),
            end = r(e.completed_at.as_deref().unwrap_or("-")),
        ));
    }
    h.push_str("</table>\n");

    h.push_str("<h2>Latest mosaic's QA</h2>\n");
    match &f.mosaic {
        Some(m) => {
            h.push_str(&format!(
                "<p id=\"mosaic\">Mosaic <a href=\"/api/v1/mosaics/{id}\">{id}</a> ({name}, tier {tier}, \
                 {n} images): <b class=\"qa-{vl}\">QA {v}</b> — <a href=\"/api/v1/mosaics/{id}/qa\">report</a>, \
                 <a href=\"/api/v1/mosaics/{id}/fits\">FITS</a></p>\n<p>",
                id = m.mosaic_id,
                name = r(m.plan_name.as_deref().unwrap_or("-")),
                tier = r(&m.tier),
                n = m.n_images,
                v = r(m.qa_verdict.as_deref().unwrap_or("-")),
                vl = esc(&m.qa_verdict.as_deref().unwrap_or("").to_ascii_lowercase()),
            ));
            for (pic, alt) in &f.pictures {
                h.push_str(&format!(
                    "<img src=\"/api/v1/mosaics/{}/{pic}\" alt=\"{alt}\">",
                    m.mosaic_id
                ));
            }
            h.push_str("</p>\n");
        }
        None => h.push_str("<p>No mosaic has been quality-checked yet.</p>\n"),
    }

    h.push_str("<h2>Failed jobs</h2>\n");
    let mut any = false;
    for m in &f.failed {
        for j in m.jobs.iter().filter(|j| j.state == "failed") {
            any = true;
            h.push_str(&format!(
                "<div class=\"failed-job\"><h3>Execution {eid} ({p}), job {job} ({kind}), \
                 {a}/{max} attempts</h3><p>{err}</p>",
                eid = m.execution_id,
                p = r(&m.pipeline),
                job = r(&j.id),
                kind = r(&j.job_type),
                a = j.attempts,
                max = j.max_attempts,
                err = r(j.error.as_deref().unwrap_or("(no error recorded)")),
            ));
            if let Some(t) = j
                .log_path
                .as_deref()
                .and_then(|p| log_tail(std::path::Path::new(p)))
            {
                h.push_str(&format!("<pre>{}</pre>", r(&t)));
            }
            h.push_str("</div>\n");
        }
    }
    if !any {
        h.push_str("<p>No failed jobs among the recent executions.</p>\n");
    }

    h.push_str(
        "<h2>Images ingested per night</h2>\n<table id=\"nights\"><tr><th>night (UTC)</th>\
         <th>images</th></tr>\n",
    );
    if f.nights.is_empty() {
        h.push_str("<tr><td colspan=\"2\">No images yet.</td></tr>\n");
    }
    for (night, n) in &f.nights {
        h.push_str(&format!("<tr><td>{}</td><td>{n}</td></tr>\n", esc(night)));
    }
    h.push_str("</table>\n");

    h.push_str(
        "<h2>Recent executions</h2>\n<table id=\"recent\"><tr><th>execution</th>\
         <th>pipeline</th><th>slot</th><th>status</th><th>QA</th><th>jobs</th></tr>\n",
    );
    for e in f.executions.iter().take(20) {
        let jobs: Vec<String> = e.jobs.iter().map(|(j, s)| format!("{j}:{s}")).collect();
        h.push_str(&format!(
            "<tr class=\"{st}\"><td><a href=\"/api/v1/executions/{id}\">{id}</a></td><td>{p}</td>\
             <td>{slot}</td><td>{st}</td>{qa}<td>{jobs}</td></tr>\n",
            id = e.execution_id,
            p = r(&e.pipeline),
            slot = r(e.slot.as_deref().unwrap_or("-")),
            st = esc(e.status.as_str()),
            qa = verdict_cell(e.qa_verdict.as_deref()),
            jobs = r(&jobs.join(" ")),
        ));
    }
    h.push_str("</table>\n</body></html>\n");
    h
}

pub(super) async fn status_page(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    let html = app
        .blocking(super::READ_WAIT, |app| Ok(render(app, &gather(app))))
        .await?;
    let mut resp = (StatusCode::OK, html).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"),
    );
    Ok(resp)
}
