//! Python's imaplib as a real IMAP client (`tests/clients/imap_client.py`): the e2e
//! tests drive the gateway's IMAP endpoint with it, and read Dovecot with it too, so
//! that no oracle is the product's own IMAP code. [`run_client`] runs the SMTP client
//! (`smtp_client.py`, smtplib) the same way.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

fn command(port: u16, steps: &Value) -> Command {
    command_of("imap_client.py", "127.0.0.1", port, steps)
}

/// `tests/clients/SCRIPT HOST PORT STEPS`, its output piped.
fn command_of(script: &str, host: &str, port: u16, steps: &Value) -> Command {
    let mut c = Command::new("python3");
    c.arg(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("clients")
            .join(script),
    )
    .arg(host)
    .arg(port.to_string())
    .arg(steps.to_string())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    c
}

/// Runs `steps` on one connection to `port`; one result per step, in order. A step
/// that fails ends the run with an error naming it.
pub async fn run(port: u16, steps: Value) -> Result<Vec<Value>> {
    run_at("127.0.0.1", port, steps).await
}

/// [`run`] against `host` (a name the server's certificate carries, for TLS).
pub async fn run_at(host: &str, port: u16, steps: Value) -> Result<Vec<Value>> {
    run_client("imap_client.py", host, port, steps).await
}

/// Runs one of the Python clients of `tests/clients` (`imap_client.py`,
/// `smtp_client.py`, which take the same arguments and print one JSON line per step).
pub async fn run_client(script: &str, host: &str, port: u16, steps: Value) -> Result<Vec<Value>> {
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        command_of(script, host, port, &steps).output(),
    )
    .await
    .with_context(|| format!("{script} took over two minutes"))??;
    let results: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    if !out.status.success() {
        bail!(
            "{script} failed: {results:?}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(results)
}

/// A client whose steps include an IDLE, running beside the test.
pub struct Idling {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    /// Results of the steps before the IDLE.
    pub before: Vec<Value>,
}

impl Idling {
    /// Starts `steps` and returns once the server has accepted the IDLE.
    pub async fn start(port: u16, steps: Value) -> Result<Idling> {
        let mut child = command(port, &steps).spawn()?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let mut before = Vec::new();
        let read = async {
            while let Some(line) = lines.next_line().await? {
                let v: Value = serde_json::from_str(&line)?;
                if v.get("idling").is_some() {
                    return Ok(());
                }
                if v.get("error").is_some() {
                    bail!("imaplib failed before IDLE: {v}");
                }
                before.push(v);
            }
            bail!("imaplib ended before IDLE")
        };
        tokio::time::timeout(Duration::from_secs(60), read)
            .await
            .context("no IDLE within a minute")??;
        Ok(Idling {
            child,
            lines,
            before,
        })
    }

    /// The results of the IDLE and the steps after it.
    pub async fn finish(mut self) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let read = async {
            while let Some(line) = self.lines.next_line().await? {
                out.push(serde_json::from_str::<Value>(&line)?);
            }
            Ok::<_, anyhow::Error>(())
        };
        tokio::time::timeout(Duration::from_secs(120), read)
            .await
            .context("imaplib did not end")??;
        self.child.wait().await?;
        Ok(out)
    }
}

/// The literals (bytes) of a FETCH result, in order.
pub fn literals(result: &Value) -> Vec<Vec<u8>> {
    result["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d.as_array())
        .filter_map(|pair| pair.get(1)?.as_str())
        .map(|s| s.chars().map(|c| c as u8).collect())
        .collect()
}

/// The text lines (not literals) of a result, without the lone `)` that imaplib
/// keeps after a literal.
pub fn lines(result: &Value) -> Vec<String> {
    result["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| match d {
            Value::String(s) => Some(s.clone()),
            Value::Array(pair) => pair.first()?.as_str().map(str::to_string),
            _ => None,
        })
        .filter(|l| l != ")")
        .collect()
}

/// Alice's app password (a new one).
pub fn app_password(d: &crate::Deployment) -> Result<String> {
    Ok(crate::last_line(&crate::admin(
        &d.db,
        &["user", "rotate", "--tenant", "acme", "alice"],
    )?))
}

/// The step that logs in as alice with `pw`.
pub fn login(pw: &str) -> Value {
    serde_json::json!({"login": ["alice@acme", pw]})
}

/// The flags of every copy of test message `n` (`<note-n@…>`, see
/// [`crate::mail::message`]) among [`dovecot_flags`]' answer.
pub fn note_flags(flags: &[(String, String)], n: u32) -> Vec<String> {
    let id = format!("<note-{n}@");
    flags
        .iter()
        .filter(|(m, _)| m.contains(&id))
        .map(|(_, f)| f.clone())
        .collect()
}

/// Dovecot's flags of each message of `mailbox`, by the Message-ID they carry.
pub async fn dovecot_flags(port: u16, mailbox: &str) -> Result<Vec<(String, String)>> {
    let r = run(
        port,
        serde_json::json!([
            {"login": ["alice", "alicepw"]},
            {"call": "select", "args": [mailbox]},
            {"uid": ["FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"]},
        ]),
    )
    .await?;
    let headers = lines(&r[2]);
    let bodies = literals(&r[2]);
    Ok(headers
        .iter()
        .zip(bodies)
        .map(|(h, b)| (String::from_utf8_lossy(&b).trim().to_string(), h.clone()))
        .collect())
}
