//! Sending mail: the addresses each user may send as, and the outbox of messages
//! accepted by the submission endpoint and waiting for a connector to relay them.
//!
//! A message enters the outbox in one transaction with its body (held once, in
//! `message_bodies`), its envelope, and its copy in the user's Sent mailbox (made
//! once: not if the client filed the same bytes there first, and a client that files
//! them after finds this copy); only then does the submission endpoint answer 250, so
//! an accepted message survives any crash after.

use uuid::Uuid;

use super::{Result, Store, StoreError};

/// A message the submission endpoint accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub id: Uuid,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub size: i64,
    pub state: String,
    pub sha256: Vec<u8>,
}

/// An address as kept: trimmed, in lower case, with one `@` between two non-empty
/// parts.
pub fn normalise_address(address: &str) -> Option<String> {
    let a = address.trim().to_lowercase();
    let (local, domain) = a.rsplit_once('@')?;
    let ok = !local.is_empty()
        && !domain.is_empty()
        && !a
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'));
    ok.then_some(a)
}

impl Store {
    /// Store API: lets `user` send as `address`. An address belongs to one user of a
    /// tenant.
    pub async fn add_user_address(&self, tenant: Uuid, user: Uuid, address: &str) -> Result<()> {
        let address = normalise_address(address)
            .ok_or_else(|| StoreError::Invalid(format!("{address:?} is not an e-mail address")))?;
        let c = self.client().await?;
        let n = c
            .execute(
                "INSERT INTO user_addresses (tenant_id, user_id, address) VALUES ($1, $2, $3)
                 ON CONFLICT (tenant_id, address) DO UPDATE SET address = EXCLUDED.address
                 WHERE user_addresses.user_id = $2",
                &[&tenant, &user, &address],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::Conflict(format!(
                "{address} belongs to another user of the tenant"
            )));
        }
        Ok(())
    }

    /// Store API: `user` may no longer send as `address`. False if they could not.
    pub async fn remove_user_address(
        &self,
        tenant: Uuid,
        user: Uuid,
        address: &str,
    ) -> Result<bool> {
        let address = normalise_address(address).unwrap_or_default();
        let c = self.client().await?;
        Ok(c.execute(
            "DELETE FROM user_addresses WHERE tenant_id = $1 AND user_id = $2 AND address = $3",
            &[&tenant, &user, &address],
        )
        .await?
            > 0)
    }

    /// The addresses `user` may send as, sorted.
    pub async fn user_addresses(&self, tenant: Uuid, user: Uuid) -> Result<Vec<String>> {
        let rows = self
            .read(
                "SELECT address FROM user_addresses WHERE tenant_id = $1 AND user_id = $2
                 ORDER BY address",
                &[&tenant, &user],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Messages `user` handed to the outbox in the last hour (the sending limit).
    pub async fn sent_last_hour(&self, tenant: Uuid, user: Uuid) -> Result<i64> {
        let rows = self
            .read(
                "SELECT count(*) FROM outbox WHERE tenant_id = $1 AND user_id = $2
                   AND created_at > now() - interval '1 hour'",
                &[&tenant, &user],
            )
            .await?;
        Ok(rows.first().map_or(0, |r| r.get(0)))
    }

    /// Store API: puts a message and its envelope in the outbox, in one transaction,
    /// and announces it. Returns its id.
    pub async fn queue_submission(
        &self,
        tenant: Uuid,
        user: Uuid,
        mail_from: &str,
        rcpt_to: &[String],
        message: &[u8],
    ) -> Result<Uuid> {
        if rcpt_to.is_empty() {
            return Err(StoreError::Invalid("a message needs a recipient".into()));
        }
        let body = super::mail::Body::of(message);
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        tx.execute(
            "INSERT INTO message_bodies (tenant_id, sha256, size, body) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
            &[&tenant, &body.sha, &body.size, &message],
        )
        .await?;
        let id = Uuid::new_v4();
        tx.execute(
            "INSERT INTO outbox (tenant_id, id, user_id, mail_from, rcpt_to, body_sha256, size)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &tenant, &id, &user, &mail_from, &rcpt_to, &body.sha, &body.size,
            ],
        )
        .await?;
        tx.execute(
            "SELECT pg_notify($1, $2)",
            &[&super::CHANGES_CHANNEL, &format!("{tenant}:{user}:outbox")],
        )
        .await?;
        // The copy in Sent, made once: unless the client filed these very bytes there
        // already (it may file them after; the IMAP endpoint then finds this copy).
        let sent = tx
            .query_opt(
                "SELECT c.id, EXISTS (SELECT 1 FROM items i WHERE i.tenant_id = c.tenant_id
                            AND i.collection_id = c.id AND i.body_sha256 = $3 AND NOT i.deleted)
                 FROM collections c
                 WHERE c.tenant_id = $1 AND c.user_id = $2 AND c.kind = 'mailbox' AND c.role = 'sent'
                   AND NOT c.delete_pending
                 ORDER BY c.created_at LIMIT 1",
                &[&tenant, &user, &body.sha],
            )
            .await?;
        if let Some(row) = sent
            && !row.get::<_, bool>(1)
        {
            super::mail::file_appended(&tx, tenant, row.get(0), message, &["\\Seen".to_string()])
                .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// The outbox of a tenant, oldest first (admin and tests).
    pub async fn outbox(&self, tenant: Uuid) -> Result<Vec<Outgoing>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT id, mail_from, rcpt_to, size, state, body_sha256 FROM outbox
                 WHERE tenant_id = $1 ORDER BY created_at, id",
                &[&tenant],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| Outgoing {
                id: r.get(0),
                mail_from: r.get(1),
                rcpt_to: r.get(2),
                size: r.get(3),
                state: r.get(4),
                sha256: r.get(5),
            })
            .collect())
    }
}

/// What a connector reported of one outbox message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relay {
    Sent,
    Temporary,
    Permanent,
}

/// How long a message handed to a connector is not handed out again (a connector
/// that died while sending it: the next one sends it).
const CLAIM: &str = "10 minutes";
/// A message that has failed for this long is given up (the user gets a bounce).
const GIVE_UP: &str = "5 days";

/// The join that scopes outbox rows to the user an `smtp` source belongs to.
const OF_SOURCE: &str = "JOIN sources s ON s.tenant_id = o.tenant_id AND s.user_id = o.user_id
                          AND s.id = $2 AND s.kind = 'smtp'";

impl Store {
    /// Claims up to `max` messages due for sending through `smtp` source `source`
    /// (those of its user), oldest first: each is not handed out again for a while
    /// (two connectors never send one message at once). Bodies up to `inline` bytes
    /// come with them.
    pub async fn claim_outbox(
        &self,
        tenant: Uuid,
        source: Uuid,
        max: u32,
        inline: i64,
    ) -> Result<Vec<(Outgoing, Option<Vec<u8>>)>> {
        let c = self.client().await?;
        let rows = c
            .query(
                &format!(
                    "WITH due AS (
                         SELECT o.tenant_id, o.id FROM outbox o {OF_SOURCE}
                         WHERE o.tenant_id = $1 AND o.state = 'queued' AND o.next_attempt <= now()
                         ORDER BY o.created_at LIMIT $3
                         FOR UPDATE OF o SKIP LOCKED)
                     UPDATE outbox o SET next_attempt = now() + interval '{CLAIM}', attempts = attempts + 1
                     FROM due WHERE o.tenant_id = due.tenant_id AND o.id = due.id
                     RETURNING o.id, o.mail_from, o.rcpt_to, o.size, o.state, o.body_sha256, o.created_at"
                ),
                &[&tenant, &source, &i64::from(max)],
            )
            .await?;
        let mut out: Vec<(Outgoing, Option<Vec<u8>>, chrono::DateTime<chrono::Utc>)> = rows
            .iter()
            .map(|r| {
                (
                    Outgoing {
                        id: r.get(0),
                        mail_from: r.get(1),
                        rcpt_to: r.get(2),
                        size: r.get(3),
                        state: r.get(4),
                        sha256: r.get(5),
                    },
                    None,
                    r.get(6),
                )
            })
            .collect();
        out.sort_by_key(|(_, _, at)| *at);
        for (m, body, _) in out.iter_mut() {
            if m.size <= inline {
                let row = c
                    .query_opt(
                        "SELECT body FROM message_bodies WHERE tenant_id = $1 AND sha256 = $2",
                        &[&tenant, &m.sha256],
                    )
                    .await?;
                *body = row.map(|r| r.get(0));
            }
        }
        Ok(out.into_iter().map(|(m, b, _)| (m, b)).collect())
    }

    /// A range of the body of outbox message `id`, if it is one of `source`'s user's;
    /// with the body's whole size.
    pub async fn outbox_body_range(
        &self,
        tenant: Uuid,
        source: Uuid,
        id: Uuid,
        (offset, len): (u64, u64),
    ) -> Result<Option<(Vec<u8>, u64)>> {
        let clamp = |v: u64| i32::try_from(v).unwrap_or(i32::MAX);
        let (from, count) = (clamp(offset).saturating_add(1), clamp(len));
        let c = self.client().await?;
        let row = c
            .query_opt(
                &format!(
                    "SELECT substring(b.body FROM $4 FOR $5), b.size FROM outbox o {OF_SOURCE}
                     JOIN message_bodies b ON b.tenant_id = o.tenant_id AND b.sha256 = o.body_sha256
                     WHERE o.tenant_id = $1 AND o.id = $3 AND o.state = 'queued'"
                ),
                &[&tenant, &source, &id, &from, &count],
            )
            .await?;
        Ok(row.map(|r| (r.get(0), r.get::<_, i64>(1).max(0) as u64)))
    }

    /// Records what became of outbox message `id` (of `source`'s user). A message
    /// that failed for good, or kept failing for days, leaves the outbox and its
    /// sender gets a bounce in their INBOX. False if there is no such message.
    pub async fn report_outbox(
        &self,
        tenant: Uuid,
        source: Uuid,
        id: Uuid,
        relay: Relay,
        detail: &str,
    ) -> Result<bool> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                &format!(
                    "SELECT o.user_id, o.mail_from, o.rcpt_to, o.body_sha256, o.attempts,
                            o.created_at < now() - interval '{GIVE_UP}'
                     FROM outbox o {OF_SOURCE}
                     WHERE o.tenant_id = $1 AND o.id = $3 AND o.state = 'queued'"
                ),
                &[&tenant, &source, &id],
            )
            .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let (user, from, to, sha, attempts, too_old): (
            Uuid,
            String,
            Vec<String>,
            Vec<u8>,
            i32,
            bool,
        ) = (
            row.get(0),
            row.get(1),
            row.get(2),
            row.get(3),
            row.get(4),
            row.get(5),
        );
        let relay = match relay {
            Relay::Temporary if too_old => Relay::Permanent,
            r => r,
        };
        match relay {
            Relay::Sent => {
                c.execute(
                    "UPDATE outbox SET state = 'sent', done_at = now(), last_error = NULLIF($3, '')
                     WHERE tenant_id = $1 AND id = $2",
                    &[&tenant, &id, &detail],
                )
                .await?;
            }
            Relay::Temporary => {
                // 30 s, doubling, at most an hour.
                let wait = 30i64 << attempts.clamp(0, 7);
                c.execute(
                    "UPDATE outbox SET last_error = $3,
                            next_attempt = now() + make_interval(secs => LEAST($4, 3600))
                     WHERE tenant_id = $1 AND id = $2",
                    &[&tenant, &id, &detail, &(wait as f64)],
                )
                .await?;
            }
            Relay::Permanent => {
                c.execute(
                    "UPDATE outbox SET state = 'failed', done_at = now(), last_error = $3
                     WHERE tenant_id = $1 AND id = $2",
                    &[&tenant, &id, &detail],
                )
                .await?;
                let original = c
                    .query_opt(
                        "SELECT body FROM message_bodies WHERE tenant_id = $1 AND sha256 = $2",
                        &[&tenant, &sha],
                    )
                    .await?
                    .map(|r| r.get::<_, Vec<u8>>(0))
                    .unwrap_or_default();
                let inbox = c
                    .query_opt(
                        "SELECT id FROM collections
                         WHERE tenant_id = $1 AND user_id = $2 AND kind = 'mailbox' AND NOT delete_pending
                           AND (role = 'inbox' OR upper(mailbox_name) = 'INBOX')
                         ORDER BY role = 'inbox' DESC LIMIT 1",
                        &[&tenant, &user],
                    )
                    .await?;
                drop(c);
                match inbox {
                    Some(r) => {
                        let bounce = bounce(&from, &to, detail, &original);
                        self.append_message(tenant, r.get(0), &bounce, &[]).await?;
                    }
                    None => {
                        tracing::warn!(%id, "a message failed for good and its sender has no INBOX for the bounce")
                    }
                }
            }
        }
        Ok(true)
    }
}

/// One user's outbox, for `admin status` and the metrics.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OutboxSummary {
    pub user: String,
    pub queued: i64,
    /// Seconds the oldest queued message has waited.
    pub oldest_seconds: f64,
    pub sent_last_day: i64,
    pub failed_last_day: i64,
    /// The last failure's reason, if a queued message has one.
    pub last_error: Option<String>,
}

impl Store {
    /// The outbox per user with anything in it today (all tenants when `None`).
    pub async fn outbox_summary(&self, tenant: Option<Uuid>) -> Result<Vec<OutboxSummary>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT u.name || '@' || t.name,
                        count(*) FILTER (WHERE o.state = 'queued'),
                        COALESCE(EXTRACT(EPOCH FROM now() - min(o.created_at) FILTER (WHERE o.state = 'queued'))::float8, 0),
                        count(*) FILTER (WHERE o.state = 'sent' AND o.done_at > now() - interval '1 day'),
                        count(*) FILTER (WHERE o.state = 'failed' AND o.done_at > now() - interval '1 day'),
                        max(o.last_error) FILTER (WHERE o.state = 'queued')
                 FROM outbox o
                 JOIN users u ON u.tenant_id = o.tenant_id AND u.id = o.user_id
                 JOIN tenants t ON t.id = o.tenant_id
                 WHERE ($1::uuid IS NULL OR o.tenant_id = $1)
                   AND (o.state = 'queued' OR o.done_at > now() - interval '1 day')
                 GROUP BY 1 ORDER BY 1",
                &[&tenant],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| OutboxSummary {
                user: r.get(0),
                queued: r.get(1),
                oldest_seconds: r.get(2),
                sent_last_day: r.get(3),
                failed_last_day: r.get(4),
                last_error: r.get(5),
            })
            .collect())
    }
}

/// A delivery status notification (RFC 3464) for a message refused for good.
pub fn bounce(from: &str, to: &[String], why: &str, original: &[u8]) -> Vec<u8> {
    let boundary = format!("postern-bounce-{}", Uuid::new_v4().simple());
    let header_end = original
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(original.len(), |i| i + 2);
    let headers = String::from_utf8_lossy(&original[..header_end]);
    let why = why.replace(['\r', '\n'], " ");
    let recipients: String = to
        .iter()
        .map(|r| format!("Final-Recipient: rfc822; {r}\r\nAction: failed\r\nStatus: 5.0.0\r\nDiagnostic-Code: smtp; {why}\r\n\r\n"))
        .collect();
    format!(
        "From: Mail Delivery System <MAILER-DAEMON@postern.invalid>\r\n\
         To: <{from}>\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         Date: {date}\r\n\
         Message-ID: <{id}@postern.invalid>\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"{boundary}\"\r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         Your message to {list} could not be delivered.\r\n\
         The corporate mail server said: {why}\r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         Reporting-MTA: dns; postern.invalid\r\n\
         \r\n\
         {recipients}\
         --{boundary}\r\n\
         Content-Type: text/rfc822-headers\r\n\
         \r\n\
         {headers}\r\n\
         --{boundary}--\r\n",
        date = chrono::Utc::now().to_rfc2822(),
        id = Uuid::new_v4(),
        list = to.join(", "),
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_kept_in_lower_case_and_must_look_like_one() {
        assert_eq!(
            normalise_address(" Alice@Corp.Example "),
            Some("alice@corp.example".into())
        );
        assert_eq!(normalise_address("alice"), None);
        assert_eq!(normalise_address("@corp.example"), None);
        assert_eq!(normalise_address("a b@corp.example"), None);
        assert_eq!(normalise_address("<a@corp.example>"), None);
    }
}
