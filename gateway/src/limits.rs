//! Every bound the gateway puts on what a caller can make it do, in one place.
//!
//! The gateway faces the internet: each connection, request and stream costs memory,
//! file descriptors, CPU and database time, and without a bound one caller could spend
//! them all. Each limit here is a setting (flag and environment variable, and a Helm
//! value) with a default safe for a public deployment; docs/security.md explains each
//! one and what a caller sees when it is reached.
//!
//! The limits fall in four groups:
//! - connections, on both ports: how many, how many per client address, and how long
//!   a TLS handshake, a request's headers, its body and a silent connection may take;
//! - DAV requests: body sizes, XML shape, properties per PROPFIND, answer size,
//!   requests of one user at once;
//! - passwords: how many argon2 verifications run at once and how long a login waits
//!   for one, and how many failed logins are remembered;
//! - the connector link: decoded message size and streams per connector token;
//! - IMAP: connections, how long a silent session stays, the largest APPEND;
//! - submission: connections, message size, recipients, messages per user and hour.

use std::time::Duration;

/// The limits, as `serve` reads them from flags and environment.
#[derive(Debug, Clone, clap::Args)]
pub struct Limits {
    /// Most open connections on the HTTP port (DAV, health, metrics). Beyond it a new
    /// connection is closed at once.
    #[arg(long, env = "POSTERN_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Most open connections on the HTTP port from one client address.
    #[arg(
        long,
        env = "POSTERN_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 256
    )]
    pub max_connections_per_address: usize,
    /// Most open connections on the connector (gRPC) port.
    #[arg(long, env = "POSTERN_GRPC_MAX_CONNECTIONS", default_value_t = 20_000)]
    pub grpc_max_connections: usize,
    /// Most open connections on the connector port from one address (connectors of
    /// one site often share an address).
    #[arg(
        long,
        env = "POSTERN_GRPC_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 1_024
    )]
    pub grpc_max_connections_per_address: usize,
    /// Time allowed for a TLS handshake, on either port. It runs beside the accept
    /// loop, never in it.
    #[arg(long, env = "POSTERN_TLS_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub tls_handshake_timeout: Duration,
    /// Time allowed for a request's headers to arrive, counted from the connection's
    /// start or the end of the previous answer; also how long an idle HTTP/1
    /// keep-alive connection stays open.
    #[arg(long, env = "POSTERN_HEADER_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub header_timeout: Duration,
    /// Time allowed for a whole request body to arrive (408 after it).
    #[arg(long, env = "POSTERN_BODY_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub body_timeout: Duration,
    /// A connection on which no byte moves either way for this long is closed (on
    /// both ports; connector streams exchange pings and heartbeats well within it).
    #[arg(long, env = "POSTERN_IDLE_TIMEOUT", default_value = "120s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,
    /// Largest request head (request line and headers) on the HTTP port (431 beyond).
    #[arg(long, env = "POSTERN_MAX_HEADER_BYTES", default_value_t = 64 << 10)]
    pub max_header_bytes: usize,
    /// Largest calendar object or vCard a client may upload, in bytes (413 beyond).
    #[arg(long, env = "POSTERN_MAX_ITEM_BYTES", default_value_t = 10 << 20)]
    pub max_item_bytes: usize,
    /// Largest XML request body (PROPFIND, REPORT, PROPPATCH, MKCOL), in bytes (413).
    #[arg(long, env = "POSTERN_MAX_XML_BYTES", default_value_t = 1 << 20)]
    pub max_xml_bytes: usize,
    /// Deepest nesting of elements in an XML request body (400 beyond).
    #[arg(long, env = "POSTERN_MAX_XML_DEPTH", default_value_t = 64)]
    pub max_xml_depth: usize,
    /// Most elements and attributes in an XML request body (400 beyond).
    #[arg(long, env = "POSTERN_MAX_XML_ELEMENTS", default_value_t = 50_000)]
    pub max_xml_elements: usize,
    /// Most occurrences of one recurring object looked at by a query, an `expand` or a
    /// free-busy answer; a query that needs more is answered 507 with the reason,
    /// never incompletely.
    #[arg(long, env = "POSTERN_MAX_OCCURRENCES", default_value_t = 100_000)]
    pub max_occurrences: usize,
    /// Requests of one user handled at once (429 with Retry-After beyond).
    #[arg(long, env = "POSTERN_MAX_REQUESTS_PER_USER", default_value_t = 16)]
    pub max_requests_per_user: usize,
    /// Most properties one PROPFIND may name (400 beyond).
    #[arg(long, env = "POSTERN_MAX_PROPFIND_PROPERTIES", default_value_t = 256)]
    pub max_propfind_properties: usize,
    /// Largest multistatus answer, in bytes. A longer one ends with a 507 response
    /// for the request URI, as a truncated sync-collection does (RFC 6578 §3.6).
    #[arg(long, env = "POSTERN_MAX_ANSWER_BYTES", default_value_t = 256 << 20)]
    pub max_answer_bytes: usize,
    /// Password verifications (argon2id, about 19 MiB and tens of milliseconds each)
    /// run at once; 0 means half the CPU cores, at least one. Others wait their turn.
    #[arg(long, env = "POSTERN_PASSWORD_VERIFICATIONS", default_value_t = 0)]
    pub password_verifications: usize,
    /// How long a login waits for a verification slot before it is answered 503 with
    /// Retry-After.
    #[arg(long, env = "POSTERN_PASSWORD_WAIT", default_value = "2s", value_parser = humantime::parse_duration)]
    pub password_wait: Duration,
    /// Failed logins remembered (per login and per address, for slowing down
    /// guessing); each entry is a fixed 48 bytes whatever the login's length.
    #[arg(long, env = "POSTERN_FAILED_LOGIN_ENTRIES", default_value_t = 100_000)]
    pub failed_login_entries: usize,
    /// Largest connector message after decompression, in bytes. Must exceed
    /// --max-item-bytes: an item travels in one message.
    #[arg(long, env = "POSTERN_GRPC_MAX_MESSAGE_BYTES", default_value_t = 16 << 20)]
    pub grpc_max_message_bytes: usize,
    /// Streams open at once with one connector token, on one gateway process (two
    /// connector processes sharing a token for high availability need two).
    #[arg(long, env = "POSTERN_MAX_STREAMS_PER_CONNECTOR", default_value_t = 4)]
    pub max_streams_per_connector: usize,
    /// Most open connections on the IMAP ports (both together per port).
    #[arg(long, env = "POSTERN_IMAP_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub imap_max_connections: usize,
    /// Most open IMAP connections from one client address.
    #[arg(
        long,
        env = "POSTERN_IMAP_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 256
    )]
    pub imap_max_connections_per_address: usize,
    /// An IMAP session that sends nothing for this long is logged out (RFC 9051
    /// asks for at least 30 minutes, so that IDLE clients stay). Before login, one
    /// minute.
    #[arg(long, env = "POSTERN_IMAP_IDLE_TIMEOUT", default_value = "31m", value_parser = humantime::parse_duration)]
    pub imap_idle_timeout: Duration,
    /// Largest message an IMAP client may APPEND (advertised as APPENDLIMIT), and
    /// so the most one IMAP command may make the gateway hold. Before login a
    /// command may hold 64 KiB.
    #[arg(long, env = "POSTERN_IMAP_MAX_MESSAGE_BYTES", default_value_t = 50 << 20)]
    pub imap_max_message_bytes: usize,
    /// Take plain-text logins (IMAP LOGIN, AUTHENTICATE PLAIN; SMTP AUTH) on
    /// connections without TLS from anywhere, not only from loopback. Only for a
    /// gateway behind a proxy that does TLS for it.
    #[arg(long, env = "POSTERN_ALLOW_PLAIN_LOGIN")]
    pub allow_plain_login: bool,
    /// Most IMAP sessions one user may have logged in at once on one gateway process
    /// (each may hold an APPEND of up to --imap-max-message-bytes).
    #[arg(long, env = "POSTERN_IMAP_MAX_SESSIONS_PER_USER", default_value_t = 32)]
    pub imap_max_sessions_per_user: usize,
    /// Most open connections on the submission ports.
    #[arg(
        long,
        env = "POSTERN_SUBMISSION_MAX_CONNECTIONS",
        default_value_t = 2_000
    )]
    pub submission_max_connections: usize,
    /// Most open submission connections from one client address.
    #[arg(
        long,
        env = "POSTERN_SUBMISSION_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 64
    )]
    pub submission_max_connections_per_address: usize,
    /// Largest message a client may send (advertised as SIZE).
    #[arg(long, env = "POSTERN_SUBMISSION_MAX_MESSAGE_BYTES", default_value_t = 50 << 20)]
    pub submission_max_message_bytes: usize,
    /// Most recipients of one message.
    #[arg(long, env = "POSTERN_SUBMISSION_MAX_RECIPIENTS", default_value_t = 100)]
    pub submission_max_recipients: usize,
    /// Most messages one user may send in an hour (counted in the outbox, so across
    /// replicas).
    #[arg(
        long,
        env = "POSTERN_SUBMISSION_MESSAGES_PER_HOUR",
        default_value_t = 500
    )]
    pub submission_messages_per_hour: usize,
}

impl Default for Limits {
    /// The defaults the flags document (a test checks that both agree).
    fn default() -> Self {
        Limits {
            max_connections: 10_000,
            max_connections_per_address: 256,
            grpc_max_connections: 20_000,
            grpc_max_connections_per_address: 1_024,
            tls_handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(120),
            max_header_bytes: 64 << 10,
            max_item_bytes: 10 << 20,
            max_xml_bytes: 1 << 20,
            max_xml_depth: 64,
            max_xml_elements: 50_000,
            max_occurrences: 100_000,
            max_requests_per_user: 16,
            max_propfind_properties: 256,
            max_answer_bytes: 256 << 20,
            password_verifications: 0,
            password_wait: Duration::from_secs(2),
            failed_login_entries: 100_000,
            grpc_max_message_bytes: 16 << 20,
            max_streams_per_connector: 4,
            imap_max_connections: 10_000,
            imap_max_connections_per_address: 256,
            imap_idle_timeout: Duration::from_secs(31 * 60),
            imap_max_message_bytes: 50 << 20,
            imap_max_sessions_per_user: 32,
            allow_plain_login: false,
            submission_max_connections: 2_000,
            submission_max_connections_per_address: 64,
            submission_max_message_bytes: 50 << 20,
            submission_max_recipients: 100,
            submission_messages_per_hour: 500,
        }
    }
}

impl Limits {
    /// The XML limits for request bodies.
    pub fn xml(&self) -> postern_davxml::Limits {
        postern_davxml::Limits {
            max_depth: self.max_xml_depth.max(1),
            max_elements: self.max_xml_elements.max(1),
        }
    }

    /// Concurrent password verifications: the setting, or half the cores.
    pub fn verifications(&self) -> usize {
        match self.password_verifications {
            0 => std::thread::available_parallelism()
                .map(|n| n.get() / 2)
                .unwrap_or(1)
                .max(1),
            n => n,
        }
    }

    /// Checks settings that only make sense together.
    pub fn check(&self) -> Result<(), String> {
        if self.grpc_max_message_bytes < self.max_item_bytes + (64 << 10) {
            return Err(format!(
                "--grpc-max-message-bytes ({}) must exceed --max-item-bytes ({}) by at least 64 KiB: an item travels in one message",
                self.grpc_max_message_bytes, self.max_item_bytes
            ));
        }
        if self.max_streams_per_connector == 0
            || self.max_connections == 0
            || self.grpc_max_connections == 0
            || self.imap_max_connections == 0
            || self.submission_max_connections == 0
        {
            return Err("connection and stream limits must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        limits: Limits,
    }

    #[test]
    fn defaults_agree_with_the_documented_flags() {
        let parsed = <Flags as clap::Parser>::try_parse_from(["postern-gateway"])
            .unwrap()
            .limits;
        assert_eq!(format!("{parsed:?}"), format!("{:?}", Limits::default()));
        assert!(Limits::default().check().is_ok());
    }

    #[test]
    fn an_item_must_fit_in_a_link_message() {
        let l = Limits {
            grpc_max_message_bytes: 1 << 20,
            ..Limits::default()
        };
        assert!(l.check().unwrap_err().contains("--grpc-max-message-bytes"));
    }
}
