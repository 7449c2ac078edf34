//! Benchmark (not a test) of the CalDAV endpoint, side by side in one run against
//! Radicale and Xandikos holding the same 1,000-event calendar:
//!
//! - requests/s of a no-change `sync-collection` and of `PROPFIND` depth 1, with 50
//!   concurrent clients (wrk), and of a trivial static route on the gateway (the
//!   ceiling of the HTTP stack on this machine);
//! - one `calendar-query` of every event with its data: time to the answer's head and
//!   to its end, and the gateway's peak memory;
//! - latency from a client's PUT on the gateway to the item being on the back end
//!   (p50, p99 over 200 writes), with the connector attached.
//!
//! `POSTERN_BENCH_BIG=N` measures instead the gateway alone with N events (large
//! answers: calendar-query and sync-collection with data, and memory).
//!
//! `POSTERN_BENCH_FILTERED=N` measures a filtered `calendar-query` (a text-match on
//! SUMMARY and a one-month time-range, with data) over an N-event calendar where one
//! event in five recurs (weekly for ever, daily for a month, with exceptions and
//! excluded dates), on the gateway, Radicale and Xandikos in the same run: median and
//! p90 of sequential queries, and requests/s with 8 concurrent clients.
//!
//! Run it with `scripts/bench-dav.sh`.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine;
use postern_e2e::backends::{Radicale, Seed, Xandikos, generated_events};
use postern_e2e::dav::Dav;
use postern_e2e::{
    Connector, Deployment, SourceSpec, admin, connector_config, last_line, wait_until,
};

const SYNC: &str = r#"<?xml version="1.0"?><d:sync-collection xmlns:d="DAV:"><d:sync-token>TOKEN</d:sync-token><d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>"#;
const PROPFIND: &str = r#"<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:getetag/><d:getcontenttype/></d:prop></d:propfind>"#;

const QUERY: &str = r#"<?xml version="1.0"?><c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><d:getetag/><c:calendar-data/></d:prop><c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT"/></c:comp-filter></c:filter></c:calendar-query>"#;

/// One REPORT (`QUERY`: every event with its data, as some clients do for a first
/// sync): the time until the answer's head arrives, until its last byte, and its size.
async fn answer(
    url: &str,
    auth: Option<(&str, &str)>,
    query: &str,
) -> Result<(Duration, Duration, usize)> {
    let started = Instant::now();
    let mut r = reqwest::Client::new()
        .request(reqwest::Method::from_bytes(b"REPORT")?, url)
        .header("Content-Type", "application/xml")
        .header("Depth", "1")
        .body(query.to_string());
    if let Some((u, p)) = auth {
        r = r.basic_auth(u, Some(p));
    }
    let mut resp = r.send().await?;
    let head = started.elapsed();
    if resp.status().as_u16() != 207 {
        bail!("REPORT on {url} answered {}", resp.status());
    }
    let mut bytes = 0;
    while let Some(chunk) = resp.chunk().await? {
        bytes += chunk.len();
    }
    Ok((head, started.elapsed(), bytes))
}

use postern_e2e::proc_kib as kib;

/// The sync token a server gives for an empty-token sync of `url`.
async fn token(url: &str, auth: Option<(&str, &str)>) -> Result<String> {
    let mut r = reqwest::Client::new()
        .request(reqwest::Method::from_bytes(b"REPORT")?, url)
        .header("Content-Type", "application/xml")
        .header("Depth", "1")
        .body(SYNC.replace("TOKEN", ""));
    if let Some((u, p)) = auth {
        r = r.basic_auth(u, Some(p));
    }
    let body = r.send().await?.text().await?;
    let root = postern_davxml::parse(body.as_bytes()).context("sync answer")?;
    Ok(root
        .child(postern_davxml::DAV, "sync-token")
        .context("no sync-token")?
        .trimmed()
        .to_string())
}

/// Requests per second wrk measures for one request shape, 50 connections.
fn wrk(
    dir: &std::path::Path,
    url: &str,
    method: &str,
    body: &str,
    depth: &str,
    auth: Option<(&str, &str)>,
) -> Result<f64> {
    wrk_c(dir, url, method, body, depth, auth, (50, 8))
}

/// [`wrk`] with `(connections, seconds)` of load.
fn wrk_c(
    dir: &std::path::Path,
    url: &str,
    method: &str,
    body: &str,
    depth: &str,
    auth: Option<(&str, &str)>,
    (connections, seconds): (usize, u32),
) -> Result<f64> {
    let script = dir.join(format!("wrk-{}.lua", rand_name()));
    let mut lua =
        format!("wrk.method = \"{method}\"\nwrk.headers[\"Content-Type\"] = \"application/xml\"\n");
    if !depth.is_empty() {
        lua.push_str(&format!("wrk.headers[\"Depth\"] = \"{depth}\"\n"));
    }
    if let Some((u, p)) = auth {
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        lua.push_str(&format!("wrk.headers[\"Authorization\"] = \"Basic {b}\"\n"));
    }
    if !body.is_empty() {
        lua.push_str(&format!("wrk.body = [[{body}]]\n"));
    }
    std::fs::write(&script, lua)?;
    let out = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--timeout",
            "30s",
            "-s",
        ])
        .arg(&script)
        .arg(url)
        .output()
        .context("running wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if text.contains("Non-2xx") {
        bail!("{method} {url} answered errors under load:\n{text}");
    }
    text.lines()
        .find_map(|l| {
            l.strip_prefix("Requests/sec:")
                .map(|v| v.trim().parse::<f64>())
        })
        .context(format!("no wrk figure for {url}:\n{text}"))?
        .context("wrk figure")
}

fn rand_name() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

const SYNC_DATA: &str = r#"<?xml version="1.0"?><d:sync-collection xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:sync-token/><d:sync-level>1</d:sync-level><d:prop><d:getetag/><c:calendar-data/></d:prop></d:sync-collection>"#;

/// A deployment whose user `bench@acme` (password returned) has Radicale's calendar of
/// `events` imported through a connector (kept, for the writes that follow).
async fn imported(
    name: &str,
    events: &[(String, Vec<u8>)],
) -> Result<(Deployment, String, Radicale, Connector)> {
    // wrk's 50 connections are all one user here; real users have a few devices, so
    // the per-user bound (16 at once) is raised to measure the endpoint, not the bound.
    let d = Deployment::start(name, &["--max-requests-per-user", "64"]).await?;
    let password = last_line(&admin(
        &d.db,
        &["user", "add", "--tenant", "acme", "bench"],
    )?);
    let rad = Radicale::start(&d.dir, &[Seed::calendar("calendar", events.to_vec())]).await?;
    let mut src = SourceSpec::alice("cal", "caldav", &rad.url, "1h");
    src.user = "bench".into();
    let conn = Connector::start(
        &d.dir,
        "bench",
        &connector_config(&d.gateway.grpc_url, &d.token, &[src]),
    )?;
    let coll = d.collection("/alice/calendar/").await?;
    wait_until("import", Duration::from_secs(900), || async {
        Ok((d.items_by_uid(coll).await?.len() == events.len()).then_some(()))
    })
    .await?;
    Ok((d, password, rad, conn))
}

/// `POSTERN_BENCH_BIG=N`: the gateway alone with an N-event calendar (too large for
/// the peers to be seeded in reasonable time): one calendar-query and one
/// sync-collection from an empty token, both with data, and the gateway's memory.
async fn big_answers(n: usize) -> Result<()> {
    println!("dav benchmark, large answers: {n}-event calendar, gateway only");
    let (d, password, _rad, conn) =
        imported("dav-bench-big", &generated_events(n, "bench")).await?;
    drop(conn);
    let url = format!(
        "http://127.0.0.1:{}/dav/calendars/bench@acme/calendar/",
        d.gateway.http_port
    );
    let pid = d.gateway.proc_pid().context("gateway pid")?;
    let me = Some(("bench@acme", password.as_str()));
    for (name, body) in [("calendar-query", QUERY), ("sync-collection", SYNC_DATA)] {
        let rss = kib(pid, "VmRSS:").unwrap_or(0);
        let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
        let (head, total, bytes) = answer(&url, me, body).await?;
        let peak = kib(pid, "VmHWM:").unwrap_or(0);
        println!(
            "  {name:<16} head {:>8.1} ms, whole {:>8.1} ms, {:>7.2} MB; gateway {:.1} MB before, peak {:.1} MB",
            head.as_secs_f64() * 1000.0,
            total.as_secs_f64() * 1000.0,
            bytes as f64 / 1e6,
            rss as f64 / 1024.0,
            peak as f64 / 1024.0
        );
    }
    Ok(())
}

/// `n` events for the filtered-query benchmark: one in five recurs, one in twenty
/// says "budget" in its summary; spread over 2025.
fn recurring_events(n: usize) -> Vec<(String, Vec<u8>)> {
    const WORDS: [&str; 8] = [
        "standup", "review", "lunch", "planning", "budget", "retro", "call", "workshop",
    ];
    (0..n)
        .map(|i| {
            let uid = format!("q-{i}@postern.test");
            let (month, day, hour) = (1 + i % 12, 1 + (i / 12) % 28, 8 + i % 10);
            let start = format!("2025{month:02}{day:02}T{hour:02}0000Z");
            let summary = format!("{} {} {i}", WORDS[i % 8], WORDS[(i / 8) % 8]);
            let mut rule = String::new();
            let mut extra = String::new();
            match i % 10 {
                0 => rule = "RRULE:FREQ=WEEKLY\r\n".into(),
                5 => {
                    rule = "RRULE:FREQ=DAILY;COUNT=30\r\n".into();
                    let ex_day = day + 2;
                    if ex_day <= 28 {
                        rule.push_str(&format!("EXDATE:2025{month:02}{ex_day:02}T{hour:02}0000Z\r\n"));
                    }
                    if day < 28 {
                        let moved = format!("2025{month:02}{:02}T{hour:02}0000Z", day + 1);
                        extra = format!(
                            "BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20250101T000000Z\r\nRECURRENCE-ID:{moved}\r\nDTSTART:2025{month:02}{:02}T{:02}0000Z\r\nDURATION:PT1H\r\nSUMMARY:{summary} (moved)\r\nEND:VEVENT\r\n",
                            day + 1,
                            hour + 2
                        );
                    }
                }
                _ => {}
            }
            let body = format!(
                "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Postern//bench//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:{start}\r\nDURATION:PT1H\r\n{rule}SUMMARY:{summary}\r\nEND:VEVENT\r\n{extra}END:VCALENDAR\r\n"
            );
            (format!("q-{i}.ics"), body.into_bytes())
        })
        .collect()
}

const FILTERED: &str = r#"<?xml version="1.0"?><c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><d:getetag/><c:calendar-data/></d:prop><c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT"><c:time-range start="20250601T000000Z" end="20250701T000000Z"/><c:prop-filter name="SUMMARY"><c:text-match collation="i;ascii-casemap">budget</c:text-match></c:prop-filter></c:comp-filter></c:comp-filter></c:filter></c:calendar-query>"#;

/// `POSTERN_BENCH_FILTERED=N`: the filtered calendar-query, side by side.
async fn filtered(n: usize) -> Result<()> {
    println!("dav benchmark, filtered calendar-query: {n}-event calendar, one in five recurring");
    let events = recurring_events(n);
    let started = Instant::now();
    let (d, password, rad, conn) = imported("dav-bench-filtered", &events).await?;
    drop(conn);
    println!(
        "  seeded radicale and imported to the gateway in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let xan = Xandikos::seeded(&d.dir, &events).await?;
    println!(
        "  seeded xandikos in {:.0} s",
        started.elapsed().as_secs_f64()
    );

    let gw_coll = format!(
        "http://127.0.0.1:{}/dav/calendars/bench@acme/calendar/",
        d.gateway.http_port
    );
    let rad_coll = format!("{}alice/calendar/", rad.url);
    let xan_coll = format!("{}alice/calendars/calendar/", xan.url);
    let me = Some(("bench@acme", password.as_str()));
    let rows = [
        ("postern gateway", gw_coll.as_str(), me),
        ("radicale", rad_coll.as_str(), Some(("alice", "alicepw"))),
        ("xandikos", xan_coll.as_str(), None),
    ];
    let dir = d.dir.0.clone();
    let mut results = Vec::new();
    for (name, url, auth) in rows {
        // One warm-up (caches: Radicale's item cache, the gateway's password cache).
        let (_, _, _) = answer(url, auth, FILTERED).await?;
        let matches = count_responses(url, auth, FILTERED).await?;
        let mut times: Vec<Duration> = Vec::new();
        for _ in 0..15 {
            times.push(answer(url, auth, FILTERED).await?.1);
        }
        times.sort();
        // Long enough for the slowest server to answer every client several times.
        let rps = wrk_c(&dir, url, "REPORT", FILTERED, "1", auth, (8, 40))?;
        results.push((
            name,
            matches,
            times[times.len() / 2],
            times[times.len() * 9 / 10],
            rps,
        ));
    }
    println!(
        "
calendar-query: SUMMARY text-match \"budget\" and June 2025, with calendar-data"
    );
    for (name, matches, p50, p90, rps) in &results {
        println!(
            "  {name:<16} {matches:>5} matches  p50 {:>8.1} ms  p90 {:>8.1} ms  {rps:>8.1} req/s (8 clients)",
            p50.as_secs_f64() * 1000.0,
            p90.as_secs_f64() * 1000.0
        );
    }
    let gw = &results[0];
    for peer in &results[1..] {
        println!(
            "  {} / postern: time {:>6.1}x, throughput postern / {} {:>6.1}x",
            peer.0,
            peer.2.as_secs_f64() / gw.2.as_secs_f64(),
            peer.0,
            gw.4 / peer.4
        );
    }
    Ok(())
}

/// How many responses a REPORT answers (to check the servers agree on the result).
async fn count_responses(url: &str, auth: Option<(&str, &str)>, query: &str) -> Result<usize> {
    let mut r = reqwest::Client::new()
        .request(reqwest::Method::from_bytes(b"REPORT")?, url)
        .header("Content-Type", "application/xml")
        .header("Depth", "1")
        .body(query.to_string());
    if let Some((u, p)) = auth {
        r = r.basic_auth(u, Some(p));
    }
    let body = r.send().await?.text().await?;
    let root = postern_davxml::parse(body.as_bytes()).context("REPORT answer")?;
    Ok(root.children_named(postern_davxml::DAV, "response").count())
}

#[tokio::main]
async fn main() -> Result<()> {
    if let Some(n) = std::env::var("POSTERN_BENCH_FILTERED")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return filtered(n).await;
    }
    if let Some(big) = std::env::var("POSTERN_BENCH_BIG")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return big_answers(big).await;
    }
    let n: usize = std::env::var("POSTERN_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    println!("dav benchmark: {n}-event calendar, 50 concurrent clients");
    let events = generated_events(n, "bench");
    let (d, password, rad, _conn) = imported("dav-bench", &events).await?;
    let xan = Xandikos::seeded(&d.dir, &events).await?;

    let gw = format!("http://127.0.0.1:{}", d.gateway.http_port);
    let gw_coll = format!("{gw}/dav/calendars/bench@acme/calendar/");
    let rad_coll = format!("{}alice/calendar/", rad.url);
    let xan_coll = format!("{}alice/calendars/calendar/", xan.url);
    let me = Some(("bench@acme", password.as_str()));
    let alice = Some(("alice", "alicepw"));
    let dir = d.dir.0.clone();

    let rows = [
        ("postern gateway", gw_coll.as_str(), me),
        ("radicale", rad_coll.as_str(), alice),
        ("xandikos", xan_coll.as_str(), None),
    ];
    let mut sync = Vec::new();
    let mut propfind = Vec::new();
    for (name, url, auth) in rows {
        let t = token(url, auth).await?;
        sync.push((
            name,
            wrk(&dir, url, "REPORT", &SYNC.replace("TOKEN", &t), "0", auth)?,
        ));
        propfind.push((name, wrk(&dir, url, "PROPFIND", PROPFIND, "1", auth)?));
    }
    let ceiling = wrk(&dir, &format!("{gw}/healthz"), "GET", "", "", None)?;

    // One big answer: the best of three runs per server; the gateway's peak memory
    // during its runs, its peak reset first (clear_refs 5).
    let pid = d.gateway.proc_pid().context("gateway pid")?;
    let rss_before = kib(pid, "VmRSS:").unwrap_or(0);
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
    let mut query = Vec::new();
    for (name, url, auth) in rows {
        let mut best = answer(url, auth, QUERY).await?;
        for _ in 0..2 {
            let run = answer(url, auth, QUERY).await?;
            if run.1 < best.1 {
                best = run;
            }
        }
        query.push((name, best));
    }
    let gw_peak = kib(pid, "VmHWM:").unwrap_or(0);

    // PUT on the gateway -> item on the back end, with the connector attached.
    let backend = Dav::new(&rad.url, "alice", "alicepw");
    let client = reqwest::Client::new();
    let mut latencies = Vec::new();
    for i in 0..200 {
        let uid = format!("latency-{i}@postern.test");
        let body = format!(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:20250901T100000Z\r\nSUMMARY:latency {i}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        );
        let started = Instant::now();
        let resp = client
            .put(format!("{gw_coll}latency-{i}.ics"))
            .basic_auth("bench@acme", Some(&password))
            .header("Content-Type", "text/calendar")
            .body(body)
            .send()
            .await?;
        if resp.status().as_u16() != 201 {
            bail!("PUT answered {}", resp.status());
        }
        let path = format!("/alice/calendar/{uid}.ics");
        loop {
            if backend.get(&path).await?.is_some() {
                break;
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("write {i} never reached the back end");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        latencies.push(started.elapsed());
    }
    latencies.sort();
    let p = |q: f64| {
        latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)].as_secs_f64()
            * 1000.0
    };

    let xan_of = |v: &[(&str, f64)]| {
        v.iter()
            .find(|(n, _)| *n == "xandikos")
            .map_or(1.0, |x| x.1)
    };
    println!("\nno-change sync-collection (requests/s, 50 clients)");
    for (name, rps) in &sync {
        println!("  {name:<16} {rps:>10.1}");
    }
    println!(
        "  ratio postern / xandikos {:>8.1}",
        sync[0].1 / xan_of(&sync)
    );
    println!("\nPROPFIND depth 1 of {n} items (requests/s, 50 clients)");
    for (name, rps) in &propfind {
        println!("  {name:<16} {rps:>10.1}");
    }
    println!(
        "  ratio postern / xandikos {:>8.1}",
        propfind[0].1 / xan_of(&propfind)
    );
    println!("\none calendar-query with calendar-data of all {n} events (best of 3)");
    for (name, (head, total, bytes)) in &query {
        println!(
            "  {name:<16} head {:>8.1} ms, whole {:>8.1} ms, {:>6.2} MB",
            head.as_secs_f64() * 1000.0,
            total.as_secs_f64() * 1000.0,
            *bytes as f64 / 1e6
        );
    }
    let xan_query = query.iter().find(|(n, _)| *n == "xandikos").map(|q| q.1.1);
    if let Some(x) = xan_query {
        println!(
            "  ratio xandikos / postern time {:>5.1}",
            x.as_secs_f64() / query[0].1.1.as_secs_f64()
        );
    }
    println!(
        "  gateway memory: {:.1} MB before, peak {:.1} MB during its queries",
        rss_before as f64 / 1024.0,
        gw_peak as f64 / 1024.0
    );
    println!("\nceiling: GET /healthz on the gateway {ceiling:>10.1} requests/s");
    println!(
        "\nPUT on the gateway -> on the back end (200 writes): p50 {:.1} ms, p99 {:.1} ms",
        p(0.50),
        p(0.99)
    );
    Ok(())
}
