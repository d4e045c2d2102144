//! The `cdn.v1` protocol spoken between `agentd`, `masterd` and `cdnctl`.
//!
//! Generated at build time from `proto/cdn/v1/*.proto` by protox and
//! tonic-prost-build, plus what every side must agree on beside the
//! messages: the protocol's [`limits`] and the [`version::Version`] numbers
//! the messages carry as strings.

pub mod codec;
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

/// The encoded `FileDescriptorSet` of package `cdn.v1` (`agent.proto` and
/// `admin.proto`, with their comments), for masterd's server reflection:
/// what `grpcurl list` and `describe` show.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/cdn_v1_descriptor.bin"));

/// Package `cdn.v1`.
#[allow(clippy::all)]
pub mod v1 {
    tonic::include_proto!("cdn.v1");
}

#[cfg(test)]
mod tests {
    use prost::Message;

    #[test]
    fn the_descriptor_set_holds_both_services_with_comments_and_nothing_of_etcd() {
        let set = prost_types::FileDescriptorSet::decode(super::FILE_DESCRIPTOR_SET).unwrap();
        let names: Vec<&str> = set.file.iter().filter_map(|f| f.name.as_deref()).collect();
        assert_eq!(names, ["cdn/v1/agent.proto", "cdn/v1/admin.proto"]);
        let services: Vec<&str> = set
            .file
            .iter()
            .flat_map(|f| &f.service)
            .filter_map(|s| s.name.as_deref())
            .collect();
        assert_eq!(services, ["AgentService", "AdminService"]);
        assert!(
            set.file.iter().all(|f| f
                .source_code_info
                .as_ref()
                .is_some_and(|i| !i.location.is_empty())),
            "comments are kept for grpcurl describe"
        );
    }
}
