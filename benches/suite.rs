//! The workloads of `benches/bench-suite.json` (a copy of the project's bench suite), in both
//! layouts: nnpool on 1 thread and on every core of the pool, beside the naive reference and a
//! plain copy of the same bytes (input read once + output written once) measured in the same run.
//!
//! `cargo bench --bench suite` runs everything; `cargo bench --bench suite -- vgg_block_max/nhwc`
//! one case and layout. Every implementation's output is checked before it is timed.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use nnpool::{Layout, Padding, Plan, PoolDesc};
use serde_json::Value;
use std::hint::black_box;
use std::time::Duration;

/// A suite case as a descriptor and an input shape.
fn case_desc(case: &Value) -> (String, PoolDesc, Vec<usize>) {
    let dim = |k: &str| case[k].as_u64().unwrap() as usize;
    let shape = vec![dim("n"), dim("c"), dim("h"), dim("w")];
    let list = |k: &str| -> Vec<usize> {
        case[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect()
    };
    let op = case["op"].as_str().unwrap();
    let desc = if case.get("global").and_then(Value::as_bool) == Some(true) {
        if op == "max" {
            PoolDesc::global_max()
        } else {
            PoolDesc::global_average()
        }
    } else {
        let pad = list("pad"); // [top, bottom, left, right]
        let padding = Padding::explicit(&[pad[0], pad[2]], &[pad[1], pad[3]]);
        let base = if op == "max" {
            PoolDesc::max(&list("k"))
        } else {
            PoolDesc::average(&list("k"))
        };
        let base = base.strides(&list("stride")).padding(padding);
        if op == "avg" {
            base.count_include_pad(
                case.get("count_include_pad")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            )
        } else {
            base
        }
    };
    (case["name"].as_str().unwrap().to_string(), desc, shape)
}

/// Reads all of `input` and writes all of `output` (shorter): the first `output.len()` elements
/// are copied, the rest are folded with XOR (integer, so it vectorizes at memory speed).
fn copy_bytes(input: &[f32], output: &mut [f32]) -> u32 {
    let (head, rest) = input.split_at(output.len());
    output.copy_from_slice(head);
    let bits: &[u32] = bytemuck::cast_slice(rest);
    bits.iter().fold(0, |acc, &x| acc ^ x)
}

fn suite(c: &mut Criterion) {
    let text = include_str!("bench-suite.json");
    let doc: Value = serde_json::from_str(text).unwrap();
    // The naive reference takes seconds on the large cases; time it only where it is quick
    // unless NNPOOL_BENCH_REFERENCE=all.
    let all_reference = std::env::var("NNPOOL_BENCH_REFERENCE").is_ok_and(|v| v == "all");
    for case in doc["cases"].as_array().unwrap() {
        let (name, desc, shape) = case_desc(case);
        for layout in [Layout::ChannelsFirst, Layout::ChannelsLast] {
            let tag = if layout == Layout::ChannelsFirst {
                "nchw"
            } else {
                "nhwc"
            };
            let plan = Plan::<f32>::new(&desc, layout, &shape).unwrap();
            let input: Vec<f32> = (0..plan.input_len())
                .map(|i| ((i * 7919) % 1013) as f32 * 0.01 - 5.0)
                .collect();
            let mut output = vec![0.0f32; plan.output_len()];
            let mut reference = vec![0.0f32; plan.output_len()];
            nnpool::reference::pool(&plan, &input, &mut reference, None).unwrap();
            plan.run(&input, &mut output).unwrap();
            let close = output
                .iter()
                .zip(&reference)
                .all(|(a, b)| (a - b).abs() <= 1e-5 * b.abs().max(1.0));
            assert!(
                close,
                "{name}/{tag}: nnpool output differs from the reference"
            );

            let bytes = (plan.input_len() + plan.output_len()) * 4;
            let mut group = c.benchmark_group(format!("{name}/{tag}"));
            group.throughput(Throughput::Bytes(bytes as u64));
            group
                .sample_size(20)
                .warm_up_time(Duration::from_millis(300))
                .measurement_time(Duration::from_secs(1));
            let single = plan.clone().with_parallel(false);
            group.bench_function(BenchmarkId::new("nnpool", "1-thread"), |b| {
                b.iter(|| {
                    single
                        .run(black_box(&input), black_box(&mut output))
                        .unwrap()
                })
            });
            group.bench_function(
                BenchmarkId::new(
                    "nnpool",
                    format!("{}-threads", rayon::current_num_threads()),
                ),
                |b| b.iter(|| plan.run(black_box(&input), black_box(&mut output)).unwrap()),
            );
            // The roofline: read the input once, write the output once.
            let mut copy_out = vec![0.0f32; plan.output_len()];
            group.bench_function("copy", |b| {
                b.iter(|| copy_bytes(black_box(&input), black_box(&mut copy_out)))
            });
            if plan.kernel_name().starts_with("separable") {
                // The direct kernel on the same case, for the separable kernel's speed-up.
                let direct = plan.clone().with_parallel(false).without_separable();
                group.bench_function(BenchmarkId::new("nnpool-direct", "1-thread"), |b| {
                    b.iter(|| {
                        direct
                            .run(black_box(&input), black_box(&mut output))
                            .unwrap()
                    })
                });
            }
            if all_reference || plan.input_len() < 1 << 20 {
                group.bench_function("reference", |b| {
                    b.iter(|| {
                        nnpool::reference::pool(
                            &plan,
                            black_box(&input),
                            black_box(&mut reference),
                            None,
                        )
                        .unwrap()
                    })
                });
            }
            group.finish();
        }
    }
}

criterion_group!(benches, suite);
criterion_main!(benches);
