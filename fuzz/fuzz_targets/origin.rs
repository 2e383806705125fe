//! Fuzzes the origin checks: `Pattern::parse`, `Origin::parse` and `matches` on arbitrary
//! text, and access-token verification (the other way a connection gets an origin). Asserts
//! no panic and these properties: an origin prints as text that parses back to itself; an
//! origin's own text, as a pattern, admits it; the pattern `*` admits every origin; no token
//! made up by the fuzzer verifies.
//!
//! The input is `pattern "\n" origin`; the whole input is also tried as a token.
#![no_main]

use libfuzzer_sys::fuzz_target;
use messenger::access_token::Key;
use messenger::acl::{admits, Origin, Pattern};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (pattern, origin) = text.split_once('\n').unwrap_or((text, text));
    let parsed = Pattern::parse(pattern);
    if let Some(o) = Origin::parse(origin) {
        let printed = o.to_string();
        assert_eq!(
            Origin::parse(&printed).as_ref(),
            Some(&o),
            "{origin:?} printed as {printed:?} does not read back"
        );
        if let Ok(own) = Pattern::parse(&printed) {
            assert!(own.matches(&o), "{printed:?} as a pattern does not admit itself");
        }
        assert!(Pattern::parse("*").unwrap().matches(&o));
        if let Ok(p) = &parsed {
            let _ = admits(std::slice::from_ref(p), &o);
        }
    }
    let key = Key::from_bytes([42; 32]);
    assert!(
        key.verify(text, 0).is_err(),
        "a token the fuzzer made up verified: {text:?}"
    );
});
