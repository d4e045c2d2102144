//! Compiles the `.proto` files with protox (pure Rust), so no system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/cdn/v1/agent.proto",
        "proto/cdn/v1/admin.proto",
        "proto/etcd/kv.proto",
        "proto/etcd/rpc.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    // The cdn.v1 files alone (etcd's are the master's private business),
    // with their comments, for masterd's server reflection.
    let cdn = cdn_v1_files(&fds);
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("cdn_v1_descriptor.bin"),
        protox::prost::Message::encode_to_vec(&cdn),
    )?;
    // Config content is fanned out to many agents: share it, don't copy it.
    // Garbage from a peer is its INVALID_ARGUMENT, not our INTERNAL
    // (src/codec.rs).
    tonic_prost_build::configure()
        .codec_path("crate::codec::ProtoCodec")
        .bytes(".cdn.v1")
        .compile_fds(fds)?;
    Ok(())
}

/// The files of package `cdn.v1` out of `all`.
fn cdn_v1_files(all: &prost_types::FileDescriptorSet) -> prost_types::FileDescriptorSet {
    prost_types::FileDescriptorSet {
        file: all
            .file
            .iter()
            .filter(|f| f.package.as_deref() == Some("cdn.v1"))
            .cloned()
            .collect(),
    }
}
