//! Benchmark (not a test): initial import of 5,000 events and 5,000 contacts from a
//! real Radicale into the gateway, against the same data:
//!
//! - **postern**: gateway + connector (release builds), wall time until every item is
//!   in PostgreSQL, and the peak memory (VmHWM) of both processes;
//! - **vdirsyncer**: `vdirsyncer sync` of the same collections into a local folder;
//! - **floor**: one PROPFIND plus one multiget per collection fetching every item from
//!   the same server, the back end's own speed.
//!
//! Prints the figures and the ratios. Run it with `scripts/bench-import.sh`.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use postern_e2e::backends::{Radicale, Seed, generated_contacts, generated_events};
use postern_e2e::{
    Connector, Deployment, SourceSpec, connector_config, peak_kib, run_measured, wait_until,
};

async fn floor(url: &str) -> Result<Duration> {
    let http = reqwest::Client::new();
    let started = Instant::now();
    for (coll, report, ns, data) in [
        (
            "/alice/calendar/",
            "calendar-multiget",
            "urn:ietf:params:xml:ns:caldav",
            "calendar-data",
        ),
        (
            "/alice/contacts/",
            "addressbook-multiget",
            "urn:ietf:params:xml:ns:carddav",
            "address-data",
        ),
    ] {
        let listing = http
            .request(
                reqwest::Method::from_bytes(b"PROPFIND")?,
                format!("{}{}", url.trim_end_matches('/'), coll),
            )
            .basic_auth("alice", Some("alicepw"))
            .header("Depth", "1")
            .header("Content-Type", "application/xml")
            .body(
                r#"<?xml version="1.0"?><propfind xmlns="DAV:"><prop><getetag/></prop></propfind>"#,
            )
            .send()
            .await?
            .text()
            .await?;
        let hrefs: Vec<&str> = listing
            .split("<href>")
            .skip(1)
            .filter_map(|p| p.split("</href>").next())
            .filter(|h| !h.ends_with('/'))
            .collect();
        let mut body = format!(
            r#"<?xml version="1.0"?><x:{report} xmlns="DAV:" xmlns:x="{ns}"><prop><getetag/><x:{data}/></prop>"#
        );
        for h in &hrefs {
            body.push_str(&format!("<href>{h}</href>"));
        }
        body.push_str(&format!("</x:{report}>"));
        let got = http
            .request(
                reqwest::Method::from_bytes(b"REPORT")?,
                format!("{}{}", url.trim_end_matches('/'), coll),
            )
            .basic_auth("alice", Some("alicepw"))
            .header("Depth", "1")
            .header("Content-Type", "application/xml")
            .body(body)
            .send()
            .await?
            .text()
            .await?;
        if got.matches(data).count() < hrefs.len() {
            bail!(
                "floor multiget of {coll} returned fewer items than listed ({} hrefs)",
                hrefs.len()
            );
        }
    }
    Ok(started.elapsed())
}

fn vdirsyncer(dir: &std::path::Path, url: &str) -> Result<(Duration, u64)> {
    let status = dir.join("vdir-status");
    let local = dir.join("vdir-local");
    std::fs::create_dir_all(local.join("cal"))?;
    std::fs::create_dir_all(local.join("card"))?;
    let config = dir.join("vdirsyncer.conf");
    std::fs::write(
        &config,
        format!(
            "[general]\nstatus_path = \"{s}\"\n\n[pair cal]\na = \"cal_remote\"\nb = \"cal_local\"\ncollections = [\"calendar\"]\n\n\
             [storage cal_remote]\ntype = \"caldav\"\nurl = \"{url}\"\nusername = \"alice\"\npassword = \"alicepw\"\n\n\
             [storage cal_local]\ntype = \"filesystem\"\npath = \"{l}/cal/\"\nfileext = \".ics\"\n\n\
             [pair card]\na = \"card_remote\"\nb = \"card_local\"\ncollections = [\"contacts\"]\n\n\
             [storage card_remote]\ntype = \"carddav\"\nurl = \"{url}\"\nusername = \"alice\"\npassword = \"alicepw\"\n\n\
             [storage card_local]\ntype = \"filesystem\"\npath = \"{l}/card/\"\nfileext = \".vcf\"\n",
            s = status.display(),
            l = local.display()
        ),
    )?;
    // Discovery is set-up, not sync: run it first, outside the timing.
    let discover = Command::new("sh")
        .arg("-c")
        .arg("yes | vdirsyncer discover")
        .env("VDIRSYNCER_CONFIG", &config)
        .output()
        .context("vdirsyncer discover")?;
    if !discover.status.success() {
        bail!(
            "vdirsyncer discover failed: {}",
            String::from_utf8_lossy(&discover.stderr)
        );
    }
    let (took, kib) = run_measured(&["vdirsyncer", "sync"], &[("VDIRSYNCER_CONFIG", &config)])?;
    let files = std::fs::read_dir(local.join("cal/calendar"))?.count()
        + std::fs::read_dir(local.join("card/contacts"))?.count();
    if files < 10_000 {
        bail!("vdirsyncer synced only {files} items");
    }
    Ok((took, kib))
}

#[tokio::main]
async fn main() -> Result<()> {
    let n: usize = std::env::var("POSTERN_BENCH_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    println!("import benchmark: {n} events + {n} contacts from Radicale");
    let d = Deployment::start("bench", &[]).await?;
    let rad = Radicale::start(
        &d.dir,
        &[
            Seed::calendar("calendar", generated_events(n, "bench")),
            Seed::addressbook("contacts", generated_contacts(n, "bench")),
        ],
    )
    .await?;
    // Radicale builds its item cache on first read; warm it so every contender meets
    // the same server.
    let warm = floor(&rad.url).await?;
    let floor_time = floor(&rad.url).await?;

    let sources: Vec<SourceSpec> = [("cal", "caldav"), ("card", "carddav")]
        .iter()
        .map(|(name, kind)| SourceSpec::alice(name, kind, &rad.url, "1h"))
        .collect();
    let started = Instant::now();
    let conn = Connector::start(
        &d.dir,
        "bench",
        &connector_config(&d.gateway.grpc_url, &d.token, &sources),
    )?;
    wait_until("import", Duration::from_secs(600), || async {
        let rows = d
            .query("SELECT count(*) FROM items WHERE NOT deleted")
            .await?;
        Ok((rows[0].get::<_, i64>(0) as usize >= 2 * n).then_some(()))
    })
    .await?;
    let postern = started.elapsed();
    let gw_peak = d.gateway.proc_pid().and_then(peak_kib).unwrap_or(0);
    let conn_peak = conn.proc.pid().and_then(peak_kib).unwrap_or(0);

    let (vdir, vdir_kib) = vdirsyncer(&d.dir.0, &rad.url)?;

    println!(
        "radicale warm-up (cache build)     {:>8.2} s",
        warm.as_secs_f64()
    );
    println!(
        "floor (PROPFIND + multiget)        {:>8.2} s",
        floor_time.as_secs_f64()
    );
    println!(
        "postern import (gateway+connector) {:>8.2} s   peak memory: gateway {} MB, connector {} MB",
        postern.as_secs_f64(),
        gw_peak / 1024,
        conn_peak / 1024
    );
    println!(
        "vdirsyncer sync                    {:>8.2} s   peak memory: {} MB",
        vdir.as_secs_f64(),
        vdir_kib / 1024
    );
    println!(
        "ratio postern / floor              {:>8.2}",
        postern.as_secs_f64() / floor_time.as_secs_f64()
    );
    println!(
        "ratio postern / vdirsyncer         {:>8.2}",
        postern.as_secs_f64() / vdir.as_secs_f64()
    );
    Ok(())
}
