//! The `cdn.v1` protocol spoken between `agentd`, `masterd` and `cdnctl`.
//!
//! Generated at build time from `proto/cdn/v1/*.proto` by protox and
//! tonic-prost-build, plus what every side must agree on beside the
//! messages: the protocol's [`limits`] and the [`version::Version`] numbers
//! the messages carry as strings.

pub mod limits;
pub mod version;
pub mod words;

pub use version::Version;

/// The subset of etcd's v3 API the master's etcd backend uses
/// (`proto/etcd/`, written from etcd's documented API).
#[allow(clippy::all)]
pub mod etcd {
    pub mod mvccpb {
        tonic::include_proto!("mvccpb");
    }
    pub mod etcdserverpb {
        tonic::include_proto!("etcdserverpb");
    }
}

/// Package `cdn.v1`.
#[allow(clippy::all)]
pub mod v1 {
    tonic::include_proto!("cdn.v1");
}
