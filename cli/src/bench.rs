//! `nnpool bench`: every suite case in both layouts, at 1 thread and at all cores, timed beside
//! the naive reference and a plain copy of the same bytes (input read once, output written once),
//! all in one run. Every output is checked against the reference before it is timed.
//!
//! What a figure includes: nnpool runs a prepared plan into a caller-provided buffer (no
//! allocation); the reference likewise; the copy reads the input and writes an output-sized
//! buffer. Times are medians over repeated calls on warm buffers; nnpool, the copy and the peers
//! take turns in [`ROUNDS`] rounds per thread count, so each ratio compares times taken in the
//! same minutes.

use std::io::Write;
use std::time::{Duration, Instant};

use clap::Args;
use nnpool::{Isa, Layout, Plan};
use serde_json::json;

use crate::chart;
use crate::peers::{self, Peer};
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
    /// Also draw the comparison as an SVG bar chart (effective GB/s per case) in this file.
    #[arg(long)]
    svg: Option<std::path::PathBuf>,
    /// A short run for smoke tests (timings are rough).
    #[arg(long)]
    quick: bool,
}

/// One timed implementation.
struct Timing {
    median_s: f64,
    calls: usize,
}

/// Rounds the timed implementations of a case and thread count take turns in: nnpool, the copy
/// and each peer, in each layout, are timed in every round, so a slow phase of this shared
/// machine (minutes long, up to 1.5x) lands on all of them rather than on whichever ran then.
const ROUNDS: u32 = 4;

/// Per-call times of one implementation: batches of calls long enough to be measured.
struct Sampler {
    batch: usize,
    samples: Vec<f64>,
}

impl Sampler {
    /// Warms `f` up (caches, pages, the thread pool) and sizes its batches from one call.
    fn new(f: &mut impl FnMut()) -> Sampler {
        f();
        let probe = Instant::now();
        f();
        let once = probe.elapsed().max(Duration::from_nanos(20));
        let batch = ((Duration::from_micros(200).as_secs_f64() / once.as_secs_f64()).ceil()
            as usize)
            .clamp(1, 100_000);
        Sampler {
            batch,
            samples: Vec::new(),
        }
    }

    /// Batches of `f` until `budget` is spent (at least `least` of them, for slow calls at most
    /// four budgets' worth).
    fn gather(&mut self, budget: Duration, least: usize, f: &mut impl FnMut()) {
        let start = Instant::now();
        let mut taken = 0;
        while taken < least || (start.elapsed() < budget && taken < 1000) {
            let t = Instant::now();
            for _ in 0..self.batch {
                f();
            }
            self.samples
                .push(t.elapsed().as_secs_f64() / self.batch as f64);
            taken += 1;
            if start.elapsed() > budget * 4 {
                break;
            }
        }
    }

    /// The median of the samples so far.
    fn timing(&self) -> Timing {
        let mut samples = self.samples.clone();
        samples.sort_by(f64::total_cmp);
        Timing {
            median_s: samples[samples.len() / 2],
            calls: samples.len() * self.batch + 2,
        }
    }
}

/// Times `f` on its own: the median of batches over `budget` (at least 5).
fn time(budget: Duration, mut f: impl FnMut()) -> Timing {
    let mut sampler = Sampler::new(&mut f);
    sampler.gather(budget, 5, &mut f);
    sampler.timing()
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
    // `auto` leaves each plan its default level (which on some CPUs differs by kernel).
    let forced = match options.isa.as_str() {
        "auto" => None,
        name => Some({
            let isa = Isa::from_name(name).ok_or(format!(
                "--isa {name}: expected auto, scalar, v2, v3, v4 or neon"
            ))?;
            if !isa.is_available() {
                return Err(format!("--isa {name}: this CPU does not run that level"));
            }
            isa
        }),
    };
    let isa = forced.unwrap_or_else(Isa::default_for_process);
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
    let peers = peers::all();
    if peers.is_empty() {
        println!(
            "peers: not built (cargo run --release -p nnpool-cli --features peers -- bench adds {})",
            peers::versions()
        );
    } else {
        println!("peers: {}", peers::versions());
    }
    println!(
        "times: medians per call; nnpool and the reference write into prepared buffers; a peer's \
         call includes the output allocation its API makes (its input tensor is built beforehand); \
         copy = the same bytes read once and written once"
    );
    println!(
        "columns: GB/s = (input + output bytes) / time; copy/ours = copy time / our time (1 = copy speed); \
         ×ref, ×candle, ... = that implementation's time / ours (above 1: we are faster)\n"
    );
    let mut header = format!(
        "{:<16} {:<5} {:>3}  {:>11}  {:>8}  {:>9}  {:>11}  {:>7}",
        "case", "lay", "thr", "nnpool", "GB/s", "copy/ours", "reference", "×ref"
    );
    for peer in &peers {
        header.push_str(&format!("  {:>9}", format!("×{}", peer.name)));
    }
    println!("{header}  kernel");

    let mut results = Vec::new();
    let mut mismatches = Vec::new();
    let mut notes = Vec::new();
    for (done, case) in cases.iter().enumerate() {
        eprint!("\r[{}/{}] {}…          ", done + 1, cases.len(), case.name);
        let _ = std::io::stderr().flush();
        let outcomes = bench_case(
            case,
            &layouts,
            forced,
            &thread_counts,
            budget,
            &peers,
            &mut results,
        );
        eprint!("\r{:60}\r", "");
        for (layout, outcome) in outcomes {
            match outcome {
                Ok(outcome) => {
                    for line in &outcome.lines {
                        println!("{line}");
                    }
                    for (peer, why) in &outcome.not_compared {
                        notes.push(format!(
                            "{} {} {peer}: {why}",
                            case.name,
                            layout_name(layout)
                        ));
                    }
                    mismatches.extend(
                        outcome
                            .mismatches
                            .iter()
                            .map(|m| format!("{} {} {m}", case.name, layout_name(layout))),
                    );
                }
                Err(e) => {
                    eprintln!("\rMISMATCH {} {}: {e}", case.name, layout_name(layout));
                    mismatches.push(format!("{} {}", case.name, layout_name(layout)));
                }
            }
        }
    }
    if !notes.is_empty() {
        println!("\nn/a: a peer that cannot express a case");
        for note in &notes {
            println!("  {note}");
        }
    }
    if let Some(path) = &options.svg {
        let svg = chart::draw(&results, &crate::cpu_name(), isa.name());
        std::fs::write(path, svg).map_err(|e| format!("--svg {}: {e}", path.display()))?;
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

/// What one case and layout gave: table lines, peers that could not run it and why, and peers
/// whose output did not match the reference (not timed).
struct Outcome {
    lines: Vec<String>,
    not_compared: Vec<(&'static str, String)>,
    mismatches: Vec<String>,
}

/// One layout of a case, ready to be timed: its plan, buffers, reference output and time, and
/// the peers that can express it, prepared.
struct Setup {
    layout: Layout,
    plan: Plan<f32>,
    input: Vec<f32>,
    output: Vec<f32>,
    copied: Vec<f32>,
    reference: Vec<f32>,
    reference_time: Timing,
    bytes: usize,
    prepared: Vec<Option<Box<dyn peers::Prepared>>>,
    outcome: Outcome,
}

/// Builds the plan and input of one layout, runs the reference once (it takes seconds on the
/// large cases) and prepares each peer.
fn prepare(
    case: &Case,
    layout: Layout,
    forced: Option<Isa>,
    peers: &[Peer],
    results: &mut Vec<serde_json::Value>,
) -> Result<Setup, String> {
    let plan = Plan::<f32>::new(&case.desc, layout, &case.shape)
        .and_then(|p| match forced {
            Some(isa) => p.with_isa(isa),
            None => Ok(p),
        })
        .map_err(|e| e.to_string())?;
    let input: Vec<f32> = (0..plan.input_len())
        .map(|i| ((i * 7919) % 1013) as f32 * 0.01 - 5.0)
        .collect();
    let bytes = (plan.input_len() + plan.output_len()) * 4;
    let mut reference = vec![0.0f32; plan.output_len()];
    let reference_time = time(Duration::ZERO, || {
        nnpool::reference::pool(&plan, &input, &mut reference, None).unwrap();
    });
    record(
        results,
        case,
        layout,
        bytes,
        "reference",
        1,
        &reference_time,
    );
    let mut outcome = Outcome {
        lines: Vec::new(),
        not_compared: Vec::new(),
        mismatches: Vec::new(),
    };
    let spec = peers::Spec::of(&plan);
    let prepared = peers
        .iter()
        .map(|peer| {
            let made = spec.clone().and_then(|spec| (peer.prepare)(&spec, &input));
            made.map_err(|why| outcome.not_compared.push((peer.name, why)))
                .ok()
        })
        .collect();
    Ok(Setup {
        layout,
        output: vec![0.0f32; plan.output_len()],
        copied: vec![0.0f32; plan.output_len()],
        plan,
        input,
        reference,
        reference_time,
        bytes,
        prepared,
        outcome,
    })
}

/// Appends one timing to the JSON records.
fn record(
    results: &mut Vec<serde_json::Value>,
    case: &Case,
    layout: Layout,
    bytes: usize,
    imp: &str,
    threads: usize,
    t: &Timing,
) {
    results.push(
        json!({"case": case.name, "layout": layout_name(layout), "threads": threads, "impl": imp,
        "median_s": t.median_s, "calls": t.calls, "bytes": bytes}),
    );
}

/// The samplers of one layout at one thread count: nnpool, the copy, and each peer (`None`
/// where it cannot express the case, an error once its output or a call failed).
struct Samples {
    plan: Plan<f32>,
    ours: Sampler,
    copy: Sampler,
    peers: Vec<Result<Option<Sampler>, String>>,
}

/// Times one case in `layouts` (nnpool, the copy, each peer; the reference once): per thread
/// count, every layout's implementations take turns in [`ROUNDS`] rounds. An error for a
/// layout whose output is wrong.
fn bench_case(
    case: &Case,
    layouts: &[Layout],
    forced: Option<Isa>,
    thread_counts: &[usize],
    budget: Duration,
    peers: &[Peer],
    results: &mut Vec<serde_json::Value>,
) -> Vec<(Layout, Result<Outcome, String>)> {
    let mut setups: Vec<(Layout, Result<Setup, String>)> = layouts
        .iter()
        .map(|&layout| (layout, prepare(case, layout, forced, peers, results)))
        .collect();
    for &threads in thread_counts {
        let pool = match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
            Ok(pool) => pool,
            Err(e) => {
                for (_, setup) in &mut setups {
                    *setup = Err(e.to_string());
                }
                break;
            }
        };
        // Each layout checked against the reference (ours and each peer's), then sampled.
        let mut samples: Vec<Option<Samples>> = Vec::new();
        for (_, entry) in &mut setups {
            let started = match entry {
                Ok(setup) => start(setup, threads, &pool),
                Err(_) => {
                    samples.push(None);
                    continue;
                }
            };
            match started {
                Ok(started) => samples.push(Some(started)),
                Err(e) => {
                    *entry = Err(e);
                    samples.push(None);
                }
            }
        }
        let share = budget / ROUNDS;
        let least = 5_usize.div_ceil(ROUNDS as usize);
        for _ in 0..ROUNDS {
            for ((_, entry), samples) in setups.iter_mut().zip(&mut samples) {
                if let (Ok(setup), Some(samples)) = (entry, samples.as_mut()) {
                    sample_round(setup, samples, &pool, share, least);
                }
            }
        }
        for ((_, entry), samples) in setups.iter_mut().zip(samples) {
            if let (Ok(setup), Some(samples)) = (entry, samples) {
                report(case, setup, samples, threads, peers, results);
            }
        }
    }
    setups
        .into_iter()
        .map(|(layout, setup)| (layout, setup.map(|setup| setup.outcome)))
        .collect()
}

/// Runs the layout's plan at `threads` once and checks it, checks each peer's output, and
/// sizes every sampler's batches; an error if our output is wrong.
fn start(setup: &mut Setup, threads: usize, pool: &rayon::ThreadPool) -> Result<Samples, String> {
    let plan = setup.plan.clone().with_parallel(threads > 1);
    pool.install(|| plan.run(&setup.input, &mut setup.output))
        .map_err(|e| e.to_string())?;
    nnpool::testing::check_against_reference(&plan, &setup.input, &setup.output, None)?;
    let ours =
        pool.install(|| Sampler::new(&mut || plan.run(&setup.input, &mut setup.output).unwrap()));
    let copy = Sampler::new(&mut || {
        std::hint::black_box(copy_bytes(
            std::hint::black_box(&setup.input),
            &mut setup.copied,
        ));
    });
    let peers = setup
        .prepared
        .iter_mut()
        .map(|call| match call {
            None => Ok(None),
            Some(call) => pool.install(|| {
                call.call()?;
                peers::matches_reference(plan.op(), &call.output()?, &setup.reference)?;
                Ok(Some(Sampler::new(&mut || {
                    let _ = call.call();
                })))
            }),
        })
        .collect();
    Ok(Samples {
        plan,
        ours,
        copy,
        peers,
    })
}

/// One round for one layout: nnpool, the copy, then each peer, `share` of the budget each.
fn sample_round(
    setup: &mut Setup,
    samples: &mut Samples,
    pool: &rayon::ThreadPool,
    share: Duration,
    least: usize,
) {
    let plan = &samples.plan;
    pool.install(|| {
        samples.ours.gather(share, least, &mut || {
            plan.run(&setup.input, &mut setup.output).unwrap()
        })
    });
    samples.copy.gather(share, least, &mut || {
        std::hint::black_box(copy_bytes(
            std::hint::black_box(&setup.input),
            &mut setup.copied,
        ));
    });
    for (call, entry) in setup.prepared.iter_mut().zip(&mut samples.peers) {
        let mut failure = None;
        if let (Some(call), Ok(Some(sampler))) = (call, entry.as_mut()) {
            pool.install(|| {
                sampler.gather(share, least, &mut || {
                    if let Err(e) = call.call() {
                        failure.get_or_insert(e);
                    }
                })
            });
        }
        if let Some(e) = failure {
            *entry = Err(e);
        }
    }
}

/// The table line of one layout at one thread count, and its JSON records.
fn report(
    case: &Case,
    setup: &mut Setup,
    samples: Samples,
    threads: usize,
    peers: &[Peer],
    results: &mut Vec<serde_json::Value>,
) {
    let (layout, bytes) = (setup.layout, setup.bytes);
    let t = samples.ours.timing();
    let copy = samples.copy.timing();
    record(results, case, layout, bytes, "nnpool", threads, &t);
    record(results, case, layout, bytes, "copy", threads, &copy);
    let reference = setup.reference_time.median_s;
    let mut line = format!(
        "{:<16} {:<5} {:>3}  {:>11}  {:>8.2}  {:>9.2}  {:>11}  {:>7.1}",
        case.name,
        layout_name(layout),
        threads,
        show(t.median_s),
        bytes as f64 / t.median_s / 1e9,
        copy.median_s / t.median_s,
        show(reference),
        reference / t.median_s,
    );
    for (peer, sampler) in peers.iter().zip(samples.peers) {
        let cell = match sampler {
            Ok(None) => "n/a".to_string(),
            Ok(Some(sampler)) => {
                let peer_time = sampler.timing();
                record(results, case, layout, bytes, peer.name, threads, &peer_time);
                format!("{:.2}", peer_time.median_s / t.median_s)
            }
            Err(e) => {
                eprintln!(
                    "\rMISMATCH {} {} {}: {e}",
                    case.name,
                    layout_name(layout),
                    peer.name
                );
                setup.outcome.mismatches.push(format!("{}: {e}", peer.name));
                "MISMATCH".to_string()
            }
        };
        line.push_str(&format!("  {cell:>9}"));
    }
    line.push_str(&format!("  {}", samples.plan.kernel_name()));
    setup.outcome.lines.push(line);
}

fn show(seconds: f64) -> String {
    if seconds < 1e-3 {
        format!("{:.2} µs", seconds * 1e6)
    } else {
        format!("{:.3} ms", seconds * 1e3)
    }
}
