//! What the CalDAV/CardDAV scenarios share: a deployment with a Radicale behind a
//! connector and a user whose password is known, python-caldav, and raw requests.

use std::time::Duration;

use anyhow::{Result, bail};
use reqwest::{Method, StatusCode};

use crate::backends::{Radicale, Seed, fixture_items};
use crate::{Connector, Deployment, SourceSpec, admin, connector_config, last_line, wait_until};

/// How long scenarios wait for a condition.
pub const WAIT: Duration = Duration::from_secs(60);

/// A deployment with Radicale (calendar `work`, address book `contacts`) synced for
/// gateway user `carol@acme`.
pub struct Setup {
    /// The deployment.
    pub d: Deployment,
    /// The back end.
    pub rad: Radicale,
    /// The connector.
    pub conn: Connector,
    /// carol's app password.
    pub password: String,
    /// The gateway's HTTP base URL.
    pub base: String,
}

/// Starts everything and waits for the first import.
pub async fn setup(name: &str, gateway_args: &[&str], interval: &str) -> Result<Setup> {
    setup_with(name, gateway_args, interval, "").await
}

/// [`setup`] with more Radicale `[server]` settings.
pub async fn setup_with(
    name: &str,
    gateway_args: &[&str],
    interval: &str,
    radicale_server: &str,
) -> Result<Setup> {
    let d = Deployment::start(name, gateway_args).await?;
    // The deployment's first password was printed once; make a fresh user to know it.
    let password = last_line(&admin(
        &d.db,
        &["user", "add", "--tenant", "acme", "carol"],
    )?);
    let rad = Radicale::start_with(
        &d.dir,
        &[
            Seed::calendar("work", fixture_items("calendar")),
            Seed::addressbook("contacts", fixture_items("contacts")),
        ],
        radicale_server,
    )
    .await?;
    let mut cal = SourceSpec::alice("cal", "caldav", &rad.url, interval);
    cal.user = "carol".into();
    let mut card = SourceSpec::alice("card", "carddav", &rad.url, interval);
    card.user = "carol".into();
    let conn = Connector::start(
        &d.dir,
        "hq",
        &connector_config(&d.gateway.grpc_url, &d.token, &[cal, card]),
    )?;
    let coll = d.collection("/alice/work/").await?;
    wait_until("import", WAIT, || async {
        Ok((d.items_by_uid(coll).await?.len() == 5).then_some(()))
    })
    .await?;
    let base = format!("http://127.0.0.1:{}", d.gateway.http_port);
    Ok(Setup {
        d,
        rad,
        conn,
        password,
        base,
    })
}

/// Runs a python-caldav step (tests/clients/caldav_client.py) as carol.
pub fn py(s: &Setup, args: &[&str]) -> Result<serde_json::Value> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/caldav_client.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(format!("{}/", s.base))
        .arg("carol@acme")
        .arg(&s.password)
        .args(args)
        .output()?;
    if !out.status.success() {
        bail!(
            "python-caldav {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(serde_json::from_slice(out.stdout.trim_ascii())?)
}

/// The `uids` of a python-caldav answer.
pub fn uids(v: &serde_json::Value) -> Vec<String> {
    v["uids"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|u| u.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// A raw request; returns status and body.
pub async fn raw(
    s: &Setup,
    method: &str,
    path: &str,
    who: (&str, &str),
    headers: &[(&str, &str)],
    body: &str,
) -> Result<(StatusCode, String)> {
    let mut r = reqwest::Client::new()
        .request(
            Method::from_bytes(method.as_bytes())?,
            format!("{}{path}", s.base),
        )
        .basic_auth(who.0, Some(who.1));
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let resp = r.body(body.to_string()).send().await?;
    let status = resp.status();
    Ok((status, resp.text().await?))
}
