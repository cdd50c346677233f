//! Webhook URLs are secrets (a Slack-style hook's path, or a `?token=` query, is the credential).
//!
//! Invariant: a [`SecretUrl`] is only ever written out redacted — scheme and host — whether it is
//! serialised (the definition stored with an execution, the rule stored with a notification,
//! `pipelines --json`), formatted with `{:?}` or put in an error. The full URL lives only in the
//! workspace's `contimg.toml` (or the environment) and in memory; delivery takes it from there.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a redacted URL ends with (and what marks a stored URL as unusable for delivery).
const ELIDED: &str = "/…";

/// A URL as errors, listings and the database may show it: scheme and host only.
pub fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            let host = host.rsplit('@').next().unwrap_or(host);
            format!("{scheme}://{host}{ELIDED}")
        }
        None => "(webhook URL)".into(),
    }
}

/// A URL with a secret in it; see the module invariant.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn new(url: impl Into<String>) -> SecretUrl {
        SecretUrl(url.into())
    }

    /// The full URL, to send to. `None` when this value was read back from a redacted copy.
    pub fn expose(&self) -> Option<&str> {
        let redacted = self.0.ends_with(ELIDED) || self.0 == "(webhook URL)";
        (!redacted).then_some(self.0.as_str())
    }

    /// The URL as it may be shown.
    pub fn redacted(&self) -> String {
        if self.expose().is_some() {
            redact_url(&self.0)
        } else {
            self.0.clone()
        }
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretUrl({:?})", self.redacted())
    }
}

impl std::fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for SecretUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for SecretUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(SecretUrl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_secrets_stay_out_of_messages() {
        assert_eq!(
            redact_url("https://hooks.slack.com/services/T0/B0/SECRET"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            redact_url("http://user:pw@127.0.0.1:9/x?token=1"),
            "http://127.0.0.1:9/…"
        );
        assert_eq!(redact_url("not a url"), "(webhook URL)");
    }

    #[test]
    fn a_secret_url_serialises_redacted_and_is_unusable_once_read_back() {
        let u = SecretUrl::new("https://h.example/T0/SECRET?token=x");
        let json = serde_json::to_string(&u).unwrap();
        assert_eq!(json, "\"https://h.example/…\"");
        assert!(!format!("{u:?} {u}").contains("SECRET"));
        assert_eq!(u.expose(), Some("https://h.example/T0/SECRET?token=x"));
        let back: SecretUrl = serde_json::from_str(&json).unwrap();
        assert_eq!(back.expose(), None);
        assert_eq!(back.to_string(), "https://h.example/…");
    }
}
