//! The operator's CLI: `postern-gateway admin <noun> <verb>`. Every command accepts
//! `--json`; where a command creates a secret (an app password, a connector token),
//! the secret is the last line of standard output.

use std::time::Duration;

use clap::{Args, Subcommand};
use postern_core::model::{ConflictPolicy, Mode};
use serde::Serialize;
use uuid::Uuid;

use crate::auth::{self, TokenKeys};
use crate::store::{Store, parse_id};

mod follow;

/// `admin` and its global options.
#[derive(Args, Debug)]
pub struct AdminArgs {
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    json: bool,
    /// Token-signing key file (as for `serve`), for `connector enroll`.
    #[arg(long, env = "POSTERN_SIGNING_KEY_FILE", global = true)]
    signing_key_file: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand, Debug)]
enum AdminCommand {
    /// Tenants (organisations).
    #[command(subcommand)]
    Tenant(TenantCmd),
    /// Users and their app passwords.
    #[command(subcommand)]
    User(UserCmd),
    /// Connectors: enrol, revoke, list.
    #[command(subcommand)]
    Connector(ConnectorCmd),
    /// Collections: list, pause, resume, set mode and policy.
    #[command(subcommand)]
    Collection(CollectionCmd),
    /// Sources, as connectors announce them, and what keeps any from syncing.
    #[command(subcommand)]
    Source(SourceCmd),
    /// Per collection: last round, its outcome, items, pending changes, open conflicts.
    Status {
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Create what is missing of a tenant, a user and a connector, and write the
    /// secrets made to files (for docker-compose and Helm jobs). Idempotent: existing
    /// ones are kept, and their secrets are not changed.
    Bootstrap {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        user: String,
        #[arg(long)]
        connector: String,
        /// Where to write the connector token (only when the connector is new).
        #[arg(long)]
        token_file: std::path::PathBuf,
        /// Where to write the user's app password (only when the user is new).
        #[arg(long)]
        password_file: std::path::PathBuf,
    },
    /// Versions that lost a conflict and are kept.
    Conflicts {
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
        #[command(subcommand)]
        action: Option<ConflictCmd>,
    },
}

#[derive(Subcommand, Debug)]
enum ConflictCmd {
    /// Show both versions: the one kept as the loser and the item as it is now.
    Show { id: String },
    /// Settle a conflict: keep the current version, or bring the losing one back
    /// (it then flows to the back end like any gateway-side change).
    Resolve {
        id: String,
        #[arg(long, value_parser = ["current", "loser"])]
        keep: String,
    },
    /// Hand an item set aside after a back-end refusal to the connector again (once
    /// the back end is fixed: a raised size limit, a permission granted). ID is the
    /// item id `admin conflicts` lists.
    Retry { id: String },
}

#[derive(Subcommand, Debug)]
enum TenantCmd {
    /// Add a tenant.
    Add { name: String },
    /// List tenants.
    List,
}

#[derive(Subcommand, Debug)]
enum UserCmd {
    /// Add a user; prints its app password on the last line.
    Add {
        #[arg(long)]
        tenant: String,
        name: String,
    },
    /// List a tenant's users.
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Revoke a user's app passwords and issue a new one (printed on the last line).
    Rotate {
        #[arg(long)]
        tenant: String,
        name: String,
    },
    /// A user's app passwords: add one per device, list, revoke one.
    #[command(subcommand)]
    Password(PasswordCmd),
    /// The addresses a user may send mail as (SMTP submission): add, list, remove.
    #[command(subcommand)]
    Address(AddressCmd),
}

#[derive(Subcommand, Debug)]
enum AddressCmd {
    /// Let a user send as an address (envelope sender and From:).
    Add {
        #[arg(long)]
        tenant: String,
        name: String,
        address: String,
    },
    /// List the addresses a user may send as.
    List {
        #[arg(long)]
        tenant: String,
        name: String,
    },
    /// Stop a user sending as an address.
    Remove {
        #[arg(long)]
        tenant: String,
        name: String,
        address: String,
    },
}

#[derive(Subcommand, Debug)]
enum PasswordCmd {
    /// Add an app password (printed on the last line).
    Add {
        #[arg(long)]
        tenant: String,
        name: String,
        #[arg(long, default_value = "")]
        label: String,
    },
    /// List a user's app passwords (ids, labels, dates; never the passwords).
    List {
        #[arg(long)]
        tenant: String,
        name: String,
    },
    /// Revoke one app password by id: it stops working at once.
    Revoke {
        #[arg(long)]
        tenant: String,
        name: String,
        id: String,
    },
}

#[derive(Subcommand, Debug)]
enum ConnectorCmd {
    /// Enrol (or re-enrol) a connector; prints its token on the last line.
    Enroll {
        #[arg(long)]
        tenant: String,
        name: String,
        /// Token lifetime.
        #[arg(long, default_value = "365d", value_parser = humantime::parse_duration)]
        ttl: Duration,
    },
    /// Revoke a connector's token at once.
    Revoke {
        #[arg(long)]
        tenant: String,
        name: String,
    },
    /// List a tenant's connectors with last-seen, version and address.
    List {
        #[arg(long)]
        tenant: String,
    },
}

#[derive(Subcommand, Debug)]
enum SourceCmd {
    /// List sources: connector, kind, user, collections, and what keeps one from
    /// syncing (a kind its connector cannot sync).
    List {
        #[arg(long)]
        tenant: Option<String>,
    },
}

/// A source's line in `source list` and `status`.
fn source_line(s: &crate::store::collections::SourceRow) -> String {
    format!(
        "source {}\t{}/{}\t{}\tuser {}\tcollections {}\t{}\n",
        s.name,
        s.tenant,
        s.connector,
        s.kind,
        s.user,
        s.collections,
        if s.problem.is_empty() {
            "ok".to_string()
        } else {
            format!("NOT SYNCED: {}", s.problem)
        }
    )
}

#[derive(Subcommand, Debug)]
enum CollectionCmd {
    /// List collections.
    List {
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Pause a collection (no rounds until resumed).
    Pause {
        #[arg(long)]
        tenant: String,
        id: String,
        #[arg(long, default_value = "paused by operator")]
        reason: String,
    },
    /// Force a full resync: the next round compares the whole back end and re-reads
    /// every item (nothing is duplicated; identical items are recognised).
    Resync {
        #[arg(long)]
        tenant: String,
        id: String,
        /// Wait for the resync round to finish, showing its progress on stderr.
        #[arg(long)]
        wait: bool,
        /// With --wait: give up (exit 1) after this long.
        #[arg(long, default_value = "30m", value_parser = humantime::parse_duration, requires = "wait")]
        timeout: Duration,
    },
    /// Resume a paused collection (e.g. after the mass-deletion guard tripped).
    Resume {
        #[arg(long)]
        tenant: String,
        id: String,
    },
    /// Set a collection's mode and/or conflict policy.
    Set {
        #[arg(long)]
        tenant: String,
        id: String,
        #[arg(long)]
        mode: Option<Mode>,
        #[arg(long)]
        conflict: Option<ConflictPolicy>,
    },
}

/// `admin user address add|list|remove`.
async fn address(store: &Store, json: bool, cmd: AddressCmd) -> anyhow::Result<()> {
    match cmd {
        AddressCmd::Add {
            tenant,
            name,
            address,
        } => {
            let tid = store.tenant_id(&tenant).await?;
            let uid = store.user_id(tid, &name).await?;
            store.add_user_address(tid, uid, &address).await?;
            out(json, &serde_json::json!({"added": address}), |_| {
                format!("{name}@{tenant} may send as {address}\n")
            })
        }
        AddressCmd::List { tenant, name } => {
            let tid = store.tenant_id(&tenant).await?;
            let uid = store.user_id(tid, &name).await?;
            out(json, &store.user_addresses(tid, uid).await?, |a| {
                a.iter().map(|x| format!("{x}\n")).collect()
            })
        }
        AddressCmd::Remove {
            tenant,
            name,
            address,
        } => {
            let tid = store.tenant_id(&tenant).await?;
            let uid = store.user_id(tid, &name).await?;
            if !store.remove_user_address(tid, uid, &address).await? {
                anyhow::bail!("{name}@{tenant} could not send as {address}");
            }
            out(json, &serde_json::json!({"removed": address}), |_| {
                format!("{name}@{tenant} may no longer send as {address}\n")
            })
        }
    }
}

fn out<T: Serialize>(json: bool, value: &T, text: impl FnOnce(&T) -> String) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        print!("{}", text(value));
    }
    Ok(())
}

#[derive(Serialize)]
struct Secret<'a> {
    tenant: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
    secret: String,
}

/// A new app password and its argon2id hash.
fn new_password() -> anyhow::Result<(String, String)> {
    let password = auth::new_app_password();
    let hash = auth::hash_password(&password)?;
    Ok((password, hash))
}

/// Prints a secret made for `name@tenant`, saying `what` it is; in text, the secret
/// is the last line.
fn print_secret(
    json: bool,
    tenant: &str,
    name: &str,
    expires_at: Option<String>,
    secret: String,
    what: &str,
) -> anyhow::Result<()> {
    let s = Secret {
        tenant,
        name,
        expires_at,
        secret,
    };
    out(json, &s, |s| {
        format!("{what} (shown once):\n{}\n", s.secret)
    })
}

/// Runs one admin command against the database.
pub async fn run(database_url: &str, args: AdminArgs) -> anyhow::Result<()> {
    let store = Store::connect(database_url, 2)?;
    store.migrate().await?;
    let json = args.json;
    let tenant_id = |name: Option<String>| {
        let store = store.clone();
        async move {
            match name {
                Some(n) => Ok::<Option<Uuid>, anyhow::Error>(Some(store.tenant_id(&n).await?)),
                None => Ok(None),
            }
        }
    };
    match args.command {
        AdminCommand::Tenant(TenantCmd::Add { name }) => {
            let t = store.add_tenant(&name).await?;
            out(json, &t, |t| {
                format!("tenant {} added ({})\n", t.name, t.id)
            })
        }
        AdminCommand::Tenant(TenantCmd::List) => out(json, &store.list_tenants().await?, |ts| {
            ts.iter()
                .map(|t| format!("{}\t{}\n", t.name, t.id))
                .collect()
        }),
        AdminCommand::User(UserCmd::Add { tenant, name }) => {
            let tid = store.tenant_id(&tenant).await?;
            let (password, hash) = new_password()?;
            store.add_user(tid, &name, &hash).await?;
            let what = format!("user {name}@{tenant} added; log in with this app password");
            print_secret(json, &tenant, &name, None, password, &what)
        }
        AdminCommand::User(UserCmd::Rotate { tenant, name }) => {
            let tid = store.tenant_id(&tenant).await?;
            let (password, hash) = new_password()?;
            store.rotate_password(tid, &name, &hash).await?;
            let what = format!("old app passwords of {name}@{tenant} revoked; the new one");
            print_secret(json, &tenant, &name, None, password, &what)
        }
        AdminCommand::User(UserCmd::Password(PasswordCmd::Add {
            tenant,
            name,
            label,
        })) => {
            let tid = store.tenant_id(&tenant).await?;
            let (password, hash) = new_password()?;
            store.add_password(tid, &name, &label, &hash).await?;
            print_secret(
                json,
                &tenant,
                &name,
                None,
                password,
                &format!("new app password for {name}@{tenant}"),
            )
        }
        AdminCommand::User(UserCmd::Password(PasswordCmd::List { tenant, name })) => {
            let tid = store.tenant_id(&tenant).await?;
            out(json, &store.list_passwords(tid, &name).await?, |ps| {
                ps.iter()
                    .map(|p| {
                        format!(
                            "{}\t{}\tcreated {}\t{}\n",
                            p.id,
                            if p.label.is_empty() { "-" } else { &p.label },
                            p.created_at.to_rfc3339(),
                            p.revoked_at.map_or("live".to_string(), |t| format!(
                                "revoked {}",
                                t.to_rfc3339()
                            ))
                        )
                    })
                    .collect()
            })
        }
        AdminCommand::User(UserCmd::Address(cmd)) => address(&store, json, cmd).await,
        AdminCommand::User(UserCmd::Password(PasswordCmd::Revoke { tenant, name, id })) => {
            let tid = store.tenant_id(&tenant).await?;
            store
                .revoke_password(tid, &name, parse_id("app password", &id)?)
                .await?;
            out(json, &serde_json::json!({"revoked": id}), |_| {
                format!("app password {id} revoked\n")
            })
        }
        AdminCommand::Collection(CollectionCmd::Resync {
            tenant,
            id,
            wait,
            timeout,
        }) => {
            let tid = store.tenant_id(&tenant).await?;
            let cid = parse_id("collection", &id)?;
            let (n, fence) = store.force_resync(tid, cid).await?;
            if !wait {
                return out(
                    json,
                    &serde_json::json!({"collection": id, "items": n}),
                    |_| {
                        format!(
                            "collection {id}: full resync requested; {n} items will be compared again on the next round\n"
                        )
                    },
                );
            }
            eprintln!(
                "collection {id}: full resync requested; waiting for the round ({n} items to compare)"
            );
            let c = follow::resync(&store, tid, cid, fence, timeout).await?;
            out(json, &c, |c| {
                format!(
                    "collection {id}: resync done: {} items, outcome {}, {}\n",
                    c.items, c.last_outcome, c.last_detail
                )
            })
        }
        AdminCommand::User(UserCmd::List { tenant }) => {
            let tid = store.tenant_id(&tenant).await?;
            out(json, &store.list_users(tid).await?, |us| {
                us.iter()
                    .map(|u| {
                        format!(
                            "{}@{}\t{} app password(s)\n",
                            u.name, tenant, u.app_passwords
                        )
                    })
                    .collect()
            })
        }
        AdminCommand::Connector(ConnectorCmd::Enroll { tenant, name, ttl }) => {
            let keys = TokenKeys::load(&store, args.signing_key_file.as_deref()).await?;
            let (token, expires) =
                auth::enroll_connector(&keys, &store, &tenant, &name, ttl).await?;
            let what = format!(
                "connector {name} enrolled in {tenant} (token expires {}); its token",
                expires.to_rfc3339()
            );
            print_secret(
                json,
                &tenant,
                &name,
                Some(expires.to_rfc3339()),
                token,
                &what,
            )
        }
        AdminCommand::Connector(ConnectorCmd::Revoke { tenant, name }) => {
            let tid = store.tenant_id(&tenant).await?;
            store.revoke_connector(tid, &name).await?;
            out(
                json,
                &serde_json::json!({"tenant": tenant, "connector": name, "revoked": true}),
                |_| format!("connector {name} revoked; its token no longer works\n"),
            )
        }
        AdminCommand::Connector(ConnectorCmd::List { tenant }) => {
            let tid = store.tenant_id(&tenant).await?;
            out(json, &store.list_connectors(tid).await?, |cs| {
                cs.iter()
                    .map(|c| {
                        format!(
                            "{}\t{}\tlast seen {}\tversion {}\tfrom {}\n",
                            c.name,
                            if c.revoked_at.is_some() {
                                "revoked"
                            } else {
                                "active"
                            },
                            c.last_seen_at.map_or("never".into(), |t| t.to_rfc3339()),
                            if c.version.is_empty() {
                                "-"
                            } else {
                                &c.version
                            },
                            if c.address.is_empty() {
                                "-"
                            } else {
                                &c.address
                            },
                        )
                    })
                    .collect()
            })
        }
        AdminCommand::Source(SourceCmd::List { tenant }) => {
            let sources = store.list_sources(tenant_id(tenant).await?).await?;
            out(json, &sources, |ss| {
                if ss.is_empty() {
                    return "no sources yet: is a connector running?\n".to_string();
                }
                ss.iter().map(source_line).collect()
            })
        }
        AdminCommand::Collection(CollectionCmd::List { tenant })
        | AdminCommand::Status { tenant } => {
            let tid = tenant_id(tenant).await?;
            let cs = store.list_collections(tid).await?;
            // Sources that do not sync are shown by status too: nothing is skipped
            // silently.
            let unsynced: Vec<_> = store
                .list_sources(tid)
                .await?
                .into_iter()
                .filter(|s| !s.problem.is_empty())
                .collect();
            if !json {
                for s in &unsynced {
                    print!("{}", source_line(s));
                }
            } else if !unsynced.is_empty() {
                for s in &unsynced {
                    eprint!("{}", source_line(s));
                }
            }
            // Mail waiting to be sent, and what happened to it today.
            for o in store.outbox_summary(tid).await? {
                let line = format!(
                    "outbox\t{}\tqueued {}{}\tsent today {}\tfailed today {}{}\n",
                    o.user,
                    o.queued,
                    if o.queued > 0 {
                        format!(" (oldest {:.0} s)", o.oldest_seconds)
                    } else {
                        String::new()
                    },
                    o.sent_last_day,
                    o.failed_last_day,
                    o.last_error
                        .map_or(String::new(), |e| format!("\tlast error: {e}")),
                );
                if json {
                    eprint!("{line}");
                } else {
                    print!("{line}");
                }
            }
            out(json, &cs, |cs| {
                if cs.is_empty() {
                    return "no collections yet: is a connector running?\n".to_string();
                }
                cs.iter()
                    .map(|c| {
                        format!(
                            "{}\t{}\t{} {}\t{}{}\t{}/{}\titems {}\tpending {}\tconflicts {}\tset aside {}\tlast round {} {}{}{}\n",
                            c.id,
                            c.user,
                            c.kind,
                            c.backend_href,
                            c.display_name,
                            c.role.as_ref().map_or(String::new(), |r| format!(" ({r})")),
                            c.mode,
                            c.conflict,
                            c.items,
                            c.pending,
                            c.open_conflicts,
                            c.set_aside,
                            c.last_round_at.map_or("never".into(), |t| t.to_rfc3339()),
                            c.last_outcome,
                            c.paused_reason.as_ref().map_or(String::new(), |r| format!("\tPAUSED: {r}")),
                            c.progress
                                .as_ref()
                                .filter(|p| p.running)
                                .map_or(String::new(), |p| format!("\tnow {}", follow::describe(p))),
                        )
                    })
                    .collect()
            })
        }
        AdminCommand::Collection(CollectionCmd::Pause { tenant, id, reason }) => {
            let tid = store.tenant_id(&tenant).await?;
            store
                .set_paused(tid, parse_id("collection", &id)?, Some(&reason))
                .await?;
            out(
                json,
                &serde_json::json!({"collection": id, "paused": true}),
                |_| format!("collection {id} paused\n"),
            )
        }
        AdminCommand::Collection(CollectionCmd::Resume { tenant, id }) => {
            let tid = store.tenant_id(&tenant).await?;
            store
                .set_paused(tid, parse_id("collection", &id)?, None)
                .await?;
            out(
                json,
                &serde_json::json!({"collection": id, "paused": false}),
                |_| format!("collection {id} resumed\n"),
            )
        }
        AdminCommand::Collection(CollectionCmd::Set {
            tenant,
            id,
            mode,
            conflict,
        }) => {
            let tid = store.tenant_id(&tenant).await?;
            store
                .set_collection_policy(tid, parse_id("collection", &id)?, mode, conflict)
                .await?;
            out(
                json,
                &serde_json::json!({"collection": id, "mode": mode, "conflict": conflict}),
                |_| format!("collection {id} updated\n"),
            )
        }
        AdminCommand::Bootstrap {
            tenant,
            user,
            connector,
            token_file,
            password_file,
        } => {
            let tid = match store.tenant_id(&tenant).await {
                Ok(id) => id,
                Err(crate::store::StoreError::NotFound(_)) => store.add_tenant(&tenant).await?.id,
                Err(e) => return Err(e.into()),
            };
            let mut made = Vec::new();
            if store.user_id(tid, &user).await.is_err() {
                let (password, hash) = new_password()?;
                store.add_user(tid, &user, &hash).await?;
                std::fs::write(&password_file, format!("{password}\n"))?;
                made.push("user");
            }
            let exists = store
                .list_connectors(tid)
                .await?
                .iter()
                .any(|c| c.name == connector && c.revoked_at.is_none());
            if !exists || !token_file.exists() {
                let keys = TokenKeys::load(&store, args.signing_key_file.as_deref()).await?;
                let (token, _) = auth::enroll_connector(
                    &keys,
                    &store,
                    &tenant,
                    &connector,
                    Duration::from_secs(365 * 86400),
                )
                .await?;
                std::fs::write(&token_file, format!("{token}\n"))?;
                made.push("connector");
            }
            out(
                json,
                &serde_json::json!({"tenant": tenant, "created": made}),
                |_| {
                    format!(
                        "bootstrap of {tenant}: created {}\n",
                        if made.is_empty() {
                            "nothing".into()
                        } else {
                            made.join(", ")
                        }
                    )
                },
            )
        }
        AdminCommand::Conflicts {
            action: Some(ConflictCmd::Show { id }),
            ..
        } => {
            let (tid, c) = store.conflict(parse_id("conflict", &id)?).await?;
            let current = store.conflict_item(tid, &c).await?;
            let v = serde_json::json!({"conflict": c, "current": current});
            out(json, &v, |_| {
                format!(
                    "conflict {} (uid {}, {} version lost under {})\n--- kept loser ({}) ---\n{}\n--- current ---\n{}\n",
                    c.id,
                    c.uid,
                    c.loser_side,
                    c.policy,
                    c.loser_side,
                    c.loser_content
                        .clone()
                        .unwrap_or_else(|| "(a deletion)".into()),
                    current
                        .as_ref()
                        .and_then(|i| i.content.clone())
                        .unwrap_or_else(|| "(deleted)".into())
                )
            })
        }
        AdminCommand::Conflicts {
            action: Some(ConflictCmd::Resolve { id, keep }),
            ..
        } => {
            let (tid, c) = store.conflict(parse_id("conflict", &id)?).await?;
            let kind: postern_core::model::CollectionKind =
                store.collection(tid, c.collection_id).await?.kind.parse()?;
            if keep == "loser" && kind == postern_core::model::CollectionKind::Mailbox {
                // A message reverted by a mirror-mode mailbox comes back as a new one
                // (and goes to the back end like any client's new message).
                let bytes = store
                    .conflict_loser_bytes(tid, c.id)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("conflict {id} kept no message"))?;
                store
                    .append_message(tid, c.collection_id, &bytes, &[])
                    .await?;
            } else if keep == "loser" {
                let current = store.conflict_item(tid, &c).await?;
                let name = current.as_ref().map(|i| i.name.clone()).ok_or_else(|| {
                    anyhow::anyhow!(
                        "the item of conflict {id} no longer exists; nothing to bring back into"
                    )
                })?;
                match &c.loser_content {
                    Some(content) => {
                        store
                            .put_item(
                                tid,
                                c.collection_id,
                                &name,
                                content.as_bytes(),
                                kind.content_type(),
                                None,
                            )
                            .await?;
                    }
                    None => {
                        if current.as_ref().is_some_and(|i| i.content.is_some()) {
                            store.delete_item(tid, c.collection_id, &name, None).await?;
                        }
                    }
                }
            }
            store.mark_resolved(tid, c.id).await?;
            out(
                json,
                &serde_json::json!({"conflict": id, "kept": keep}),
                |_| format!("conflict {id} resolved, kept the {keep} version\n"),
            )
        }
        AdminCommand::Conflicts {
            action: Some(ConflictCmd::Retry { id }),
            ..
        } => {
            let item = parse_id("item", &id)?;
            if !store.retry_set_aside(item).await? {
                anyhow::bail!("item {id} is not set aside (see `admin conflicts`)");
            }
            out(json, &serde_json::json!({"retried": id}), |_| {
                format!("item {id} handed to the connector again\n")
            })
        }
        AdminCommand::Conflicts {
            tenant,
            action: None,
        } => {
            let tid = tenant_id(tenant).await?;
            let cs = store.list_conflicts(tid).await?;
            let aside = store.list_set_aside(tid).await?;
            let mut all: Vec<serde_json::Value> = Vec::new();
            for c in &cs {
                let mut v = serde_json::to_value(c)?;
                v["kind"] = "conflict".into();
                all.push(v);
            }
            for a in &aside {
                let mut v = serde_json::to_value(a)?;
                v["kind"] = "set-aside".into();
                all.push(v);
            }
            out(json, &all, |_| {
                if cs.is_empty() && aside.is_empty() {
                    return "no open conflicts\n".to_string();
                }
                let refused = aside.iter().map(|a| {
                    format!(
                        "{}\tcollection {}\tuid {}\tSET ASIDE: the back end refused this {} (HTTP {}): {}\t{}\n",
                        a.item_id,
                        a.collection_id,
                        a.uid,
                        if a.deletion { "deletion" } else { "version" },
                        a.status,
                        a.answer.lines().next().unwrap_or(""),
                        a.refused_at.map_or(String::new(), |t| t.to_rfc3339()),
                    )
                });
                cs.iter()
                    .map(|c| {
                        format!(
                            "{}\tcollection {}\tuid {}\tlost: {} version ({})\t{}\t{}\n",
                            c.id,
                            c.collection_id,
                            c.uid,
                            c.loser_side,
                            if c.loser_content.is_some() {
                                "edit"
                            } else {
                                "deletion"
                            },
                            c.policy,
                            c.created_at.to_rfc3339()
                        )
                    })
                    .chain(refused)
                    .collect()
            })
        }
    }
}
