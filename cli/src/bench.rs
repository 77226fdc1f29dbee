//! `nnpool bench`: every suite case in both layouts, at 1 thread and at all cores, timed beside
//! the naive reference and a plain copy of the same bytes (input read once, output written once),
//! all in one run. Every output is checked against the reference before it is timed.
//!
//! What a figure includes: nnpool runs a prepared plan into a caller-provided buffer (no
//! allocation); the reference likewise; the copy reads the input and writes an output-sized
//! buffer. Times are medians over repeated calls on warm buffers.

use std::io::Write;
use std::time::{Duration, Instant};

use clap::Args;
use nnpool::{Isa, Layout, Plan};
use serde_json::json;

use crate::suite::{self, Case};

#[derive(Args)]
pub struct Options {
    /// A suite file in the bench-suite.json format (default: the project's suite, embedded).
    #[arg(long)]
    suite: Option<std::path::PathBuf>,
    /// Run only this case (repeatable).
    #[arg(long = "case")]
    cases: Vec<String>,
    /// Run only this layout: nchw or nhwc.
    #[arg(long)]
    layout: Option<String>,
    /// Run only at this thread count (default: 1 and all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Instruction-set level: auto, scalar, v2, v3, v4, neon.
    #[arg(long, default_value = "auto")]
    isa: String,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// A short run for smoke tests (timings are rough).
    #[arg(long)]
    quick: bool,
}

/// One timed implementation.
struct Timing {
    median_s: f64,
    calls: usize,
}

/// Times `f`: batches of calls long enough to be measured, until `budget` is spent; the median
/// of the per-call times of the batches.
fn time(budget: Duration, mut f: impl FnMut()) -> Timing {
    f(); // warm-up: caches, pages, the thread pool
    let probe = Instant::now();
    f();
    let once = probe.elapsed().max(Duration::from_nanos(20));
    let batch = ((Duration::from_micros(200).as_secs_f64() / once.as_secs_f64()).ceil() as usize)
        .clamp(1, 100_000);
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < 5 || (start.elapsed() < budget && samples.len() < 1000) {
        let t = Instant::now();
        for _ in 0..batch {
            f();
        }
        samples.push(t.elapsed().as_secs_f64() / batch as f64);
        if start.elapsed() > budget * 4 {
            break; // a slow implementation: five samples at most four budgets
        }
    }
    samples.sort_by(f64::total_cmp);
    Timing {
        median_s: samples[samples.len() / 2],
        calls: samples.len() * batch + 2,
    }
}

/// Reads all of `input` and writes all of `output`: the first `output.len()` elements are
/// copied, the rest folded with XOR (integer, so it runs at memory speed).
fn copy_bytes(input: &[f32], output: &mut [f32]) -> u32 {
    let (head, rest) = input.split_at(output.len().min(input.len()));
    output[..head.len()].copy_from_slice(head);
    rest.iter().fold(0, |acc, x| acc ^ x.to_bits())
}

fn layouts(options: &Options) -> Result<Vec<Layout>, String> {
    match options.layout.as_deref() {
        None => Ok(vec![Layout::ChannelsFirst, Layout::ChannelsLast]),
        Some("nchw") => Ok(vec![Layout::ChannelsFirst]),
        Some("nhwc") => Ok(vec![Layout::ChannelsLast]),
        Some(other) => Err(format!("--layout {other}: expected nchw or nhwc")),
    }
}

fn layout_name(layout: Layout) -> &'static str {
    match layout {
        Layout::ChannelsFirst => "nchw",
        Layout::ChannelsLast => "nhwc",
    }
}

pub fn run(options: &Options) -> Result<(), String> {
    let text = match &options.suite {
        Some(path) => {
            std::fs::read_to_string(path).map_err(|e| format!("--suite {}: {e}", path.display()))?
        }
        None => suite::DEFAULT_SUITE.to_string(),
    };
    let mut cases = suite::parse(&text)?;
    if !options.cases.is_empty() {
        for wanted in &options.cases {
            if !cases.iter().any(|c| &c.name == wanted) {
                return Err(format!("--case {wanted}: no such case in the suite"));
            }
        }
        cases.retain(|c| options.cases.contains(&c.name));
    }
    let isa = match options.isa.as_str() {
        "auto" => Isa::default_for_process(),
        name => {
            let isa = Isa::from_name(name).ok_or(format!(
                "--isa {name}: expected auto, scalar, v2, v3, v4 or neon"
            ))?;
            if !isa.is_available() {
                return Err(format!("--isa {name}: this CPU does not run that level"));
            }
            isa
        }
    };
    let cores = rayon::current_num_threads();
    let thread_counts = match options.threads {
        Some(0) => return Err("--threads 0: need at least 1".into()),
        Some(n) => vec![n],
        None if cores > 1 => vec![1, cores],
        None => vec![1],
    };
    let layouts = layouts(options)?;
    let budget = Duration::from_millis(if options.quick { 20 } else { 400 });

    println!(
        "nnpool {} bench — cpu: {} — level: {} — threads: {:?}",
        env!("CARGO_PKG_VERSION"),
        crate::cpu_name(),
        isa,
        thread_counts
    );
    println!("peers (candle, burn, tract): not built into this report yet");
    println!(
        "times: medians per call; nnpool and the reference write into prepared buffers; copy = the same bytes read once and written once\n"
    );
    println!(
        "{:<16} {:<5} {:>3}  {:>11}  {:>8}  {:>9}  {:>11}  {:>9}  kernel",
        "case", "lay", "thr", "nnpool", "GB/s", "copy/ours", "reference", "×ref"
    );

    let mut results = Vec::new();
    let mut mismatches = Vec::new();
    let total = cases.len() * layouts.len();
    let mut done = 0;
    for case in &cases {
        for &layout in &layouts {
            done += 1;
            eprint!(
                "\r[{done}/{total}] {} {}…          ",
                case.name,
                layout_name(layout)
            );
            let _ = std::io::stderr().flush();
            match bench_case(case, layout, isa, &thread_counts, budget, &mut results) {
                Ok(lines) => {
                    eprint!("\r{:60}\r", "");
                    for line in lines {
                        println!("{line}");
                    }
                }
                Err(e) => {
                    eprintln!("\rMISMATCH {} {}: {e}", case.name, layout_name(layout));
                    mismatches.push(format!("{} {}", case.name, layout_name(layout)));
                }
            }
        }
    }
    if let Some(path) = &options.json {
        let doc = json!({"cpu": crate::cpu_name(), "isa": isa.name(), "threads": thread_counts, "results": results});
        std::fs::write(path, serde_json::to_string_pretty(&doc).unwrap())
            .map_err(|e| format!("--json {}: {e}", path.display()))?;
    }
    if mismatches.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "outputs differ from the reference (not timed): {}",
            mismatches.join(", ")
        ))
    }
}

/// Times one case and layout; the table lines, or an error if an output is wrong.
fn bench_case(
    case: &Case,
    layout: Layout,
    isa: Isa,
    thread_counts: &[usize],
    budget: Duration,
    results: &mut Vec<serde_json::Value>,
) -> Result<Vec<String>, String> {
    let plan = Plan::<f32>::new(&case.desc, layout, &case.shape)
        .and_then(|p| p.with_isa(isa))
        .map_err(|e| e.to_string())?;
    let input: Vec<f32> = (0..plan.input_len())
        .map(|i| ((i * 7919) % 1013) as f32 * 0.01 - 5.0)
        .collect();
    let bytes = (plan.input_len() + plan.output_len()) * 4;
    let mut output = vec![0.0f32; plan.output_len()];
    let mut reference = vec![0.0f32; plan.output_len()];
    let record = |results: &mut Vec<serde_json::Value>, imp: &str, threads: usize, t: &Timing| {
        results.push(json!({"case": case.name, "layout": layout_name(layout), "threads": threads, "impl": imp,
            "median_s": t.median_s, "calls": t.calls, "bytes": bytes}));
    };
    // The reference once (it takes seconds on the large cases), then the copy.
    let reference_time = time(Duration::ZERO, || {
        nnpool::reference::pool(&plan, &input, &mut reference, None).unwrap();
    });
    record(results, "reference", 1, &reference_time);
    let copy = time(budget, || {
        std::hint::black_box(copy_bytes(std::hint::black_box(&input), &mut output));
    });
    record(results, "copy", 1, &copy);
    let mut lines = Vec::new();
    for &threads in thread_counts {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| e.to_string())?;
        let plan = plan.clone().with_parallel(threads > 1);
        pool.install(|| plan.run(&input, &mut output))
            .map_err(|e| e.to_string())?;
        nnpool::testing::check_against_reference(&plan, &input, &output, None)?;
        let t = pool.install(|| time(budget, || plan.run(&input, &mut output).unwrap()));
        record(results, "nnpool", threads, &t);
        lines.push(format!(
            "{:<16} {:<5} {:>3}  {:>11}  {:>8.2}  {:>9.2}  {:>11}  {:>9.1}  {}",
            case.name,
            layout_name(layout),
            threads,
            show(t.median_s),
            bytes as f64 / t.median_s / 1e9,
            copy.median_s / t.median_s,
            show(reference_time.median_s),
            reference_time.median_s / t.median_s,
            plan.kernel_name()
        ));
    }
    Ok(lines)
}

fn show(seconds: f64) -> String {
    if seconds < 1e-3 {
        format!("{:.2} µs", seconds * 1e6)
    } else {
        format!("{:.3} ms", seconds * 1e3)
    }
}
