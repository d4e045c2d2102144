//! Pushed config content: the master's check (size, UTF-8, one YAML
//! document, bounded nesting), which cdnctl and every agent run too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let master = masterd::wire::validate_yaml(data);
    if let Ok(text) = std::str::from_utf8(data) {
        // cdnctl and the agents call the syntax check directly: it must
        // agree with the master's verdict.
        let shared = cdn_common::config::check_yaml_syntax(text);
        assert_eq!(master.is_ok(), shared.is_ok(), "master and agents disagree");
    }
});
