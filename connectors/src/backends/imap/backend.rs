//! IMAP as a [`MailBackend`]: one connection per source, opened on first use and
//! opened again after any failure; mailboxes named by an href that is their name with
//! spaces and other bytes outside printable ASCII percent-encoded.

use postern_core::ids::Href;
use postern_core::mail::plan::BackendSeen;
use postern_core::mail::{Flags, MessageKey};
use tokio::sync::Mutex;
use url::Url;

use super::client::{ConnectOptions, ImapClient, MAX_MESSAGE, Resume, Stored};
use crate::backends::{
    BackendError, Discovered, Found, MailBackend, MailChanges, MailMessage, MessagePart, Moved,
};

/// An IMAP server, as one source sees it.
pub struct ImapBackend {
    url: Url,
    username: String,
    password: String,
    options: ConnectOptions,
    conn: Mutex<Option<ImapClient>>,
    /// One connection per watched mailbox, in IDLE most of the time.
    watching: Mutex<std::collections::HashMap<String, ImapClient>>,
}

impl ImapBackend {
    /// The server at `url` (`imap://` or `imaps://`).
    pub fn new(
        url: &str,
        username: &str,
        password: &str,
        options: ConnectOptions,
    ) -> Result<Self, BackendError> {
        Ok(ImapBackend {
            url: Url::parse(url).map_err(|e| BackendError::Config(format!("{url}: {e}")))?,
            username: username.to_string(),
            password: password.to_string(),
            options,
            conn: Mutex::new(None),
            watching: Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// Runs `f` on the connection, connecting first if needed; a failure drops the
    /// connection so the next call starts a fresh one.
    async fn with<T>(
        &self,
        f: impl AsyncFnOnce(&mut ImapClient) -> Result<T, super::ImapError>,
    ) -> Result<T, BackendError> {
        let mut guard = self.conn.lock().await;
        if guard.is_none() {
            let mut c =
                ImapClient::connect_with(&self.url, &self.username, &self.password, &self.options)
                    .await?;
            c.enable_modseq().await?;
            *guard = Some(c);
        }
        let Some(c) = guard.as_mut() else {
            return Err(BackendError::Config("no IMAP connection".into()));
        };
        match f(c).await {
            Ok(v) => Ok(v),
            Err(e) => {
                *guard = None;
                Err(e.into())
            }
        }
    }
}

/// A mailbox's href: `/` + its name, bytes outside printable ASCII (and `%`) as `%XX`.
pub fn href_of(name: &str) -> String {
    let mut out = String::from("/");
    for b in name.bytes() {
        if b.is_ascii_graphic() && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The mailbox name an href stands for.
pub fn name_of(href: &Href) -> String {
    let s = href.as_str().strip_prefix('/').unwrap_or(href.as_str());
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The saved state of a mailbox: `UIDVALIDITY:HIGHESTMODSEQ`.
fn parse_state(state: &str) -> Option<Resume> {
    let (v, m) = state.split_once(':')?;
    Some(Resume {
        uidvalidity: v.parse().ok()?,
        modseq: m.parse().ok()?,
    })
}

impl ImapBackend {
    /// Creates the mailbox at `href` (a client made it on the gateway); one that
    /// exists already counts as made.
    pub async fn create_mailbox(&self, href: &str) -> Result<(), BackendError> {
        let name = name_of(&mailbox_href(href)?);
        self.with(async |c| {
            if !c.list().await?.iter().any(|m| m.name == name) {
                c.create(&name).await?;
            }
            Ok(())
        })
        .await
    }

    /// Deletes the mailbox at `href` (a client deleted it on the gateway); one
    /// already gone counts as deleted.
    pub async fn remove_mailbox(&self, href: &str) -> Result<(), BackendError> {
        let name = name_of(&mailbox_href(href)?);
        self.with(async |c| {
            if c.list().await?.iter().any(|m| m.name == name) {
                c.delete(&name).await?;
            }
            Ok(())
        })
        .await
    }
}

impl ImapBackend {
    /// Renames the mailbox at `href` to `name` (children move with it); its new
    /// href. Done already (the old name gone, the new one there) counts as done.
    pub async fn rename_mailbox(&self, href: &str, name: &str) -> Result<String, BackendError> {
        let old = name_of(&mailbox_href(href)?);
        let new = name.to_string();
        self.with(async |c| {
            let names: Vec<String> = c.list().await?.into_iter().map(|m| m.name).collect();
            if names.contains(&old) {
                c.rename(&old, &new).await?;
            } else if !names.contains(&new) {
                return Err(super::ImapError::Config(format!(
                    "cannot rename {old:?} to {new:?}: neither is on the server"
                )));
            }
            Ok(())
        })
        .await?;
        Ok(href_of(name))
    }
}

fn mailbox_href(href: &str) -> Result<Href, BackendError> {
    Href::new(href).map_err(|e| BackendError::Config(format!("mailbox {href}: {e}")))
}

impl MailBackend for ImapBackend {
    async fn discover(&self) -> Result<Discovered, BackendError> {
        let list = self.with(async |c| c.list().await).await?;
        Ok(Discovered {
            collections: list
                .into_iter()
                .filter(|m| !m.noselect)
                .map(|m| Found {
                    href: href_of(&m.name),
                    display_name: m.name.clone(),
                    color: String::new(),
                    supports_sync: true,
                    role: m.role,
                    delimiter: m.delimiter,
                })
                .collect(),
            homes: Vec::new(),
        })
    }

    async fn changes(&self, mailbox: &Href, state: &str) -> Result<MailChanges, BackendError> {
        let name = name_of(mailbox);
        let resume = parse_state(state);
        self.with(async |c| {
            let sel = c.select(&name, resume.as_ref()).await?;
            let resumed = resume
                .as_ref()
                .is_some_and(|r| r.uidvalidity == sel.uidvalidity && c.has("QRESYNC"));
            // CONDSTORE without QRESYNC: what changed since the saved MODSEQ comes
            // from CHANGEDSINCE, and every UID from UID SEARCH ALL, so that the caller
            // finds what vanished.
            let condstore = match resume.as_ref() {
                Some(r) if !resumed && r.uidvalidity == sel.uidvalidity => {
                    c.has("CONDSTORE") && sel.highest_modseq.is_some()
                }
                _ => false,
            };
            let (seen, complete, listed) = if condstore {
                let since = resume.as_ref().map_or(0, |r| r.modseq);
                let (changed, listed) = if sel.exists == 0 {
                    (Vec::new(), Vec::new())
                } else {
                    (c.fetch_meta("1:*", Some(since)).await?, c.uids().await?)
                };
                let seen: Vec<BackendSeen> = changed
                    .into_iter()
                    .map(|m| BackendSeen::Flags {
                        uid: m.uid,
                        flags: m.flags,
                        modseq: m.modseq,
                        key: None,
                    })
                    .collect();
                (seen, false, Some(listed))
            } else if resumed {
                // QRESYNC said what changed and what vanished, in one command.
                let mut seen: Vec<BackendSeen> = sel
                    .vanished
                    .iter()
                    .map(|u| BackendSeen::Vanished(*u))
                    .collect();
                seen.extend(sel.changed.iter().map(|m| BackendSeen::Flags {
                    uid: m.uid,
                    flags: m.flags.clone(),
                    modseq: m.modseq,
                    key: None,
                }));
                seen.sort_by_key(|s| match s {
                    BackendSeen::Flags { uid, .. } | BackendSeen::Vanished(uid) => *uid,
                });
                (seen, false, None)
            } else {
                // Every UID; their flags are read a window at a time by the caller,
                // and what the caller knows that is not listed is gone.
                let listed = if sel.exists == 0 {
                    Vec::new()
                } else {
                    c.uids().await?
                };
                (Vec::new(), true, Some(listed))
            };
            Ok(MailChanges {
                uidvalidity: sel.uidvalidity,
                new_state: sel
                    .highest_modseq
                    .map(|m| format!("{}:{m}", sel.uidvalidity))
                    .unwrap_or_default(),
                seen,
                complete,
                listed,
            })
        })
        .await
    }

    async fn flags(&self, mailbox: &Href, uids: &[u32]) -> Result<Vec<BackendSeen>, BackendError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let name = name_of(mailbox);
        let set = super::client::uid_set(uids);
        let got = self
            .with(async |c| {
                c.ensure_selected(&name).await?;
                c.fetch_meta(&set, None).await
            })
            .await?;
        let wanted: std::collections::HashSet<u32> = uids.iter().copied().collect();
        Ok(got
            .into_iter()
            .filter(|m| wanted.contains(&m.uid))
            .map(|m| BackendSeen::Flags {
                uid: m.uid,
                flags: m.flags,
                modseq: m.modseq,
                key: None,
            })
            .collect())
    }

    async fn sizes(&self, mailbox: &Href, uids: &[u32]) -> Result<Vec<(u32, u64)>, BackendError> {
        let name = name_of(mailbox);
        let mut out = Vec::with_capacity(uids.len());
        for part in uids.chunks(SIZES_BATCH) {
            let got = self
                .with(async |c| {
                    c.ensure_selected(&name).await?;
                    c.fetch_sizes(part).await
                })
                .await?;
            out.extend(got.into_iter().map(|(uid, n)| (uid, u64::from(n))));
        }
        Ok(out)
    }

    async fn fetch(&self, mailbox: &Href, uids: &[u32]) -> Result<Vec<MailMessage>, BackendError> {
        let mut out = Vec::with_capacity(uids.len());
        // Sizes first: each FETCH of bodies brings at most FETCH_BYTES (or one
        // message), and a message larger than the gateway takes is not fetched at all.
        let name = name_of(mailbox);
        let sizes = self.sizes(mailbox, uids).await?;
        let mut batch: Vec<u32> = Vec::new();
        let mut bytes = 0u64;
        let mut batches: Vec<Vec<u32>> = Vec::new();
        for (uid, size) in sizes {
            if size > MAX_MESSAGE {
                out.push(MailMessage::too_large(uid, size));
                continue;
            }
            if !batch.is_empty() && (bytes + size > FETCH_BYTES || batch.len() >= FETCH_BATCH) {
                batches.push(std::mem::take(&mut batch));
                bytes = 0;
            }
            batch.push(uid);
            bytes += size;
        }
        if !batch.is_empty() {
            batches.push(batch);
        }
        for batch in batches {
            let got = self
                .with(async |c| {
                    c.ensure_selected(&name).await?;
                    c.fetch_messages(&batch).await
                })
                .await?;
            out.extend(got.into_iter().map(|m| MailMessage {
                key: MessageKey::of(&m.body),
                uid: m.meta.uid,
                flags: m.meta.flags,
                modseq: m.meta.modseq,
                internal_date_ms: m.internal_date.as_deref().and_then(date_ms),
                size: m.body.len() as u64,
                body: m.body,
            }));
        }
        Ok(out)
    }

    async fn fetch_part(
        &self,
        mailbox: &Href,
        uid: u32,
        offset: u64,
        len: u64,
    ) -> Result<Option<MessagePart>, BackendError> {
        let name = name_of(mailbox);
        let (offset, len) = (
            u32::try_from(offset)
                .map_err(|_| BackendError::Config("a message part past 4 GiB".into()))?,
            u32::try_from(len)
                .map_err(|_| BackendError::Config("a message part over 4 GiB".into()))?,
        );
        let got = self
            .with(async |c| {
                c.ensure_selected(&name).await?;
                c.fetch_range(uid, offset, len).await
            })
            .await?;
        Ok(got.map(|m| MessagePart {
            modseq: m.meta.modseq,
            internal_date_ms: m.internal_date.as_deref().and_then(date_ms),
            size: u64::from(m.size),
            data: m.body,
        }))
    }

    async fn store(
        &self,
        mailbox: &Href,
        uid: u32,
        add: &Flags,
        remove: &Flags,
        unchanged_since: u64,
    ) -> Result<Option<u64>, BackendError> {
        let name = name_of(mailbox);
        let stored = self
            .with(async |c| {
                c.ensure_selected(&name).await?;
                c.store(uid, add, remove, unchanged_since).await
            })
            .await?;
        Ok(match stored {
            Stored::Done(m) => Some(m.unwrap_or(0)),
            Stored::Modified => None,
        })
    }

    async fn watch(&self, mailbox: &Href, max: std::time::Duration) -> Result<bool, BackendError> {
        let name = name_of(mailbox);
        // The connection leaves the map while it idles, so each watched mailbox has
        // its own and no lock is held while waiting.
        let taken = self.watching.lock().await.remove(&name);
        let mut c = match taken {
            Some(c) => c,
            None => {
                let mut c = ImapClient::connect_with(
                    &self.url,
                    &self.username,
                    &self.password,
                    &self.options,
                )
                .await?;
                c.ensure_selected(&name).await?;
                c
            }
        };
        let changed = c.idle(max).await?;
        self.watching.lock().await.insert(name, c);
        Ok(changed)
    }

    async fn append(
        &self,
        mailbox: &Href,
        flags: &Flags,
        body: &[u8],
    ) -> Result<Option<(u32, u32)>, BackendError> {
        let name = name_of(mailbox);
        self.with(async |c| c.append(&name, flags, None, body).await)
            .await
    }

    async fn expunge(&self, mailbox: &Href, uid: u32) -> Result<(), BackendError> {
        let name = name_of(mailbox);
        self.with(async |c| {
            c.ensure_selected(&name).await?;
            c.expunge(uid).await
        })
        .await
    }

    async fn move_message(
        &self,
        from: &Href,
        uidvalidity: u32,
        uid: u32,
        to: &Href,
    ) -> Result<Moved, BackendError> {
        let (from, to) = (name_of(from), name_of(to));
        self.with(async |c| {
            // A fresh SELECT: the UID counts only under the UIDVALIDITY it was read in.
            let sel = c.select(&from, None).await?;
            if sel.uidvalidity != uidvalidity
                || c.fetch_meta(&uid.to_string(), None).await?.is_empty()
            {
                return Ok(Moved::Gone);
            }
            Ok(match c.move_to(uid, &to).await? {
                Some((v, u)) => Moved::To(v, u),
                None => Moved::Unknown,
            })
        })
        .await
    }
}

/// Messages per FETCH of bodies, and bytes (a larger message comes alone).
const FETCH_BATCH: usize = 1_000;
const FETCH_BYTES: u64 = 32 << 20;
/// UIDs per FETCH of sizes (mostly one range each; the bound keeps a sparse set's
/// command line short).
const SIZES_BATCH: usize = 10_000;

/// An RFC 3501 date-time in Unix milliseconds.
fn date_ms(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_str(s, "%d-%b-%Y %H:%M:%S %z")
        .ok()
        .map(|d| d.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_hrefs_round_trip() {
        for name in ["INBOX", "Sent Items", "Entwürfe", "100%", "Projects/2026"] {
            let h = Href::new(href_of(name)).expect("a valid href");
            assert_eq!(name_of(&h), name);
        }
        assert_eq!(href_of("Sent Items"), "/Sent%20Items");
        assert_eq!(
            parse_state("7:123"),
            Some(Resume {
                uidvalidity: 7,
                modseq: 123
            })
        );
        assert_eq!(parse_state(""), None);
    }
}
