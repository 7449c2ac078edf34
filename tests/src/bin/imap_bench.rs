//! Benchmark (not a test): the gateway's IMAP endpoint and Dovecot serving the same
//! 10,000-message INBOX (realistic sizes and MIME structures), in the same run, to a
//! plain client that reads answers in large pieces:
//!
//! - a full-mailbox `FETCH 1:* (UID FLAGS ENVELOPE BODYSTRUCTURE)`, the first time
//!   and warm (median of five);
//! - a no-change re-select with QRESYNC (median of 50);
//! - IDLE: a message appended on Dovecot, until a client idling on Dovecot itself,
//!   and one idling on the gateway (through the connector, with an hour's interval),
//!   hears `EXISTS`;
//! - 50 clients at once, each a SELECT and the full-mailbox FETCH.
//!
//! Targets (issue 12): FETCH within 1.5× Dovecot, a no-change re-select under 5 ms,
//! IDLE under 1 s end to end. `scripts/bench-imap.sh`; `POSTERN_BENCH_MESSAGES`
//! changes the size.

use std::time::{Duration, Instant};

use anyhow::Result;
use postern_e2e::backends::Dovecot;
use postern_e2e::mailbench::{Raw, fill_maildir, median};
use postern_e2e::{Connector, Deployment, SourceSpec, connector_config, peak_kib, wait_until};

/// The full-mailbox FETCH a client makes to fill its cache.
const FULL: &str = "FETCH 1:* (UID FLAGS ENVELOPE BODYSTRUCTURE)";
/// Clients at once.
const CLIENTS: usize = 50;

/// One server as the benchmark's client sees it.
#[derive(Clone)]
struct Server {
    name: &'static str,
    port: u16,
    user: String,
    password: String,
}

impl Server {
    async fn selected(&self) -> Result<Raw> {
        let mut raw = Raw::connect(self.port, &self.user, &self.password).await?;
        raw.run("SELECT INBOX").await?;
        Ok(raw)
    }
}

/// One full FETCH on a fresh session: its time and the bytes of the answer.
async fn full_fetch(s: &Server) -> Result<(f64, u64)> {
    let mut raw = s.selected().await?;
    let at = Instant::now();
    let bytes = raw.run(FULL).await?;
    Ok((ms(at), bytes))
}

/// No-change re-selects with QRESYNC from the state a first SELECT gave: p50, max.
async fn reselect(s: &Server) -> Result<(f64, f64)> {
    let mut raw = Raw::connect(s.port, &s.user, &s.password).await?;
    raw.run("ENABLE QRESYNC").await?;
    let first = raw.answer("SELECT INBOX").await?;
    let code = |name: &str| -> Result<u64> {
        let at = first
            .find(&format!("[{name} "))
            .ok_or_else(|| anyhow::anyhow!("{} answered no {name}: {first}", s.name))?;
        let rest = &first[at + name.len() + 2..];
        Ok(rest[..rest.find(']').unwrap_or(rest.len())].parse()?)
    };
    let (validity, modseq) = (code("UIDVALIDITY")?, code("HIGHESTMODSEQ")?);
    let mut times = Vec::new();
    for _ in 0..50 {
        let at = Instant::now();
        let answer = raw
            .answer(&format!("SELECT INBOX (QRESYNC ({validity} {modseq}))"))
            .await?;
        times.push(ms(at));
        anyhow::ensure!(
            !answer.contains("VANISHED") && !answer.contains(" FETCH "),
            "{}: a no-change re-select reported changes: {answer}",
            s.name
        );
    }
    let max = times.iter().copied().fold(0.0, f64::max);
    Ok((median(&mut times), max))
}

/// A message appended on Dovecot until a client idling on `s` hears of it, five
/// times: p50, max.
async fn idle_latency(s: &Server, dovecot: u16) -> Result<(f64, f64)> {
    let mut writer = Raw::login(dovecot).await?;
    let mut times = Vec::new();
    for k in 0..5 {
        let mut idling = s.selected().await?;
        idling.idle_start().await?;
        let m = format!(
            "From: Bob <bob@corp.example>\r\nTo: alice@corp.example\r\nSubject: idle {k}\r\nMessage-ID: <idle-{k}-{}@corp.example>\r\n\r\nNew.\r\n",
            s.name
        );
        let at = Instant::now();
        writer
            .run(&format!("APPEND INBOX {{{}+}}\r\n{m}", m.len()))
            .await?;
        tokio::time::timeout(Duration::from_secs(30), idling.idle_until("EXISTS")).await??;
        times.push(ms(at));
    }
    let max = times.iter().copied().fold(0.0, f64::max);
    Ok((median(&mut times), max))
}

/// `CLIENTS` sessions at once, each a SELECT and the full FETCH: the wall time of
/// all, and the p50 and max of one.
async fn at_once(s: &Server) -> Result<(f64, f64, f64)> {
    let at = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let s = s.clone();
        tasks.spawn(async move {
            let at = Instant::now();
            let mut raw = s.selected().await?;
            raw.run(FULL).await?;
            raw.run("LOGOUT").await.ok();
            Ok::<f64, anyhow::Error>(ms(at))
        });
    }
    let mut each = Vec::new();
    while let Some(done) = tasks.join_next().await {
        each.push(done??);
    }
    let wall = ms(at);
    let max = each.iter().copied().fold(0.0, f64::max);
    Ok((wall, median(&mut each), max))
}

fn ms(at: Instant) -> f64 {
    at.elapsed().as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> Result<()> {
    let n: usize = std::env::var("POSTERN_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let d = Deployment::start(
        "imap-bench",
        &["--imap-max-sessions-per-user", &(CLIENTS + 8).to_string()],
    )
    .await?;
    let dc = Dovecot::start(&d.dir).await?;
    let total = fill_maildir(&dc, n)?;
    println!(
        "IMAP endpoint benchmark: {n} messages, {:.1} MB, one INBOX, the gateway and Dovecot in the same run",
        total as f64 / 1e6
    );
    // Dovecot indexes the Maildir on first access.
    Raw::login(dc.port)
        .await?
        .run("FETCH 1:* (UID FLAGS)")
        .await?;

    // The gateway's copy, by the connector; an hour's interval, so that only IDLE
    // brings the later changes.
    let src = SourceSpec::alice("mail", "imap", &dc.url(), "1h");
    let config = connector_config(&d.gateway.grpc_url, &d.token, &[src]);
    let _conn = Connector::start(&d.dir, "bench", &config)?;
    let inbox = d.collection("/INBOX").await?;
    wait_until("import", Duration::from_secs(1800), || async {
        let rows = d
            .query(&format!(
                "SELECT count(*) FROM items WHERE collection_id = '{inbox}' AND NOT deleted"
            ))
            .await?;
        Ok((rows[0].get::<_, i64>(0) as usize >= n).then_some(()))
    })
    .await?;
    let password = postern_e2e::last_line(&postern_e2e::admin(
        &d.db,
        &["user", "rotate", "--tenant", "acme", "alice"],
    )?);
    let servers = [
        Server {
            name: "postern gateway",
            port: d.gateway.imap_port,
            user: "alice@acme".into(),
            password,
        },
        Server {
            name: "dovecot",
            port: dc.port,
            user: "alice".into(),
            password: "alicepw".into(),
        },
    ];

    println!("\n{FULL}");
    let mut warm = Vec::new();
    for s in &servers {
        let (first, bytes) = full_fetch(s).await?;
        let mut runs = Vec::new();
        for _ in 0..5 {
            runs.push(full_fetch(s).await?.0);
        }
        let p50 = median(&mut runs);
        warm.push(p50);
        println!(
            "  {:<16} first {first:>8.1} ms   warm p50 {p50:>8.1} ms   {:.1} MB answer",
            s.name,
            bytes as f64 / 1e6
        );
    }
    println!(
        "  ratio gateway / dovecot (warm)   {:.2}   (target <= 1.5)",
        warm[0] / warm[1]
    );

    println!("\nno-change re-select, SELECT INBOX (QRESYNC (uidvalidity highestmodseq)), 50 times");
    for s in &servers {
        let (p50, max) = reselect(s).await?;
        println!("  {:<16} p50 {p50:>6.2} ms   max {max:>6.2} ms", s.name);
    }
    println!("  target for the gateway: < 5 ms");

    println!(
        "\nIDLE: a message appended on Dovecot, until a client idling on ... hears EXISTS (5 times)"
    );
    for s in &servers {
        let (p50, max) = idle_latency(s, dc.port).await?;
        println!("  {:<16} p50 {p50:>6.0} ms   max {max:>6.0} ms", s.name);
    }
    println!("  target for the gateway (through the connector): < 1 s");

    println!("\n{CLIENTS} clients at once, each SELECT INBOX and {FULL}");
    let gw_pid = d.gateway.proc_pid().unwrap_or(0);
    let mut walls = Vec::new();
    for s in &servers {
        let (wall, p50, max) = at_once(s).await?;
        walls.push(wall);
        println!(
            "  {:<16} all done in {:>7.0} ms   one client p50 {p50:>7.0} ms, max {max:>7.0} ms",
            s.name, wall
        );
    }
    println!(
        "  ratio gateway / dovecot (all done)   {:.2}; gateway peak memory over the run {} MB",
        walls[0] / walls[1],
        peak_kib(gw_pid).unwrap_or(0) / 1024
    );
    Ok(())
}
