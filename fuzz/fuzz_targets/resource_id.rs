//! ARM id parsing: never panics; a parsed id displays as given and re-parses to an equal id;
//! equality ignores case.
#![no_main]

use libfuzzer_sys::fuzz_target;
use linkguard::model::ResourceId;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(id) = ResourceId::parse(text) else { return };
    assert_eq!(id.to_string(), text.trim());
    let again = ResourceId::parse(&id.to_string()).expect("a displayed id parses");
    assert_eq!(again, id);
    let upper = ResourceId::parse(&text.to_ascii_uppercase()).expect("case does not change validity");
    assert_eq!(upper, id);
    if let Some(parent) = id.parent() {
        assert!(id.is_within(&parent));
    }
});
