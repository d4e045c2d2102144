//! gRPC server reflection (`grpc.reflection.v1` and `v1alpha`, the
//! tonic project's `tonic-reflection`) on each port, listing the services
//! that port serves, so `grpcurl list` and `grpcurl describe` work
//! without the `.proto` files. The schema comes from the `proto` crate's
//! build ([`cdn_proto::FILE_DESCRIPTOR_SET`], comments included). Unlike
//! health checks, reflection sits behind the gate: it needs a client
//! certificate this master issued, as every call but `Enroll` does.

use tonic::transport::server::Router;
use tonic_reflection::server::{Builder, Error};

/// Names of the reflection services themselves.
const REFLECTION_SERVICES: [&str; 2] = [
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// What reflection of a port serving `services` (`cdn.v1.…`) knows.
fn builder<'b>(services: &[&str]) -> Builder<'b> {
    let mut b = Builder::configure()
        .register_encoded_file_descriptor_set(cdn_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
        .include_reflection_service(false)
        .with_service_name("grpc.health.v1.Health");
    for name in services.iter().chain(REFLECTION_SERVICES.iter()) {
        b = b.with_service_name(*name);
    }
    b
}

/// `router` with both reflection services for a port serving `services`.
pub fn add<L>(router: Router<L>, services: &[&str]) -> Result<Router<L>, Error> {
    Ok(router
        .add_service(builder(services).build_v1()?)
        .add_service(builder(services).build_v1alpha()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_versions_build_from_the_shipped_descriptors() {
        for services in [
            &["cdn.v1.AgentService", "cdn.v1.AdminService"][..],
            &["cdn.v1.AdminService"][..],
        ] {
            builder(services).build_v1().unwrap();
            builder(services).build_v1alpha().unwrap();
        }
    }
}
