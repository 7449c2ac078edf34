//! Benchmark (not a test): a 10,000-message INBOX of realistic sizes on a real
//! Dovecot, imported by Postern and, in the same run, by its peer and by the floor:
//!
//! - **floor**: one `UID FETCH 1:* (UID FLAGS MODSEQ INTERNALDATE RFC822.SIZE
//!   BODY.PEEK[])` on one connection, reading every byte (the server's own speed);
//! - **mbsync** (isync): the same mailbox copied into a local Maildir;
//! - **postern**: connector + gateway (release builds), until every message is in
//!   PostgreSQL; the peak memory of both processes.
//!
//! Then, on the imported mailbox: the duration of idle incremental rounds (the
//! connector's own report), 1,000 flag changes on the server reaching the gateway
//! (and the body bytes they moved: none is the target), and the latency of a server
//! change reaching the gateway through IDLE with an hour's interval.
//!
//! `scripts/bench-mail.sh`; `POSTERN_BENCH_MESSAGES` changes the size (10,000).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use postern_e2e::backends::Dovecot;
use postern_e2e::mail::body_bytes;
use postern_e2e::mailbench::{Raw, fill_maildir, median, message};
use postern_e2e::{
    Connector, Deployment, SourceSpec, connector_config, peak_kib, run_measured, wait_until,
};

async fn floor(port: u16) -> Result<(Duration, u64)> {
    let mut raw = Raw::login(port).await?;
    let started = Instant::now();
    let bytes = raw
        .run("UID FETCH 1:* (UID FLAGS MODSEQ INTERNALDATE RFC822.SIZE BODY.PEEK[])")
        .await?;
    Ok((started.elapsed(), bytes))
}

/// `mbsync` pulling INBOX into a local Maildir: wall time and peak memory (KiB).
fn mbsync(dir: &Path, port: u16, n: usize) -> Result<(Duration, u64)> {
    let local = dir.join("mbsync");
    std::fs::create_dir_all(&local)?;
    let config = dir.join("mbsyncrc");
    std::fs::write(
        &config,
        format!(
            "IMAPAccount bench\nHost 127.0.0.1\nPort {port}\nUser alice\nPass alicepw\nSSLType None\nAuthMechs LOGIN\n\n\
             IMAPStore remote\nAccount bench\n\n\
             MaildirStore local\nPath {l}/\nInbox {l}/INBOX\n\n\
             Channel bench\nFar :remote:\nNear :local:\nPatterns INBOX\nCreate Near\nSync Pull\nSyncState *\n",
            l = local.display()
        ),
    )?;
    let config_arg = config.display().to_string();
    let (took, kib) = run_measured(&["mbsync", "-q", "-c", &config_arg, "bench"], &[])
        .context("running mbsync")?;
    let files = std::fs::read_dir(local.join("INBOX/cur"))?.count()
        + std::fs::read_dir(local.join("INBOX/new"))?.count();
    if files != n {
        bail!("mbsync copied {files} messages of {n}");
    }
    Ok((took, kib))
}

/// Live messages of a gateway mailbox with this flag.
async fn with_flag(d: &Deployment, inbox: uuid::Uuid, flag: &str) -> Result<i64> {
    Ok(d.query(&format!(
        "SELECT count(*) FROM items WHERE collection_id = '{inbox}' AND NOT deleted AND '{flag}' = ANY(flags)"
    ))
    .await?[0]
        .get(0))
}

/// The durations (µs) of the idle rounds of INBOX the connector logged.
fn idle_rounds(log: &Path) -> Result<Vec<u64>> {
    let text = std::fs::read_to_string(log)?;
    Ok(text
        .lines()
        .filter(|l| l.contains("idle round") && l.contains("collection=/INBOX"))
        .filter_map(|l| l.split("took_us=").nth(1))
        .filter_map(|v| v.split_whitespace().next()?.parse().ok())
        .collect())
}

/// CPU seconds (user + system) a process has used.
/// PostgreSQL alone storing the same bodies the way the gateway keeps them (out of
/// line, uncompressed) in the cheapest way it takes bytes (COPY, 8 MiB at a time),
/// from this process: what any design keeping message bodies in PostgreSQL pays
/// before doing anything else. Returns the wall time and PostgreSQL's CPU.
async fn postgres_alone(d: &Deployment, n: usize) -> Result<(Duration, f64)> {
    use tokio_postgres::binary_copy::BinaryCopyInWriter;
    use tokio_postgres::types::Type;
    let c = d.store.client().await?;
    c.batch_execute(
        "CREATE TABLE bench_bodies (id bigint PRIMARY KEY, size bigint NOT NULL, body bytea NOT NULL);
         ALTER TABLE bench_bodies ALTER COLUMN body SET STORAGE EXTERNAL;",
    )
    .await?;
    let messages: Vec<Vec<u8>> = (0..n).map(message).collect();
    let cpu = cpu_of("postgres");
    let started = Instant::now();
    let mut next = messages.iter().enumerate().peekable();
    while next.peek().is_some() {
        let sink = c.copy_in("COPY bench_bodies FROM STDIN BINARY").await?;
        let writer = BinaryCopyInWriter::new(sink, &[Type::INT8, Type::INT8, Type::BYTEA]);
        futures::pin_mut!(writer);
        let mut bytes = 0;
        while bytes < 8 << 20 {
            let Some((i, m)) = next.next() else { break };
            bytes += m.len();
            writer
                .as_mut()
                .write(&[&(i as i64), &(m.len() as i64), &m.as_slice()])
                .await?;
        }
        writer.finish().await?;
    }
    let (took, cpu) = (started.elapsed(), cpu_of("postgres") - cpu);
    c.batch_execute("DROP TABLE bench_bodies").await?;
    Ok((took, cpu))
}

fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime and stime are the
    // 12th and 13th of them, in clock ticks (100 per second on Linux).
    let rest = stat.rsplit(')').next().unwrap_or_default();
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    f.iter().sum::<u64>() as f64 / 100.0
}

/// CPU seconds used by every process named `name` (`comm`), with the children they
/// have reaped (a PostgreSQL backend or a Dovecot session that ended).
fn cpu_of(name: &str) -> f64 {
    let mut ticks = 0u64;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        if head.split_once('(').map(|(_, comm)| comm) != Some(name) {
            continue;
        }
        // utime, stime, cutime, cstime.
        ticks += rest
            .split_whitespace()
            .skip(11)
            .take(4)
            .filter_map(|v| v.parse::<u64>().ok())
            .sum::<u64>();
    }
    ticks as f64 / 100.0
}

#[tokio::main]
async fn main() -> Result<()> {
    let n: usize = std::env::var("POSTERN_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let d = Deployment::start("mail-bench", &[]).await?;
    let dc = Dovecot::start(&d.dir).await?;
    let total = fill_maildir(&dc, n)?;
    println!(
        "mail import benchmark: {n} messages, {:.1} MB, in one INBOX on Dovecot",
        total as f64 / 1e6
    );
    // Dovecot indexes the Maildir on first access; warm it (and the page cache) so
    // every contender meets the same server.
    let (warm, _) = floor(dc.port).await?;
    let (floor_time, floor_bytes) = floor(dc.port).await?;
    anyhow::ensure!(floor_bytes >= total, "the floor read {floor_bytes} bytes");
    let (mbsync_time, mbsync_kib) = mbsync(&d.dir.0, dc.port, n)?;

    let gw_pid = d.gateway.proc_pid().unwrap_or(0);
    let gw_cpu = cpu_secs(gw_pid);
    let (pg_cpu, imap_cpu) = (cpu_of("postgres"), cpu_of("imap"));
    let started = Instant::now();
    let src = SourceSpec::alice("mail", "imap", &dc.url(), "1s");
    let config = connector_config(&d.gateway.grpc_url, &d.token, &[src]);
    let conn = Connector::start(&d.dir, "bench", &config)?;
    let inbox = d.collection("/INBOX").await?;
    // Watched in the connector's log (the round that imported INBOX ends), so that
    // watching costs PostgreSQL nothing; then the messages are counted.
    wait_until("import", Duration::from_secs(1800), || async {
        let log = std::fs::read_to_string(&conn.proc.log).unwrap_or_default();
        let done = log
            .lines()
            .any(|l| l.contains("round done") && l.contains("collection=/INBOX "));
        if !done {
            return Ok(None);
        }
        let rows = d
            .query(&format!(
                "SELECT count(*) FROM items WHERE collection_id = '{inbox}' AND NOT deleted"
            ))
            .await?;
        Ok((rows[0].get::<_, i64>(0) as usize >= n).then_some(()))
    })
    .await?;
    let postern = started.elapsed();
    let conn_cpu = conn.proc.pid().map_or(0.0, cpu_secs);
    let gw_cpu = cpu_secs(gw_pid) - gw_cpu;
    let (pg_cpu, imap_cpu) = (cpu_of("postgres") - pg_cpu, cpu_of("imap") - imap_cpu);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let gw_peak = d.gateway.proc_pid().and_then(peak_kib).unwrap_or(0);
    let conn_peak = conn.proc.pid().and_then(peak_kib).unwrap_or(0);

    // Idle rounds: a few intervals with nothing to do.
    let before = idle_rounds(&conn.proc.log)?.len();
    wait_until("idle rounds", Duration::from_secs(60), || async {
        Ok((idle_rounds(&conn.proc.log)?.len() >= before + 8).then_some(()))
    })
    .await?;
    let mut idle: Vec<f64> = idle_rounds(&conn.proc.log)?[before..]
        .iter()
        .map(|us| *us as f64 / 1000.0)
        .collect();
    let idle_max = idle.iter().copied().fold(0.0, f64::max);
    let idle_p50 = median(&mut idle);

    // 1,000 flag changes on the server.
    let bytes_before = body_bytes(&d, "to_gateway").await?;
    let mut raw = Raw::login(dc.port).await?;
    let flagged = Instant::now();
    raw.run("UID STORE 1:1000 +FLAGS.SILENT (\\Flagged)")
        .await?;
    let want = n.min(1000) as i64;
    wait_until("1,000 flags", Duration::from_secs(120), || async {
        Ok((with_flag(&d, inbox, "\\Flagged").await? >= want).then_some(()))
    })
    .await?;
    let flags_time = flagged.elapsed();
    let flag_bytes = body_bytes(&d, "to_gateway").await? - bytes_before;
    drop(conn);

    // IDLE latency, with an hour's interval: only IDLE can bring the change.
    let src = SourceSpec::alice("mail", "imap", &dc.url(), "1h");
    let config = connector_config(&d.gateway.grpc_url, &d.token, &[src]);
    let conn = Connector::start(&d.dir, "bench-idle", &config)?;
    // The catch-up round after the start comes first.
    let rounds = || async {
        Ok::<f64, anyhow::Error>(d.query(&format!(
            "SELECT COALESCE(EXTRACT(EPOCH FROM last_round_at)::float8, 0) FROM collections WHERE id = '{inbox}'"
        ))
        .await?[0]
            .get::<_, f64>(0))
    };
    let restarted = rounds().await?;
    wait_until("catch-up round", Duration::from_secs(60), || async {
        Ok((rounds().await? > restarted).then_some(()))
    })
    .await?;
    // IDLE is set up after the first round; give it a moment before the first change.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut latencies = Vec::new();
    for k in 0..10 {
        let flag = format!("$idle{k}");
        let at = Instant::now();
        raw.run(&format!("UID STORE {} +FLAGS.SILENT ({flag})", n / 2 + k))
            .await?;
        wait_until(
            "the change through IDLE",
            Duration::from_secs(30),
            || async { Ok((with_flag(&d, inbox, &flag).await? == 1).then_some(())) },
        )
        .await?;
        latencies.push(at.elapsed().as_secs_f64() * 1000.0);
    }
    let idle_latency_max = latencies.iter().copied().fold(0.0, f64::max);
    let idle_latency = median(&mut latencies);

    // End to end: a mail client idling on the gateway's IMAP port, on another
    // gateway replica than the connector's, hears of the server's change.
    let replica = postern_e2e::Gateway::start(&d.db, &d.dir, &[]).await?;
    let pw = postern_e2e::last_line(&postern_e2e::admin(
        &d.db,
        &["user", "rotate", "--tenant", "acme", "alice"],
    )?);
    let mut to_client = Vec::new();
    for k in 0..5 {
        let idling = postern_e2e::imaplib::Idling::start(
            replica.imap_port,
            serde_json::json!([
                {"login": ["alice@acme", pw]},
                {"call": "select", "args": ["INBOX", true]},
                {"idle": 30},
            ]),
        )
        .await?;
        let at = Instant::now();
        raw.run(&format!(
            "UID STORE {} +FLAGS.SILENT ($client{k})",
            n / 2 + 20 + k
        ))
        .await?;
        let heard = idling.finish().await?;
        anyhow::ensure!(
            postern_e2e::imaplib::lines(&heard[0])
                .join(" ")
                .contains("FETCH"),
            "the client heard nothing: {heard:?}"
        );
        to_client.push(at.elapsed().as_secs_f64() * 1000.0);
    }
    let to_client_max = to_client.iter().copied().fold(0.0, f64::max);
    let to_client_p50 = median(&mut to_client);
    drop(conn);
    let (pg_alone, pg_alone_cpu) = postgres_alone(&d, n).await?;

    println!(
        "dovecot warm-up (indexing)          {:>8.2} s",
        warm.as_secs_f64()
    );
    println!(
        "floor (one UID FETCH 1:*)           {:>8.2} s   {:.1} MB read",
        floor_time.as_secs_f64(),
        floor_bytes as f64 / 1e6
    );
    println!(
        "postern import (connector+gateway)  {:>8.2} s   peak memory: connector {} MB, gateway {} MB; CPU: connector {conn_cpu:.2} s, gateway {gw_cpu:.2} s",
        postern.as_secs_f64(),
        conn_peak / 1024,
        gw_peak / 1024
    );
    println!(
        "  CPU of the import: PostgreSQL {pg_cpu:.2} s, Dovecot {imap_cpu:.2} s; all four {:.2} s on {cores} cores (a floor of {:.2} s wall)",
        conn_cpu + gw_cpu + pg_cpu + imap_cpu,
        (conn_cpu + gw_cpu + pg_cpu + imap_cpu) / cores as f64
    );
    println!(
        "PostgreSQL alone storing the bodies {:>8.2} s   PostgreSQL CPU {pg_alone_cpu:.2} s (COPY, 8 MiB at a time)",
        pg_alone.as_secs_f64()
    );
    println!(
        "mbsync (isync) into a Maildir       {:>8.2} s   peak memory: {} MB",
        mbsync_time.as_secs_f64(),
        mbsync_kib / 1024
    );
    println!(
        "ratio postern / floor               {:>8.2}   (target <= 1.3)",
        postern.as_secs_f64() / floor_time.as_secs_f64()
    );
    println!(
        "ratio PostgreSQL alone / floor      {:>8.2}   (storing the bytes in PostgreSQL, nothing else)",
        pg_alone.as_secs_f64() / floor_time.as_secs_f64()
    );
    println!(
        "ratio postern / mbsync              {:>8.2}   (target < 1)",
        postern.as_secs_f64() / mbsync_time.as_secs_f64()
    );
    println!(
        "idle round of the {n}-message INBOX p50 {idle_p50:.1} ms, max {idle_max:.1} ms over {} rounds (target < 50 ms)",
        idle.len()
    );
    println!(
        "1,000 flag changes on the server    {:>8.2} s to the gateway, {flag_bytes} body bytes moved (target 0)",
        flags_time.as_secs_f64()
    );
    println!(
        "IDLE: server change to gateway      p50 {idle_latency:.0} ms, max {idle_latency_max:.0} ms over 10 changes (target < 1 s)"
    );
    println!(
        "IDLE: server change to a mail client idling on another gateway replica p50 {to_client_p50:.0} ms, max {to_client_max:.0} ms over 5 changes (target < 1 s; includes the client's DONE and LOGOUT)"
    );
    Ok(())
}
