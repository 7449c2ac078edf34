//! What a connector token can do to the gateway's link, against the real gateway:
//! messages that inflate past the bound end the stream with a status that says why,
//! and one token cannot open streams without bound.

use anyhow::Result;
use pb::connector_message::Body as Req;
use postern_e2e::Deployment;
use postern_e2e::link::{RawLink, Talk};
use postern_proto as pb;
use tokio_stream::StreamExt;
use tonic::codec::CompressionEncoding;

/// A change packet whose one item holds `n` zero bytes: gzip makes it tiny.
fn packet_of(n: usize) -> pb::ConnectorMessage {
    pb::ConnectorMessage {
        request_id: 7,
        body: Some(Req::ChangePacket(pb::ChangePacket {
            collection_id: uuid::Uuid::new_v4().to_string(),
            changes: vec![pb::Change {
                op: pb::change::Op::Upsert as i32,
                content: vec![0; n],
                backend_href: "/x/y.ics".into(),
                ..Default::default()
            }],
            ..Default::default()
        })),
        trace_context: Default::default(),
    }
}

/// The status the stream ended with.
async fn ending(link: &mut RawLink) -> Result<tonic::Status> {
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(30), link.rx.next()).await? {
            Some(Ok(_)) => continue,
            Some(Err(s)) => return Ok(s),
            None => anyhow::bail!("the stream ended with status OK, saying nothing"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_that_inflates_past_the_bound_ends_the_stream_with_a_reason() -> Result<()> {
    let d = Deployment::start("gzip-bomb", &[]).await?;
    // 20 MiB of zeros, a few KiB once compressed, in either encoding the gateway takes.
    for encoding in [CompressionEncoding::Gzip, CompressionEncoding::Zstd] {
        let mut link =
            RawLink::open_compressed(&d.gateway.grpc_url, &d.token, Some(encoding)).await?;
        link.tx.send(packet_of(20 << 20)).await?;
        let status = ending(&mut link).await?;
        assert_eq!(
            status.code(),
            tonic::Code::ResourceExhausted,
            "{encoding:?}: {status:?}"
        );
        assert!(status.message().contains("size limit"), "{status:?}");
    }

    // Uncompressed, the same.
    let mut link = RawLink::open(&d.gateway.grpc_url, &d.token).await?;
    link.tx.send(packet_of(20 << 20)).await?;
    let status = ending(&mut link).await?;
    assert_eq!(status.code(), tonic::Code::OutOfRange, "{status:?}");

    // A message within the bound is served as usual.
    let mut link = RawLink::open_compressed(
        &d.gateway.grpc_url,
        &d.token,
        Some(CompressionEncoding::Zstd),
    )
    .await?;
    link.tx.send(packet_of(1 << 20)).await?;
    let answer = tokio::time::timeout(std::time::Duration::from_secs(30), link.rx.next())
        .await?
        .expect("an answer")?;
    assert_eq!(answer.request_id, 7);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn one_token_opens_a_bounded_number_of_streams() -> Result<()> {
    let d = Deployment::start("streams-per-token", &["--max-streams-per-connector", "2"]).await?;
    // A high-availability pair shares a token.
    let first = RawLink::open(&d.gateway.grpc_url, &d.token).await?;
    let mut second = RawLink::open(&d.gateway.grpc_url, &d.token).await?;
    second.setup("pair-b", "alice").await?;
    let third = RawLink::open(&d.gateway.grpc_url, &d.token).await;
    let refused = third.err().expect("a third stream is refused");
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    assert!(refused.message().contains("--max-streams-per-connector"));
    // One goes away: a stream can open again.
    drop(first);
    postern_e2e::wait_until(
        "a stream slot comes back",
        std::time::Duration::from_secs(30),
        || async {
            Ok(RawLink::open(&d.gateway.grpc_url, &d.token)
                .await
                .ok()
                .map(|_| ()))
        },
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_tokens_are_told_why_without_library_details() -> Result<()> {
    let d = Deployment::start("token-answers", &[]).await?;
    let mut forged = d.token.clone();
    forged.push('x');
    for (token, told) in [
        (forged.as_str(), "invalid connector token"),
        ("not.a.jwt", "invalid connector token"),
    ] {
        let refused = RawLink::open(&d.gateway.grpc_url, token)
            .await
            .err()
            .expect("refused");
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
        assert_eq!(refused.message(), told);
    }
    Ok(())
}
