#![no_main]
//! The `differential` target: see `nnpool::testing::fuzz_differential` (the same function replays the
//! committed corpus in `tests/fuzz_corpus.rs` on stable Rust).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| nnpool::testing::fuzz_differential(data));
