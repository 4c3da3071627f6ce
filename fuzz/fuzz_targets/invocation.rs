//! See `linkguard_fuzz::invocation` (fuzz/src/lib.rs): the check lives there so `tests/fuzz_corpus.rs`
//! replays the corpus and the regressions through the same code.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| linkguard_fuzz::invocation(data));
