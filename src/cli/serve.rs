//! `contimg serve`: the HTTP API and status page (the server itself is [`crate::serve`]).

use std::net::SocketAddr;

use super::{CliError, Ctx};
use crate::pipeline::api;

/// Serve the HTTP API and the status page, with embedded workers.
///
/// Serve the workspace over HTTP: start pipelines, watch executions, fetch mosaics and their QA,
/// list images, and a status page at / that refreshes itself. Works on either database (SQLite or
/// PostgreSQL). Runs started over HTTP are worked by the embedded worker threads (--workers,
/// default 1) or, with --workers 0, by separate `contimg worker` processes.
///
/// Endpoints (JSON bodies use the CLI's manifest schemas; listings are pages of
/// `{"schema": "contimg.page/1", "items": [...], "next": URL|null}` taking limit and offset):
///   POST /api/v1/runs                  {"pipeline": NAME, "slot": TIME} or
///                                      {"pipeline": NAME, "params": {KEY: VALUE, ...}}
///                                      → 202 with the contimg.execution/1 manifest and its url;
///                                      the same Idempotency-Key header gives the same execution
///   GET  /api/v1/executions            ?pipeline= &status= &since= &limit= &offset=
///   GET  /api/v1/executions/ID         the manifest, each job with its log tail
///   POST /api/v1/executions/ID/cancel  and /retry
///   GET  /api/v1/mosaics               ?tier= &limit= &offset=
///   GET  /api/v1/mosaics/ID            and /qa (contimg.qa/1), /fits, /weight, /noise, /rms,
///                                      /quicklook.png, /offsets.png, /noise_hist.png
///   GET  /api/v1/images                ?since= &until= &max_rms= (as `contimg images`)
///   GET  /healthz
///
/// Security: POST needs `Authorization: Bearer TOKEN`, the token of CONTIMG_API_TOKEN or
/// [serve] token_file; on the loopback reads are open unless a read token is set
/// (CONTIMG_API_READ_TOKEN or [serve] read_token_file). Listening beyond the loopback without a
/// token is refused, and there every endpoint but /healthz needs a token. Only pipelines in
/// [serve] pipelines (default: on_demand_mosaic) can be started; Host headers other than the
/// loopback names and [serve] allowed_hosts are refused. For TLS put a reverse proxy in front.
/// SIGTERM or Ctrl-C stops accepting requests, answers those in flight, and the embedded workers
/// hand their jobs back to the queue.
///
/// Example: CONTIMG_API_TOKEN=$(cat ~/.contimg-token) contimg serve
///          curl -H "Authorization: Bearer $TOKEN" -d '{"pipeline": "on_demand_mosaic",
///            "params": {"start": "2026-11-20T00:00Z", "end": "2026-11-21T00:00Z"}}'
///            http://127.0.0.1:8750/api/v1/runs
///          curl http://127.0.0.1:8750/api/v1/executions?status=failed
///          contimg serve --listen 0.0.0.0:8750 --workers 0   (needs a token; workers elsewhere)
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Address and port to listen on (port 0: any free port, printed on stderr).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8750")]
    pub listen: SocketAddr,
    /// Embedded worker threads working the queue (0: none; run `contimg worker` elsewhere).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub workers: usize,
    /// Lease length of the embedded workers (see `run`).
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub lease: String,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let exe = std::env::current_exe().map_err(|e| {
        CliError::Failed(format!(
            "cannot find the contimg binary to run jobs with: {e}"
        ))
    })?;
    let setup = ctx.session.engine_setup(exe)?;
    let ws = ctx.session.workspace()?;
    let opts = crate::serve::Options {
        listen: args.listen,
        workers: args.workers,
        lease: api::lease(&args.lease)?,
        config: ws.config.serve.clone(),
        root: ws.root.clone(),
        target: ctx.session.target()?,
    };
    crate::serve::serve(setup, opts).map_err(|e| {
        if e.is_input() {
            CliError::Input(e.to_string()).into()
        } else {
            anyhow::Error::from(e)
        }
    })
}
