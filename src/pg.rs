//! Connecting to PostgreSQL, for the store (contimg's own schema) and the queue (ABSURD's): URL
//! parsing, TLS, the password-masked URL used in every message, and the translation of driver errors
//! into one-line [`PgError::Postgres`] errors that say what to do.
//!
//! A server that cannot be reached (down, restarting, refusing connections while it starts) makes
//! [`PgTarget::connect`] try again with back-off for up to `CONTIMG_PG_CONNECT_WAIT` seconds (default
//! 0: fail at once; a job's child process gets 60, so a short outage does not fail the job). Which
//! errors are a lost or refused connection rather than a statement the server refused is decided in
//! one place, [`is_connection_error`].
//!
//! TLS: `sslmode=disable` and `prefer` (the default) connect without TLS; `sslmode=require` connects
//! only over TLS, verifying the server's certificate against the web PKI roots plus the PEM file named
//! by `PGSSLROOTCERT` when set (libpq's variable; a private CA goes there). Unix-socket hosts never use
//! TLS, as with libpq. A password missing from the URL is taken from `PGPASSWORD`, as libpq does.

use std::sync::Arc;
use std::time::Duration;

use postgres::config::{Host, SslMode};
use postgres::{Client, Config, NoTls};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// A PostgreSQL connection that could not be made or a statement the server refused.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("database URL {url} is not usable: {why}")]
    BadUrl { url: String, why: String },
    #[error("{action} on PostgreSQL at {url} failed: {cause}; {hint}")]
    Postgres {
        url: String,
        action: String,
        cause: String,
        hint: &'static str,
        /// The driver's error. Its words are `cause` already, so it is not the error's source:
        /// an error report does not repeat them ("db error", the server's message again).
        driver: postgres::Error,
    },
}

impl PgError {
    /// True when the connection was lost or could not be made (see [`is_connection_error`]): worth
    /// reconnecting for, unlike a statement the server refused.
    pub fn is_connection_lost(&self) -> bool {
        matches!(self, PgError::Postgres { driver, .. } if is_connection_error(driver))
    }
}

/// The environment variable giving how long (seconds) a connect waits for a server that cannot be
/// reached; a worker sets it for its job's child processes.
pub const CONNECT_WAIT_ENV: &str = "CONTIMG_PG_CONNECT_WAIT";

/// How long a job's child process waits for an unreachable server before its connect fails.
pub const CHILD_CONNECT_WAIT_S: u64 = 60;

/// The first pause between connection attempts; it doubles up to [`MAX_RETRY_PAUSE`].
pub const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(500);

/// The longest pause between connection attempts.
pub const MAX_RETRY_PAUSE: Duration = Duration::from_secs(10);

/// Whether a driver error says the connection is gone or could not be made — the socket closed or
/// failed (no SQLSTATE, an I/O error underneath), a connection-exception SQLSTATE (class 08), or the
/// server shutting down or still starting (57P01 admin_shutdown, 57P02 crash_shutdown, 57P03
/// cannot_connect_now) — rather than a statement or login the server refused.
pub fn is_connection_error(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    match e.code() {
        None => {
            e.is_closed()
                || std::error::Error::source(e)
                    .is_some_and(<dyn std::error::Error>::is::<std::io::Error>)
        }
        Some(c) => {
            c.code().starts_with("08")
                || *c == SqlState::ADMIN_SHUTDOWN
                || *c == SqlState::CRASH_SHUTDOWN
                || *c == SqlState::CANNOT_CONNECT_NOW
        }
    }
}

type Result<T> = std::result::Result<T, PgError>;

/// True when `s` names a PostgreSQL database (a `postgres://` or `postgresql://` URL) rather than an
/// SQLite file.
pub fn is_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// A parsed `postgres://` URL and its display form with the password masked.
pub struct PgTarget {
    config: Config,
    pub shown: String,
    /// How long [`PgTarget::connect`] waits for a server that cannot be reached
    /// (`CONTIMG_PG_CONNECT_WAIT`).
    pub patience: Duration,
}

/// Where `url` holds a password: the user-info part's and a `password=` parameter's, in order.
fn password_spans(url: &str) -> Vec<std::ops::Range<usize>> {
    let mut spans = Vec::new();
    if let Some(scheme_end) = url.find("://") {
        let rest = scheme_end + 3;
        let authority_end = url[rest..].find(['/', '?']).map_or(url.len(), |i| rest + i);
        if let Some(at) = url[rest..authority_end].rfind('@').map(|i| rest + i)
            && let Some(colon) = url[rest..at].find(':').map(|i| rest + i)
        {
            spans.push(colon + 1..at);
        }
    }
    if let Some(p) = url.to_ascii_lowercase().find("password=") {
        let start = p + "password=".len();
        let end = url[start..]
            .find(['&', ' '])
            .map_or(url.len(), |i| start + i);
        spans.push(start..end);
    }
    spans
}

/// `url` with the password (in the user-info part or a `password=` parameter) replaced by `***`.
pub fn mask_url(url: &str) -> String {
    let mut out = url.to_string();
    for span in password_spans(url).into_iter().rev() {
        out.replace_range(span, "***");
    }
    out
}

/// The passwords `url` holds (what [`mask_url`] masks), for redacting them wherever they appear.
pub fn url_passwords(url: &str) -> Vec<String> {
    password_spans(url)
        .into_iter()
        .map(|s| url[s].to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

impl PgTarget {
    /// Parses `url`; the error names the masked URL and the expected form.
    pub fn parse(url: &str) -> Result<PgTarget> {
        let shown = mask_url(url);
        if !is_url(url) {
            return Err(PgError::BadUrl {
                url: shown,
                why: "it must start with postgres:// or postgresql://".into(),
            });
        }
        let mut config: Config = url.parse().map_err(|e: postgres::Error| PgError::BadUrl {
            url: shown.clone(),
            why: e.to_string(),
        })?;
        if config.get_password().is_none()
            && let Ok(pw) = std::env::var("PGPASSWORD")
        {
            config.password(pw);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("contimg");
        }
        let patience = match std::env::var(CONNECT_WAIT_ENV) {
            Ok(v) => v
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .ok_or_else(|| PgError::BadUrl {
                    url: shown.clone(),
                    why: format!("{CONNECT_WAIT_ENV}={v:?} is not a number of seconds"),
                })?,
            Err(_) => Duration::ZERO,
        };
        Ok(PgTarget {
            config,
            shown,
            patience,
        })
    }

    /// Opens a connection, over TLS when the URL asks for it. A server that cannot be reached is
    /// tried again, 0.5 s doubling to 10 s apart, until [`PgTarget::patience`] has passed (one
    /// warning when the wait begins).
    pub fn connect(&self) -> Result<Client> {
        let started = std::time::Instant::now();
        let mut pause = FIRST_RETRY_PAUSE;
        let mut warned = false;
        loop {
            match self.connect_once() {
                Err(PgError::Postgres { driver, .. })
                    if is_connection_error(&driver) && started.elapsed() < self.patience =>
                {
                    if !warned {
                        warned = true;
                        let e = self.error("connect", driver);
                        log::warn!(
                            "{e}; trying again for up to {:.0} s",
                            self.patience.as_secs_f64()
                        );
                    }
                    let left = self.patience.saturating_sub(started.elapsed());
                    std::thread::sleep(pause.min(left).max(Duration::from_millis(10)));
                    pause = (pause * 2).min(MAX_RETRY_PAUSE);
                }
                Ok(c) => {
                    if warned {
                        log::info!(
                            "connected to PostgreSQL at {} after {:.1} s",
                            self.shown,
                            started.elapsed().as_secs_f64()
                        );
                    }
                    return Ok(c);
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn connect_once(&self) -> Result<Client> {
        let over_tcp = self
            .config
            .get_hosts()
            .iter()
            .any(|h| matches!(h, Host::Tcp(_)));
        let res = if self.config.get_ssl_mode() == SslMode::Require && over_tcp {
            self.config.connect(tls_connector(&self.shown)?)
        } else {
            let mut plain = self.config.clone();
            plain.ssl_mode(SslMode::Disable);
            plain.connect(NoTls)
        };
        res.map_err(|e| self.error("connect", e))
    }

    /// A driver error as a one-line message naming the URL, the action and what to do.
    pub fn error(&self, action: &str, e: postgres::Error) -> PgError {
        pg_error(&self.shown, action, e)
    }
}

/// Classifies a driver error into a message that says what to do.
pub fn pg_error(shown: &str, action: &str, e: postgres::Error) -> PgError {
    use postgres::error::SqlState;
    let hint = match e.code() {
        Some(c)
            if *c == SqlState::INVALID_PASSWORD
                || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
        {
            "the server refused the login: check the user and password in the URL (or PGPASSWORD)"
        }
        Some(c) if *c == SqlState::INVALID_CATALOG_NAME => {
            "the database does not exist: create it (createdb) or fix the database name in the URL"
        }
        Some(c) if *c == SqlState::INSUFFICIENT_PRIVILEGE => {
            "the user lacks a privilege: grant it on the schema named in the cause, or use its owner"
        }
        Some(_) if is_connection_error(&e) => {
            "the server closed the connection (shutting down, restarting or starting up): workers and `run` reconnect and go on"
        }
        Some(_) => "the server rejected the statement; see the cause",
        None if e.is_closed()
            || (action != "connect"
                && std::error::Error::source(&e)
                    .is_some_and(<dyn std::error::Error>::is::<std::io::Error>)) =>
        {
            "the connection to the server was lost (a restart?): workers and `run` reconnect and go on"
        }
        None => "is the server running, and are host, port and sslmode in the URL right?",
    };
    let cause = e.as_db_error().map_or_else(
        || {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(x) = src {
                s = format!("{s}: {x}");
                src = x.source();
            }
            s
        },
        |d| d.message().to_string(),
    );
    PgError::Postgres {
        url: shown.to_string(),
        action: action.to_string(),
        cause,
        hint,
        driver: e,
    }
}

fn tls_connector(shown: &str) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = std::env::var_os("PGSSLROOTCERT") {
        let bad = |why: String| PgError::BadUrl {
            url: shown.to_string(),
            why: format!("PGSSLROOTCERT {}: {why}", path.to_string_lossy()),
        };
        let certs = CertificateDer::pem_file_iter(&path)
            .map_err(|e| bad(format!("cannot read it ({e})")))?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("not a PEM certificate file ({e})")))?;
        for c in certs {
            roots
                .add(c)
                .map_err(|e| bad(format!("a certificate is unusable ({e})")))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PgError::BadUrl {
            url: shown.to_string(),
            why: format!("TLS setup failed: {e}"),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use super::mask_url;

    #[test]
    fn masks_passwords_in_user_info_and_parameters() {
        assert_eq!(
            mask_url("postgres://u:s3cr%40t@db.example:5432/x?sslmode=require"),
            "postgres://u:***@db.example:5432/x?sslmode=require"
        );
        assert_eq!(
            mask_url("postgresql://u@/x?host=/tmp&password=pw&port=1"),
            "postgresql://u@/x?host=/tmp&password=***&port=1"
        );
        assert_eq!(mask_url("postgres://h/x"), "postgres://h/x");
    }
}
