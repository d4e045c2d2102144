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
    // Config content is fanned out to many agents: share it, don't copy it.
    tonic_prost_build::configure()
        .bytes(".cdn.v1")
        .compile_fds(fds)?;
    Ok(())
}
