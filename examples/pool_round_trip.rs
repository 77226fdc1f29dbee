//! What a trip through rayon's pool costs a caller outside it, the floor under every parallel
//! run: `cargo run --release --example pool_round_trip` (`WORK=µs` of spinning per call, 48 by
//! default, about `alexnet_max` NCHW on one thread). Prints the call time run serially, as 8
//! and as 2 pool tasks, and as half on the caller and half in the pool (`in_place_scope`).

use std::hint::spin_loop;
use std::time::{Duration, Instant};

use rayon::prelude::*;

/// Busy work for `micros` microseconds.
fn spin(micros: f64) {
    let start = Instant::now();
    while start.elapsed().as_secs_f64() * 1e6 < micros {
        spin_loop();
    }
}

/// The mean time of `calls` calls of `f`.
fn per_call(calls: u32, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..calls {
        f();
    }
    start.elapsed() / calls
}

fn main() {
    let work: f64 = std::env::var("WORK")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48.0);
    let calls = 5000;
    let mut bands = [0u8; 8];
    println!(
        "{work} µs of work a call, {} pool threads",
        rayon::current_num_threads()
    );
    for round in 1..=3 {
        let serial = per_call(calls, || spin(work));
        let eight = per_call(calls, || {
            bands.par_chunks_mut(1).for_each(|_| spin(work / 8.0));
        });
        let two = per_call(calls, || {
            bands.par_chunks_mut(4).for_each(|_| spin(work / 2.0));
        });
        let in_place = per_call(calls, || {
            rayon::in_place_scope(|scope| {
                scope.spawn(|_| spin(work / 2.0));
                spin(work / 2.0);
            });
        });
        println!(
            "round {round}: serial {serial:.1?}, 8 tasks {eight:.1?}, 2 tasks {two:.1?}, \
             half in place {in_place:.1?}"
        );
    }
}
