//! `nnpool`: the benchmark comparison report (`nnpool bench`), pooling of .npy files
//! (`nnpool pool`) and what the machine offers (`nnpool info`).

mod bench;
mod chart;
mod peers;
mod pool;
mod suite;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "nnpool",
    version,
    about = "Pooling kernels: benchmark report, pooling of .npy files, machine info"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Times every case of the bench suite in both layouts, at 1 thread and at all cores, beside
    /// the naive reference and a plain copy of the same bytes.
    Bench(bench::Options),
    /// Pools a float32 tensor stored in a .npy file and writes the result as .npy.
    Pool(pool::Options),
    /// The CPU features detected, the level and kernel each op would use, the thread count.
    Info,
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(options) => bench::run(&options),
        Command::Pool(options) => pool::run(&options),
        Command::Info => {
            info();
            Ok(())
        }
    };
    if let Err(message) = result {
        eprintln!("nnpool: {message}");
        std::process::exit(1);
    }
}

/// The CPU model as the kernel reports it.
pub(crate) fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

fn info() {
    use nnpool::{Isa, Layout, Padding, Plan, PoolDesc};
    println!("nnpool {}", env!("CARGO_PKG_VERSION"));
    println!("cpu: {}", cpu_name());
    #[cfg(target_arch = "x86_64")]
    {
        let features = [
            ("sse4.2", std::arch::is_x86_feature_detected!("sse4.2")),
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
            ("fma", std::arch::is_x86_feature_detected!("fma")),
            ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
            ("avx512bw", std::arch::is_x86_feature_detected!("avx512bw")),
        ];
        let list: Vec<String> = features
            .iter()
            .map(|(name, on)| format!("{name}{}", if *on { "" } else { " (no)" }))
            .collect();
        println!("cpu features: {}", list.join(", "));
    }
    let available: Vec<&str> = Isa::available().iter().map(|i| i.name()).collect();
    println!("levels available: {}", available.join(", "));
    println!(
        "level in use: {} (preferred here: {}; NNPOOL_ISA overrides; each kernel below names \
         the level it runs on)",
        Isa::default_for_process(),
        Isa::preferred()
    );
    println!("threads: {} (rayon pool)", rayon::current_num_threads());
    let pad = Padding::symmetric(&[1, 1]);
    let examples = [
        (
            "max 3x3/2",
            PoolDesc::max(&[3, 3]).strides(&[2, 2]).padding(pad.clone()),
        ),
        (
            "max 5x5/1",
            PoolDesc::max(&[5, 5])
                .strides(&[1, 1])
                .padding(Padding::symmetric(&[2, 2])),
        ),
        (
            "average 3x3/1",
            PoolDesc::average(&[3, 3]).strides(&[1, 1]).padding(pad),
        ),
        ("lp p=2 2x2", PoolDesc::lp(&[2, 2], 2.0)),
        ("lp p=3 2x2", PoolDesc::lp(&[2, 2], 3.0)),
        ("global average", PoolDesc::global_average()),
    ];
    println!("kernels (for a [1, 64, 56, 56] input):");
    for (name, desc) in examples {
        let mut kernels = Vec::new();
        for layout in [Layout::ChannelsFirst, Layout::ChannelsLast] {
            match Plan::<f32>::new(&desc, layout, &[1, 64, 56, 56]) {
                Ok(plan) => kernels.push(format!("{layout:?}: {}", plan.kernel_name())),
                Err(e) => kernels.push(format!("{layout:?}: {e}")),
            }
        }
        println!("  {name:<15} {}", kernels.join("   "));
    }
}
