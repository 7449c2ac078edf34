//! One IMAP connection, as the connector uses it: every command is sent, its untagged
//! data collected and its tagged status checked, with a timeout on every read. The
//! protocol flows are imap-next's; this file turns them into typed answers.
//!
//! What a server says is never stretched: a FETCH cut off mid-literal is an error
//! (the stream ends, the round fails, nothing is saved), and a missing HIGHESTMODSEQ
//! is `None` ("unknown"), never "unchanged".

use std::num::{NonZeroU32, NonZeroU64};
use std::time::Duration;

use imap_next::client::{Client, Event, Options};
use imap_next::imap_types::auth::{AuthMechanism, AuthenticateData};
use imap_next::imap_types::command::{Command, CommandBody, SelectParameter, StoreModifier};
use imap_next::imap_types::core::{Tag, Vec1};
use imap_next::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_next::imap_types::extensions::enable::CapabilityEnable;
use imap_next::imap_types::flag::{StoreResponse, StoreType};
use imap_next::imap_types::mailbox::Mailbox;
use imap_next::imap_types::response::{Code, Data, Status, StatusBody, StatusKind};
use postern_core::mail::{Flags, Role};
use tokio::net::TcpStream;
use url::Url;

mod fetch;
pub use fetch::uid_set;

pub use super::tls::ConnectOptions;
use super::tls::{handshake, starttls, tls_connector};
use super::wire::{
    capabilities_in_data, capabilities_of, first_uid, mailbox_of, mailbox_raw, meta_of, parse_date,
    set_of, status_text, uids_of, wire_flags,
};
use postern_imap::io::Connection;
use postern_imap::utf7;

/// What went wrong on an IMAP connection.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    /// The server could not be reached, or the connection broke (a response cut off
    /// mid-way included).
    #[error("IMAP server unreachable or connection broken: {0}")]
    Transport(String),
    /// No answer within the time allowed.
    #[error("IMAP server did not answer within {0:?}")]
    Timeout(Duration),
    /// The server refused the command (NO or BAD).
    #[error("IMAP server refused {command}: {text}")]
    Refused {
        /// The command's name.
        command: &'static str,
        /// The server's text.
        text: String,
    },
    /// The server closed the session (BYE).
    #[error("IMAP server closed the session: {0}")]
    Bye(String),
    /// What the server said cannot be used.
    #[error("IMAP server sent something unusable: {0}")]
    Malformed(String),
    /// The URL or settings do not allow a connection (plain text off loopback...).
    #[error("{0}")]
    Config(String),
}

/// A mailbox as LIST shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxInfo {
    /// Its name, decoded (modified UTF-7 turned into text).
    pub name: String,
    /// Its hierarchy delimiter, if the server has one.
    pub delimiter: Option<char>,
    /// Its SPECIAL-USE role (INBOX is the inbox).
    pub role: Option<Role>,
    /// `\Noselect` (or `\NonExistent`): a level of the hierarchy holding no messages.
    pub noselect: bool,
}

/// A message's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    /// UID.
    pub uid: u32,
    /// Flags (`\Recent` left out).
    pub flags: Flags,
    /// MODSEQ (0 when the server has none).
    pub modseq: u64,
}

/// A whole message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its metadata.
    pub meta: MessageMeta,
    /// INTERNALDATE, as the server wrote it (RFC 3501 date-time).
    pub internal_date: Option<String>,
    /// RFC822.SIZE.
    pub size: u32,
    /// The bytes.
    pub body: Vec<u8>,
}

/// What SELECT says of a mailbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selected {
    /// UIDVALIDITY.
    pub uidvalidity: u32,
    /// UIDNEXT, if said.
    pub uidnext: Option<u32>,
    /// HIGHESTMODSEQ: `None` when the server did not say (unknown, not "unchanged").
    pub highest_modseq: Option<u64>,
    /// Messages in the mailbox.
    pub exists: u32,
    /// With QRESYNC: UIDs expunged since the state given.
    pub vanished: Vec<u32>,
    /// With QRESYNC: messages whose flags changed since the state given.
    pub changed: Vec<MessageMeta>,
}

/// What a resumed SELECT knows (RFC 7162 §3.2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    /// The UIDVALIDITY last seen.
    pub uidvalidity: u32,
    /// The HIGHESTMODSEQ last seen.
    pub modseq: u64,
}

/// What a conditional STORE did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// Done; the message's MODSEQ afterwards, if said.
    Done(Option<u64>),
    /// The message changed since the MODSEQ given (`[MODIFIED]`): nothing was written.
    Modified,
}

/// Untagged data and the tagged status of one command.
struct Answer {
    data: Vec<Data<'static>>,
    untagged: Vec<StatusBody<'static>>,
    status: StatusBody<'static>,
}

/// Every read waits at most this long (IDLE has its own, longer wait).
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest message fetched (the most the gateway takes, assembled from parts):
/// a larger one is left on the server, reported, and never fetched.
pub const MAX_MESSAGE: u64 = 512 << 20;

/// One authenticated IMAP connection.
pub struct ImapClient {
    stream: Connection,
    client: Client,
    next_tag: u32,
    timeout: Duration,
    /// What the server says it can do (upper case).
    pub capabilities: Vec<String>,
    /// How this connection logged in: "AUTHENTICATE PLAIN" when the server offers
    /// it (with SASL-IR in one round trip), else "LOGIN".
    pub login_method: &'static str,
    /// The mailbox selected now, if any.
    selected: Option<String>,
}

impl ImapClient {
    /// Connects to `url` and logs in; see [`ImapClient::connect_with`].
    pub async fn connect(
        url: &Url,
        username: &str,
        password: &str,
        allow_plain: bool,
    ) -> Result<ImapClient, ImapError> {
        let options = ConnectOptions {
            allow_plain,
            extra_ca: None,
        };
        Self::connect_with(url, username, password, &options).await
    }

    /// Connects to `url` and logs in. `imaps://host:port` is TLS from the start;
    /// `imap://host:port` upgrades with STARTTLS when the server offers it, and
    /// otherwise logs in in plain text only on loopback or when `allow_plain`.
    /// Certificates are checked against the system's roots and `extra_ca`.
    pub async fn connect_with(
        url: &Url,
        username: &str,
        password: &str,
        options: &ConnectOptions,
    ) -> Result<ImapClient, ImapError> {
        let host = url
            .host_str()
            .ok_or_else(|| ImapError::Config(format!("no host in {url}")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let implicit = match url.scheme() {
            "imaps" => true,
            "imap" => false,
            other => {
                return Err(ImapError::Config(format!(
                    "not an IMAP URL scheme: {other}"
                )));
            }
        };
        let port = url.port().unwrap_or(if implicit { 993 } else { 143 });
        let loopback = matches!(host.as_str(), "localhost" | "127.0.0.1" | "::1");
        let mut tcp = tokio::time::timeout(READ_TIMEOUT, TcpStream::connect((host.as_str(), port)))
            .await
            .map_err(|_| ImapError::Timeout(READ_TIMEOUT))?
            .map_err(|e| ImapError::Transport(format!("{host}:{port}: {e}")))?;
        let tls = || tls_connector(options.extra_ca.as_deref());
        let (stream, greeted) = if implicit {
            (Connection::new(handshake(tls()?, &host, tcp).await?), false)
        } else if starttls(&mut tcp).await? {
            (Connection::new(handshake(tls()?, &host, tcp).await?), true)
        } else if loopback || options.allow_plain {
            (Connection::new(tcp), true)
        } else {
            return Err(ImapError::Config(format!(
                "{url} offers no STARTTLS: refusing to send the password in plain text (use imaps://, or allow_plain = true)"
            )));
        };
        let mut client_options = Options::default();
        // Bodies are fetched a few at a time, by size (the backend's fetch); the
        // largest answer is one message the gateway takes (512 MiB) and its envelope.
        client_options.max_response_size = MAX_MESSAGE as u32 + (1 << 20);
        // After STARTTLS (or a plain start read by hand) there is no greeting left.
        client_options.discard_greeting = greeted;
        let mut imap = ImapClient {
            stream,
            client: Client::new(client_options),
            next_tag: 1,
            timeout: READ_TIMEOUT,
            capabilities: Vec::new(),
            login_method: "",
            selected: None,
        };
        if !greeted {
            imap.greeting().await?;
        }
        if greeted || imap.capabilities.is_empty() {
            // After STARTTLS, what was said before no longer counts (RFC 9051 §6.2.1).
            let answer = imap.run("CAPABILITY", CommandBody::Capability).await?;
            imap.capabilities = answer
                .data
                .iter()
                .find_map(capabilities_in_data)
                .unwrap_or_default();
        }
        let answer = if imap.has("AUTH=PLAIN") {
            imap.login_method = "AUTHENTICATE PLAIN";
            imap.authenticate_plain(username, password).await?
        } else if imap.has("LOGINDISABLED") {
            return Err(ImapError::Config(format!(
                "{url}: the server disables LOGIN and offers no AUTH=PLAIN"
            )));
        } else {
            imap.login_method = "LOGIN";
            let login = CommandBody::login(username.to_string(), password.to_string())
                .map_err(|e| ImapError::Config(format!("login name or password: {e}")))?;
            imap.run("LOGIN", login).await?.status
        };
        imap.capabilities = capabilities_of(&answer).unwrap_or_default();
        if imap.capabilities.is_empty() {
            let answer = imap.run("CAPABILITY", CommandBody::Capability).await?;
            imap.capabilities = answer
                .data
                .iter()
                .find_map(capabilities_in_data)
                .unwrap_or_default();
        }
        Ok(imap)
    }

    /// AUTHENTICATE PLAIN (RFC 4616), the credentials in the command itself when the
    /// server has SASL-IR; the tagged status that ends it.
    async fn authenticate_plain(
        &mut self,
        username: &str,
        password: &str,
    ) -> Result<StatusBody<'static>, ImapError> {
        let response = format!("\0{username}\0{password}").into_bytes();
        let body = if self.has("SASL-IR") {
            CommandBody::authenticate_with_ir(AuthMechanism::Plain, response.clone())
        } else {
            CommandBody::authenticate(AuthMechanism::Plain)
        };
        let tag = format!("p{}", self.next_tag);
        self.next_tag += 1;
        self.client.enqueue_command(Command {
            tag: Tag::try_from(tag).map_err(|e| ImapError::Malformed(e.to_string()))?,
            body,
        });
        let mut sent = false;
        loop {
            match self.next().await? {
                Event::AuthenticateContinuationRequestReceived { .. } => {
                    // The response once; a second challenge is not PLAIN: cancel.
                    let data = if sent {
                        AuthenticateData::Cancel
                    } else {
                        AuthenticateData::r#continue(response.clone())
                    };
                    sent = true;
                    self.client
                        .set_authenticate_data(data)
                        .map_err(|e| ImapError::Malformed(format!("{e:?}")))?;
                }
                Event::AuthenticateStatusReceived { status, .. } => {
                    let body = match status {
                        Status::Tagged(t) => t.body,
                        Status::Untagged(b) => b,
                        Status::Bye(b) => return Err(ImapError::Bye(b.text.to_string())),
                    };
                    if body.kind != StatusKind::Ok {
                        return Err(ImapError::Refused {
                            command: "AUTHENTICATE",
                            text: body.text.to_string(),
                        });
                    }
                    return Ok(body);
                }
                Event::StatusReceived {
                    status: Status::Bye(b),
                } => return Err(ImapError::Bye(b.text.to_string())),
                _ => {}
            }
        }
    }

    /// Whether the server offers `capability` (case-insensitive).
    pub fn has(&self, capability: &str) -> bool {
        self.capabilities
            .iter()
            .any(|c| c.eq_ignore_ascii_case(capability))
    }

    async fn next(&mut self) -> Result<Event, ImapError> {
        tokio::time::timeout(self.timeout, self.stream.next(&mut self.client))
            .await
            .map_err(|_| ImapError::Timeout(self.timeout))?
            .map_err(|e| ImapError::Transport(e.to_string()))
    }

    async fn greeting(&mut self) -> Result<(), ImapError> {
        loop {
            if let Event::GreetingReceived { greeting } = self.next().await? {
                if let Some(Code::Capability(caps)) = &greeting.code {
                    self.capabilities = caps
                        .as_ref()
                        .iter()
                        .map(|c| c.to_string().to_ascii_uppercase())
                        .collect();
                }
                return Ok(());
            }
        }
    }

    /// Sends one command and collects its answer; NO and BAD are errors.
    async fn run(
        &mut self,
        name: &'static str,
        body: CommandBody<'static>,
    ) -> Result<Answer, ImapError> {
        let tag = format!("p{}", self.next_tag);
        self.next_tag += 1;
        let command = Command {
            tag: Tag::try_from(tag.clone()).map_err(|e| ImapError::Malformed(e.to_string()))?,
            body,
        };
        self.client.enqueue_command(command);
        let mut data = Vec::new();
        let mut untagged = Vec::new();
        loop {
            match self.next().await? {
                Event::DataReceived { data: d } => data.push(d),
                Event::CommandRejected { status, .. } => {
                    return Err(ImapError::Refused {
                        command: name,
                        text: status_text(&status),
                    });
                }
                Event::StatusReceived { status } => match status {
                    Status::Tagged(t) if t.tag.as_ref() == tag => {
                        if t.body.kind != StatusKind::Ok {
                            return Err(ImapError::Refused {
                                command: name,
                                text: t.body.text.to_string(),
                            });
                        }
                        return Ok(Answer {
                            data,
                            untagged,
                            status: t.body,
                        });
                    }
                    Status::Untagged(b) => untagged.push(b),
                    Status::Bye(b) => return Err(ImapError::Bye(b.text.to_string())),
                    Status::Tagged(_) => {}
                },
                _ => {}
            }
        }
    }

    /// ENABLE QRESYNC (or CONDSTORE when that is all the server has); must come
    /// before SELECT, or HIGHESTMODSEQ goes missing. Returns what was enabled.
    pub async fn enable_modseq(&mut self) -> Result<Option<&'static str>, ImapError> {
        let which = if self.has("QRESYNC") {
            "QRESYNC"
        } else if self.has("CONDSTORE") {
            "CONDSTORE"
        } else {
            return Ok(None);
        };
        let cap =
            CapabilityEnable::try_from(which).map_err(|e| ImapError::Malformed(e.to_string()))?;
        self.run(
            "ENABLE",
            CommandBody::Enable {
                capabilities: Vec1::from(cap),
            },
        )
        .await?;
        Ok(Some(which))
    }

    /// Every mailbox (`LIST "" "*"`).
    pub async fn list(&mut self) -> Result<Vec<MailboxInfo>, ImapError> {
        let body = CommandBody::list("", "*").map_err(|e| ImapError::Malformed(e.to_string()))?;
        let answer = self.run("LIST", body).await?;
        let mut out = Vec::new();
        for d in answer.data {
            let Data::List {
                items,
                delimiter,
                mailbox,
            } = d
            else {
                continue;
            };
            let raw = mailbox_raw(&mailbox);
            let name = utf7::decode(&raw).unwrap_or(raw);
            let attrs: Vec<String> = items.iter().map(|a| a.to_string()).collect();
            let role = if matches!(mailbox, Mailbox::Inbox) {
                Some(Role::Inbox)
            } else {
                attrs.iter().find_map(|a| Role::from_attribute(a))
            };
            out.push(MailboxInfo {
                name,
                delimiter: delimiter.map(|d| d.inner()),
                role,
                noselect: attrs.iter().any(|a| {
                    a.eq_ignore_ascii_case("\\Noselect") || a.eq_ignore_ascii_case("\\NonExistent")
                }),
            });
        }
        Ok(out)
    }

    /// SELECT a mailbox, resuming from `resume` with QRESYNC when the server has it
    /// (then changed flags and vanished UIDs come with the answer).
    pub async fn select(
        &mut self,
        name: &str,
        resume: Option<&Resume>,
    ) -> Result<Selected, ImapError> {
        let mut parameters = Vec::new();
        if let Some(r) = resume.filter(|_| self.has("QRESYNC"))
            && let (Some(v), Some(m)) = (NonZeroU32::new(r.uidvalidity), NonZeroU64::new(r.modseq))
        {
            parameters.push(SelectParameter::QResync {
                uid_validity: v,
                mod_sequence_value: m,
                known_uids: None,
                seq_match_data: None,
            });
        } else if self.has("CONDSTORE") {
            parameters.push(SelectParameter::CondStore);
        }
        let body = CommandBody::Select {
            mailbox: mailbox_of(name)?,
            parameters,
        };
        // A SELECT that fails leaves no mailbox selected (RFC 9051 §6.3.2).
        self.selected = None;
        let answer = self.run("SELECT", body).await?;
        let mut s = Selected::default();
        for b in answer
            .untagged
            .iter()
            .chain(std::iter::once(&answer.status))
        {
            match &b.code {
                Some(Code::UidValidity(v)) => s.uidvalidity = v.get(),
                Some(Code::UidNext(n)) => s.uidnext = Some(n.get()),
                Some(Code::HighestModSeq(m)) => s.highest_modseq = Some(m.get()),
                Some(Code::NoModSeq) => s.highest_modseq = None,
                _ => {}
            }
        }
        for d in answer.data {
            match d {
                Data::Exists(n) => s.exists = n,
                Data::Vanished { known_uids, .. } => s.vanished.extend(uids_of(&known_uids)),
                Data::Fetch { items, .. } => {
                    if let Some(m) = meta_of(items.as_ref()) {
                        s.changed.push(m);
                    }
                }
                _ => {}
            }
        }
        if s.uidvalidity == 0 {
            return Err(ImapError::Malformed(format!(
                "SELECT {name}: no UIDVALIDITY"
            )));
        }
        self.selected = Some(name.to_string());
        Ok(s)
    }

    /// Selects `name` unless it is selected already (for commands by UID, which need
    /// a mailbox but nothing the SELECT answers).
    pub async fn ensure_selected(&mut self, name: &str) -> Result<(), ImapError> {
        if self.selected.as_deref() == Some(name) {
            return Ok(());
        }
        self.select(name, None).await.map(|_| ())
    }

    /// Sets and clears flags of one message, only if its MODSEQ is still
    /// `unchanged_since` (0: unconditionally, for servers without MODSEQ).
    pub async fn store(
        &mut self,
        uid: u32,
        add: &Flags,
        remove: &Flags,
        unchanged_since: u64,
    ) -> Result<Stored, ImapError> {
        let mut since = unchanged_since;
        let mut last = None;
        for (kind, flags) in [(StoreType::Add, add), (StoreType::Remove, remove)] {
            if flags.is_empty() {
                continue;
            }
            let modifiers = if since > 0 {
                vec![StoreModifier::UnchangedSince(since)]
            } else {
                Vec::new()
            };
            let answer = self
                .run(
                    "UID STORE",
                    CommandBody::Store {
                        sequence_set: set_of(&uid.to_string())?,
                        kind,
                        response: StoreResponse::Answer,
                        flags: wire_flags(flags)?,
                        uid: true,
                        modifiers,
                    },
                )
                .await?;
            if matches!(answer.status.code, Some(Code::Modified(_))) {
                return Ok(Stored::Modified);
            }
            let modseq = answer.data.iter().find_map(|d| match d {
                Data::Fetch { items, .. } => meta_of(items.as_ref()).map(|m| m.modseq),
                _ => None,
            });
            if let Some(m) = modseq.filter(|m| *m > 0) {
                // The next conditional store is against the MODSEQ this one made.
                if since > 0 {
                    since = m;
                }
                last = Some(m);
            }
        }
        Ok(Stored::Done(last))
    }

    /// APPENDs a message with its flags and internal date; the UID the server gave it
    /// (APPENDUID), when it says.
    pub async fn append(
        &mut self,
        mailbox: &str,
        flags: &Flags,
        internal_date: Option<&str>,
        bytes: &[u8],
    ) -> Result<Option<(u32, u32)>, ImapError> {
        let date = internal_date.and_then(parse_date);
        let literal = imap_next::imap_types::core::Literal::try_from(bytes.to_vec())
            .map_err(|e| ImapError::Malformed(format!("message not sendable: {e}")))?;
        let answer = self
            .run(
                "APPEND",
                CommandBody::Append {
                    mailbox: mailbox_of(mailbox)?,
                    flags: wire_flags(flags)?,
                    date,
                    message: LiteralOrLiteral8::Literal(literal),
                },
            )
            .await?;
        Ok(match answer.status.code {
            Some(Code::AppendUid { uid_validity, uid }) => Some((uid_validity.get(), uid.get())),
            _ => None,
        })
    }

    /// Expunges one message: `UID STORE +FLAGS.SILENT (\Deleted)`, then `UID EXPUNGE`
    /// of that UID only (never a bare EXPUNGE, which would take others' deletions).
    pub async fn expunge(&mut self, uid: u32) -> Result<(), ImapError> {
        if !self.has("UIDPLUS") {
            return Err(ImapError::Config(
                "the server lacks UIDPLUS: one message cannot be expunged alone".into(),
            ));
        }
        let deleted = Flags::parse(["\\Deleted"]);
        self.run(
            "UID STORE",
            CommandBody::Store {
                sequence_set: set_of(&uid.to_string())?,
                kind: StoreType::Add,
                response: StoreResponse::Silent,
                flags: wire_flags(&deleted)?,
                uid: true,
                modifiers: Vec::new(),
            },
        )
        .await?;
        self.run(
            "UID EXPUNGE",
            CommandBody::ExpungeUid {
                sequence_set: set_of(&uid.to_string())?,
            },
        )
        .await?;
        Ok(())
    }

    /// Moves one message of the selected mailbox to `to`: `UID MOVE`, or where the
    /// server has no MOVE, `UID COPY` then this message's expunge (the copy first, so
    /// a failure between the two leaves two copies, never none). Its UIDVALIDITY and
    /// UID there, when the server says (COPYUID).
    pub async fn move_to(&mut self, uid: u32, to: &str) -> Result<Option<(u32, u32)>, ImapError> {
        let set = set_of(&uid.to_string())?;
        let mailbox = mailbox_of(to)?;
        let moved = self.has("MOVE");
        let answer = if moved {
            let body = CommandBody::Move {
                sequence_set: set,
                mailbox,
                uid: true,
            };
            self.run("UID MOVE", body).await?
        } else {
            let body = CommandBody::Copy {
                sequence_set: set,
                mailbox,
                uid: true,
            };
            self.run("UID COPY", body).await?
        };
        let copied = answer
            .untagged
            .iter()
            .chain(std::iter::once(&answer.status))
            .find_map(|b| match &b.code {
                Some(Code::CopyUid {
                    uid_validity,
                    destination,
                    ..
                }) => first_uid(destination).map(|u| (uid_validity.get(), u)),
                _ => None,
            });
        if !moved {
            self.expunge(uid).await?;
        }
        Ok(copied)
    }

    /// IDLE on the selected mailbox until the server reports a change (new, expunged
    /// or changed messages: `true`) or `max` passes (`false`), then DONE. Servers end
    /// an IDLE after 30 minutes; callers keep `max` below that.
    pub async fn idle(&mut self, max: Duration) -> Result<bool, ImapError> {
        if !self.has("IDLE") {
            return Err(ImapError::Config("the server does not offer IDLE".into()));
        }
        let tag = format!("p{}", self.next_tag);
        self.next_tag += 1;
        self.client.enqueue_command(Command {
            tag: Tag::try_from(tag.clone()).map_err(|e| ImapError::Malformed(e.to_string()))?,
            body: CommandBody::Idle,
        });
        // Until the server accepts, the usual timeout; then as long as `max`.
        loop {
            match self.next().await? {
                Event::IdleAccepted { .. } => break,
                Event::IdleRejected { status, .. } => {
                    return Err(ImapError::Refused {
                        command: "IDLE",
                        text: status_text(&status),
                    });
                }
                Event::StatusReceived {
                    status: Status::Bye(b),
                } => return Err(ImapError::Bye(b.text.to_string())),
                _ => {}
            }
        }
        let deadline = tokio::time::Instant::now() + max;
        let mut changed = false;
        while !changed {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            match tokio::time::timeout(left, self.stream.next(&mut self.client)).await {
                Err(_) => break,
                Ok(Err(e)) => return Err(ImapError::Transport(e.to_string())),
                Ok(Ok(Event::DataReceived { data })) => {
                    changed = matches!(
                        data,
                        Data::Exists(_)
                            | Data::Expunge(_)
                            | Data::Fetch { .. }
                            | Data::Vanished { .. }
                    );
                }
                Ok(Ok(Event::StatusReceived {
                    status: Status::Bye(b),
                })) => return Err(ImapError::Bye(b.text.to_string())),
                Ok(Ok(_)) => {}
            }
        }
        self.client.set_idle_done();
        loop {
            match self.next().await? {
                Event::StatusReceived {
                    status: Status::Tagged(t),
                } if t.tag.as_ref() == tag => return Ok(changed),
                Event::StatusReceived {
                    status: Status::Bye(b),
                } => return Err(ImapError::Bye(b.text.to_string())),
                _ => {}
            }
        }
    }

    /// Creates a mailbox.
    pub async fn create(&mut self, name: &str) -> Result<(), ImapError> {
        self.run(
            "CREATE",
            CommandBody::Create {
                mailbox: mailbox_of(name)?,
            },
        )
        .await?;
        Ok(())
    }

    /// Renames a mailbox (its children move with it).
    pub async fn rename(&mut self, from: &str, to: &str) -> Result<(), ImapError> {
        if self.selected.as_deref() == Some(from) {
            self.selected = None;
        }
        self.run(
            "RENAME",
            CommandBody::Rename {
                from: mailbox_of(from)?,
                to: mailbox_of(to)?,
            },
        )
        .await?;
        Ok(())
    }

    /// Deletes a mailbox.
    pub async fn delete(&mut self, name: &str) -> Result<(), ImapError> {
        if self.selected.as_deref() == Some(name) {
            self.selected = None;
        }
        self.run(
            "DELETE",
            CommandBody::Delete {
                mailbox: mailbox_of(name)?,
            },
        )
        .await?;
        Ok(())
    }

    /// Ends the session politely.
    pub async fn logout(mut self) -> Result<(), ImapError> {
        // The server says BYE and closes: however the close reaches us (a BYE, the
        // end of the stream), the session is over, which is what was asked.
        match self.run("LOGOUT", CommandBody::Logout).await {
            Ok(_) | Err(ImapError::Bye(_)) | Err(ImapError::Transport(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
