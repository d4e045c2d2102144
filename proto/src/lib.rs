//! The `cdn.v1` protocol spoken between `agentd`, `masterd` and `cdnctl`.
//!
//! Generated at build time from `proto/cdn/v1/*.proto` by protox and
//! tonic-prost-build; this crate owns nothing else.

#![allow(clippy::all)]

/// Package `cdn.v1`.
pub mod v1 {
    tonic::include_proto!("cdn.v1");
}
