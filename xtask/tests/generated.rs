//! The checked-in completions and man pages match the clap definitions.

#[test]
fn completions_and_man_pages_are_up_to_date() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let stale = xtask::stale(&root);
    assert!(
        stale.is_empty(),
        "stale generated files, run `cargo xtask gen`: {stale:?}"
    );
}

#[test]
fn every_command_has_a_man_page() {
    let files: Vec<String> = xtask::generated().into_iter().map(|(p, _)| p).collect();
    for page in [
        "man/cdnctl.1",
        "man/cdnctl-nodes-list.1",
        "man/cdnctl-config-push.1",
        "man/cdnctl-exec.1",
        "man/masterd.1",
        "man/agentd.1",
        "man/cdn-swarm.1",
        "man/master.yml.5",
        "man/agent.yml.5",
    ] {
        assert!(
            files.iter().any(|f| f == page),
            "{page} missing from {files:?}"
        );
    }
}
