//! # postern-proto
//!
//! The wire contract between `postern-connector` (inside the firewall) and
//! `postern-gateway` (outside): package `postern.v1`, one service `ConnectorLink` with
//! one bidirectional `Link` stream. The `.proto` file in `proto/postern/v1/` documents
//! every message and field; this crate only compiles it.
//!
//! Conversions from these loose protobuf types into the validated types of
//! `postern-core` live next to the code that receives them, in one place per side;
//! the wire enums (kinds, modes, policies, roles) convert here, in [`enums`], the same
//! for both sides.

/// Generated types and the tonic client and server for `postern.v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("postern.v1");
}

pub use v1::*;

pub mod enums;
