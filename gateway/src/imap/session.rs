//! One IMAP connection: greeting, login, the commands outside a mailbox, and the
//! loop that drives imap-next's server state machine over the socket.
//!
//! A session is in one of three states (RFC 9051 §3): not authenticated (only
//! CAPABILITY, NOOP, LOGOUT, ID, LOGIN, AUTHENTICATE), authenticated, and selected
//! (a mailbox's commands, in [`super::selected`]). Plain-text logins are taken only
//! over TLS or from loopback: elsewhere the session says LOGINDISABLED.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use imap_next::imap_types::auth::{AuthMechanism, AuthenticateData};
use imap_next::imap_types::command::{Command, CommandBody};
use imap_next::imap_types::core::{IString, Text, Vec1};
use imap_next::imap_types::extensions::enable::CapabilityEnable;
use imap_next::imap_types::extensions::namespace::Namespace;
use imap_next::imap_types::mailbox::Mailbox;
use imap_next::imap_types::response::{
    Capability, Code, CommandContinuationRequest, Data, Greeting, Status,
};
use imap_next::imap_types::status::{StatusDataItem, StatusDataItemName};
use imap_next::server::{Error as ServerError, Event, Options, Server};
use imap_next::types::CommandAuthenticate;
use postern_imap::io::{Connection, ConnectionError};
use tracing::{debug, info};

use super::selected::Selected;
use super::{ImapState, LOGIN_TIMEOUT, names};
use crate::listen::Conn;
use crate::logins::{LoginError, Principal};
use crate::store::imap::MailboxRow;

/// What one command may make the session hold before login.
const BEFORE_LOGIN_BYTES: usize = 64 << 10;
/// Bytes read from the socket at once: most commands are short.
const READ_BUFFER: usize = 16 << 10;

/// What the loop does after a command.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Flow {
    Continue,
    Close,
}

/// A session's state.
pub(super) struct Session {
    pub state: Arc<ImapState>,
    pub addr: SocketAddr,
    /// Plain-text logins allowed: TLS, or loopback.
    pub secure: bool,
    pub user: Option<Principal>,
    pub selected: Option<Selected>,
    /// ENABLE CONDSTORE was sent (or a command implied it).
    pub condstore: bool,
    /// ENABLE QRESYNC was sent: expunges are told as VANISHED.
    pub qresync: bool,
    /// The tag of the IDLE in progress.
    pub idle: Option<imap_next::imap_types::core::Tag<'static>>,
    /// The tag of an AUTHENTICATE waiting for the client's response.
    pub pending_auth: Option<imap_next::imap_types::core::Tag<'static>>,
    /// This session's place among its user's sessions.
    pub slot: Option<super::SessionSlot>,
    /// The connection.
    pub io: Connection,
}

/// Serves one connection until the client logs out, goes silent or breaks the
/// protocol. On the plain port, with a certificate configured, the client must
/// STARTTLS first ([`super::starttls`]).
pub(super) async fn run(conn: Conn, state: Arc<ImapState>) {
    let addr = conn.addr;
    let (socket, tls, greet): (Box<dyn postern_imap::io::Socket>, bool, bool) =
        match (&state.tls, conn.is_tls()) {
            (Some(acceptor), false) => {
                match super::starttls::before_tls(Box::new(conn), acceptor.clone()).await {
                    Some(socket) => (socket, true, false),
                    None => return,
                }
            }
            (_, tls) => (Box::new(conn), tls, true),
        };
    serve(socket, addr, tls, greet, state).await;
}

async fn serve(
    socket: Box<dyn postern_imap::io::Socket>,
    addr: SocketAddr,
    tls: bool,
    greet: bool,
    state: Arc<ImapState>,
) {
    let secure = tls || addr.ip().is_loopback() || state.limits.allow_plain_login;
    let mut options = Options::default();
    let max = state.limits.imap_max_message_bytes;
    options.max_literal_size = u32::try_from(max).unwrap_or(u32::MAX - (64 << 10));
    options.max_command_size = options.max_literal_size.saturating_add(64 << 10);
    let caps = capabilities(false, secure, max);
    let greeting = Greeting {
        kind: imap_next::imap_types::response::GreetingKind::Ok,
        code: Some(Code::Capability(caps)),
        text: Text::try_from("Postern IMAP ready").expect("valid text"),
    };
    let mut server = Server::new(options, greeting);
    let mut io = Connection::with_buffer(socket, READ_BUFFER);
    if !greet {
        io = io.without_greeting();
    }
    let mut changes = state.changes.subscribe();
    let mut s = Session {
        state,
        addr,
        secure,
        user: None,
        selected: None,
        condstore: false,
        qresync: false,
        idle: None,
        pending_auth: None,
        slot: None,
        io,
    };
    loop {
        let (wait, limit) = match s.user {
            None => (LOGIN_TIMEOUT, BEFORE_LOGIN_BYTES),
            Some(_) => (s.state.limits.imap_idle_timeout, max + (64 << 10)),
        };
        let event = tokio::select! {
            e = s.io.next_within(&mut server, limit) => e,
            nudge = changes.recv(), if s.idle.is_some() => {
                let ours = match (&nudge, &s.selected, &s.user) {
                    (Ok((t, c)), Some(sel), Some(u)) => *t == u.tenant && *c == sel.id,
                    // Missed some: look anyway.
                    (Err(_), Some(_), Some(_)) => true,
                    _ => false,
                };
                if ours {
                    s.updates(&mut server).await;
                }
                continue;
            }
            _ = tokio::time::sleep(wait) => {
                bye(&mut server, "autologout: idle too long");
                let _ = s.io.next(&mut server).await;
                return;
            }
        };
        let flow = match event {
            Ok(Event::CommandReceived { command }) => s.command(&mut server, command).await,
            Ok(Event::CommandAuthenticateReceived {
                command_authenticate,
            }) => s.authenticate(&mut server, command_authenticate).await,
            Ok(Event::AuthenticateDataReceived { authenticate_data }) => {
                s.authenticate_data(&mut server, authenticate_data).await
            }
            Ok(Event::IdleCommandReceived { tag }) => {
                s.idle_start(&mut server, tag).await;
                Flow::Continue
            }
            Ok(Event::IdleDoneReceived) => {
                if let Some(tag) = s.idle.take() {
                    s.updates(&mut server).await;
                    server.enqueue_status(ok(tag, "IDLE done"));
                }
                Flow::Continue
            }
            Ok(Event::GreetingSent { .. } | Event::ResponseSent { .. }) => Flow::Continue,
            Err(ConnectionError::State(e)) => {
                // A malformed command is answered BAD, tagged when its tag can be
                // read; the session goes on.
                let (why, bytes) = match &e {
                    ServerError::ExpectedCrlfGotLf { discarded_bytes } => {
                        ("lines must end in CRLF", discarded_bytes)
                    }
                    ServerError::MalformedMessage { discarded_bytes } => {
                        ("malformed command", discarded_bytes)
                    }
                    ServerError::LiteralTooLong { discarded_bytes } => {
                        ("literal too long (see APPENDLIMIT)", discarded_bytes)
                    }
                    ServerError::CommandTooLong { discarded_bytes } => {
                        ("command too long", discarded_bytes)
                    }
                };
                debug!(address = %s.addr, why, command = %String::from_utf8_lossy(&bytes.declassify()[..bytes.declassify().len().min(200)]), "IMAP command refused");
                server.enqueue_status(
                    Status::bad(tag_of(bytes.declassify()), None, why).expect("valid text"),
                );
                Flow::Continue
            }
            Err(ConnectionError::TooLarge) => {
                bye(&mut server, "command too large");
                Flow::Close
            }
            Err(e) => {
                debug!(address = %s.addr, error = %e, "IMAP connection ended");
                return;
            }
        };
        if flow == Flow::Close {
            // Write what is queued (the BYE and the tagged OK), then close.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                while let Ok(event) = s.io.next(&mut server).await {
                    if let Event::ResponseSent { response, .. } = event
                        && matches!(
                            response,
                            imap_next::imap_types::response::Response::Status(Status::Tagged(_))
                        )
                    {
                        break;
                    }
                }
            })
            .await;
            let _ = s.io.flush().await;
            return;
        }
    }
}

/// The tag a discarded command began with, if it is a valid one.
fn tag_of(bytes: &[u8]) -> Option<imap_next::imap_types::core::Tag<'static>> {
    let end = bytes.iter().position(|b| *b == b' ')?;
    let tag = std::str::from_utf8(&bytes[..end]).ok()?;
    imap_next::imap_types::core::Tag::try_from(tag.to_string()).ok()
}

/// The capabilities to advertise: before login, what a login needs; after, what
/// the session serves.
pub(super) fn capabilities(
    logged_in: bool,
    secure: bool,
    max_message: usize,
) -> Vec1<Capability<'static>> {
    let mut caps = vec![Capability::Imap4Rev1];
    let other = |s: &str| Capability::try_from(s.to_string()).expect("a valid capability");
    if logged_in {
        caps.extend([
            Capability::LiteralPlus,
            Capability::Idle,
            Capability::Unselect,
            Capability::Namespace,
            Capability::Id,
            Capability::Enable,
            Capability::UidPlus,
            Capability::Move,
            Capability::CondStore,
            Capability::QResync,
            other("SPECIAL-USE"),
            other("CHILDREN"),
            other(&format!("APPENDLIMIT={max_message}")),
        ]);
    } else {
        caps.extend([Capability::LiteralPlus, Capability::Id, Capability::SaslIr]);
        if secure {
            caps.push(Capability::Auth(AuthMechanism::Plain));
        } else {
            caps.push(Capability::LoginDisabled);
        }
    }
    Vec1::try_from(caps).expect("never empty")
}

pub(super) fn ok(
    tag: imap_next::imap_types::core::Tag<'static>,
    text: impl Into<String>,
) -> Status<'static> {
    Status::ok(Some(tag), None, text.into()).unwrap_or_else(|_| fallback())
}

pub(super) fn ok_code(
    tag: imap_next::imap_types::core::Tag<'static>,
    code: Code<'static>,
    text: impl Into<String>,
) -> Status<'static> {
    Status::ok(Some(tag), Some(code), text.into()).unwrap_or_else(|_| fallback())
}

pub(super) fn no(
    tag: imap_next::imap_types::core::Tag<'static>,
    text: impl Into<String>,
) -> Status<'static> {
    Status::no(Some(tag), None, text.into()).unwrap_or_else(|_| fallback())
}

pub(super) fn bad(
    tag: imap_next::imap_types::core::Tag<'static>,
    text: impl Into<String>,
) -> Status<'static> {
    Status::bad(Some(tag), None, text.into()).unwrap_or_else(|_| fallback())
}

/// A tagged NO with a response code an extension defines (`[ALREADYEXISTS]`,
/// `[AUTHENTICATIONFAILED]`, ...).
pub(super) fn no_code(
    tag: imap_next::imap_types::core::Tag<'static>,
    code: &'static str,
    text: &'static str,
) -> Status<'static> {
    let code = Code::Other(imap_next::imap_types::response::CodeOther::unvalidated(
        code.as_bytes(),
    ));
    Status::no(Some(tag), Some(code), text).unwrap_or_else(|_| fallback())
}

fn fallback() -> Status<'static> {
    Status::bad(None, None, "internal error").expect("valid text")
}

fn bye(server: &mut Server, text: &'static str) {
    server.enqueue_status(Status::bye(None, text).expect("valid text"));
}

impl Session {
    /// One command.
    async fn command(&mut self, server: &mut Server, command: Command<'static>) -> Flow {
        let tag = command.tag;
        match command.body {
            CommandBody::Capability => {
                let caps = capabilities(
                    self.user.is_some(),
                    self.secure,
                    self.state.limits.imap_max_message_bytes,
                );
                server.enqueue_data(Data::Capability(caps));
                server.enqueue_status(ok(tag, "CAPABILITY done"));
            }
            CommandBody::Noop | CommandBody::Check => {
                self.updates(server).await;
                server.enqueue_status(ok(tag, "done"));
            }
            CommandBody::Logout => {
                bye(server, "logging out");
                server.enqueue_status(ok(tag, "LOGOUT done"));
                return Flow::Close;
            }
            CommandBody::Id { .. } => {
                let params = vec![(
                    IString::try_from("name").expect("valid"),
                    imap_next::imap_types::core::NString(Some(
                        IString::try_from("Postern").expect("valid"),
                    )),
                )];
                server.enqueue_data(Data::Id {
                    parameters: Some(params),
                });
                server.enqueue_status(ok(tag, "ID done"));
            }
            CommandBody::Login { username, password } => {
                if self.user.is_some() {
                    server.enqueue_status(bad(tag, "already logged in"));
                } else if !self.secure {
                    server.enqueue_status(no(
                        tag,
                        "plain-text login refused on a connection without TLS",
                    ));
                } else {
                    let login = String::from_utf8_lossy(username.as_ref()).into_owned();
                    let password =
                        String::from_utf8_lossy(password.declassify().as_ref()).into_owned();
                    let status = self.login(tag, &login, &password).await;
                    server.enqueue_status(status);
                }
            }
            body if self.user.is_none() => {
                server.enqueue_status(bad(tag, format!("{} needs a login first", body.name())));
            }
            CommandBody::Enable { capabilities } => {
                let mut enabled = Vec::new();
                for c in capabilities.as_ref() {
                    if matches!(c, CapabilityEnable::CondStore) {
                        self.condstore = true;
                        enabled.push(c.clone());
                    } else if c.to_string().eq_ignore_ascii_case("QRESYNC") {
                        // QRESYNC implies CONDSTORE (RFC 7162 §3.2.3).
                        self.condstore = true;
                        self.qresync = true;
                        enabled.push(c.clone());
                    }
                }
                server.enqueue_data(Data::Enabled {
                    capabilities: enabled,
                });
                server.enqueue_status(ok(tag, "ENABLE done"));
            }
            CommandBody::Namespace => {
                let delimiter = self
                    .mailboxes()
                    .await
                    .ok()
                    .and_then(|m| m.iter().find_map(|m| m.delimiter))
                    .and_then(|d| imap_next::imap_types::core::QuotedChar::try_from(d).ok());
                let personal = vec![Namespace::new(
                    IString::try_from("").expect("valid"),
                    delimiter,
                )];
                server.enqueue_data(Data::Namespace {
                    personal,
                    other: vec![],
                    shared: vec![],
                });
                server.enqueue_status(ok(tag, "NAMESPACE done"));
            }
            CommandBody::List {
                reference,
                mailbox_wildcard,
            } => {
                self.list(
                    server,
                    tag,
                    &names::pattern(&reference, &mailbox_wildcard),
                    false,
                )
                .await
            }
            CommandBody::Lsub {
                reference,
                mailbox_wildcard,
            } => {
                self.list(
                    server,
                    tag,
                    &names::pattern(&reference, &mailbox_wildcard),
                    true,
                )
                .await
            }
            CommandBody::Status {
                mailbox,
                item_names,
            } => self.status(server, tag, &mailbox, &item_names).await,
            CommandBody::Create { mailbox } => {
                super::mailboxes::create(self, server, tag, &mailbox).await;
            }
            CommandBody::Delete { mailbox } => {
                super::mailboxes::delete(self, server, tag, &mailbox).await;
            }
            CommandBody::Rename { from, to } => {
                super::mailboxes::rename(self, server, tag, &from, &to).await;
            }
            CommandBody::Subscribe { .. } | CommandBody::Unsubscribe { .. } => {
                // Every mailbox is subscribed: LSUB lists them all.
                server.enqueue_status(ok(tag, "done"));
            }
            body => {
                return super::selected::command(self, server, tag, body).await;
            }
        }
        Flow::Continue
    }

    /// Checks a login; the tagged answer.
    async fn login(
        &mut self,
        tag: imap_next::imap_types::core::Tag<'static>,
        login: &str,
        password: &str,
    ) -> Status<'static> {
        let ip = Some(self.addr.ip());
        match self
            .state
            .auth
            .login(&self.state.store, login, password, ip)
            .await
        {
            Ok(who) => {
                let Some(slot) = self.state.slot(who.user) else {
                    return no_code(tag, "LIMIT", "too many sessions of this user; close one");
                };
                info!(login = %who.login, address = %self.addr, "IMAP login");
                self.slot = Some(slot);
                self.user = Some(who);
                let caps =
                    capabilities(true, self.secure, self.state.limits.imap_max_message_bytes);
                ok_code(tag, Code::Capability(caps), "logged in")
            }
            Err(LoginError::Unauthorized) => {
                no_code(tag, "AUTHENTICATIONFAILED", "wrong login or app password")
            }
            Err(LoginError::Busy(_)) => {
                no_code(tag, "UNAVAILABLE", "too many logins at once; try again")
            }
            Err(LoginError::Store(e)) => {
                tracing::warn!(error = %e, "IMAP login: the store failed");
                Status::no(Some(tag), None, "the gateway cannot check logins right now")
                    .unwrap_or_else(|_| fallback())
            }
        }
    }

    /// AUTHENTICATE: PLAIN only, with or without an initial response.
    async fn authenticate(&mut self, server: &mut Server, a: CommandAuthenticate) -> Flow {
        let tag = a.tag;
        if self.user.is_some() || !self.secure || a.mechanism != AuthMechanism::Plain {
            let why = if self.user.is_some() {
                "already logged in"
            } else if !self.secure {
                "plain-text login refused on a connection without TLS"
            } else {
                "only AUTHENTICATE PLAIN is offered"
            };
            let _ = server.authenticate_finish(no(tag, why));
            return Flow::Continue;
        }
        match a.initial_response {
            Some(ir) => {
                let status = self.plain(tag, ir.declassify()).await;
                let _ = server.authenticate_finish(status);
            }
            None => {
                self.pending_auth = Some(tag);
                let _ =
                    server.authenticate_continue(CommandContinuationRequest::base64(b"".as_ref()));
            }
        }
        Flow::Continue
    }

    async fn authenticate_data(
        &mut self,
        server: &mut Server,
        data: AuthenticateData<'static>,
    ) -> Flow {
        let Some(tag) = self.pending_auth.take() else {
            return Flow::Continue;
        };
        let status = match data {
            AuthenticateData::Continue(bytes) => self.plain(tag, bytes.declassify()).await,
            AuthenticateData::Cancel => bad(tag, "AUTHENTICATE cancelled"),
        };
        let _ = server.authenticate_finish(status);
        Flow::Continue
    }

    /// A SASL PLAIN message: authorization id (empty or the login), login, password.
    async fn plain(
        &mut self,
        tag: imap_next::imap_types::core::Tag<'static>,
        message: &[u8],
    ) -> Status<'static> {
        let parts: Vec<&[u8]> = message.split(|b| *b == 0).collect();
        let [authz, login, password] = parts.as_slice() else {
            return bad(tag, "malformed PLAIN message");
        };
        let (login, password) = (
            String::from_utf8_lossy(login).into_owned(),
            String::from_utf8_lossy(password).into_owned(),
        );
        if !authz.is_empty() && *authz != login.as_bytes() {
            return no(tag, "acting as another user is not allowed");
        }
        self.login(tag, &login, &password).await
    }

    /// The logged-in user's mailboxes; when they cannot be read, the tagged NO is
    /// queued and `None` returned.
    pub(super) async fn all_mailboxes(
        &self,
        server: &mut Server,
        tag: &imap_next::imap_types::core::Tag<'static>,
    ) -> Option<Vec<MailboxRow>> {
        match self.mailboxes().await {
            Ok(m) => Some(m),
            Err(e) => {
                server.enqueue_status(no(tag.clone(), format!("cannot read mailboxes: {e}")));
                None
            }
        }
    }

    /// The logged-in user's mailboxes.
    pub(super) async fn mailboxes(&self) -> crate::store::Result<Vec<MailboxRow>> {
        match &self.user {
            Some(u) => self.state.store.user_mailboxes(u.tenant, u.user).await,
            None => Ok(Vec::new()),
        }
    }

    async fn list(
        &mut self,
        server: &mut Server,
        tag: imap_next::imap_types::core::Tag<'static>,
        pattern: &str,
        lsub: bool,
    ) {
        let all = match self.mailboxes().await {
            Ok(m) => m,
            Err(e) => {
                server.enqueue_status(no(tag, format!("cannot list mailboxes: {e}")));
                return;
            }
        };
        let delimiter = all.iter().find_map(|m| m.delimiter);
        let quoted = |d: Option<char>| {
            d.and_then(|d| imap_next::imap_types::core::QuotedChar::try_from(d).ok())
        };
        if pattern.is_empty() {
            // The hierarchy delimiter and root (RFC 9051 §6.3.9).
            server.enqueue_data(Data::List {
                items: vec![imap_next::imap_types::flag::FlagNameAttribute::Noselect],
                delimiter: quoted(delimiter),
                mailbox: Mailbox::try_from("").unwrap_or(Mailbox::Inbox),
            });
        }
        // Levels of the hierarchy that are no mailbox themselves ("Projects" of
        // "Projects/2026") are listed as \Noselect (RFC 3501 §6.3.8).
        let listed = names::with_parents(&all);
        for m in &listed {
            if !names::matches(pattern, &m.name, m.delimiter) {
                continue;
            }
            let Some(mailbox) = names::wire(&m.name) else {
                continue;
            };
            let items = names::attributes(m, &listed);
            let data = if lsub {
                Data::Lsub {
                    items,
                    delimiter: quoted(m.delimiter),
                    mailbox,
                }
            } else {
                Data::List {
                    items,
                    delimiter: quoted(m.delimiter),
                    mailbox,
                }
            };
            server.enqueue_data(data);
        }
        server.enqueue_status(ok(tag, if lsub { "LSUB done" } else { "LIST done" }));
    }

    async fn status(
        &mut self,
        server: &mut Server,
        tag: imap_next::imap_types::core::Tag<'static>,
        mailbox: &Mailbox<'static>,
        items: &[StatusDataItemName],
    ) {
        let Some(all) = self.all_mailboxes(server, &tag).await else {
            return;
        };
        let Some(row) = names::lookup(&all, mailbox).cloned() else {
            server.enqueue_status(no(tag, "no such mailbox"));
            return;
        };
        let Some(u) = &self.user else { return };
        let messages = match self.state.store.mailbox_messages(u.tenant, row.id).await {
            Ok(m) => m,
            Err(e) => {
                server.enqueue_status(no(tag, format!("cannot read the mailbox: {e}")));
                return;
            }
        };
        let mut out = Vec::new();
        for item in items {
            out.push(match item {
                StatusDataItemName::Messages => StatusDataItem::Messages(messages.len() as u32),
                StatusDataItemName::Recent => StatusDataItem::Recent(0),
                StatusDataItemName::UidNext => StatusDataItem::UidNext(
                    NonZeroU32::new(row.next_uid).unwrap_or(NonZeroU32::MIN),
                ),
                StatusDataItemName::UidValidity => StatusDataItem::UidValidity(
                    NonZeroU32::new(row.uidvalidity).unwrap_or(NonZeroU32::MIN),
                ),
                StatusDataItemName::Unseen => StatusDataItem::Unseen(
                    messages
                        .iter()
                        .filter(|m| !m.flags.iter().any(|f| f == "\\Seen"))
                        .count() as u32,
                ),
                StatusDataItemName::Deleted => StatusDataItem::Deleted(
                    messages
                        .iter()
                        .filter(|m| m.flags.iter().any(|f| f == "\\Deleted"))
                        .count() as u32,
                ),
                StatusDataItemName::HighestModSeq => {
                    StatusDataItem::HighestModSeq(row.head.max(1) as u64)
                }
                StatusDataItemName::DeletedStorage => StatusDataItem::DeletedStorage(
                    messages
                        .iter()
                        .filter(|m| m.flags.iter().any(|f| f == "\\Deleted"))
                        .map(|m| u64::from(m.size))
                        .sum(),
                ),
            });
        }
        if let Some(name) = names::wire(&row.name) {
            server.enqueue_data(Data::Status {
                mailbox: name,
                items: out.into(),
            });
        }
        server.enqueue_status(ok(tag, "STATUS done"));
    }

    /// IDLE: accepted when a mailbox is selected (and in the authenticated state,
    /// where nothing is reported); updates are sent as they happen.
    async fn idle_start(
        &mut self,
        server: &mut Server,
        tag: imap_next::imap_types::core::Tag<'static>,
    ) {
        if self.user.is_none() {
            let _ = server.idle_reject(bad(tag, "IDLE needs a login first"));
            return;
        }
        self.idle = Some(tag);
        let _ = server
            .idle_accept(CommandContinuationRequest::basic(None, "idling").expect("valid text"));
        self.updates(server).await;
    }

    /// Reports what changed in the selected mailbox since the client last heard.
    pub(super) async fn updates(&mut self, server: &mut Server) {
        let (Some(u), Some(sel)) = (&self.user, self.selected.as_mut()) else {
            return;
        };
        if let Err(e) = sel
            .refresh(
                &self.state.store,
                u.tenant,
                (self.condstore, self.qresync),
                server,
            )
            .await
        {
            tracing::warn!(error = %e, "IMAP: cannot read the selected mailbox");
        }
    }
}
