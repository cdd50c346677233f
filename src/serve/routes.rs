//! The endpoints: routing, the access check every request passes, and the handlers (each turns
//! its request into one blocking call on the pool and its result into JSON).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{Need, Refusal, bearer, redact, redact_json};
use super::{App, LogProgress, MAX_BODY, READ_WAIT};
use crate::pipeline::api::{self, SlotChoice, SlotRun};
use crate::pipeline::{ExecStatus, PipelineError, RequestKey};
use crate::workspace::products::{self, MosaicFilter, Product};
use crate::workspace::session::{Db, ImageFilter, StoreError};

/// Largest page of a listing.
const MAX_LIMIT: usize = 500;
/// Executions scanned when a listing is filtered.
const FILTER_SCAN: usize = 5000;
/// The end of a job's log shown with an execution (bytes).
const LOG_TAIL: u64 = 4096;

/// An answer other than success: a status and a message (`contimg.error/1`).
#[derive(Debug)]
pub(super) struct ApiError {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }
    fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
    fn busy(message: impl Into<String>) -> ApiError {
        ApiError {
            retry_after: Some(2),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
        }
    }
    fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "schema": "contimg.error/1",
            "status": self.status.as_u16(),
            "error": self.message,
        });
        let mut r = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

/// Whether an error only says that an SQLite database was locked by another connection.
fn is_busy(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rusqlite::Error>()
            && matches!(
                r.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            )
        {
            return true;
        }
        cur = err.source();
    }
    false
}

impl From<PipelineError> for ApiError {
    fn from(e: PipelineError) -> ApiError {
        if let PipelineError::NoSuchExecution(id) = e {
            return ApiError::new(
                StatusCode::NOT_FOUND,
                format!("execution {id} does not exist"),
            );
        }
        if is_busy(&e) {
            return ApiError::busy(format!("the database is busy ({e}); try again"));
        }
        if let PipelineError::KeyReused(m) = &e {
            return ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, m.clone());
        }
        if let PipelineError::Conflict(m) = &e {
            // E.g. another run of the pipeline for the same slot (`now` is to the second) with
            // other parameters.
            return ApiError::new(
                StatusCode::CONFLICT,
                format!("{m}; give a slot of its own, or try again in a second"),
            );
        }
        if e.is_input() {
            return ApiError::bad(e.to_string());
        }
        ApiError::internal(e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        if is_busy(&e) {
            return ApiError::busy(format!("the database is busy ({e}); try again"));
        }
        ApiError::internal(e.to_string())
    }
}

type ApiResult = Result<Response, ApiError>;

impl App {
    /// Runs `f` on the blocking pool once a permit is free; past `wait` (for the permit, then for
    /// `f`), answers 503 while `f` goes on.
    pub(super) async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        wait: Duration,
        f: impl FnOnce(&App) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit = tokio::time::timeout(wait, self.pool.clone().acquire_owned())
            .await
            .map_err(|_| ApiError::busy("the server is busy; try again"))?
            .map_err(|_| ApiError::busy("the server is stopping"))?;
        let app = self.clone();
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f(&app)
        });
        match tokio::time::timeout(wait, task).await {
            Err(_) => Err(ApiError::busy(
                "the database did not answer in time (on SQLite: another process holds its write lock); try again \
                 (with the same Idempotency-Key to get the same execution)",
            )),
            Ok(Err(e)) => Err(ApiError::internal(format!(
                "the request's task failed: {e}"
            ))),
            Ok(Ok(r)) => r,
        }
    }

    /// The latest `scan` executions, newest first: read once per [`super::LISTING_TTL`] however
    /// many clients ask at once (they wait for the one read).
    async fn listing(
        self: &Arc<Self>,
        scan: usize,
    ) -> Result<Arc<Vec<crate::pipeline::exec::ExecutionSummary>>, ApiError> {
        let mut cached = self.listing.lock().await;
        let writes = self.writes.load(std::sync::atomic::Ordering::SeqCst);
        if let Some((t, w, n, list)) = cached.as_ref()
            && t.elapsed() < super::LISTING_TTL
            && *w == writes
            && *n >= scan
        {
            return Ok(Arc::new(list.iter().take(scan).cloned().collect()));
        }
        let list = Arc::new(
            self.blocking(READ_WAIT, move |app| Ok(app.executions(scan)?))
                .await?,
        );
        *cached = Some((std::time::Instant::now(), writes, scan, list.clone()));
        Ok(list)
    }

    /// Forgets the cached listing (after a write through this server).
    fn changed(&self) {
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// A JSON answer, redacted of the secrets.
    fn json(&self, status: StatusCode, mut v: Value) -> Response {
        redact_json(&mut v, &self.secrets);
        (status, axum::Json(v)).into_response()
    }

    fn mosaic_db(&self) -> Result<Db, ApiError> {
        Ok(self.mosaic_db_plain()?)
    }
}

/// Every request: the Host allow-list, then the token its method and path need. No CORS.
pub(super) async fn guard(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let h = req.headers();
    let host = h.get(header::HOST).and_then(|v| v.to_str().ok());
    let auth = h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let need = if req.uri().path() == "/healthz" {
        Need::Nothing
    } else if req.method() == axum::http::Method::GET || req.method() == axum::http::Method::HEAD {
        Need::Read
    } else {
        Need::Write
    };
    let refused = app
        .access
        .host_ok(host)
        .and_then(|()| app.access.allowed(need, bearer(auth)));
    match refused {
        Ok(()) => {
            let mut r = next.run(req).await;
            let hs = r.headers_mut();
            hs.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            hs.entry(header::CACHE_CONTROL)
                .or_insert(HeaderValue::from_static("no-store"));
            r
        }
        Err(Refusal::Unauthorized(m)) => ApiError::new(StatusCode::UNAUTHORIZED, m).into_response(),
        Err(Refusal::Host(m)) => ApiError::new(StatusCode::FORBIDDEN, m).into_response(),
    }
}

pub(super) async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such endpoint; see `contimg serve --help` for the API",
    )
}

pub(super) async fn healthz(State(app): State<Arc<App>>) -> ApiResult {
    let r = app
        .blocking(READ_WAIT, |app| {
            app.executions(1)?;
            Ok(())
        })
        .await;
    Ok(match r {
        Ok(()) => app.json(StatusCode::OK, json!({"status": "ok"})),
        Err(e) => app.json(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unavailable", "error": e.message}),
        ),
    })
}

/// A numeric id from the path (a clear 400 for anything else, `..` included).
fn id_of(s: &str, what: &str) -> Result<i64, ApiError> {
    s.parse::<i64>()
        .ok()
        .filter(|i| *i > 0)
        .ok_or_else(|| ApiError::bad(format!("{what} id {s:?} is not a positive integer")))
}

/// `POST /api/v1/runs`.
#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct RunRequest {
    pipeline: String,
    #[serde(default)]
    slot: Option<String>,
    #[serde(default)]
    params: Option<serde_json::Map<String, Value>>,
}

pub(super) async fn create_run(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult {
    let body = body.map_err(|e| {
        ApiError::new(
            e.status(),
            format!(
                "{}; a run request is at most {MAX_BODY} bytes",
                e.body_text()
            ),
        )
    })?;
    let req: RunRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad(format!(
            "the body is not a run request ({e}); send {{\"pipeline\": NAME, \"slot\": TIME}} or \
             {{\"pipeline\": NAME, \"params\": {{…}}}}"
        ))
    })?;
    let Some(p) = app.pipelines.iter().find(|p| p.name == req.pipeline) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no pipeline named {:?}", req.pipeline),
        ));
    };
    if !app.startable.contains(&p.name) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "pipeline {:?} may not be started over HTTP; [serve] pipelines in contimg.toml \
                 lists those that may ({})",
                p.name,
                app.startable.join(", ")
            ),
        ));
    }
    let p = api::checked(&app.pipelines, &p.name)?;
    let mut params = BTreeMap::new();
    for (k, v) in req.params.clone().unwrap_or_default() {
        let v = match v {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            other => {
                return Err(ApiError::bad(format!(
                    "param {k:?}: give a string or a number, not {other}"
                )));
            }
        };
        params.insert(k, v);
    }
    // Checked here as `run --param` checks them, so a bad request changes nothing.
    crate::pipeline::exec::resolve_params(&p, &params)?;
    let choice = match req.slot.as_deref().map(str::trim) {
        None | Some("now") => SlotChoice::Now,
        Some("scheduled") => SlotChoice::Scheduled,
        Some(s) => SlotChoice::At(
            crate::time::parse_time(s)
                .map_err(|e| ApiError::bad(format!("slot {s:?}: {e}, \"now\" or \"scheduled\"")))?,
        ),
    };
    if matches!(choice, SlotChoice::Scheduled) && p.def.schedule.is_none() {
        return Err(ApiError::bad(format!(
            "pipeline {:?} has no schedule; give a slot time or \"now\"",
            p.name
        )));
    }
    // The key is recorded with the execution and looked up in the creating transaction, so a
    // repeat (also one racing the first, or after a restart) finds the same execution.
    let recorded = idempotency_key(&headers)?.map(|key| RequestKey {
        key,
        request: serde_json::to_string(&req).unwrap_or_default(),
    });
    let r = app
        .blocking(app.write_wait, move |app| {
            let r = app
                .engine
                .run_keyed(
                    &p,
                    &params,
                    choice,
                    recorded.as_ref(),
                    true,
                    0,
                    &LogProgress,
                )
                .map_err(ApiError::from);
            // Also when the request has already answered 503: the listing shows the new run.
            app.writes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            r
        })
        .await;
    match r? {
        SlotRun::Ran(m) => {
            let eid = m.execution_id;
            Ok(accepted(
                &app,
                eid,
                serde_json::to_value(&*m).unwrap_or(Value::Null),
            ))
        }
        SlotRun::Skipped(s) => Ok(app.json(
            StatusCode::CONFLICT,
            serde_json::to_value(&s).unwrap_or(Value::Null),
        )),
    }
}

/// 202 with the execution's manifest, its URL in `url` and `Location`.
fn accepted(app: &App, eid: i64, mut v: Value) -> Response {
    let url = format!("/api/v1/executions/{eid}");
    if let Value::Object(o) = &mut v {
        o.insert("url".into(), Value::String(url.clone()));
    }
    let mut r = app.json(StatusCode::ACCEPTED, v);
    if let Ok(h) = HeaderValue::from_str(&url) {
        r.headers_mut().insert(header::LOCATION, h);
    }
    r
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let s = v
        .to_str()
        .ok()
        .filter(|s| !s.is_empty() && s.len() <= 200 && s.chars().all(|c| c.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::bad("Idempotency-Key must be 1 to 200 printable ASCII characters")
        })?;
    Ok(Some(s.to_string()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExecQuery {
    pipeline: Option<String>,
    status: Option<String>,
    since: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
}

fn page_of(limit: Option<usize>, offset: Option<usize>) -> Result<(usize, usize), ApiError> {
    let limit = limit.unwrap_or(50);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad(format!(
            "limit must be 1 to {MAX_LIMIT}, not {limit}"
        )));
    }
    Ok((limit, offset.unwrap_or(0)))
}

/// A page of rows, each tagged with its schema (`contimg.page/1`), with the URL of the next.
fn page(
    app: &App,
    schema: &str,
    rows: Vec<Value>,
    more: bool,
    next: impl FnOnce() -> String,
) -> Response {
    let items: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            let mut o = serde_json::Map::new();
            o.insert("schema".into(), schema.into());
            if let Value::Object(f) = r {
                o.extend(f.into_iter().filter(|(k, _)| k != "schema"));
            }
            Value::Object(o)
        })
        .collect();
    app.json(
        StatusCode::OK,
        json!({
            "schema": "contimg.page/1",
            "items": items,
            "next": if more { Value::String(next()) } else { Value::Null },
        }),
    )
}

fn query<T: serde::de::DeserializeOwned>(
    q: Result<Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|e| ApiError::bad(format!("bad query string: {}", e.body_text())))
}

pub(super) async fn list_executions(
    State(app): State<Arc<App>>,
    q: Result<Query<ExecQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let q = query(q)?;
    let (limit, offset) = page_of(q.limit, q.offset)?;
    if let Some(s) = &q.status
        && !ExecStatus::ALL.iter().any(|x| x.as_str() == s)
        && s != "interrupted"
    {
        return Err(ApiError::bad(format!(
            "status {s:?} is not one of running, completed, failed, cancelled, interrupted"
        )));
    }
    let since = q
        .since
        .as_deref()
        .map(|s| crate::time::parse_time(s).map_err(|e| ApiError::bad(format!("since {s:?}: {e}"))))
        .transpose()?;
    let filtered = q.pipeline.is_some() || q.status.is_some() || since.is_some();
    let scan = if filtered {
        FILTER_SCAN
    } else {
        offset + limit + 1
    };
    let list = app.listing(scan).await?;
    let rows: Vec<Value> = list
        .iter()
        .filter(|e| q.pipeline.as_ref().is_none_or(|p| *p == e.pipeline))
        .filter(|e| q.status.as_ref().is_none_or(|s| *s == e.status.as_str()))
        .filter(|e| {
            since.is_none_or(|t| {
                e.started_at
                    .as_deref()
                    .and_then(|s| crate::time::parse_time(s).ok())
                    .is_some_and(|s| s >= t)
            })
        })
        .skip(offset)
        .take(limit + 1)
        .map(|e| serde_json::to_value(e).unwrap_or(Value::Null))
        .collect();
    let more = rows.len() > limit;
    let rows = rows.into_iter().take(limit).collect();
    Ok(page(
        &app,
        "contimg.execution-summary/1",
        rows,
        more,
        || {
            let mut qs = vec![
                format!("limit={limit}"),
                format!("offset={}", offset + limit),
            ];
            for (k, v) in [
                ("pipeline", &q.pipeline),
                ("status", &q.status),
                ("since", &q.since),
            ] {
                if let Some(v) = v {
                    qs.push(format!("{k}={}", urlencode(v)));
                }
            }
            format!("/api/v1/executions?{}", qs.join("&"))
        },
    ))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The end of a log file, lossy UTF-8, from its last whole line.
pub(super) fn log_tail(path: &std::path::Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let start = len.saturating_sub(LOG_TAIL);
    f.seek(SeekFrom::Start(start)).ok()?;
    let mut buf = Vec::new();
    f.take(LOG_TAIL).read_to_end(&mut buf).ok()?;
    let s = String::from_utf8_lossy(&buf).into_owned();
    Some(if start > 0 {
        s.split_once('\n').map_or(s.clone(), |(_, r)| r.to_string())
    } else {
        s
    })
}

/// An execution's manifest as JSON, each job with the tail of its latest log (`log_tail`).
pub(super) fn manifest_with_tails(app: &App, m: &crate::pipeline::ExecutionManifest) -> Value {
    let mut v = serde_json::to_value(m).unwrap_or(Value::Null);
    if let Some(jobs) = v.get_mut("jobs").and_then(Value::as_array_mut) {
        for j in jobs {
            let tail = j
                .get("log_path")
                .and_then(Value::as_str)
                .map(std::path::PathBuf::from)
                .and_then(|p| log_tail(&p))
                .map(|t| redact(&t, &app.secrets));
            if let Value::Object(o) = j {
                o.insert("log_tail".into(), tail.map_or(Value::Null, Value::String));
            }
        }
    }
    v
}

pub(super) async fn show_execution(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> ApiResult {
    let eid = id_of(&id, "execution")?;
    let v = app
        .blocking(READ_WAIT, move |app| {
            let m = app.execution(eid)?;
            Ok(manifest_with_tails(app, &m))
        })
        .await?;
    Ok(app.json(StatusCode::OK, v))
}

pub(super) async fn cancel_execution(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> ApiResult {
    let eid = id_of(&id, "execution")?;
    let m = app
        .blocking(app.write_wait, move |app| {
            Ok(app.engine.cancel(eid, &LogProgress)?)
        })
        .await?;
    app.changed();
    Ok(app.json(
        StatusCode::OK,
        serde_json::to_value(&m).unwrap_or(Value::Null),
    ))
}

pub(super) async fn retry_execution(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> ApiResult {
    let eid = id_of(&id, "execution")?;
    let m = app
        .blocking(app.write_wait, move |app| {
            Ok(app.engine.retry(eid, true, 0, &LogProgress)?)
        })
        .await?;
    app.changed();
    Ok(app.json(
        StatusCode::ACCEPTED,
        serde_json::to_value(&m).unwrap_or(Value::Null),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MosaicQuery {
    tier: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
}

pub(super) async fn list_mosaics(
    State(app): State<Arc<App>>,
    q: Result<Query<MosaicQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let q = query(q)?;
    let (limit, offset) = page_of(q.limit, q.offset)?;
    let tier = q.tier.clone();
    let rows = app
        .blocking(READ_WAIT, move |app| {
            let mut db = app.mosaic_db()?;
            Ok(products::mosaics(
                &mut db,
                &MosaicFilter {
                    tier,
                    limit: limit + 1,
                    offset,
                },
            )?)
        })
        .await?;
    let more = rows.len() > limit;
    let rows = rows.iter().take(limit).map(mosaic_json).collect();
    Ok(page(&app, "contimg.mosaic-record/1", rows, more, || {
        let mut s = format!("/api/v1/mosaics?limit={limit}&offset={}", offset + limit);
        if let Some(t) = &q.tier {
            s.push_str(&format!("&tier={}", urlencode(t)));
        }
        s
    }))
}

/// A mosaic record with the URLs of its products.
fn mosaic_json(r: &products::MosaicRecord) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
    let base = format!("/api/v1/mosaics/{}", r.mosaic_id);
    let mut files = serde_json::Map::new();
    for name in Product::NAMES {
        files.insert((*name).into(), Value::String(format!("{base}/{name}")));
    }
    files.insert("qa".into(), Value::String(format!("{base}/qa")));
    if let Value::Object(o) = &mut v {
        o.insert("urls".into(), Value::Object(files));
    }
    v
}

pub(super) async fn show_mosaic(State(app): State<Arc<App>>, Path(id): Path<String>) -> ApiResult {
    let mid = id_of(&id, "mosaic")?;
    let r = app
        .blocking(READ_WAIT, move |app| {
            Ok(products::mosaic(&mut app.mosaic_db()?, mid)?)
        })
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("mosaic {mid} does not exist"),
            )
        })?;
    let mut v = mosaic_json(&r);
    if let Value::Object(o) = &mut v {
        o.insert("schema".into(), "contimg.mosaic-record/1".into());
    }
    Ok(app.json(StatusCode::OK, v))
}

pub(super) async fn show_qa(State(app): State<Arc<App>>, Path(id): Path<String>) -> ApiResult {
    let mid = id_of(&id, "mosaic")?;
    let m = app
        .blocking(READ_WAIT, move |app| {
            let mut db = app.mosaic_db()?;
            if products::mosaic(&mut db, mid)?.is_none() {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("mosaic {mid} does not exist"),
                ));
            }
            Ok(products::qa(&mut db, mid)?)
        })
        .await?
        .ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, format!("mosaic {mid} has no QA yet"))
        })?;
    Ok(app.json(
        StatusCode::OK,
        serde_json::to_value(&m).unwrap_or(Value::Null),
    ))
}

/// `GET /api/v1/mosaics/{id}/{product}`: a file the database records for the mosaic.
pub(super) async fn mosaic_file(
    State(app): State<Arc<App>>,
    Path((id, product)): Path<(String, String)>,
) -> ApiResult {
    let mid = id_of(&id, "mosaic")?;
    let what = Product::named(&product).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "a mosaic has no product {product:?}; there are {}",
                Product::NAMES.join(", ")
            ),
        )
    })?;
    let path = app
        .blocking(READ_WAIT, move |app| {
            let mut db = app.mosaic_db()?;
            if products::mosaic(&mut db, mid)?.is_none() {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("mosaic {mid} does not exist"),
                ));
            }
            Ok(products::product_path(&mut db, mid, what)?)
        })
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("mosaic {mid} has no {product} recorded (QA not run yet?)"),
            )
        })?;
    let file = tokio::fs::File::open(&path).await.map_err(|_| {
        ApiError::new(
            StatusCode::GONE,
            format!("the {product} file of mosaic {mid} is recorded but no longer readable"),
        )
    })?;
    let len = file.metadata().await.map(|m| m.len()).ok();
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("product")
        .replace(['"', '\\'], "_");
    let ctype = if what.is_png() {
        "image/png"
    } else {
        "application/fits"
    };
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    let mut r = Response::new(body);
    let hs = r.headers_mut();
    hs.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    if let Some(n) = len {
        hs.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    let disp = if what.is_png() {
        "inline"
    } else {
        "attachment"
    };
    if let Ok(h) = HeaderValue::from_str(&format!("{disp}; filename=\"{name}\"")) {
        hs.insert(header::CONTENT_DISPOSITION, h);
    }
    Ok(r)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ImageQuery {
    since: Option<String>,
    until: Option<String>,
    max_rms: Option<f64>,
    limit: Option<usize>,
    offset: Option<usize>,
}

/// A time as ISO-8601 UTC or MJD, as an MJD (as `contimg images` reads them).
fn mjd_of(what: &str, s: &str) -> Result<f64, ApiError> {
    if let Ok(m) = s.trim().parse::<f64>()
        && crate::time::from_mjd(m).is_ok()
    {
        return Ok(m);
    }
    crate::time::parse_time(s)
        .map(crate::time::mjd)
        .map_err(|e| ApiError::bad(format!("{what} {s:?}: {e}")))
}

pub(super) async fn list_images(
    State(app): State<Arc<App>>,
    q: Result<Query<ImageQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let q = query(q)?;
    let (limit, offset) = page_of(q.limit, q.offset)?;
    let filter = ImageFilter {
        since_mjd: q.since.as_deref().map(|s| mjd_of("since", s)).transpose()?,
        until_mjd: q.until.as_deref().map(|s| mjd_of("until", s)).transpose()?,
        max_rms_jy: q.max_rms,
    };
    let rows = app
        .blocking(READ_WAIT, move |app| {
            Ok(crate::workspace::session::images_in(
                &mut app.mosaic_db()?,
                &filter,
            )?)
        })
        .await?;
    let more = rows.len() > offset + limit;
    let rows = rows
        .iter()
        .skip(offset)
        .take(limit)
        .map(|r| serde_json::to_value(r).unwrap_or(Value::Null))
        .collect();
    Ok(page(&app, "contimg.image/1", rows, more, || {
        let mut qs = vec![
            format!("limit={limit}"),
            format!("offset={}", offset + limit),
        ];
        for (k, v) in [("since", &q.since), ("until", &q.until)] {
            if let Some(v) = v {
                qs.push(format!("{k}={}", urlencode(v)));
            }
        }
        if let Some(r) = q.max_rms {
            qs.push(format!("max_rms={r}"));
        }
        format!("/api/v1/images?{}", qs.join("&"))
    }))
}
