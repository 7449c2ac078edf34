//! TLS on the connector's stream, with certificates made in the test: the connector
//! verifies the gateway against a private CA, and with mutual TLS the gateway only
//! accepts connectors holding a certificate its CA signed.

use std::time::Duration;

use anyhow::Result;
use postern_e2e::backends::{Radicale, Seed, fixture_items};
use postern_e2e::pki::pki;
use postern_e2e::{Connector, Deployment, Scratch, SourceSpec, connector_config, wait_until};

const WAIT: Duration = Duration::from_secs(60);

fn https(d: &Deployment) -> String {
    d.gateway
        .grpc_url
        .replace("http://127.0.0.1", "https://localhost")
}

async fn collections(d: &Deployment) -> Result<i64> {
    Ok(d.query("SELECT count(*) FROM collections").await?[0].get(0))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_connector_verifies_the_gateway_and_mutual_tls_keeps_strangers_out() -> Result<()> {
    let dir = Scratch::new("tls-pki");
    let p = pki(&dir)?;
    let (cert, key, ca) = (
        p.cert.display().to_string(),
        p.key.display().to_string(),
        p.ca.display().to_string(),
    );
    let d = Deployment::start(
        "tls",
        &[
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--tls-client-ca",
            &ca,
        ],
    )
    .await?;
    let rad = Radicale::start(&d.dir, &[Seed::calendar("work", fixture_items("calendar"))]).await?;
    let base = connector_config(
        &https(&d),
        &d.token,
        &[SourceSpec::alice("cal", "caldav", &rad.url, "1h")],
    );

    // Without the private CA the connector cannot trust the gateway: it never connects.
    let untrusting = Connector::start(&d.dir, "untrusting", &base)?;
    // Trusting the CA but without a client certificate: the gateway refuses it.
    let anonymous = Connector::start(
        &d.dir,
        "anonymous",
        &format!("ca_file = \"{}\"\n{base}", p.ca.display()),
    )?;
    wait_until("both to fail and retry", WAIT, || async {
        let a = untrusting.proc.output().matches("link failed").count();
        let b = anonymous.proc.output().matches("link failed").count();
        Ok((a >= 2 && b >= 2).then_some(()))
    })
    .await?;
    assert_eq!(
        collections(&d).await?,
        0,
        "nothing was written over a refused link"
    );

    // With the CA and a client certificate the CA signed, it syncs.
    let config = format!(
        "ca_file = \"{}\"\nclient_cert_file = \"{}\"\nclient_key_file = \"{}\"\n{base}",
        p.ca.display(),
        p.client_cert.display(),
        p.client_key.display()
    );
    let _trusted = Connector::start(&d.dir, "trusted", &config)?;
    let coll = d.collection("/alice/work/").await?;
    wait_until("import over mutual TLS", WAIT, || async {
        Ok((d.items_by_uid(coll).await?.len() == 5).then_some(()))
    })
    .await?;

    // The DAV port speaks HTTPS with the same certificate; clients trusting the CA
    // get in, and plain HTTP gets nowhere.
    let password = postern_e2e::last_line(&postern_e2e::admin(
        &d.db,
        &["user", "add", "--tenant", "acme", "tls-user"],
    )?);
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&p.ca)?)?)
        .build()?;
    let base = format!("https://localhost:{}", d.gateway.http_port);
    assert_eq!(
        client.get(format!("{base}/healthz")).send().await?.status(),
        200
    );
    let resp = client
        .request(
            reqwest::Method::from_bytes(b"PROPFIND")?,
            format!("{base}/dav/principals/tls-user@acme/"),
        )
        .basic_auth("tls-user@acme", Some(&password))
        .header("Depth", "0")
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 207);
    assert!(
        reqwest::get(format!("http://127.0.0.1:{}/healthz", d.gateway.http_port))
            .await
            .is_err()
    );
    Ok(())
}
