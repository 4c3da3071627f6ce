//! Policy parsing and validation: any text either loads or yields an error naming a line and key;
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use linkguard::policy::Policy;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Policy::parse("fuzz.toml", text) {
        Ok(policy) => {
            let _ = policy.needs_endpoints();
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
