//! Connecting to PostgreSQL, for the store (contimg's own schema) and the queue (ABSURD's): URL
//! parsing, TLS, the password-masked URL used in every message, and the translation of driver errors
//! into one-line [`PgError::Postgres`] errors that say what to do.
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
}

/// `url` with the password (in the user-info part or a `password=` parameter) replaced by `***`.
pub fn mask_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest = scheme_end + 3;
        let authority_end = out[rest..].find(['/', '?']).map_or(out.len(), |i| rest + i);
        if let Some(at) = out[rest..authority_end].rfind('@').map(|i| rest + i)
            && let Some(colon) = out[rest..at].find(':').map(|i| rest + i)
        {
            out.replace_range(colon + 1..at, "***");
        }
    }
    let lower = out.to_ascii_lowercase();
    if let Some(p) = lower.find("password=") {
        let start = p + "password=".len();
        let end = out[start..]
            .find(['&', ' '])
            .map_or(out.len(), |i| start + i);
        out.replace_range(start..end, "***");
    }
    out
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
        Ok(PgTarget { config, shown })
    }

    /// Opens a connection, over TLS when the URL asks for it.
    pub fn connect(&self) -> Result<Client> {
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
        Some(_) => "the server rejected the statement; see the cause",
        None if e.is_closed()
            || (action != "connect"
                && std::error::Error::source(&e)
                    .is_some_and(<dyn std::error::Error>::is::<std::io::Error>)) =>
        {
            "the connection to the server was lost: a worker stops, and ABSURD offers its claimed task again once the claim expires"
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
