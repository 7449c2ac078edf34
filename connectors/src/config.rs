//! `connector.toml`: where the gateway is, the connector's token, and the sources.
//! Back-end credentials stay here, inside the firewall; they are never sent to the
//! gateway.

use std::path::{Path, PathBuf};
use std::time::Duration;

use postern_core::model::{ConflictPolicy, Mode};
use serde::Deserialize;

/// A config that cannot be used, with what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// Which file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown keys.
    #[error("{path}: {message}")]
    Parse {
        /// Which file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// A value is not acceptable.
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    gateway: String,
    token: Option<String>,
    token_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    client_cert_file: Option<PathBuf>,
    client_key_file: Option<PathBuf>,
    #[serde(default, rename = "source")]
    sources: Vec<RawSource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    name: String,
    kind: String,
    url: String,
    #[serde(default)]
    username: String,
    password: Option<String>,
    password_file: Option<PathBuf>,
    user: String,
    #[serde(default = "default_mode")]
    mode: String,
    #[serde(default = "default_conflict")]
    conflict: String,
    #[serde(default = "default_interval")]
    interval: String,
    #[serde(default)]
    exclude: Vec<String>,
    /// Extra CA certificates (PEM) to trust for this back end, beside the system's.
    tls_ca_file: Option<PathBuf>,
    /// IMAP: allow a plain-text login off loopback when the server offers no STARTTLS.
    #[serde(default)]
    allow_plain: bool,
    /// IMAP: mailboxes watched with IDLE (each on a connection of its own), INBOX
    /// first; the others are polled every interval.
    #[serde(default = "default_idle")]
    idle_connections: usize,
}

fn default_idle() -> usize {
    1
}

fn default_mode() -> String {
    "two-way".into()
}
fn default_conflict() -> String {
    "backend-wins".into()
}
fn default_interval() -> String {
    "30s".into()
}

/// What kind of back end a source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// CalDAV calendars.
    CalDav,
    /// CardDAV address books.
    CardDav,
    /// IMAP mailboxes.
    Imap,
    /// SMTP submission relay (a later release: this version does not sync it, and
    /// says so).
    Smtp,
}

impl SourceKind {
    /// The word used in the config and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::CalDav => "caldav",
            SourceKind::CardDav => "carddav",
            SourceKind::Imap => "imap",
            SourceKind::Smtp => "smtp",
        }
    }
}

/// A validated source.
#[derive(Clone)]
pub struct Source {
    /// Unique name.
    pub name: String,
    /// Back-end kind.
    pub kind: SourceKind,
    /// Back-end URL.
    pub url: String,
    /// Back-end username.
    pub username: String,
    /// Back-end password (never logged, never sent to the gateway).
    pub password: String,
    /// Owning gateway user ("alice@acme" or "alice").
    pub user: String,
    /// Default mode.
    pub mode: Mode,
    /// Default conflict policy.
    pub conflict: ConflictPolicy,
    /// Time between rounds.
    pub interval: Duration,
    /// Back-end collection hrefs or display names not to sync.
    pub exclude: Vec<String>,
    /// Extra CA certificates (PEM, read at start) to trust for this back end.
    pub tls_ca: Option<Vec<u8>>,
    /// IMAP: a plain-text login is allowed off loopback (never the default).
    pub allow_plain: bool,
    /// IMAP: how many mailboxes are watched with IDLE (INBOX first).
    pub idle_connections: usize,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("name", &self.name)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// A validated connector config.
#[derive(Clone)]
pub struct Config {
    /// Gateway gRPC URL.
    pub gateway: String,
    /// Enrolment token.
    pub token: String,
    /// Sources.
    pub sources: Vec<Source>,
    /// TLS to the gateway (`https://` URLs).
    pub tls: TlsConfig,
}

/// How the connector checks the gateway's certificate and proves itself.
#[derive(Clone, Default)]
pub struct TlsConfig {
    /// PEM of a private CA that signed the gateway's certificate (else the system's roots).
    pub ca: Option<Vec<u8>>,
    /// PEM certificate and key for mutual TLS.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("private_ca", &self.ca.is_some())
            .field("client_cert", &self.identity.is_some())
            .finish()
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("gateway", &self.gateway)
            .field("sources", &self.sources)
            .finish_non_exhaustive()
    }
}

fn secret(
    inline: Option<String>,
    file: Option<PathBuf>,
    what: &str,
    base: &Path,
) -> Result<String, ConfigError> {
    match (inline, file) {
        (Some(s), None) => Ok(s),
        (None, Some(f)) => {
            let path = if f.is_absolute() { f } else { base.join(f) };
            std::fs::read_to_string(&path)
                .map(|s| s.trim().to_string())
                .map_err(|source| ConfigError::Read { path, source })
        }
        (Some(_), Some(_)) => Err(ConfigError::Invalid(format!(
            "give {what} or {what}_file, not both"
        ))),
        (None, None) => Err(ConfigError::Invalid(format!(
            "{what} or {what}_file is required"
        ))),
    }
}

impl Config {
    /// Reads and validates a config file. Relative `*_file` paths are relative to it.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Self::parse(&text, path.parent().unwrap_or(Path::new("."))).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.into(),
                message,
            },
            other => other,
        })
    }

    /// Parses config text; `base` resolves relative file paths.
    pub fn parse(text: &str, base: &Path) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        if !(raw.gateway.starts_with("http://") || raw.gateway.starts_with("https://")) {
            return Err(ConfigError::Invalid(format!(
                "gateway {:?} must start with http:// or https://",
                raw.gateway
            )));
        }
        let token = secret(raw.token, raw.token_file, "token", base)?;
        if raw.sources.is_empty() {
            return Err(ConfigError::Invalid(
                "no [[source]] configured: nothing to sync".into(),
            ));
        }
        let mut sources = Vec::new();
        for s in raw.sources {
            let ctx = |m: String| ConfigError::Invalid(format!("source {:?}: {m}", s.name));
            if sources.iter().any(|x: &Source| x.name == s.name) {
                return Err(ctx("duplicate source name".into()));
            }
            let kind = match s.kind.as_str() {
                "caldav" => SourceKind::CalDav,
                "carddav" => SourceKind::CardDav,
                "imap" => SourceKind::Imap,
                "smtp" => SourceKind::Smtp,
                other => {
                    return Err(ctx(format!(
                        "kind {other:?} must be caldav, carddav, imap or smtp"
                    )));
                }
            };
            let mode = s.mode.parse::<Mode>().map_err(|e| ctx(e.to_string()))?;
            let conflict = s
                .conflict
                .parse::<ConflictPolicy>()
                .map_err(|e| ctx(e.to_string()))?;
            let interval = humantime::parse_duration(&s.interval)
                .map_err(|e| ctx(format!("interval: {e}")))?;
            if interval < Duration::from_millis(100) {
                return Err(ctx("interval must be at least 100ms".into()));
            }
            let parsed =
                url::Url::parse(&s.url).map_err(|e| ctx(format!("url {:?}: {e}", s.url)))?;
            let schemes: &[&str] = match kind {
                SourceKind::CalDav | SourceKind::CardDav => &["http", "https"],
                SourceKind::Imap => &["imap", "imaps"],
                SourceKind::Smtp => &["smtp", "smtps"],
            };
            if !schemes.contains(&parsed.scheme()) {
                return Err(ctx(format!(
                    "url {:?}: a {} source takes {}:// URLs",
                    s.url,
                    kind.as_str(),
                    schemes.join(":// or ")
                )));
            }
            let password =
                if s.username.is_empty() && s.password.is_none() && s.password_file.is_none() {
                    String::new()
                } else {
                    secret(s.password, s.password_file, "password", base)
                        .map_err(|e| ctx(e.to_string()))?
                };
            sources.push(Source {
                name: s.name,
                kind,
                url: s.url,
                username: s.username,
                password,
                user: s.user,
                mode,
                conflict,
                interval,
                exclude: s.exclude,
                tls_ca: match &s.tls_ca_file {
                    None => None,
                    Some(p) => {
                        let path = if p.is_absolute() {
                            p.clone()
                        } else {
                            base.join(p)
                        };
                        Some(
                            std::fs::read(&path)
                                .map_err(|source| ConfigError::Read { path, source })?,
                        )
                    }
                },
                allow_plain: s.allow_plain,
                idle_connections: s.idle_connections.min(32),
            });
        }
        let read = |p: &PathBuf| {
            let path = if p.is_absolute() {
                p.clone()
            } else {
                base.join(p)
            };
            std::fs::read(&path).map_err(|source| ConfigError::Read { path, source })
        };
        let ca = raw.ca_file.as_ref().map(read).transpose()?;
        let identity = match (&raw.client_cert_file, &raw.client_key_file) {
            (Some(c), Some(k)) => Some((read(c)?, read(k)?)),
            (None, None) => None,
            _ => {
                return Err(ConfigError::Invalid(
                    "give both client_cert_file and client_key_file, or neither".into(),
                ));
            }
        };
        if (ca.is_some() || identity.is_some()) && !raw.gateway.starts_with("https://") {
            return Err(ConfigError::Invalid(
                "ca_file and client certificates need an https:// gateway".into(),
            ));
        }
        Ok(Config {
            gateway: raw.gateway,
            token,
            sources,
            tls: TlsConfig { ca, identity },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
gateway = "http://127.0.0.1:7443"
token = "t"
[[source]]
name = "cal"
kind = "caldav"
url = "http://127.0.0.1:5232/"
username = "alice"
password = "pw"
user = "alice@acme"
interval = "2s"
"#;

    #[test]
    fn parses_the_contract_example() {
        let c = Config::parse(GOOD, Path::new(".")).unwrap();
        assert_eq!(c.sources[0].mode, Mode::TwoWay);
        assert_eq!(c.sources[0].conflict, ConflictPolicy::BackendWins);
        assert_eq!(c.sources[0].interval, Duration::from_secs(2));
        assert!(
            !format!("{c:?}").contains("pw"),
            "passwords never appear in debug output"
        );
    }

    #[test]
    fn refuses_bad_values_clearly() {
        let bad = GOOD.replace("caldav", "webdav");
        assert!(
            Config::parse(&bad, Path::new("."))
                .unwrap_err()
                .to_string()
                .contains("kind")
        );
        let bad = GOOD.replace("interval = \"2s\"", "interval = \"soon\"");
        assert!(
            Config::parse(&bad, Path::new("."))
                .unwrap_err()
                .to_string()
                .contains("interval")
        );
        let bad = GOOD.replace("user = ", "colour = \"red\"\nuser = ");
        assert!(matches!(
            Config::parse(&bad, Path::new(".")),
            Err(ConfigError::Parse { .. })
        ));
        let bad = GOOD.replace("token = \"t\"", "");
        assert!(
            Config::parse(&bad, Path::new("."))
                .unwrap_err()
                .to_string()
                .contains("token")
        );
        let bad = GOOD.replace("http://127.0.0.1:5232/", "imaps://127.0.0.1:993");
        let err = Config::parse(&bad, Path::new(".")).unwrap_err().to_string();
        assert!(err.contains("http:// or https://"), "{err}");
        let imap = GOOD
            .replace("kind = \"caldav\"", "kind = \"imap\"")
            .replace("http://127.0.0.1:5232/", "imaps://127.0.0.1:993");
        let c = Config::parse(&imap, Path::new(".")).unwrap();
        assert_eq!(c.sources[0].kind, SourceKind::Imap);
        assert_eq!(c.sources[0].idle_connections, 1);
        assert!(!c.sources[0].allow_plain);
        let bad = GOOD.replace("interval = \"2s\"", "mode = \"sideways\"");
        assert!(
            Config::parse(&bad, Path::new("."))
                .unwrap_err()
                .to_string()
                .contains("two-way")
        );
    }
}
