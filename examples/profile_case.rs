//! Times one bench-suite-like case (on one thread unless `PAR=1`), for profiling:
//! `cargo run --release --example profile_case -- nchw|nhwc [resnet|vgg|alexnet|train|sppf|inception|tiny|small|global]`
//! (`ITERS=n` calls; `PAR=1` runs on rayon's pool, `INSIDE=1` from a thread of the pool,
//! `TASKS=n` in n bands; `DIRECT=1` turns the separable max kernel off; `SIDE=n` sizes `small`,
//! `BATCH=n` sizes `global`, `SHAPE=n,c,h,w` replaces the shape, `OFFSET=k` misaligns the
//! buffers by k elements (`OUT_OFFSET=k` the output's alone), `BEST=k` times the fastest of k
//! rounds of the calls).

use nnpool::{AlignedVec, Layout, OUTPUT_ALIGN, Padding, Plan, PoolDesc};

fn main() {
    let mut args = std::env::args().skip(1);
    let layout = match args.next().as_deref() {
        Some("nhwc") => Layout::ChannelsLast,
        _ => Layout::ChannelsFirst,
    };
    let (desc, shape) = match args.next().as_deref() {
        Some("sppf") => (
            PoolDesc::max(&[5, 5])
                .strides(&[1, 1])
                .padding(Padding::symmetric(&[2, 2])),
            [1, 256, 40, 40],
        ),
        Some("inception") => (
            PoolDesc::average(&[3, 3])
                .strides(&[1, 1])
                .padding(Padding::symmetric(&[1, 1])),
            [1, 288, 35, 35],
        ),
        Some("vgg") => (PoolDesc::max(&[2, 2]), [8, 128, 112, 112]),
        Some("alexnet") => (PoolDesc::max(&[3, 3]).strides(&[2, 2]), [1, 96, 55, 55]),
        Some("train") => (
            PoolDesc::max(&[3, 3])
                .strides(&[2, 2])
                .padding(Padding::symmetric(&[1, 1])),
            [32, 64, 56, 56],
        ),
        Some("tiny") => (PoolDesc::max(&[2, 2]), [1, 16, 8, 8]),
        Some("global") => (PoolDesc::global_average(), {
            // `BATCH=1` keeps the input (400 KB) in L2: the loop's own speed.
            let batch = std::env::var("BATCH").ok().and_then(|v| v.parse().ok());
            [batch.unwrap_or(32), 2048, 7, 7]
        }),
        Some("small") => (
            PoolDesc::max(&[3, 3])
                .strides(&[2, 2])
                .padding(Padding::symmetric(&[1, 1])),
            {
                let side = std::env::var("SIDE").ok().and_then(|v| v.parse().ok());
                let side = side.unwrap_or(16);
                [1, 16, side, side]
            },
        ),
        _ => (
            PoolDesc::max(&[3, 3])
                .strides(&[2, 2])
                .padding(Padding::symmetric(&[1, 1])),
            [1, 64, 112, 112],
        ),
    };
    // `UNPADDED=1` drops the case's padding (to time a kernel's interior alone).
    let desc = if std::env::var("UNPADDED").is_ok() {
        desc.padding(Padding::symmetric(&[0, 0]))
    } else {
        desc
    };
    // `SHAPE=n,c,h,w` replaces the case's shape (same window).
    let shape: Vec<usize> = match std::env::var("SHAPE") {
        Ok(v) => v.split(',').map(|d| d.parse().unwrap()).collect(),
        Err(_) => shape.to_vec(),
    };
    let mut plan = Plan::<f32>::new(&desc, layout, &shape)
        .unwrap()
        .with_parallel(std::env::var("PAR").is_ok());
    if let Some(tasks) = std::env::var("TASKS").ok().and_then(|v| v.parse().ok()) {
        plan = plan.with_forced_tasks(tasks);
    }
    if std::env::var("DIRECT").is_ok() {
        plan = plan.without_separable();
    }
    // Input and output start on a 64-byte boundary, or `OFFSET=k` elements past one (a large
    // `Vec<f32>` from glibc's malloc starts 16 bytes past one: `OFFSET=4`).
    let offset: usize = std::env::var("OFFSET")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let values = (0..plan.input_len()).map(|i| (i % 97) as f32);
    let input_store =
        AlignedVec::<f32>::from_iter(OUTPUT_ALIGN, std::iter::repeat_n(0.0, offset).chain(values));
    let input = &input_store[offset..];
    // `OUT_OFFSET=k` misaligns the output alone by k elements (`OFFSET` by default).
    let out_offset: usize = std::env::var("OUT_OFFSET")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(offset);
    let zeros = std::iter::repeat_n(0.0, out_offset + plan.output_len());
    let mut output_store = AlignedVec::<f32>::from_iter(OUTPUT_ALIGN, zeros);
    let out = &mut output_store[out_offset..];
    let iters: u32 = std::env::var("ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    // `BEST=k`: the calls in k rounds, timing the fastest (a shared machine's noise comes in
    // bursts that the mean of all calls keeps).
    let rounds: u32 = std::env::var("BEST")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .clamp(1, iters.max(1));
    let mut calls = || {
        let per_round = iters / rounds;
        let mut best = std::time::Duration::MAX;
        for _ in 0..rounds {
            let t = std::time::Instant::now();
            for _ in 0..per_round {
                plan.run(input, out).unwrap();
            }
            best = best.min(t.elapsed() / per_round);
        }
        best
    };
    // `INSIDE=1`: called from a thread of the pool, as a framework's own parallel loop would.
    let per_call = if std::env::var("INSIDE").is_ok() {
        rayon::ThreadPoolBuilder::new()
            .build()
            .unwrap()
            .install(calls)
    } else {
        calls()
    };
    println!("{} {per_call:?}/call", plan.kernel_name());
}
