//! Who may do what over HTTP: bearer tokens (compared in constant time), the Host allow-list
//! (against DNS rebinding), and the secrets no response may carry.
//!
//! Invariants: a token is never logged or echoed; a comparison takes the same time whatever the
//! candidate (both sides are hashed first, then compared byte by byte without an early exit);
//! serving beyond the loopback without a write token is refused before the socket is bound.

use std::net::SocketAddr;

use sha2::{Digest, Sha256};

use super::ServeError;

/// A bearer token, kept as its SHA-256 (what comparisons use).
#[derive(Clone)]
pub struct Token([u8; 32]);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(…)")
    }
}

impl Token {
    pub fn new(secret: &str) -> Token {
        Token(Sha256::digest(secret.as_bytes()).into())
    }

    /// Whether `candidate` is this token, in time independent of where they differ.
    pub fn matches(&self, candidate: &str) -> bool {
        let c: [u8; 32] = Sha256::digest(candidate.as_bytes()).into();
        let diff = self
            .0
            .iter()
            .zip(c.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(diff) == 0
    }
}

/// What a request may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Health only: nothing to protect.
    Nothing,
    Read,
    Write,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No credentials, or wrong ones (401).
    Unauthorized(String),
    /// The Host header is not one this server answers to (403).
    Host(String),
}

/// The access rules of one server.
#[derive(Debug, Clone)]
pub struct Access {
    pub write: Option<Token>,
    pub read: Option<Token>,
    /// Whether the server listens on a loopback address only.
    pub loopback: bool,
    /// Accepted Host names, lower case, without port.
    pub hosts: Vec<String>,
}

/// The loopback names every server answers to.
const LOOPBACK_HOSTS: &[&str] = &["localhost", "127.0.0.1", "[::1]", "::1"];

impl Access {
    pub fn new(
        listen: SocketAddr,
        write: Option<String>,
        read: Option<String>,
        allowed_hosts: &[String],
    ) -> Result<Access, ServeError> {
        let loopback = listen.ip().is_loopback();
        if !loopback && write.is_none() {
            return Err(ServeError::NoToken(listen));
        }
        let mut hosts: Vec<String> = LOOPBACK_HOSTS.iter().map(ToString::to_string).collect();
        hosts.extend(allowed_hosts.iter().map(|h| h.trim().to_ascii_lowercase()));
        Ok(Access {
            write: write.as_deref().map(Token::new),
            read: read.as_deref().map(Token::new),
            loopback,
            hosts,
        })
    }

    /// Checks the Host header (name only; any port).
    pub fn host_ok(&self, host: Option<&str>) -> Result<(), Refusal> {
        let Some(host) = host else {
            return Err(Refusal::Host("the request has no Host header".into()));
        };
        let h = host.trim().to_ascii_lowercase();
        let name = if h.starts_with('[') {
            h.split_once(']')
                .map_or(h.clone(), |(a, _)| format!("{a}]"))
        } else {
            h.rsplit_once(':')
                .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
                .map_or(h.clone(), |(n, _)| n.to_string())
        };
        if self.hosts.contains(&name) {
            Ok(())
        } else {
            Err(Refusal::Host(format!(
                "Host {name:?} is not served here; add it to [serve] allowed_hosts in contimg.toml"
            )))
        }
    }

    /// Checks the bearer token (the Authorization header's) against what `need` asks.
    pub fn allowed(&self, need: Need, bearer: Option<&str>) -> Result<(), Refusal> {
        let write_ok = || bearer.is_some_and(|b| self.write.as_ref().is_some_and(|t| t.matches(b)));
        let read_ok = || bearer.is_some_and(|b| self.read.as_ref().is_some_and(|t| t.matches(b)));
        match need {
            Need::Nothing => Ok(()),
            Need::Write => {
                if self.write.is_none() {
                    return Err(Refusal::Unauthorized(
                        "this server has no write token: set CONTIMG_API_TOKEN or [serve] \
                         token_file and restart `contimg serve`"
                            .into(),
                    ));
                }
                if write_ok() {
                    Ok(())
                } else {
                    Err(Refusal::Unauthorized(missing_or_wrong(bearer, "write")))
                }
            }
            Need::Read => {
                let open = self.loopback && self.read.is_none();
                if open || write_ok() || read_ok() {
                    Ok(())
                } else {
                    Err(Refusal::Unauthorized(missing_or_wrong(bearer, "read")))
                }
            }
        }
    }
}

fn missing_or_wrong(bearer: Option<&str>, what: &str) -> String {
    match bearer {
        None => format!("this endpoint needs the {what} token: send `Authorization: Bearer TOKEN`"),
        Some(_) => format!("the bearer token is not the {what} token"),
    }
}

/// The token of the `Authorization: Bearer …` header value, if it is one.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let h = header?.trim();
    let (scheme, rest) = h.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim())
        .filter(|t| !t.is_empty())
}

/// Replaces every known secret in `s` (a database password, a webhook URL, a token).
pub fn redact(s: &str, secrets: &[String]) -> String {
    let mut out = s.to_string();
    for secret in secrets {
        if secret.len() >= 4 && out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "[redacted]");
        }
    }
    out
}

/// [`redact`] over every string of a JSON value.
pub fn redact_json(v: &mut serde_json::Value, secrets: &[String]) {
    match v {
        serde_json::Value::String(s)
            if secrets
                .iter()
                .any(|x| x.len() >= 4 && s.contains(x.as_str())) =>
        {
            *s = redact(s, secrets);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| redact_json(x, secrets)),
        serde_json::Value::Object(o) => o.values_mut().for_each(|x| redact_json(x, secrets)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(loopback: bool, write: Option<&str>, read: Option<&str>) -> Access {
        let addr: SocketAddr = if loopback {
            "127.0.0.1:1".parse().unwrap()
        } else {
            "0.0.0.0:1".parse().unwrap()
        };
        Access::new(
            addr,
            write.map(str::to_string),
            read.map(str::to_string),
            &["contimg.example.org".into()],
        )
        .unwrap()
    }

    #[test]
    fn tokens_compare_by_value_only() {
        let t = Token::new("s3cret-token");
        assert!(t.matches("s3cret-token"));
        assert!(!t.matches("s3cret-tokeN"));
        assert!(!t.matches(""));
        assert!(!format!("{t:?}").contains("s3cret"));
    }

    #[test]
    fn beyond_the_loopback_a_token_is_required_for_everything() {
        let addr: SocketAddr = "0.0.0.0:8750".parse().unwrap();
        assert!(matches!(
            Access::new(addr, None, None, &[]),
            Err(ServeError::NoToken(_))
        ));
        let a = access(false, Some("w"), Some("r"));
        assert!(a.allowed(Need::Read, None).is_err());
        assert!(a.allowed(Need::Read, Some("r")).is_ok());
        assert!(a.allowed(Need::Read, Some("w")).is_ok());
        assert!(a.allowed(Need::Write, Some("r")).is_err());
        assert!(a.allowed(Need::Write, Some("w")).is_ok());
        assert!(a.allowed(Need::Nothing, None).is_ok());
    }

    #[test]
    fn on_the_loopback_reads_are_open_and_writes_are_not() {
        let a = access(true, None, None);
        assert!(a.allowed(Need::Read, None).is_ok());
        assert!(a.allowed(Need::Write, Some("x")).is_err());
        let b = access(true, Some("w"), None);
        assert!(b.allowed(Need::Write, None).is_err());
        assert!(b.allowed(Need::Write, Some("w")).is_ok());
    }

    #[test]
    fn hosts_are_checked_by_name() {
        let a = access(true, None, None);
        for ok in [
            "localhost:8750",
            "127.0.0.1",
            "[::1]:80",
            "Contimg.Example.org",
        ] {
            assert!(a.host_ok(Some(ok)).is_ok(), "{ok}");
        }
        for bad in ["evil.example:8750", "localhost.evil.example", ""] {
            assert!(a.host_ok(Some(bad)).is_err(), "{bad}");
        }
        assert!(a.host_ok(None).is_err());
    }

    #[test]
    fn secrets_are_redacted() {
        let pw = crate::pg::url_passwords;
        assert_eq!(pw("postgresql://u:pa55w0rd@h:5/db?x=1"), ["pa55w0rd"]);
        assert_eq!(pw("postgresql://u@h/db"), Vec::<String>::new());
        assert_eq!(pw("postgresql://u@h/db?password=s3cret&x=1"), ["s3cret"]);
        let mut v = serde_json::json!({"a": ["x pa55w0rd y"], "b": "https://hook/T/SECRET"});
        redact_json(&mut v, &["pa55w0rd".into(), "https://hook/T/SECRET".into()]);
        assert_eq!(
            v,
            serde_json::json!({"a": ["x [redacted] y"], "b": "[redacted]"})
        );
        assert_eq!(bearer(Some("Bearer abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
    }
}
