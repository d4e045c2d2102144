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
            let secret = text.trim();
            assert!(
                secret.len() < 16 || !e.contains(secret),
                "the error echoes the credential text"
            );
        }
    }
    if let Ok(token) = text.trim().parse::<cdn_common::tls::JoinToken>() {
        // What parses prints back the same (the token file round-trips).
        let again: cdn_common::tls::JoinToken = token.to_string().parse().expect("round trip");
        assert_eq!(again.to_string(), token.to_string());
    }
});
