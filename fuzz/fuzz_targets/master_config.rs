//! master.yml: parse and validate any text; a bad file is an error naming
//! the key, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = cdn_common::config::parse_and_validate::<masterd::config::MasterConfig>(
        std::path::Path::new("master.yml"),
        text,
    );
});
