//! A cdnctl credential file and a join token, as the operator or the agent
//! hands them over: errors, never a panic; and an error never echoes the
//! text (a wrong file may hold a secret).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    match cdn_common::credential::Credential::parse(text) {
        Ok(c) => {
            let _ = c.server_name();
            let _ = cdn_common::credential::masters(&c.master);
            let _ = cdn_common::tls::pem_certs(&c.ca);
            let _ = cdn_common::tls::pem_certs(&c.cert);
        }
        Err(e) => {
            // A secret is a long run without blanks (a key, a token); the
            // error's own wording never has one. Comparing the whole text
            // instead found the fuzzer typing the error's wording back.
            for secret in text.split_whitespace().filter(|w| w.len() >= 16) {
                assert!(
                    !e.contains(secret),
                    "the error echoes the credential text: {secret:?}"
                );
            }
        }
    }
    if let Ok(token) = text.trim().parse::<cdn_common::tls::JoinToken>() {
        // What parses prints back the same (the token file round-trips).
        let again: cdn_common::tls::JoinToken = token.to_string().parse().expect("round trip");
        assert_eq!(again.to_string(), token.to_string());
    }
});
