//! What the mail benchmarks share: a mailbox of realistic messages written straight
//! into a Dovecot Maildir, and a plain IMAP client that reads answers in large
//! pieces, so that the client's own cost stays out of the figures.

use std::process::Command;

use anyhow::{Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::backends::Dovecot;
use crate::mail::multipart;

/// Message `i`: one in twenty carries a 400 KB attachment, three in twenty 40 KB,
/// the rest are about 4 KB of text.
pub fn message(i: usize) -> Vec<u8> {
    match i % 20 {
        0 => multipart(&format!("scan {i}"), 400_000, i as u64 + 1),
        1..=3 => multipart(&format!("report {i}"), 40_000, i as u64 + 1),
        _ => {
            let mut m = format!(
                "From: Bob <bob@corp.example>\r\nTo: alice@corp.example\r\nSubject: note {i}\r\nMessage-ID: <bench-{i}@corp.example>\r\nDate: Mon, 5 Jan 2026 10:00:00 +0000\r\n\r\n"
            );
            while m.len() < 4_000 {
                m.push_str("The quarterly numbers are in; please review them before Friday.\r\n");
            }
            m.into_bytes()
        }
    }
}

/// Writes `n` messages straight into alice's Maildir (half of them read), so that
/// Dovecot numbers them on first access. Returns their total size.
pub fn fill_maildir(dc: &Dovecot, n: usize) -> Result<u64> {
    let root = dc.dir.join("mail/alice/Maildir");
    for d in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(root.join(d))?;
    }
    let mut total = 0;
    for i in 0..n {
        let m = message(i);
        total += m.len() as u64;
        let flags = if i % 2 == 0 { "S" } else { "" };
        // Names as Dovecot makes them (time, microseconds, process, host, size):
        // names that differ only in a counter make its filename hash collide.
        let name = format!(
            "{}.M{}P{}.mx{},S={}:2,{flags}",
            1_767_600_000 + i * 7,
            (i * 7919) % 1_000_000,
            1000 + i % 30_000,
            i % 97,
            m.len()
        );
        std::fs::write(root.join("cur").join(name), m)?;
    }
    // A Maildir written this very second is rescanned by Dovecot on every command
    // (its directories' times are too recent to trust); a real one is older.
    let ok = Command::new("touch")
        .args(["-d", "1 hour ago"])
        .args(["cur", "new", "tmp"].map(|d| root.join(d)))
        .status()?
        .success();
    anyhow::ensure!(ok, "touch of the Maildir failed");
    let ok = Command::new("chown")
        .args(["-R", "dovecot:dovecot"])
        .arg(dc.dir.join("mail"))
        .status()?
        .success();
    anyhow::ensure!(ok, "chown of the Maildir failed");
    Ok(total)
}

/// A plain IMAP session, reading answers in large pieces: the benchmarks' client
/// (its own costs stay out of the figures) and their way to change the server.
pub struct Raw {
    r: BufReader<TcpStream>,
    tag: u32,
}

impl Raw {
    /// alice on Dovecot at `port`, INBOX selected.
    pub async fn login(port: u16) -> Result<Raw> {
        let mut raw = Raw::connect(port, "alice", "alicepw").await?;
        raw.run("SELECT INBOX").await?;
        Ok(raw)
    }

    /// Logged in as `user` on the IMAP server at `port`, nothing selected.
    pub async fn connect(port: u16, user: &str, password: &str) -> Result<Raw> {
        let mut raw = Raw {
            r: BufReader::new(TcpStream::connect(("127.0.0.1", port)).await?),
            tag: 0,
        };
        let mut greeting = String::new();
        raw.r.read_line(&mut greeting).await?;
        raw.run(&format!("LOGIN \"{user}\" \"{password}\"")).await?;
        Ok(raw)
    }

    /// Sends a command and reads to its tagged answer; returns the bytes read.
    pub async fn run(&mut self, cmd: &str) -> Result<u64> {
        self.exchange(cmd, None).await
    }

    /// Sends a command and returns its whole answer (for small answers).
    pub async fn answer(&mut self, cmd: &str) -> Result<String> {
        let mut all = Vec::new();
        self.exchange(cmd, Some(&mut all)).await?;
        Ok(String::from_utf8_lossy(&all).into_owned())
    }

    /// Starts IDLE: returns once the server said it is idling.
    pub async fn idle_start(&mut self) -> Result<()> {
        self.tag += 1;
        let tag = format!("b{}", self.tag);
        self.r
            .get_mut()
            .write_all(format!("{tag} IDLE\r\n").as_bytes())
            .await?;
        let mut line = String::new();
        while !line.starts_with('+') {
            line.clear();
            if self.r.read_line(&mut line).await? == 0 {
                bail!("IDLE: connection closed");
            }
        }
        Ok(())
    }

    /// In IDLE, waits until the server has said something that holds `word`
    /// (`EXISTS`, `FETCH`); then DONE.
    pub async fn idle_until(&mut self, word: &str) -> Result<()> {
        let tag = format!("b{}", self.tag);
        let mut line = String::new();
        loop {
            line.clear();
            if self.r.read_line(&mut line).await? == 0 {
                bail!("IDLE: connection closed");
            }
            if line.starts_with('*') && line.contains(word) {
                break;
            }
        }
        self.r.get_mut().write_all(b"DONE\r\n").await?;
        loop {
            line.clear();
            if self.r.read_line(&mut line).await? == 0 {
                bail!("IDLE: connection closed");
            }
            if line.starts_with(&tag) {
                return Ok(());
            }
        }
    }

    async fn exchange(&mut self, cmd: &str, mut keep: Option<&mut Vec<u8>>) -> Result<u64> {
        self.tag += 1;
        let tag = format!("b{}", self.tag);
        self.r
            .get_mut()
            .write_all(format!("{tag} {cmd}\r\n").as_bytes())
            .await?;
        let done = format!("\r\n{tag} ");
        let mut tail: Vec<u8> = b"\r\n".to_vec();
        let mut buf = vec![0u8; 256 << 10];
        let mut read = 0u64;
        loop {
            let n = self.r.read(&mut buf).await?;
            if n == 0 {
                bail!("{cmd}: connection closed");
            }
            read += n as u64;
            if let Some(k) = keep.as_deref_mut() {
                k.extend_from_slice(&buf[..n]);
            }
            tail.extend_from_slice(&buf[..n]);
            if let Some(at) = find(&tail, done.as_bytes()) {
                let line = String::from_utf8_lossy(&tail[at + 2..]).to_string();
                if !line.starts_with(&format!("{tag} OK")) {
                    bail!("{cmd}: {line}");
                }
                // Read the rest of the tagged line.
                if !line.contains('\n') {
                    let mut rest = String::new();
                    self.r.read_line(&mut rest).await?;
                }
                return Ok(read);
            }
            let keep = tail.len().saturating_sub(done.len() + 8);
            tail.drain(..keep);
        }
    }
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The median of `v` (sorted in place); 0 for none.
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}
