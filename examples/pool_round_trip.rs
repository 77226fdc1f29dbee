//! What a trip through rayon's pool costs a caller outside it, the floor under every parallel
//! run: `cargo run --release --example pool_round_trip` (`WORK=µs` of spinning per call, 48 by
//! default, about `alexnet_max` NCHW on one thread). Prints the call time run serially, as 8
//! and as 2 pool tasks, as half on the caller and half in the pool (`in_place_scope`), as
//! chunks shared by the caller and the pool, and the same with the caller spinning for the
//! pool's last chunks.

use std::hint::spin_loop;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// `chunks` chunks of `micros` each, taken from one counter by the caller and by one job per
/// other pool thread: the caller starts at once and takes what the pool has not yet woken for.
/// With `spin_at_end` the caller then spins until the helpers are done rather than sleeping in
/// the scope's wait (what `nnpool`'s bands do).
fn shared_chunks(chunks: usize, micros: f64, spin_at_end: bool) {
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let take = || {
        while next.fetch_add(1, Ordering::Relaxed) < chunks {
            spin(micros);
        }
    };
    let helpers = rayon::current_num_threads() - 1;
    rayon::in_place_scope(|scope| {
        for _ in 0..helpers {
            scope.spawn(|_| {
                take();
                done.fetch_add(1, Ordering::Release);
            });
        }
        take();
        while spin_at_end && done.load(Ordering::Acquire) < helpers {
            spin_loop();
        }
    });
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
        let shared = per_call(calls, || shared_chunks(8, work / 8.0, false));
        let spun = per_call(calls, || shared_chunks(8, work / 8.0, true));
        println!(
            "round {round}: serial {serial:.1?}, 8 tasks {eight:.1?}, 2 tasks {two:.1?}, \
             half in place {in_place:.1?}, 8 shared chunks {shared:.1?}, the same spinning at the end {spun:.1?}"
        );
    }
}
