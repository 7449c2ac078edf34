//! Real back ends for scenarios: Radicale and Xandikos, one process per test.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::Result;

use crate::{Proc, Scratch, free_port, wait_port};

/// The fixtures shipped with the tests (`tests/fixtures`).
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// A running Radicale with user `alice` / `alicepw`.
#[derive(Debug)]
pub struct Radicale {
    /// The process.
    pub proc: Proc,
    /// Base URL, e.g. `http://127.0.0.1:PORT/`.
    pub url: String,
    /// Its storage root (`collection-root/alice/...`).
    pub root: PathBuf,
}

/// A collection to create in Radicale's storage before it starts.
#[derive(Debug, Clone)]
pub struct Seed {
    /// Collection name under `/alice/`.
    pub name: String,
    /// `VCALENDAR` or `VADDRESSBOOK`.
    pub tag: &'static str,
    /// Display name.
    pub display_name: String,
    /// (file name, content) of each item.
    pub items: Vec<(String, Vec<u8>)>,
}

impl Seed {
    /// A calendar with the given items.
    pub fn calendar(name: &str, items: Vec<(String, Vec<u8>)>) -> Self {
        Seed {
            name: name.into(),
            tag: "VCALENDAR",
            display_name: name.into(),
            items,
        }
    }
    /// An address book with the given items.
    pub fn addressbook(name: &str, items: Vec<(String, Vec<u8>)>) -> Self {
        Seed {
            name: name.into(),
            tag: "VADDRESSBOOK",
            display_name: name.into(),
            items,
        }
    }
}

/// Every fixture file of a folder, as (name, content).
pub fn fixture_items(folder: &str) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(fixtures().join(folder))
        .expect("fixtures")
        .filter_map(|e| e.ok())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("fixture"),
            )
        })
        .collect();
    out.sort();
    out
}

/// A one-event calendar object with `uid` and `summary`.
pub fn event(uid: &str, summary: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Postern//test//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:20250701T100000Z\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

/// `n` generated events (`ev-0.ics`...), for volume scenarios.
pub fn generated_events(n: usize, tag: &str) -> Vec<(String, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let body = format!(
                "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Postern//gen//EN\r\nBEGIN:VEVENT\r\nUID:{tag}-{i}@postern.test\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:2025{:02}{:02}T{:02}0000Z\r\nDURATION:PT1H\r\nSUMMARY:{tag} event {i}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
                1 + i % 12,
                1 + i % 28,
                i % 24
            );
            (format!("{tag}-{i}.ics"), body.into_bytes())
        })
        .collect()
}

/// `n` generated contacts.
pub fn generated_contacts(n: usize, tag: &str) -> Vec<(String, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let body = format!(
                "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:{tag}-{i}@postern.test\r\nFN:Person {i}\r\nN:{i};Person;;;\r\nEMAIL:p{i}@acme.example\r\nTEL:+1 555 {i:04}\r\nEND:VCARD\r\n"
            );
            (format!("{tag}-{i}.vcf"), body.into_bytes())
        })
        .collect()
}

impl Radicale {
    /// Writes the seeds to storage, then starts Radicale and waits for it.
    pub async fn start(dir: &Scratch, seeds: &[Seed]) -> Result<Self> {
        Self::start_with(dir, seeds, "").await
    }

    /// [`Radicale::start`] with more `[server]` settings (e.g. `max_content_length =
    /// 2000`, to make it refuse large items).
    pub async fn start_with(dir: &Scratch, seeds: &[Seed], server: &str) -> Result<Self> {
        let port = free_port();
        let base = dir.path(&format!("radicale-{port}"));
        let root = base.join("collections");
        for s in seeds {
            let c = root.join("collection-root/alice").join(&s.name);
            std::fs::create_dir_all(&c)?;
            std::fs::write(
                c.join(".Radicale.props"),
                format!(
                    r#"{{"tag": "{}", "D:displayname": "{}"}}"#,
                    s.tag, s.display_name
                ),
            )?;
            for (name, content) in &s.items {
                std::fs::write(c.join(name), content)?;
            }
        }
        std::fs::create_dir_all(root.join("collection-root/alice"))?;
        std::fs::write(base.join("users"), "alice:alicepw\nbob:bobpw\n")?;
        let config = base.join("config");
        std::fs::write(
            &config,
            format!(
                "[server]\nhosts = 127.0.0.1:{port}\nmax_connections = 64\n{server}\n[auth]\ntype = htpasswd\nhtpasswd_filename = {}\nhtpasswd_encryption = plain\n[storage]\nfilesystem_folder = {}\n[rights]\ntype = owner_only\n[logging]\nlevel = warning\n",
                base.join("users").display(),
                root.display()
            ),
        )?;
        let mut cmd = Command::new("python3");
        cmd.args(["-m", "radicale", "--config"]).arg(&config);
        let proc = Proc::spawn(cmd, dir.path(&format!("radicale-{port}.log")))?;
        wait_port(port, Duration::from_secs(20)).await?;
        Ok(Radicale {
            proc,
            url: format!("http://127.0.0.1:{port}/"),
            root,
        })
    }

    /// The storage folder of collection `name` of alice.
    pub fn folder(&self, name: &str) -> PathBuf {
        self.root.join("collection-root/alice").join(name)
    }
}

/// A running Xandikos (no authentication), principal `/alice/` with
/// `/alice/calendars/calendar/` and `/alice/contacts/addressbook/`.
#[derive(Debug)]
pub struct Xandikos {
    /// The process.
    pub proc: Proc,
    /// Base URL.
    pub url: String,
}

impl Xandikos {
    /// Starts Xandikos with its default collections.
    pub async fn start(dir: &Scratch) -> Result<Self> {
        let port = free_port();
        let data = dir.path(&format!("xandikos-{port}"));
        std::fs::create_dir_all(&data)?;
        Self::serve(dir, &data, port).await
    }

    /// Starts Xandikos with `events` (name, iCalendar) in alice's default calendar,
    /// written straight into its git store in one commit: seeding ten thousand events
    /// by PUT makes a commit each and takes many minutes, and a benchmark measures
    /// queries, not seeding.
    pub async fn seeded(dir: &Scratch, events: &[(String, impl AsRef<[u8]>)]) -> Result<Self> {
        let port = free_port();
        let data = dir.path(&format!("xandikos-{port}"));
        std::fs::create_dir_all(&data)?;
        // A first start lays out the default collections, then stops.
        drop(Self::serve(dir, &data, port).await?);
        let calendar = data.join("alice/calendars/calendar");
        for (name, body) in events {
            std::fs::write(calendar.join(name), body.as_ref())?;
        }
        for args in [
            &["add", "-A"][..],
            &[
                "-c",
                "user.name=bench",
                "-c",
                "user.email=bench@localhost",
                "commit",
                "-qm",
                "seed",
            ][..],
        ] {
            let status = Command::new("git")
                .args(args)
                .current_dir(&calendar)
                .status()?;
            if !status.success() {
                anyhow::bail!("git {args:?} in {}: {status}", calendar.display());
            }
        }
        Self::serve(dir, &data, free_port()).await
    }

    async fn serve(dir: &Scratch, data: &std::path::Path, port: u16) -> Result<Self> {
        let mut cmd = Command::new(xandikos_bin());
        cmd.arg("serve").arg("-d").arg(data).args([
            "--defaults",
            "-l",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "--current-user-principal",
            "/alice",
        ]);
        let proc = Proc::spawn(cmd, dir.path(&format!("xandikos-{port}.log")))?;
        wait_port(port, Duration::from_secs(30)).await?;
        Ok(Xandikos {
            proc,
            url: format!("http://127.0.0.1:{port}/"),
        })
    }
}

/// The `xandikos` command installed by pip (on PATH).
fn xandikos_bin() -> PathBuf {
    PathBuf::from("xandikos")
}

/// A running Dovecot (IMAP only, plain text on loopback) with users `alice` /
/// `alicepw` and `bob` / `bobpw`, each with a Maildir and the usual special-use
/// mailboxes (Drafts, Sent, Trash, Junk, Archive; created on first login).
#[derive(Debug)]
pub struct Dovecot {
    /// The process (in the foreground, `-F`).
    pub proc: Proc,
    /// The IMAP port on 127.0.0.1.
    pub port: u16,
    /// Its directory (config, mail, logs).
    pub dir: PathBuf,
}

impl Dovecot {
    /// Starts Dovecot with CONDSTORE and QRESYNC (as it offers them by default).
    pub async fn start(dir: &Scratch) -> Result<Self> {
        Self::start_with(dir, "").await
    }

    /// Starts Dovecot with extra configuration lines (say, `imap_capability` to
    /// hide CONDSTORE and QRESYNC, or `ssl = yes` with a certificate). It listens on
    /// 127.0.0.1 and 127.0.0.2 (which the connector does not count as loopback).
    pub async fn start_with(dir: &Scratch, extra: &str) -> Result<Self> {
        let port = free_port();
        let root = dir.path(&format!("dovecot-{port}"));
        for d in ["state", "mail"] {
            std::fs::create_dir_all(root.join(d))?;
        }
        // Its sockets live under `base_dir`, whose path must stay short (a Unix socket
        // path has at most 107 bytes; scratch directories are long).
        let run =
            std::env::temp_dir().join(format!("pdc-{port}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&run)?;
        std::fs::write(
            root.join("users"),
            "alice:{PLAIN}alicepw\nbob:{PLAIN}bobpw\n",
        )?;
        let r = root.display();
        let run = run.display();
        let config = format!(
            r#"protocols = imap
listen = 127.0.0.1, 127.0.0.2
base_dir = {run}
state_dir = {r}/state
log_path = {r}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 1
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {r}/users
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={r}/mail/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Drafts {{
    special_use = \Drafts
    auto = create
  }}
  mailbox Sent {{
    special_use = \Sent
    auto = create
  }}
  mailbox Trash {{
    special_use = \Trash
    auto = create
  }}
  mailbox Junk {{
    special_use = \Junk
    auto = create
  }}
  mailbox Archive {{
    special_use = \Archive
    auto = create
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1, 127.0.0.2
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
protocol imap {{
  mail_max_userip_connections = 1000
}}
{extra}
"#
        );
        std::fs::write(root.join("dovecot.conf"), config)?;
        let status = Command::new("chown")
            .args(["-R", "dovecot:dovecot"])
            .arg(root.join("mail"))
            .status()?;
        anyhow::ensure!(status.success(), "chown of the mail directory failed");
        let mut cmd = Command::new(dovecot_bin());
        cmd.arg("-F").arg("-c").arg(root.join("dovecot.conf"));
        let proc = Proc::spawn(cmd, dir.path(&format!("dovecot-{port}.out")))?;
        wait_port(port, Duration::from_secs(30)).await?;
        Ok(Dovecot {
            proc,
            port,
            dir: root,
        })
    }

    /// `imap://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("imap://127.0.0.1:{}", self.port)
    }
}

/// The `dovecot` daemon (apt `dovecot-imapd`).
fn dovecot_bin() -> PathBuf {
    PathBuf::from("/usr/sbin/dovecot")
}
