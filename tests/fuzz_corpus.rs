//! Replays every committed fuzz input — the seed corpus (`fuzz/corpus/<target>/`) and every crash
//! reproducer (`fuzz/regressions/<target>/`) — through the same functions the cargo-fuzz targets
//! call, on stable Rust. The seeds are edge cases written on purpose (below); run with
//! `NNPOOL_WRITE_SEEDS=1` to (re)write them into `fuzz/corpus/`.

use std::path::PathBuf;

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 3] = [
    ("descriptor", nnpool::testing::fuzz_descriptor),
    ("differential", nnpool::testing::fuzz_differential),
    ("buffers", nnpool::testing::fuzz_buffers),
];

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// Encodes a small configuration in the order `nnpool::testing::small_case` decodes it.
#[derive(Clone)]
struct Small {
    shape: Vec<usize>,
    /// 0 max, 3 average, 4 lp (with `p_index`).
    op: u8,
    p_index: u8,
    global: bool,
    kernel: Vec<usize>,
    strides: Vec<usize>,
    dilations: Vec<usize>,
    /// 0 valid, 1 same upper, 2 same lower, 3 explicit.
    padding: u8,
    begin: Vec<usize>,
    end: Vec<usize>,
    ceil: bool,
    /// Average: 0 divisor override (`divisor_code`), 1 count_include_pad, 2 neither.
    average: u8,
    divisor_code: u8,
    channels_last: bool,
    indices: bool,
    values: Vec<u32>,
}

impl Small {
    fn new(shape: &[usize], kernel: &[usize]) -> Small {
        let rank = shape.len() - 2;
        Small {
            shape: shape.to_vec(),
            op: 0,
            p_index: 0,
            global: false,
            kernel: kernel.to_vec(),
            strides: kernel.to_vec(),
            dilations: vec![1; rank],
            padding: 3,
            begin: vec![0; rank],
            end: vec![0; rank],
            ceil: false,
            average: 2,
            divisor_code: 0,
            channels_last: false,
            indices: true,
            values: Vec::new(),
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut b = vec![
            (self.shape.len() - 3) as u8,
            (self.shape[0] - 1) as u8,
            (self.shape[1] - 1) as u8,
        ];
        b.extend(self.shape[2..].iter().map(|&x| (x - 1) as u8));
        b.push(self.op);
        if self.op >= 4 {
            b.push(self.p_index);
        }
        b.push(if self.global { 0 } else { 1 });
        if !self.global {
            b.extend(self.kernel.iter().map(|&k| (k - 1) as u8));
            b.extend(self.strides.iter().map(|&s| (s - 1) as u8));
            b.extend(self.dilations.iter().map(|&d| (d - 1) as u8));
            b.push(self.padding);
            if self.padding == 3 {
                b.extend(self.begin.iter().map(|&p| p as u8));
                b.extend(self.end.iter().map(|&p| p as u8));
                b.push(if self.ceil { 0 } else { 1 });
            }
        }
        if self.op == 3 {
            b.push(self.average);
            if self.average == 0 {
                b.push(self.divisor_code);
            }
        }
        b.push(u8::from(self.channels_last));
        if self.op == 0 {
            b.push(if self.indices { 0 } else { 1 });
        }
        for v in &self.values {
            b.extend(v.to_le_bytes());
        }
        b
    }
}

/// Special bit patterns: NaN payloads, ±0, ±∞, subnormals, extremes, ties.
const SPECIAL: [u32; 12] = [
    0x7fc0_0001,
    0xffc0_0002,
    0x8000_0000,
    0x0000_0000,
    0x7f80_0000,
    0xff80_0000,
    0x0000_0001,
    0x8000_0001,
    0x7f7f_ffff,
    0xff7f_ffff,
    0x3f80_0000,
    0x3f80_0000,
];

fn special_values(count: usize, shift: usize) -> Vec<u32> {
    (0..count)
        .map(|i| SPECIAL[(i * 7 + shift) % SPECIAL.len()])
        .collect()
}

/// The hand-written seeds of the `differential` and `buffers` targets.
fn small_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    let mut add = |name: String, case: Small| seeds.push((name, case.encode()));
    for (i, op) in [0u8, 3, 4, 5].into_iter().enumerate() {
        for channels_last in [false, true] {
            let tag = format!("op{op}_{}", if channels_last { "nhwc" } else { "nchw" });
            let base = |shape: &[usize], kernel: &[usize]| {
                let mut c = Small::new(shape, kernel);
                c.op = op;
                c.p_index = (i % 4) as u8;
                c.channels_last = channels_last;
                c.values = special_values(shape.iter().product(), i);
                c
            };
            // A 1x1 input.
            add(format!("one_by_one_{tag}"), base(&[1, 1, 1, 1], &[1, 1]));
            // A window larger than the input, made valid by padding.
            let mut c = base(&[1, 3, 2, 2], &[3, 3]);
            (c.begin, c.end, c.strides) = (vec![1, 1], vec![1, 1], vec![1, 1]);
            add(format!("window_larger_than_input_{tag}"), c);
            // Pads equal to the window minus one.
            let mut c = base(&[2, 5, 6, 7], &[3, 2]);
            (c.begin, c.end, c.strides) = (vec![2, 1], vec![2, 1], vec![1, 2]);
            add(format!("pads_window_minus_one_{tag}"), c);
            // Stride larger than the window.
            let mut c = base(&[1, 7, 9, 11], &[2, 1]);
            c.strides = vec![3, 4];
            add(format!("stride_over_window_{tag}"), c);
            // Dilation making windows sparse, with ceil mode.
            let mut c = base(&[1, 9, 11, 12], &[3, 2]);
            (c.dilations, c.strides, c.begin, c.ceil) = (vec![3, 4], vec![2, 3], vec![1, 0], true);
            add(format!("sparse_dilated_ceil_{tag}"), c);
            // Every automatic padding mode, with odd channel counts around the vector widths.
            for (padding, channels) in [(0u8, 3usize), (1, 5), (2, 7), (1, 9), (2, 15), (0, 17)] {
                let mut c = base(&[1, channels, 5, 8], &[3, 3]);
                (c.padding, c.strides) = (padding, vec![2, 1]);
                add(format!("auto_padding{padding}_c{channels}_{tag}"), c);
            }
            // 1-D and 3-D, and global pooling.
            let mut c = base(&[2, 8, 12], &[4]);
            (c.strides, c.begin, c.end) = (vec![1], vec![3], vec![3]);
            add(format!("one_d_{tag}"), c);
            let mut c = base(&[1, 4, 3, 5, 6], &[2, 3, 2]);
            (c.strides, c.begin, c.ceil) = (vec![1, 2, 2], vec![1, 1, 0], true);
            add(format!("three_d_{tag}"), c);
            let mut c = base(&[2, 16, 4, 5], &[1, 1]);
            c.global = true;
            add(format!("global_{tag}"), c);
            if op == 3 {
                let mut c = base(&[1, 4, 6, 6], &[3, 3]);
                (c.begin, c.end, c.strides, c.ceil, c.average) =
                    (vec![1, 1], vec![0, 0], vec![2, 2], true, 1);
                add(format!("count_include_pad_ceil_{tag}"), c);
                let mut c = base(&[1, 4, 6, 6], &[2, 2]);
                (c.average, c.divisor_code) = (0, 1);
                add(format!("divisor_override_{tag}"), c);
            }
        }
    }
    seeds
}

/// Seeds of the `descriptor` target: zeros, huge values and overflowing products (encoded for
/// `Bytes::size`: tag 0 = 0, 1 = usize::MAX - n, 2 = 1 << n, 5.. = small).
fn descriptor_seeds() -> Vec<(String, Vec<u8>)> {
    let small = |v: u8| [5u8, v];
    let mut seeds = Vec::new();
    // 2-D shape [N, C, H, W] with sizes (tag, value) pairs, then op max, kernel, strides.
    let shapes: [(&str, [[u8; 2]; 4]); 4] = [
        ("zero_dim", [small(1), [0, 0], small(4), small(4)]),
        ("huge_batch", [[1, 0], small(2), small(4), small(4)]),
        (
            "overflowing_product",
            [[2, 40], [2, 40], small(4), small(4)],
        ),
        ("plain", [small(1), small(3), small(8), small(8)]),
    ];
    for (name, shape) in shapes {
        let mut b = vec![4u8];
        b.extend(shape.iter().flatten());
        b.extend([0u8, 1]); // max, sliding
        b.extend([5, 3, 5, 3]); // kernel 3x3 (list length byte 1 = rank)
        seeds.push((name.to_string(), b.clone()));
        // The same with huge strides and dilations and explicit pads near usize::MAX.
        let mut b2 = b.clone();
        b2.extend([0u8, 1, 1, 0, 1, 1, 1, 2]); // strides: huge
        b2.extend([0u8, 1, 2, 63, 2, 62]); // dilations: 1 << 63, 1 << 62
        b2.extend([0u8, 1, 1, 3, 5, 1, 1, 1, 1, 2, 5, 0]); // explicit pads incl. usize::MAX - 3
        seeds.push((format!("{name}_huge_window"), b2));
    }
    seeds
}

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    match target {
        "descriptor" => descriptor_seeds(),
        _ => small_seeds(),
    }
}

#[test]
fn the_seeds_decode_to_the_configurations_they_were_written_for() {
    use nnpool::testing::{Bytes, small_case};
    let seeds = small_seeds();
    let mut valid = 0;
    for (name, bytes) in &seeds {
        let case = small_case(&mut Bytes::new(bytes));
        let plan = nnpool::Plan::<f32>::new(&case.desc, case.layout, &case.shape);
        assert_eq!(
            case.layout == nnpool::Layout::ChannelsLast,
            name.ends_with("nhwc"),
            "{name}"
        );
        if name.starts_with("global") {
            assert!(
                plan.as_ref().is_ok_and(|p| p.is_global()),
                "{name}: {plan:?}"
            );
        }
        valid += usize::from(plan.is_ok());
    }
    assert!(
        valid * 10 >= seeds.len() * 9,
        "only {valid} of {} seeds build a plan",
        seeds.len()
    );
}

#[test]
fn replay_seeds_corpus_and_regressions() {
    let write = std::env::var("NNPOOL_WRITE_SEEDS").is_ok();
    let mut replayed = 0;
    for (target, run) in TARGETS {
        for (name, bytes) in seeds(target) {
            run(&bytes);
            if write {
                let path = fuzz_dir()
                    .join("corpus")
                    .join(target)
                    .join(format!("seed_{name}"));
                std::fs::write(path, &bytes).unwrap();
            }
            replayed += 1;
        }
        let mut files = 0;
        for folder in ["corpus", "regressions"] {
            let Ok(entries) = std::fs::read_dir(fuzz_dir().join(folder).join(target)) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                if path.file_name().is_some_and(|n| n == ".keep") {
                    continue;
                }
                run(&std::fs::read(&path).unwrap());
                files += 1;
            }
        }
        assert!(
            files > 0,
            "no committed corpus for {target}: run with NNPOOL_WRITE_SEEDS=1"
        );
        replayed += files;
    }
    println!("replayed {replayed} fuzz inputs");
}
