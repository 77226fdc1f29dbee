//! Every kernel path on every instruction-set level this machine runs (forced one at a time),
//! across an edge grid: channel counts and widths at lanes - 1, lanes, lanes + 1 and around the
//! 4- and 8-vector blocks, windows partly in padding, inputs smaller than the window, stride
//! larger than the window, ceil mode, dilation, n > 1, every op. Each result is checked against
//! the reference by the contract, written inside sentinels, and must be bit-identical across
//! levels and thread counts.

mod common;

use nnpool::{Isa, Layout, Padding, Plan, PoolDesc, PoolOp};

/// Deterministic values with ties (−0 beside 0 among them), negatives, infinities and the odd
/// NaN, each NaN with its own payload: max results are compared bit for bit, so a kernel that
/// visits taps out of order (which zero of a tie, which NaN) shows.
fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let r = (state >> 33) as u32;
            match r % 97 {
                0 => f32::from_bits(0x7fc0_0000 | (r >> 10)),
                1 => f32::NEG_INFINITY,
                2 => f32::INFINITY,
                3..=5 => -0.0,
                6..=30 => (r % 7) as f32 - 3.0, // ties
                _ => (r as f32 / u32::MAX as f32) * 200.0 - 100.0,
            }
        })
        .collect()
}

/// The ops that every vector kernel runs (Lp with other exponents runs the scalar kernel).
const VECTOR_OPS: [PoolOp; 4] = [
    PoolOp::Max,
    PoolOp::Average,
    PoolOp::Lp { p: 1.0 },
    PoolOp::Lp { p: 2.0 },
];

/// The windows of the grid: (name, descriptor) for a 2-D input.
fn windows() -> Vec<(&'static str, PoolDesc)> {
    let ops = [
        PoolOp::Max,
        PoolOp::Average,
        PoolOp::Lp { p: 1.0 },
        PoolOp::Lp { p: 2.0 },
        PoolOp::Lp { p: 3.0 },
    ];
    let mut out = Vec::new();
    for op in ops {
        let with = |d: PoolDesc| d;
        let shapes: Vec<(&'static str, PoolDesc)> = vec![
            ("2x2/2", with(PoolDesc::new(op, &[2, 2]))),
            (
                "3x3/2 pad 1",
                PoolDesc::new(op, &[3, 3])
                    .strides(&[2, 2])
                    .padding(Padding::symmetric(&[1, 1])),
            ),
            (
                "3x3/2 no padding",
                PoolDesc::new(op, &[3, 3]).strides(&[2, 2]),
            ),
            (
                "3x3/1 pad 1",
                PoolDesc::new(op, &[3, 3])
                    .strides(&[1, 1])
                    .padding(Padding::symmetric(&[1, 1])),
            ),
            (
                "5x5/1 pad 2",
                PoolDesc::new(op, &[5, 5])
                    .strides(&[1, 1])
                    .padding(Padding::symmetric(&[2, 2])),
            ),
            (
                "1x3/3 stride > window",
                PoolDesc::new(op, &[1, 2]).strides(&[1, 3]),
            ),
            (
                "3x2/(2,3) ceil pad 1/0",
                PoolDesc::new(op, &[3, 2])
                    .strides(&[2, 3])
                    .padding(Padding::explicit(&[1, 1], &[0, 0]))
                    .ceil_mode(true),
            ),
            (
                "2x3 dilated 2 same",
                PoolDesc::new(op, &[2, 3])
                    .strides(&[1, 2])
                    .dilations(&[2, 2])
                    .padding(Padding::SameUpper),
            ),
            ("global", PoolDesc::global(op)),
        ];
        for (name, desc) in shapes {
            let desc = if op == PoolOp::Average && name.contains("pad") {
                desc.count_include_pad(true)
            } else {
                desc
            };
            out.push((name, desc));
        }
    }
    out
}

/// Runs one configuration on every level and with 1 and several threads; checks each run.
fn check_everywhere(name: &str, desc: &PoolDesc, layout: Layout, shape: &[usize]) -> usize {
    let Ok(base) = Plan::<f32>::new(desc, layout, shape) else {
        return 0; // e.g. the window does not fit a tiny input: covered by the error tests
    };
    let input = values(base.input_len(), shape.iter().sum::<usize>() as u64);
    // Max runs without indices (value-only and separable kernels) and with them.
    let variants: &[bool] = if base.op() == PoolOp::Max {
        &[false, true]
    } else {
        &[false]
    };
    variants
        .iter()
        .map(|&with_indices| check_levels_and_threads(name, &base, shape, &input, with_indices))
        .sum()
}

/// One configuration on every level, on 1 thread and in a 3-thread pool (split into 3 bands of
/// rows, or as the plan decides for the large `threads` cases): each run checked against the
/// reference and bit-identical to the first.
fn check_levels_and_threads(
    name: &str,
    base: &Plan<f32>,
    shape: &[usize],
    input: &[f32],
    with_indices: bool,
) -> usize {
    let layout = base.layout();
    let mut first: Option<(Isa, Vec<f32>, Option<Vec<i64>>)> = None;
    let mut runs = 0;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap();
    for isa in Isa::available() {
        let plan = base.clone().with_isa(isa).unwrap();
        for parallel in [false, true] {
            let mut plan = plan.clone().with_parallel(parallel);
            if parallel && !name.starts_with("threads") {
                // Small inputs stay on one thread by default; force bands to test their edges.
                plan = plan.with_forced_tasks(3);
            }
            // The input and output shifted by a different number of elements in each run, so
            // that across the grid they start at every offset from a vector boundary.
            let shift = (runs * 5 + input.len()) % 16;
            let (out, idx) = pool
                .install(|| common::run_guarded_shifted(&plan, input, with_indices, shift))
                .unwrap();
            if let Err(e) = common::check_against_reference(&plan, input, &out, &idx) {
                panic!(
                    "{name} {layout:?} {shape:?} on {isa} (parallel {parallel}, indices {with_indices}, {}): {e}",
                    plan.kernel_name()
                );
            }
            match &first {
                None => first = Some((isa, out, idx)),
                Some((first_isa, first_out, first_idx)) => {
                    assert!(
                        common::same_results(plan.op(), first_out, &out) && *first_idx == idx,
                        "{name} {layout:?} {shape:?}: {isa} (parallel {parallel}) differs from {first_isa}"
                    );
                }
            }
            runs += 1;
        }
    }
    runs
}

#[test]
fn edge_grid_on_every_level() {
    let available = Isa::available();
    let missing: Vec<_> = Isa::ALL
        .iter()
        .filter(|isa| !available.contains(isa))
        .collect();
    println!("levels run: {available:?}; not on this machine: {missing:?}");
    let lanes: Vec<usize> = available.iter().map(|isa| isa.lanes()).collect();
    let widest = *lanes.iter().max().unwrap();
    // Channel counts and widths around every level's vector and 4- and 8-vector blocks.
    let mut sizes = vec![1, 2, 3];
    for &l in &lanes {
        sizes.extend([
            l - 1,
            l,
            l + 1,
            4 * l - 1,
            4 * l,
            4 * l + 1,
            8 * l - 1,
            8 * l + 1,
        ]);
    }
    sizes.sort_unstable();
    sizes.dedup();
    let mut runs = 0;
    for (name, desc) in windows() {
        for layout in [Layout::ChannelsFirst, Layout::ChannelsLast] {
            for &size in &sizes {
                // Channels-last vectorizes channels, channels-first the output width.
                let shape = match layout {
                    Layout::ChannelsLast => vec![2, size, 5, 7],
                    Layout::ChannelsFirst => vec![2, 3, 4, 2 * size + 1],
                };
                runs += check_everywhere(name, &desc, layout, &shape);
            }
            // Inputs smaller than the window (padding and ceil mode make some valid).
            runs += check_everywhere(name, &desc, layout, &[1, 2, 2, 3]);
            // A wide row that spans several row-buffer vectors and the thread split.
            runs += check_everywhere(name, &desc, layout, &[3, 5, 9, 8 * widest + 3]);
        }
    }
    println!("{runs} checked runs");
    assert!(runs > 1000, "the grid ran too little: {runs}");
}

#[test]
fn tall_narrow_planes_on_every_level() {
    // Planes too large for the small-planes kernel with output rows shorter than a vector or a
    // few vectors: the row kernels' partial-vector and short-tail paths.
    let lanes: Vec<usize> = Isa::available().iter().map(|isa| isa.lanes()).collect();
    let mut widths = vec![1, 2, 3];
    for &l in &lanes {
        widths.extend([l - 1, l + 1, 2 * l + 1, 3 * l + 1]);
    }
    widths.sort_unstable();
    widths.dedup();
    let mut runs = 0;
    for (name, desc) in windows() {
        for &width in &widths {
            // 700 rows: over 2048 elements per plane even 3 wide (the small-planes kernel
            // takes planes up to 8192 / lanes elements).
            let shape = [1, 2, 700, 2 * width + 1];
            runs += check_everywhere(name, &desc, Layout::ChannelsFirst, &shape);
        }
    }
    assert!(runs > 100, "the grid ran too little: {runs}");
}

#[test]
fn flat_planes_on_every_level() {
    // Stride-1 and stride-2 windows along flat padded planes (16 lanes): padding on any side,
    // dilation (a later window reads rows above the first one's first tap), 1-row planes,
    // output rows from 2 vectors up, a plane at the size bound; 3-task runs cut planes.
    let mut descs = Vec::new();
    for op in [
        PoolOp::Average,
        PoolOp::Lp { p: 1.0 },
        PoolOp::Lp { p: 2.0 },
    ] {
        descs.extend([
            PoolDesc::new(op, &[3, 3])
                .strides(&[1, 1])
                .padding(Padding::symmetric(&[1, 1])),
            PoolDesc::new(op, &[5, 5])
                .strides(&[1, 1])
                .padding(Padding::symmetric(&[2, 2])),
            PoolDesc::new(op, &[2, 3])
                .strides(&[1, 1])
                .dilations(&[2, 2])
                .padding(Padding::SameLower),
            PoolDesc::new(op, &[2, 2])
                .strides(&[1, 1])
                .padding(Padding::explicit(&[1, 0], &[0, 1])),
            PoolDesc::new(op, &[1, 3]).strides(&[1, 1]),
        ]);
    }
    let average = PoolDesc::average(&[3, 3])
        .strides(&[1, 1])
        .padding(Padding::symmetric(&[1, 1]));
    descs.push(average.clone().count_include_pad(true));
    descs.push(average.divisor_override(5.0));
    // Stride 2 (planes split into 4 phases), max too (values only; with indices the row
    // kernel), from 16 outputs a row.
    for op in [PoolOp::Max, PoolOp::Average, PoolOp::Lp { p: 2.0 }] {
        descs.extend([
            PoolDesc::new(op, &[3, 3])
                .strides(&[2, 2])
                .padding(Padding::symmetric(&[1, 1])),
            PoolDesc::new(op, &[3, 3]).strides(&[2, 2]),
            PoolDesc::new(op, &[2, 2]).ceil_mode(true),
            PoolDesc::new(op, &[2, 3])
                .strides(&[2, 2])
                .dilations(&[2, 2])
                .padding(Padding::SameUpper),
        ]);
    }
    let shapes = [
        [1, 3, 5, 32],
        [2, 2, 1, 33],
        [1, 3, 17, 40],
        [1, 2, 9, 47],
        [1, 1, 118, 126],
        [1, 2, 7, 33],
        [1, 3, 20, 55],
        [2, 1, 9, 64],
    ];
    let mut runs = 0;
    for desc in &descs {
        for shape in shapes {
            runs += check_everywhere("flat planes", desc, Layout::ChannelsFirst, &shape);
            let Ok(plan) = Plan::<f32>::new(desc, Layout::ChannelsFirst, &shape) else {
                continue; // a window that does not fit a 1-row plane
            };
            for isa in Isa::available().into_iter().filter(|isa| isa.lanes() >= 16) {
                let name = plan.clone().with_isa(isa).unwrap().kernel_name();
                // Stride-1 sums keeping the row width run unpadded (their own test below).
                let flat = name.contains("flat_planes") || name.contains("flat_unpadded");
                let stride = plan.strides()[1];
                let planes_fit = stride == 1 || shape[2] * shape[3] <= 3000;
                // Max with stride 2 may run row maxima instead (see its own test).
                let short_rows = name.contains("short_rows");
                assert!(
                    !short_rows
                        || (plan.op() == PoolOp::Max && stride == 2 && plan.dilations() == [1, 1]),
                    "{shape:?}: {name}"
                );
                let expected = planes_fit && plan.output_shape()[3] >= 32 / stride && !short_rows;
                assert_eq!(flat, expected, "{shape:?}: {name}");
            }
        }
    }
    assert!(runs > 100, "the grid ran too little: {runs}");
}

#[test]
fn max_rows_too_short_for_v3_leave_pairs_on_v4() {
    // 2x2/2 max whose rows of 3-7 outputs would run pairs on the 4-lane level: on v4, with a
    // vector of planes or more, the small-planes kernel takes them; with fewer planes, input
    // rows of 4 (two output rows a v2 vector) or rows of 8 outputs (v3), the pairs kernel
    // keeps them. Results against the reference on every level, values and indices.
    let desc = PoolDesc::max(&[2, 2]);
    let mut runs = 0;
    for (shape, small) in [
        ([2, 8, 14, 14], true),
        ([1, 32, 6, 6], true),
        ([2, 20, 15, 15], true),
        ([1, 5, 15, 15], false),
        ([1, 3, 14, 14], false),
        ([1, 32, 4, 4], false),
        ([1, 32, 16, 16], false),
    ] {
        runs += check_everywhere("short pairs", &desc, Layout::ChannelsFirst, &shape);
        let plan = Plan::<f32>::new(&desc, Layout::ChannelsFirst, &shape).unwrap();
        if let Ok(v4) = plan.with_isa(Isa::V4) {
            let expected = if small {
                "channels_first_small_planes_max/v4"
            } else {
                "channels_first_pairs_max/"
            };
            let name = v4.kernel_name();
            assert!(name.starts_with(expected), "{shape:?}: {name}");
        }
    }
    // 3-D: a window one slice deep over 16 volumes of 2 slices (which fit the block).
    let desc = PoolDesc::max(&[1, 2, 2]).strides(&[1, 2, 2]);
    let shape = [1, 16, 2, 14, 14];
    runs += check_everywhere("short pairs 3-D", &desc, Layout::ChannelsFirst, &shape);
    let plan = Plan::<f32>::new(&desc, Layout::ChannelsFirst, &shape).unwrap();
    if let Ok(v4) = plan.with_isa(Isa::V4) {
        assert_eq!(v4.kernel_name(), "channels_first_small_planes_max/v4");
    }
    assert!(runs > 20, "the grid ran too little: {runs}");
}

#[test]
fn pairs_two_output_rows_a_vector() {
    // Rows of one vector's pixels on v2 (4) and v3 (8), where a vector holds two output rows:
    // an odd count of output rows in a task or plane (the last row alone), planes with an odd
    // height (the rows of a task in runs per plane), every op, on 1 thread and in 3 tasks.
    let ops = VECTOR_OPS;
    let mut runs = 0;
    for width in [4, 8] {
        for op in ops {
            let desc = PoolDesc::new(op, &[2, 2]);
            for channels in [1, 2, 3, 5] {
                for height in [2, 4, 5, 6, 7, 10] {
                    let shape = [1, channels, height, width];
                    runs += check_everywhere("pairs", &desc, Layout::ChannelsFirst, &shape);
                    let plan = Plan::<f32>::new(&desc, Layout::ChannelsFirst, &shape).unwrap();
                    let name = plan.kernel_name();
                    assert!(name.contains("pairs"), "{shape:?}: {name}");
                }
            }
        }
    }
    assert!(runs > 100, "the grid ran too little: {runs}");
}

#[test]
fn channels_last_pairs_on_every_level() {
    // Channels-last 2x2/2 windows without padding, read in place: channel counts around every
    // level's lanes (a partial last vector), odd widths and heights (a last column and row no
    // window reads), batches, ceil mode with whole windows, 3-D with a 1-deep window, every op.
    let lanes: Vec<usize> = Isa::available().iter().map(|isa| isa.lanes()).collect();
    let mut channel_counts = vec![5, 16, 24];
    for &l in &lanes {
        channel_counts.extend([l - 1, l, l + 1, 2 * l + 3]);
    }
    channel_counts.sort_unstable();
    channel_counts.dedup();
    let ops = VECTOR_OPS;
    let mut runs = 0;
    for op in ops {
        let desc = PoolDesc::new(op, &[2, 2]);
        for desc in [desc.clone(), desc.ceil_mode(true)] {
            for &channels in &channel_counts {
                for (height, width) in [(2, 2), (4, 6), (5, 7), (6, 3)] {
                    let shape = [2, channels, height, width];
                    runs += check_everywhere("pairs", &desc, Layout::ChannelsLast, &shape);
                    let plan = Plan::<f32>::new(&desc, Layout::ChannelsLast, &shape).unwrap();
                    for isa in Isa::available() {
                        let name = plan.clone().with_isa(isa).unwrap().kernel_name();
                        // Few channels go through planes; 2x2 inputs are global pooling; ceil
                        // mode on odd sizes adds a window that overhangs.
                        let via_planes = channels <= isa.lanes().min(16) / 2;
                        let global = height == 2 && width == 2;
                        let out = plan.output_shape();
                        let whole = 2 * out[2] <= height && 2 * out[3] <= width;
                        let expected = !via_planes && !global && whole;
                        assert_eq!(
                            name.starts_with("channels_last_pairs_"),
                            expected,
                            "{shape:?} {desc:?}: {name}"
                        );
                    }
                }
            }
        }
    }
    let desc = PoolDesc::max(&[1, 2, 2]).strides(&[1, 2, 2]);
    let shape = [2, 19, 3, 7, 10];
    let plan = Plan::<f32>::new(&desc, Layout::ChannelsLast, &shape).unwrap();
    assert!(
        plan.kernel_name().starts_with("channels_last_pairs_"),
        "{}",
        plan.kernel_name()
    );
    runs += check_everywhere("pairs", &desc, Layout::ChannelsLast, &shape);
    // Inputs past L2 stay with the channels-last kernel, which asks for them ahead.
    let large = Plan::<f32>::new(
        &PoolDesc::max(&[2, 2]),
        Layout::ChannelsLast,
        &[1, 64, 128, 128],
    )
    .unwrap();
    assert!(
        large.kernel_name().starts_with("channels_last_max/"),
        "{}",
        large.kernel_name()
    );
    assert!(runs > 200, "the grid ran too little: {runs}");
}

#[test]
fn pairs_on_every_level() {
    // Channels-first 2x2/2 windows without padding on short rows, read in place: output widths
    // 1-9 and at every level's lanes +-1 (rows of part of a vector, the 4-lane level taking
    // over from wider ones), odd input sizes (a last row and column no window reads), ceil
    // mode with whole windows, planes whose last row pair ends the input (the tail's copy),
    // 3-D with a 1-deep window, every op, and the average divisor rules. Sums take planes of
    // any size (on v4, 127-wide rows of 63 outputs), max only those of the small-planes block.
    let lanes: Vec<usize> = Isa::available().iter().map(|isa| isa.lanes()).collect();
    let mut widths: Vec<usize> = (1..=9).collect();
    for &l in &lanes {
        widths.extend([l - 1, l, l + 1, 2 * l + 1, 4 * l - 1]);
    }
    widths.sort_unstable();
    widths.dedup();
    let ops = VECTOR_OPS;
    let mut descs = Vec::new();
    for op in ops {
        let desc = PoolDesc::new(op, &[2, 2]);
        descs.push(desc.clone());
        descs.push(desc.clone().ceil_mode(true));
        if op == PoolOp::Average {
            descs.push(desc.clone().divisor_override(3.0));
        }
    }
    let mut runs = 0;
    let mut paired = 0;
    for desc in &descs {
        for &out_width in &widths {
            for (height, extra) in [(2, 0), (5, 1), (6, 0)] {
                let shape = [2, 3, height, 2 * out_width + extra];
                runs += check_everywhere("pairs", desc, Layout::ChannelsFirst, &shape);
                let plan = Plan::<f32>::new(desc, Layout::ChannelsFirst, &shape).unwrap();
                for isa in Isa::available() {
                    let plan = plan.clone().with_isa(isa).unwrap();
                    let name = plan.kernel_name();
                    // Rows under 4 vectors, for max on planes that fit the small-planes block
                    // (which runs max with indices), every window whole (ceil mode may add one
                    // that overhangs).
                    let short = out_width < 4 * isa.lanes().min(16);
                    let narrow = short && shape[2] * shape[3] * isa.lanes() <= 8192;
                    let fits = if desc.op() == PoolOp::Max {
                        narrow
                    } else {
                        short
                    };
                    let out = plan.output_shape();
                    let whole = 2 * out[2] <= shape[2] && 2 * out[3] <= shape[3];
                    // A 2x2 window on 2x2 planes is global pooling.
                    let global = shape[2] == 2 && shape[3] == 2;
                    let expected = fits && whole && !global;
                    assert_eq!(
                        name.contains("pairs"),
                        expected,
                        "{shape:?} {desc:?}: {name}"
                    );
                    paired += usize::from(expected);
                }
            }
        }
    }
    // 3-D: a window one slice deep.
    let desc = PoolDesc::max(&[1, 2, 2]).strides(&[1, 2, 2]);
    let shape = [2, 3, 3, 7, 10];
    let plan = Plan::<f32>::new(&desc, Layout::ChannelsFirst, &shape).unwrap();
    assert!(
        plan.kernel_name().contains("pairs"),
        "{}",
        plan.kernel_name()
    );
    runs += check_everywhere("pairs", &desc, Layout::ChannelsFirst, &shape);
    assert!(
        runs > 500 && paired > 100,
        "the grid ran too little: {runs}, {paired}"
    );
}

#[test]
fn short_rows_on_every_level() {
    // Max with x stride 2 on rows of 1-8 vectors: row maxima then column maxima. Output widths
    // at every level's vector multiples +-1 (rows ending inside, at and just past a vector),
    // windows 2 and 3 wide with and without padding, window heights 1-5 with y strides 1-3 (row
    // maxima shared by 0-4 output rows), ceil mode, 1-D and 3-D (a z stride over planes of
    // depth slices), planes whose first and last rows sit at the input's ends (read through the
    // copied edge row) and, on 3 forced bands, plane rows split between tasks.
    let lanes: Vec<usize> = Isa::available().iter().map(|isa| isa.lanes()).collect();
    let mut widths = vec![1, 2, 3];
    for &l in &lanes {
        for k in 1..=8 {
            widths.extend(
                [k * l - 1, k * l, k * l + 1]
                    .into_iter()
                    .filter(|&w| w <= 65),
            );
        }
    }
    widths.sort_unstable();
    widths.dedup();
    let mut descs = Vec::new();
    for kx in [2, 3] {
        for (ky, sy) in [(1, 1), (2, 1), (3, 2), (3, 3), (5, 2), (2, 3)] {
            let desc = PoolDesc::max(&[ky, kx]).strides(&[sy, 2]);
            let pads = Padding::symmetric(&[ky / 2, kx / 2]);
            descs.push(desc.clone().padding(pads.clone()));
            descs.push(desc.clone().ceil_mode(true));
            descs.push(desc.padding(Padding::explicit(&[0, 1], &[ky / 2, 0])));
        }
    }
    let mut runs = 0;
    for desc in &descs {
        for &out_width in &widths {
            for height in [7, 45] {
                let shape = [2, 3, height, 2 * out_width + 1];
                runs += check_everywhere("short rows", desc, Layout::ChannelsFirst, &shape);
                let Ok(plan) = Plan::<f32>::new(desc, Layout::ChannelsFirst, &shape) else {
                    continue;
                };
                for isa in Isa::available() {
                    let plan = plan.clone().with_isa(isa).unwrap();
                    let name = plan.kernel_name();
                    // At most 64 outputs a row, in 4 vectors (8 on levels of 8 lanes or more).
                    let vectors = if isa.lanes() >= 8 { 8 } else { 4 };
                    let fits = plan.output_shape()[3] <= (vectors * isa.lanes()).min(64);
                    // Planes small enough for the small-planes kernel's transposed block (8 Ki
                    // elements for a level's lanes of them) stay with it.
                    let small = shape[2] * shape[3] * isa.lanes() <= 8192;
                    let short_rows = name.contains("short_rows");
                    let context =
                        format!("{shape:?} {:?}/{:?}: {name}", plan.kernel(), plan.strides());
                    assert!(fits || !short_rows, "{context}");
                    assert!(!fits || small || short_rows, "{context}");
                }
            }
        }
    }
    // 3-D: a window one slice deep, with a z stride.
    let desc = PoolDesc::max(&[1, 3, 3])
        .strides(&[2, 2, 2])
        .padding(Padding::explicit(&[0, 1, 1], &[0, 1, 0]));
    let shape = [2, 3, 5, 21, 29]; // 14 outputs a row: at most 4 vectors on every level
    let plan = Plan::<f32>::new(&desc, Layout::ChannelsFirst, &shape).unwrap();
    assert!(
        plan.kernel_name().contains("short_rows"),
        "{}",
        plan.kernel_name()
    );
    runs += check_everywhere("short rows", &desc, Layout::ChannelsFirst, &shape);
    assert!(runs > 500, "the grid ran too little: {runs}");
}

#[test]
fn channels_last_through_planes_on_every_level() {
    // Channels-last images with at most half a vector of channels run the channels-first
    // kernels on transposed planes: 1 to 8 channels (the transposes' loops compiled per count),
    // several images, bands cut inside an image and across images (3 tasks), 1-D and 3-D
    // windows (a band across depth slices), and each op's channels-first kernel behind it.
    let pad1 = Padding::symmetric(&[1, 1]);
    let descs_2d = [
        PoolDesc::max(&[3, 3])
            .strides(&[2, 2])
            .padding(pad1.clone()),
        PoolDesc::max(&[3, 3])
            .strides(&[1, 1])
            .padding(pad1.clone()),
        PoolDesc::max(&[2, 2]).ceil_mode(true),
        PoolDesc::average(&[3, 3])
            .strides(&[1, 1])
            .padding(pad1.clone()),
        PoolDesc::average(&[3, 3])
            .strides(&[2, 2])
            .padding(pad1)
            .count_include_pad(true),
        PoolDesc::average(&[2, 3])
            .strides(&[1, 1])
            .dilations(&[2, 2])
            .padding(Padding::SameLower),
        PoolDesc::lp(&[2, 2], 2.0).strides(&[1, 1]),
    ];
    let mut runs = 0;
    for desc in &descs_2d {
        for channels in [1, 2, 3, 5, 8] {
            for spatial in [[9, 40], [17, 33], [5, 7]] {
                let shape = [2, channels, spatial[0], spatial[1]];
                runs += check_everywhere("planes", desc, Layout::ChannelsLast, &shape);
                let plan = Plan::<f32>::new(desc, Layout::ChannelsLast, &shape).unwrap();
                for isa in Isa::available() {
                    let name = plan.clone().with_isa(isa).unwrap().kernel_name();
                    let expected = channels <= isa.lanes().min(16) / 2;
                    assert_eq!(
                        name.starts_with("channels_last_via_"),
                        expected,
                        "{shape:?}: {name}"
                    );
                }
            }
        }
    }
    let other_ranks: [(PoolDesc, Vec<usize>); 3] = [
        (
            PoolDesc::max(&[3])
                .strides(&[2])
                .padding(Padding::symmetric(&[1])),
            vec![2, 3, 37],
        ),
        (
            PoolDesc::average(&[2, 3, 2])
                .strides(&[1, 2, 2])
                .padding(Padding::explicit(&[1, 0, 1], &[0, 1, 1])),
            vec![2, 2, 5, 9, 11],
        ),
        (
            PoolDesc::max(&[3, 3, 3])
                .strides(&[2, 2, 2])
                .ceil_mode(true),
            vec![1, 4, 7, 7, 7],
        ),
    ];
    for (desc, shape) in &other_ranks {
        runs += check_everywhere("planes", desc, Layout::ChannelsLast, shape);
    }
    assert!(runs > 300, "the grid ran too little: {runs}");
}

#[test]
fn channels_last_flagged_max_on_every_level() {
    // Channels-last max values over windows of more than 4 taps (on x86 levels) pass over NaN
    // taps and probe for them; a block whose probe turns NaN is computed again with the exact
    // rule. Three inputs per shape: the usual values (NaN in most blocks); finite values, NaN
    // made −0 and ±∞ made ±100 (no probe turns NaN, every block is kept; −0 beside the 0 ties
    // checks that the first maximum stays); and values without NaN but with ±∞ (probes turn
    // NaN on 0 × ∞ and ∞ − ∞: false alarms, computed again).
    let descs = [
        PoolDesc::max(&[3, 3])
            .strides(&[2, 2])
            .padding(Padding::symmetric(&[1, 1])),
        PoolDesc::max(&[3, 3])
            .strides(&[3, 1])
            .padding(Padding::explicit(&[0, 2], &[1, 0])),
        PoolDesc::max(&[2, 3])
            .strides(&[2, 1])
            .dilations(&[2, 1])
            .ceil_mode(true),
    ];
    let no_nan = |x: f32| if x.is_nan() { -0.0 } else { x };
    let finite = |x: f32| {
        if x.is_infinite() {
            100.0f32.copysign(x)
        } else {
            no_nan(x)
        }
    };
    let mut runs = 0;
    for desc in &descs {
        for channels in [9, 16, 17, 40, 71, 100, 130] {
            let shape = [2, channels, 11, 13];
            let plan = Plan::<f32>::new(desc, Layout::ChannelsLast, &shape).unwrap();
            for isa in Isa::available() {
                let name = plan.clone().with_isa(isa).unwrap().kernel_name();
                assert!(name.starts_with("channels_last_max/"), "{shape:?}: {name}");
            }
            runs += check_everywhere("flagged", desc, Layout::ChannelsLast, &shape);
            let values = values(plan.input_len(), channels as u64);
            let inputs = [
                values.iter().map(|&x| finite(x)).collect::<Vec<_>>(),
                values.iter().map(|&x| no_nan(x)).collect(),
            ];
            for input in &inputs {
                runs += check_levels_and_threads("flagged", &plan, &shape, input, false);
            }
        }
    }
    assert!(runs > 100, "the grid ran too little: {runs}");
}

#[test]
fn channels_last_whole_windows_on_every_level() {
    // Channels-last pixels whose windows lie whole in the input run from one list of tap
    // offsets per plan; the others (padding, ceil-mode overhang) take the general kernel in the
    // same row. Windows of every shape the list takes (non-square, dilated, 3-D), one of more
    // than its 64 taps (general kernel only), channel counts around every level's lanes and
    // blocks (a partial last vector, which at the input's end is copied), every op.
    let lanes: Vec<usize> = Isa::available().iter().map(|isa| isa.lanes()).collect();
    let mut channel_counts = vec![3];
    for &l in &lanes {
        // 16 vectors and more start their blocks on a vector boundary.
        channel_counts.extend([l - 1, l + 1, 4 * l, 8 * l + 3, 16 * l + 5]);
    }
    channel_counts.sort_unstable();
    channel_counts.dedup();
    let mut runs = 0;
    for op in VECTOR_OPS {
        let descs = [
            PoolDesc::new(op, &[3, 3])
                .strides(&[2, 2])
                .padding(Padding::symmetric(&[1, 1]))
                .count_include_pad(true),
            PoolDesc::new(op, &[3, 2])
                .strides(&[1, 2])
                .dilations(&[2, 1])
                .ceil_mode(true),
            PoolDesc::new(op, &[5, 4])
                .strides(&[2, 3])
                .padding(Padding::explicit(&[2, 0], &[1, 2])),
            PoolDesc::new(op, &[9, 9]).strides(&[1, 1]),
            // x stride 1: a row's interior runs as one flat stretch of pixels and channels.
            PoolDesc::new(op, &[3, 3])
                .strides(&[1, 1])
                .padding(Padding::symmetric(&[1, 1])),
            PoolDesc::new(op, &[1, 3])
                .strides(&[2, 1])
                .dilations(&[1, 2]),
        ];
        for desc in &descs {
            for &channels in &channel_counts {
                runs +=
                    check_everywhere("whole", desc, Layout::ChannelsLast, &[2, channels, 11, 10]);
            }
        }
        let cubes = [
            PoolDesc::new(op, &[3, 3, 3])
                .strides(&[2, 2, 2])
                .padding(Padding::symmetric(&[1, 1, 1])),
            PoolDesc::new(op, &[2, 3, 3])
                .strides(&[1, 2, 1])
                .padding(Padding::symmetric(&[0, 1, 1])),
            // Depth 1: sums take two output rows at a time (`WholeRun::pair`).
            PoolDesc::new(op, &[1, 3, 3])
                .strides(&[1, 1, 1])
                .padding(Padding::symmetric(&[0, 1, 1])),
        ];
        for cube in &cubes {
            for channels in [5, 19] {
                runs += check_everywhere(
                    "whole 3-D",
                    cube,
                    Layout::ChannelsLast,
                    &[1, channels, 5, 6, 7],
                );
            }
        }
    }
    assert!(runs > 200, "the grid ran too little: {runs}");
}

#[test]
fn short_rows_columns_first_on_every_level() {
    // 3-wide max windows with x stride 2 on short rows of inputs that stay in cache reduce
    // each window's rows column by column, then x, by the one-`maxps` rule. That can change
    // which of 0 and −0 a window returns, and loses NaNs, so an output row whose rows held a
    // NaN, or with a 0 where its rows held a −0, is computed again rows first. Inputs per
    // shape: the usual values (NaN and −0 in most rows); finite values without −0 (every row
    // kept); the same with −0 (0 ties of both signs, computed again where the maximum is 0);
    // only 0, −0, −1 and −∞ (maxima of 0 in most windows); NaNs of several payloads in a fifth
    // of the elements; and one NaN in a few rows (y mod 8 = 1 or 4), so that the output rows
    // whose windows hold one are computed again and their neighbours are not.
    let descs = [
        PoolDesc::max(&[3, 3])
            .strides(&[2, 2])
            .padding(Padding::symmetric(&[1, 1])),
        PoolDesc::max(&[3, 3]).strides(&[2, 2]).ceil_mode(true),
        PoolDesc::max(&[5, 3])
            .strides(&[2, 2])
            .padding(Padding::explicit(&[2, 0], &[1, 1])),
        PoolDesc::max(&[3, 3]).strides(&[1, 2]),
        PoolDesc::max(&[2, 3])
            .strides(&[3, 2])
            .padding(Padding::explicit(&[0, 1], &[1, 0])),
    ];
    let no_negative_zero = |x: f32| if x == 0.0 { 0.0 } else { x };
    let no_nan = |x: f32| if x.is_nan() { -0.0 } else { x };
    let mut runs = 0;
    let mut columns_first = 0;
    for desc in &descs {
        for out_width in [7, 8, 9, 15, 16, 17, 24, 25, 31, 33, 55, 56, 57, 63, 64] {
            for height in [45, 60] {
                let shape = [2, 3, height, 2 * out_width + 1];
                let Ok(plan) = Plan::<f32>::new(desc, Layout::ChannelsFirst, &shape) else {
                    continue;
                };
                let short_rows = Isa::available().into_iter().any(|isa| {
                    let plan = plan.clone().with_isa(isa).unwrap();
                    plan.kernel_name().contains("short_rows")
                });
                if !short_rows {
                    continue;
                }
                columns_first += 1;
                runs += check_everywhere("columns first", desc, Layout::ChannelsFirst, &shape);
                let values = values(plan.input_len(), (height + out_width) as u64);
                let inputs = [
                    values
                        .iter()
                        .map(|&x| no_negative_zero(no_nan(x)))
                        .collect::<Vec<_>>(),
                    values.iter().map(|&x| no_nan(x)).collect(),
                    values
                        .iter()
                        .map(|&x| [0.0, -0.0, -1.0, f32::NEG_INFINITY][x.to_bits() as usize % 4])
                        .collect(),
                    values
                        .iter()
                        .map(|&x| {
                            let bits = x.to_bits();
                            if bits % 5 == 0 {
                                f32::from_bits(0x7fc0_0000 | (bits >> 11) | (bits << 31))
                            } else {
                                no_nan(x)
                            }
                        })
                        .collect(),
                    values
                        .iter()
                        .enumerate()
                        .map(|(i, &x)| {
                            let (y, x_at) = ((i / shape[3]) % height, i % shape[3]);
                            let marked = y % 8 == 1 || y % 8 == 4;
                            if marked && x_at == (3 * y) % shape[3] {
                                f32::NAN
                            } else {
                                no_nan(x)
                            }
                        })
                        .collect(),
                ];
                for input in &inputs {
                    runs += check_levels_and_threads("columns first", &plan, &shape, input, false);
                }
            }
        }
    }
    assert!(
        columns_first > 50 && runs > 500,
        "the grid ran too little: {columns_first}, {runs}"
    );
}

#[test]
fn separable_row_quads_on_every_level() {
    // Channels-last 5x5 stride-1 max (SPPF) takes four output rows at a time from the 8 input
    // rows they read, sharing partial maxima between them. Heights leave 0-3 rows past the last
    // group and put groups at different rows; padding on one side only; channels off the vector
    // width; inputs without NaN (the one-instruction rule), with NaN in some rows, and with only
    // 0, −0, −1 and −∞ (ties: which zero a window keeps shows the order).
    let no_nan = |x: f32| if x.is_nan() { -0.0 } else { x };
    let windows = [
        PoolDesc::max(&[5, 5])
            .strides(&[1, 1])
            .padding(Padding::symmetric(&[2, 2])),
        PoolDesc::max(&[5, 5]).strides(&[1, 1]),
        PoolDesc::max(&[5, 5])
            .strides(&[1, 1])
            .padding(Padding::explicit(&[0, 2], &[2, 0])),
    ];
    let mut runs = 0;
    for desc in &windows {
        for height in [8, 9, 10, 11, 12, 13, 17] {
            for channels in [8, 9, 37] {
                let shape = [2, channels, height, 7];
                let plan = Plan::<f32>::new(desc, Layout::ChannelsLast, &shape).unwrap();
                // Up to half a vector of channels (8 on v4) go through planes to the
                // channels-first separable kernel; the levels below still run the quads.
                assert!(
                    plan.kernel_name().contains("separable_max/"),
                    "{shape:?}: {}",
                    plan.kernel_name()
                );
                let values = values(plan.input_len(), (height * 64 + channels) as u64);
                let row_len = 7 * channels;
                let inputs = [
                    values.iter().map(|&x| no_nan(x)).collect::<Vec<_>>(),
                    values,
                    (0..plan.input_len())
                        .map(|i| [0.0, -0.0, -1.0, f32::NEG_INFINITY][(i * 7 + i / 5) % 4])
                        .collect(),
                    (0..plan.input_len())
                        .map(|i| {
                            let (row, at) = (i / row_len, i % row_len);
                            if row % 7 == 3 && at == (row * 5) % row_len {
                                f32::NAN
                            } else {
                                (i % 13) as f32 - 6.0
                            }
                        })
                        .collect(),
                ];
                for input in &inputs {
                    runs += check_levels_and_threads("row quads", &plan, &shape, input, false);
                }
            }
        }
    }
    assert!(runs > 500, "the grid ran too little: {runs}");
}

#[test]
fn separable_x_windows_on_every_level() {
    // Channels-last separable max with 3- and 5-pixel x windows (stride 1): the interior's
    // windows as one flat run of shifted rows (5-pixel ones four at a time from 8 pixels on
    // pixels of 3 vectors or more, the rest as a run), the border pixels one at a time, the
    // rule chosen by a NaN check of the row (few channels go through planes instead, at up to
    // half a vector). Channels around one and two vectors of every level and past 16 vectors
    // (quads that start on a vector boundary); widths from one interior window up (0, 1 or 2
    // quads and a rest); y windows of 2, 3 and 5 rows, y stride 1 and 2; inputs without NaN,
    // with one NaN (an edge pixel, the middle pixel, each pixel a quad starts on, which the
    // quads probe instead of a scan of the row: first, last and middle channels, the input
    // shifted off vector boundaries), with +∞ and −∞ beside each other (a false alarm of the
    // probe), and with only 0, −0, −1 and −∞ (ties show the order).
    let windows = [
        PoolDesc::max(&[5, 5])
            .strides(&[1, 1])
            .padding(Padding::symmetric(&[2, 2])),
        PoolDesc::max(&[3, 3]).strides(&[1, 1]),
        PoolDesc::max(&[2, 5])
            .strides(&[1, 1])
            .padding(Padding::explicit(&[0, 0], &[1, 3])),
        PoolDesc::max(&[3, 5])
            .strides(&[2, 1])
            .padding(Padding::symmetric(&[1, 2])),
    ];
    let mut runs = 0;
    for desc in &windows {
        for width in [5, 6, 7, 9, 12, 14] {
            for channels in [5, 8, 9, 16, 17, 23, 33, 48, 260] {
                let shape = [1, channels, 4, width];
                let plan = Plan::<f32>::new(desc, Layout::ChannelsLast, &shape).unwrap();
                assert!(
                    plan.kernel_name().contains("separable_max/"),
                    "{desc:?} {shape:?}: {}",
                    plan.kernel_name()
                );
                let len = plan.input_len();
                let random = values(len, (width * 64 + channels) as u64);
                let row_len = width * channels;
                // No NaN (the one-instruction rule) and no +∞ (so no ∞ − ∞ anywhere).
                let clean: Vec<f32> = random
                    .iter()
                    .map(|&x| if x.is_nan() { -0.0 } else { x.min(7.0) })
                    .collect();
                let with_nan_at = |pixel: usize, channel: usize| {
                    let mut input = clean.clone();
                    input[row_len + pixel * channels + channel] = f32::NAN;
                    input
                };
                let inputs = [
                    clean.clone(),
                    with_nan_at(0, channels / 2),
                    // Each of the 4 pixels a quad starts on, in its first and last channels.
                    with_nan_at(1, 0),
                    with_nan_at(2, channels - 1),
                    with_nan_at(3, channels / 3),
                    with_nan_at(width / 2, channels / 2),
                    with_nan_at(width - 1, channels / 2),
                    (0..len)
                        .map(|i| match i % 11 {
                            3 => f32::INFINITY,
                            7 => f32::NEG_INFINITY,
                            k => k as f32,
                        })
                        .collect(),
                    (0..len)
                        .map(|i| [0.0, -0.0, -1.0, f32::NEG_INFINITY][(i * 7 + i / 5) % 4])
                        .collect(),
                ];
                for input in &inputs {
                    runs += check_levels_and_threads("x windows", &plan, &shape, input, false);
                }
            }
        }
    }
    assert!(runs > 500, "the grid ran too little: {runs}");
}

#[test]
fn small_planes_in_groups_on_every_level() {
    // The small-planes kernel runs a level's lanes of planes at a time: plane counts around 8 and
    // 16 give whole groups (transposed in and out on v3) and a last partial group; 7x9 outputs
    // leave pixels past the last multiple of 8.
    let mut runs = 0;
    for (name, desc) in windows() {
        for planes in [7, 8, 9, 16, 17] {
            for shape in [[2, planes, 8, 8], [1, planes, 14, 18]] {
                runs += check_everywhere(name, &desc, Layout::ChannelsFirst, &shape);
            }
        }
    }
    assert!(runs > 100, "the grid ran too little: {runs}");
}

#[test]
fn whole_windows_in_padded_blocks_on_every_level() {
    // Square 2x2 and 3x3 windows run in the small-planes kernel with the padding inside the
    // transposed block (whole windows everywhere, as far as ceil mode reaches), also for output
    // rows wider than 4 vectors and in bands of output rows where a plane's block is too large
    // for the scratch (the tall and the wide shapes); max with indices keeps the plain block and
    // the general loop, whose x taps are computed on the fly past 64 outputs. 12 and 16 planes
    // fill enough of a group on every level (8 lanes on v3, 16 on v4) for the kernel to take
    // them: a partial and whole groups.
    let banded = [[1, 12, 150, 40], [1, 16, 30, 600]];
    let shapes = [
        [1, 15, 20, 40],
        [1, 14, 6, 100],
        [2, 8, 9, 11],
        [1, 3, 5, 7],
    ];
    let mut runs = 0;
    for op in [PoolOp::Max, PoolOp::Average, PoolOp::Lp { p: 2.0 }] {
        let descs = [
            PoolDesc::new(op, &[3, 3])
                .strides(&[1, 1])
                .padding(Padding::symmetric(&[1, 1])),
            PoolDesc::new(op, &[3, 3])
                .strides(&[2, 2])
                .padding(Padding::symmetric(&[1, 1]))
                .ceil_mode(true),
            PoolDesc::new(op, &[2, 2]).ceil_mode(true),
            PoolDesc::new(op, &[2, 2])
                .strides(&[1, 1])
                .padding(Padding::explicit(&[1, 0], &[0, 1])),
        ];
        for desc in descs {
            let mut variants = vec![desc.clone()];
            if op == PoolOp::Average {
                variants.push(desc.clone().count_include_pad(true));
                variants.push(desc.clone().divisor_override(3.0));
            }
            for desc in variants {
                for shape in shapes.iter().chain(&banded) {
                    runs += check_everywhere("padded block", &desc, Layout::ChannelsFirst, shape);
                }
                // The banded shapes with overlapping windows run in the small-planes kernel (on
                // the plan's level) unless max windows run separably, or on 16 lanes max with x
                // stride 2 runs the fixed-window kernel and stride-1 sums the flat-planes kernel
                // (tested by the grid above like every kernel).
                for shape in banded {
                    let plan = Plan::<f32>::new(&desc, Layout::ChannelsFirst, &shape).unwrap();
                    let name = plan.kernel_name();
                    let small = name.contains("small_planes");
                    let wide = plan.isa().lanes() >= 16;
                    let fixed = wide && plan.strides()[1] == 2 && op == PoolOp::Max;
                    let short_rows = name.contains("short_rows");
                    let flat = wide && plan.strides() == [1, 1] && op != PoolOp::Max;
                    if plan.strides()[0] < plan.kernel()[0] && !fixed && !flat && !short_rows {
                        assert!(small || name.starts_with("separable"), "{shape:?}: {name}");
                    }
                }
            }
        }
    }
    assert!(runs > 100, "the grid ran too little: {runs}");
}

#[test]
fn flat_unpadded_on_every_level() {
    // Stride-1 sums 3 wide with x padding 1, read from the unpadded planes (16 lanes): 3 window
    // rows (compiled in) and 1, 4 or 5, y padding of 0-2 rows on either side (bands of rows
    // with fewer window rows), y dilation, planes shorter than the window, rows of 2 vectors
    // and around them (the last vector overlapping), planes past the padded kernel's bound,
    // the first and last planes (copied: reads reach past the input) and the ones between
    // (read in place), 3-task runs cutting planes. Other x windows do not run it.
    let mut descs = Vec::new();
    for op in [
        PoolOp::Average,
        PoolOp::Lp { p: 1.0 },
        PoolOp::Lp { p: 2.0 },
    ] {
        descs.extend([
            PoolDesc::new(op, &[3, 3])
                .strides(&[1, 1])
                .padding(Padding::symmetric(&[1, 1])),
            PoolDesc::new(op, &[5, 3])
                .strides(&[1, 1])
                .padding(Padding::symmetric(&[2, 1])),
            PoolDesc::new(op, &[3, 3])
                .strides(&[1, 1])
                .padding(Padding::explicit(&[2, 1], &[0, 1])),
            PoolDesc::new(op, &[4, 3])
                .strides(&[1, 1])
                .dilations(&[2, 1])
                .padding(Padding::explicit(&[1, 1], &[2, 1])),
            PoolDesc::new(op, &[1, 3])
                .strides(&[1, 1])
                .padding(Padding::symmetric(&[0, 1])),
        ]);
    }
    let average = PoolDesc::average(&[3, 3])
        .strides(&[1, 1])
        .padding(Padding::symmetric(&[1, 1]));
    descs.push(average.clone().count_include_pad(true));
    descs.push(average.clone().divisor_override(5.0));
    descs.push(average.clone().ceil_mode(true));
    let shapes = [
        [1, 1, 5, 32],
        [1, 3, 6, 33],
        [2, 2, 1, 35],
        [1, 4, 2, 40],
        [1, 3, 17, 47],
        [2, 3, 9, 48],
        [1, 2, 35, 35],
        [1, 2, 11, 64],
        [1, 1, 120, 129],
        [1, 2, 131, 140],
    ];
    let mut runs = 0;
    for desc in &descs {
        for shape in shapes {
            runs += check_everywhere("flat unpadded", desc, Layout::ChannelsFirst, &shape);
            let Ok(plan) = Plan::<f32>::new(desc, Layout::ChannelsFirst, &shape) else {
                continue; // a window that does not fit a short plane
            };
            for isa in Isa::available().into_iter().filter(|isa| isa.lanes() >= 16) {
                let name = plan.clone().with_isa(isa).unwrap().kernel_name();
                assert!(name.contains("flat_unpadded"), "{shape:?}: {name}");
            }
        }
    }
    // 1-D rows up to 2^22 run it; longer ones (columns as f32 no longer exact enough for the
    // masks) keep the other kernels (plans only: no data).
    let row = PoolDesc::average(&[3])
        .strides(&[1])
        .padding(Padding::symmetric(&[1]));
    for (width, expected) in [(1 << 22, true), ((1 << 22) + 1, false), (1 << 24, false)] {
        let plan = Plan::<f32>::new(&row, Layout::ChannelsFirst, &[1, 1, width]).unwrap();
        for isa in Isa::available().into_iter().filter(|isa| isa.lanes() >= 16) {
            let name = plan.clone().with_isa(isa).unwrap().kernel_name();
            assert_eq!(name.contains("flat_unpadded"), expected, "{width}: {name}");
        }
    }
    // Windows of other widths or x paddings keep the other kernels.
    for desc in [
        average.clone().padding(Padding::explicit(&[1, 0], &[1, 2])),
        PoolDesc::average(&[5, 5])
            .strides(&[1, 1])
            .padding(Padding::symmetric(&[2, 2])),
        PoolDesc::average(&[3, 3]).strides(&[1, 1]),
    ] {
        let plan = Plan::<f32>::new(&desc, Layout::ChannelsFirst, &[1, 2, 35, 35]).unwrap();
        for isa in Isa::available().into_iter().filter(|isa| isa.lanes() >= 16) {
            let name = plan.clone().with_isa(isa).unwrap().kernel_name();
            assert!(!name.contains("flat_unpadded"), "{desc:?}: {name}");
        }
    }
    assert!(runs > 100, "the grid ran too little: {runs}");
}

#[test]
fn separable_unpadded_on_every_level() {
    // Channels-first stride-1 max keeping the row width runs its two passes straight from the
    // input plane on 16-lane levels: x windows 2-7 wide with the x padding on both sides or one,
    // y padding of 0-2 rows on either side and y dilation (bands of output rows with fewer
    // window rows), ceil mode; rows of exactly a vector and around it (the last vector
    // overlapping), rows of 4 vectors and more (the column pass in pairs of output rows, an odd
    // row left over or not), narrower rows two of which are whole vectors (16, 24, 40, 48
    // wide: the column pass down strips two rows a step, 4- and 5-row windows), planes of 1-45
    // rows; the input's first and last planes (copied: reads reach past the input) and the
    // ones between (read in place), 3-task runs cutting planes;
    // inputs with NaN, without (the one-instruction max) and of ties only (0, −0, −1, −∞: which
    // zero a window keeps shows the order).
    let descs = [
        PoolDesc::max(&[5, 5])
            .strides(&[1, 1])
            .padding(Padding::symmetric(&[2, 2])),
        PoolDesc::max(&[3, 3])
            .strides(&[1, 1])
            .padding(Padding::symmetric(&[1, 1])),
        PoolDesc::max(&[3, 4])
            .strides(&[1, 1])
            .padding(Padding::explicit(&[2, 1], &[0, 2])),
        PoolDesc::max(&[4, 7])
            .strides(&[1, 1])
            .dilations(&[2, 1])
            .padding(Padding::explicit(&[1, 0], &[2, 6]))
            .ceil_mode(true),
        PoolDesc::max(&[2, 2])
            .strides(&[1, 1])
            .padding(Padding::explicit(&[0, 1], &[1, 0])),
        PoolDesc::max(&[4, 3])
            .strides(&[1, 1])
            .padding(Padding::explicit(&[2, 1], &[1, 1])),
    ];
    let shapes = [
        [1, 1, 5, 16],
        [1, 2, 11, 24],
        [1, 3, 6, 17],
        [2, 2, 1, 33],
        [1, 2, 40, 40],
        [2, 3, 9, 48],
        [2, 2, 12, 64],
        [1, 1, 8, 81],
        [1, 1, 45, 100],
    ];
    let no_nan = |x: f32| if x.is_nan() { -0.0 } else { x };
    let (mut runs, mut chosen) = (0, 0);
    for desc in &descs {
        for shape in shapes {
            let Ok(plan) = Plan::<f32>::new(desc, Layout::ChannelsFirst, &shape) else {
                continue; // a window that does not fit a short plane
            };
            // Where the separable kernel would run (not on tiny planes), this one does.
            for isa in Isa::available().into_iter().filter(|isa| isa.lanes() >= 16) {
                let name = plan.clone().with_isa(isa).unwrap().kernel_name();
                assert!(!name.starts_with("separable_max/"), "{shape:?}: {name}");
                chosen += usize::from(name.starts_with("separable_unpadded_max/"));
            }
            runs += check_everywhere("separable unpadded", desc, Layout::ChannelsFirst, &shape);
            let values = values(plan.input_len(), shape.iter().product::<usize>() as u64);
            let inputs = [
                values.iter().map(|&x| no_nan(x)).collect::<Vec<_>>(),
                (0..plan.input_len())
                    .map(|i| [0.0, -0.0, -1.0, f32::NEG_INFINITY][(i * 7 + i / 5) % 4])
                    .collect(),
            ];
            for input in &inputs {
                runs += check_levels_and_threads("separable unpadded", &plan, &shape, input, false);
            }
        }
    }
    // Planes up to 2^16 elements and inputs under 2^20 run it; larger ones, rows narrower than
    // a vector, x strides and paddings that change the row width keep the other kernels (plans
    // only: no data).
    let sppf = PoolDesc::max(&[5, 5])
        .strides(&[1, 1])
        .padding(Padding::symmetric(&[2, 2]));
    for (desc, shape, expected) in [
        (&sppf, [1, 1, 256, 256], true),
        (&sppf, [1, 1, 256, 257], false),
        (&sppf, [8, 256, 40, 40], false),
        (&sppf, [1, 1, 40, 15], false),
        (&descs[1].clone().strides(&[1, 2]), [1, 1, 40, 40], false),
        (
            &PoolDesc::max(&[5, 5]).strides(&[1, 1]),
            [1, 1, 40, 40],
            false,
        ),
    ] {
        let plan = Plan::<f32>::new(desc, Layout::ChannelsFirst, &shape).unwrap();
        for isa in Isa::available().into_iter().filter(|isa| isa.lanes() >= 16) {
            let name = plan.clone().with_isa(isa).unwrap().kernel_name();
            assert_eq!(
                name.starts_with("separable_unpadded"),
                expected,
                "{shape:?}: {name}"
            );
        }
    }
    assert!(runs > 100, "the grid ran too little: {runs}");
    let levels = Isa::available()
        .iter()
        .filter(|isa| isa.lanes() >= 16)
        .count();
    assert!(chosen >= 20 * levels, "the kernel ran too little: {chosen}");
}

#[test]
fn separable_bands_on_every_level() {
    // Channels-first separable max with x stride 1 runs a plane's rows in bands over a flat
    // padded block: several bands per plane (150x120), bands cut by the thread split, y strides
    // and dilations, asymmetric padding, ceil mode, rows narrower than a vector. 5x5 and 3x3
    // with y stride 1 take output rows in pairs: bands of odd and even row counts.
    let descs = [
        PoolDesc::max(&[5, 5])
            .strides(&[1, 1])
            .padding(Padding::symmetric(&[2, 2])),
        PoolDesc::max(&[3, 3])
            .strides(&[1, 1])
            .padding(Padding::symmetric(&[1, 1])),
        PoolDesc::max(&[5, 3])
            .strides(&[2, 1])
            .padding(Padding::explicit(&[1, 0], &[2, 1]))
            .ceil_mode(true),
        PoolDesc::max(&[3, 2])
            .strides(&[1, 1])
            .dilations(&[2, 3])
            .padding(Padding::explicit(&[2, 1], &[0, 3])),
        PoolDesc::max(&[4, 7])
            .strides(&[3, 1])
            .padding(Padding::explicit(&[0, 3], &[3, 2]))
            .ceil_mode(true),
    ];
    let shapes = [
        [1, 3, 150, 120],
        [2, 5, 40, 40],
        [1, 2, 9, 1],
        [1, 4, 31, 3],
    ];
    let mut runs = 0;
    for desc in &descs {
        for shape in shapes {
            let Ok(plan) = Plan::<f32>::new(desc, Layout::ChannelsFirst, &shape) else {
                continue;
            };
            assert!(
                plan.kernel_name().starts_with("separable"),
                "{shape:?}: {}",
                plan.kernel_name()
            );
            runs += check_everywhere("bands", desc, Layout::ChannelsFirst, &shape);
            // Without NaN the kernels take the one-instruction max; −0 beside the 0 ties
            // checks that the first of equal maxima stays.
            let input: Vec<f32> = values(plan.input_len(), 7)
                .into_iter()
                .map(|x| if x.is_nan() { -0.0 } else { x })
                .collect();
            runs += check_levels_and_threads("bands", &plan, &shape, &input, false);
        }
    }
    assert!(runs > 20, "the grid ran too little: {runs}");
}

#[test]
fn separable_max_finds_every_nan() {
    // The separable max kernels scan each input row for NaN first and take the one-instruction
    // max (which drops NaN) for rows without one. One NaN in an otherwise clean input, of each
    // kind of payload (the smallest and largest, quiet and signalling, either sign), at
    // positions of the row in each vector of a first block of 4, later whole vectors, a last
    // whole vector and past the whole vectors on every level (so a scan by vectors or by
    // blocks of them, with a scalar tail, is read everywhere); ±∞ elsewhere (not NaN: must not
    // be taken for one, nor hide one). Channels-last rows (the scan alone) and channels-first
    // rows (the scan folded into the copy into the padded block).
    let desc = PoolDesc::max(&[5, 5])
        .strides(&[1, 1])
        .padding(Padding::symmetric(&[2, 2]));
    let payloads = [0x7f80_0001_u32, 0xff80_0001, 0x7fff_ffff, 0xffc0_0000];
    // (layout, shape, positions in an input row: 37 x 9 = 333 elements, or 150)
    let cases = [
        (
            Layout::ChannelsLast,
            [1, 37, 6, 9],
            vec![0, 15, 16, 31, 47, 63, 64, 100, 255, 319, 320, 327, 328, 332],
        ),
        (
            Layout::ChannelsFirst,
            [1, 2, 6, 150],
            vec![0, 7, 8, 16, 31, 32, 63, 64, 100, 127, 128, 143, 144, 149],
        ),
    ];
    let mut runs = 0;
    for (layout, shape, positions) in cases {
        let row_len = match layout {
            Layout::ChannelsLast => shape[1] * shape[3],
            _ => shape[3],
        };
        let plan = Plan::<f32>::new(&desc, layout, &shape).unwrap();
        assert!(
            plan.kernel_name().starts_with("separable"),
            "{layout:?} {shape:?}: {}",
            plan.kernel_name()
        );
        let clean: Vec<f32> = (0..plan.input_len())
            .map(|i| match i % 23 {
                5 => f32::INFINITY,
                11 => f32::NEG_INFINITY,
                k => k as f32 - 9.0,
            })
            .collect();
        // Input row 2 (of the last plane, channels-first): windows of rows 0-4 read it.
        let row_start = plan.input_len() - 4 * row_len;
        for &position in &positions {
            for payload in payloads {
                let mut input = clean.clone();
                input[row_start + position] = f32::from_bits(payload);
                runs += check_levels_and_threads("nan scan", &plan, &shape, &input, false);
            }
        }
    }
    assert!(runs > 200, "the grid ran too little: {runs}");
}

#[test]
fn one_and_three_dimensions_on_every_level() {
    let cases: Vec<(PoolDesc, Vec<usize>)> = vec![
        (
            PoolDesc::max(&[3])
                .strides(&[2])
                .padding(Padding::symmetric(&[1])),
            vec![2, 19, 37],
        ),
        (
            PoolDesc::average(&[4])
                .strides(&[1])
                .padding(Padding::SameLower),
            vec![1, 33, 20],
        ),
        (
            PoolDesc::lp(&[2], 2.0).strides(&[1]).dilations(&[3]),
            vec![2, 5, 40],
        ),
        (
            PoolDesc::max(&[2, 3, 2])
                .strides(&[1, 2, 2])
                .padding(Padding::explicit(&[1, 0, 1], &[0, 1, 1])),
            vec![2, 17, 5, 9, 11],
        ),
        (
            PoolDesc::average(&[3, 3, 3])
                .strides(&[2, 2, 2])
                .ceil_mode(true),
            vec![1, 9, 7, 7, 7],
        ),
        (PoolDesc::global_average(), vec![2, 31, 3, 4, 5]),
        (PoolDesc::global_max(), vec![3, 7, 45]),
    ];
    for (desc, shape) in cases {
        for layout in [Layout::ChannelsFirst, Layout::ChannelsLast] {
            assert!(check_everywhere("rank", &desc, layout, &shape) > 0);
        }
    }
}

#[test]
fn global_sums_every_plane_length_and_group_count() {
    // Channels-first global sums run 32 planes at a time through 4x8 transposes on v3 and v4
    // (planes of 4 or more, the last partial block of pixels read overlapping; 49 as a
    // constant), then 8 at a time, then 8 planes side by side in the portable loop, then the
    // last planes one by one: plane counts around multiples of 8 and 32 and planes of every
    // short length and a few longer ones reach every loop and their hand-over, on every level,
    // with 1 and 3 bands.
    let ops = [
        PoolDesc::global_average(),
        PoolDesc::global(PoolOp::Lp { p: 1.0 }),
        PoolDesc::global(PoolOp::Lp { p: 2.0 }),
    ];
    for desc in &ops {
        for plane_len in (1..=13).chain([16, 23, 48, 49, 50]) {
            for planes in [
                1, 7, 8, 9, 15, 16, 17, 24, 25, 31, 32, 33, 41, 63, 64, 65, 72, 79,
            ] {
                let shape = [1, planes, 1, plane_len];
                assert!(check_everywhere("global sums", desc, Layout::ChannelsFirst, &shape) > 0);
            }
        }
    }
}

#[test]
fn global_max_values_keep_the_first_maximum_and_the_last_nan() {
    // Channels-first global max without indices folds each plane in one lane of the sums'
    // transposed loop on v3 and v4 (planes of 4 or more), the rest plane by plane: planes of
    // only zeros of both signs, -1 and -inf show whether a lane keeps the first maximum (0 or
    // -0 by position), and every third plane's two NaNs of different payloads whether it keeps
    // the last NaN, at plane lengths and counts that reach every loop and their hand-over.
    let pattern = [0.0, -0.0, -1.0, f32::NEG_INFINITY, -0.0, 0.0, -0.0];
    for plane_len in (1..=13).chain([16, 23, 49, 50]) {
        for planes in [1, 7, 8, 9, 31, 32, 33, 41, 65] {
            let shape = [1, planes, 1, plane_len];
            let mut input: Vec<f32> = (0..planes * plane_len)
                .map(|i| pattern[(i * 3 + i / plane_len) % pattern.len()])
                .collect();
            for plane in (0..planes).step_by(3) {
                let at = plane * plane_len;
                input[at + plane % plane_len] = f32::from_bits(0x7fc0_0001 + plane as u32);
                input[at + plane_len - 1] = f32::from_bits(0xffc0_1000 + plane as u32);
            }
            let base =
                Plan::<f32>::new(&PoolDesc::global_max(), Layout::ChannelsFirst, &shape).unwrap();
            let checked = check_levels_and_threads("global max", &base, &shape, &input, false);
            assert!(checked > 0);
        }
    }
    // Global windows run the global kernels, not the separable one (which a whole-plane window
    // otherwise looks like: stride 1 and more than one row), in both layouts.
    for (layout, kernel) in [
        (Layout::ChannelsFirst, "global_channels_first_max/"),
        (Layout::ChannelsLast, "global_channels_last_max/"),
    ] {
        let plan = Plan::<f32>::new(&PoolDesc::global_max(), layout, &[2, 64, 7, 7]).unwrap();
        assert!(
            plan.kernel_name().starts_with(kernel),
            "{}",
            plan.kernel_name()
        );
    }
}

#[test]
fn global_channels_last_every_pixel_count_and_channel_tail() {
    // Channels-last global pooling folds 8 pixels into the running results in one pass over
    // the channels, then the remaining pixels one by one: pixel counts around multiples of 8
    // and channel counts around the vector widths (the masked last vector) reach every loop.
    let ops = [
        PoolDesc::global_average(),
        PoolDesc::global_max(),
        PoolDesc::global(PoolOp::Lp { p: 2.0 }),
    ];
    for desc in &ops {
        for pixels in (1..=10).chain([15, 16, 17, 24, 49]) {
            for channels in [1, 3, 7, 8, 9, 15, 16, 17, 33] {
                let shape = [2, channels, 1, pixels];
                assert!(check_everywhere("global nhwc", desc, Layout::ChannelsLast, &shape) > 0);
            }
        }
    }
}

#[test]
fn large_enough_to_split_across_threads() {
    // Above the per-task minimum, so the parallel runs really use several bands.
    for (desc, shape) in [
        (
            PoolDesc::max(&[3, 3])
                .strides(&[2, 2])
                .padding(Padding::symmetric(&[1, 1])),
            vec![2, 24, 41, 43],
        ),
        (
            PoolDesc::average(&[3, 3])
                .strides(&[1, 1])
                .padding(Padding::symmetric(&[1, 1])),
            vec![1, 40, 23, 29],
        ),
        (PoolDesc::global_average(), vec![4, 300, 7, 7]),
        // Past the size from which global channels-first sums prefetch (8 MiB), with a last
        // group of fewer than 8 planes.
        (PoolDesc::global_average(), vec![1, 44001, 7, 7]),
        // Past the size from which fixed-window rows prefetch ahead (4 MiB), the last rows'
        // requests clamped at the input's end.
        (
            PoolDesc::max(&[3, 3])
                .strides(&[2, 2])
                .padding(Padding::symmetric(&[1, 1])),
            vec![1, 20, 229, 229],
        ),
        // Short rows past 4 MiB: the columns-first order asks for each step's rows 8 rows
        // ahead, the last plane's requests clamped at the input's end (odd height: the last
        // window is a single step of fewer rows).
        (
            PoolDesc::max(&[3, 3])
                .strides(&[2, 2])
                .padding(Padding::symmetric(&[1, 1])),
            vec![1, 340, 57, 57],
        ),
        // Channels-last windows that do not overlap in y on inputs past 4 MiB ask for the input
        // a few pixels ahead: odd sizes leave a last column and row no window reads, and
        // padding puts the first window's columns before the input.
        (
            PoolDesc::max(&[2, 2]).strides(&[2, 2]),
            vec![1, 24, 211, 209],
        ),
        (
            PoolDesc::average(&[3, 3])
                .strides(&[3, 3])
                .padding(Padding::symmetric(&[1, 1])),
            vec![1, 19, 233, 239],
        ),
        // Channels-last windows that share rows on inputs past 4 MiB ask L2 for the next output
        // row's new rows: dilated, so that the rows it skips and the ones it asks for interleave,
        // with the last output row asking for nothing.
        (
            PoolDesc::average(&[3, 2])
                .strides(&[2, 3])
                .dilations(&[2, 1])
                .padding(Padding::symmetric(&[2, 0])),
            vec![1, 21, 231, 233],
        ),
    ] {
        for layout in [Layout::ChannelsFirst, Layout::ChannelsLast] {
            assert!(check_everywhere("threads", &desc, layout, &shape) > 0);
        }
    }
}

#[test]
fn rows_wider_than_one_chunk() {
    // Channels-first rows longer than the scratch's chunk are cut into several chunks, each with
    // its own padding and tap counts.
    for (desc, shape) in [
        (
            PoolDesc::max(&[3])
                .strides(&[1])
                .padding(Padding::symmetric(&[1])),
            vec![1, 2, 9000],
        ),
        (
            PoolDesc::average(&[3, 3])
                .strides(&[1, 1])
                .padding(Padding::explicit(&[1, 2], &[1, 0])),
            vec![1, 1, 3, 9001],
        ),
        (
            PoolDesc::lp(&[2, 5], 2.0)
                .strides(&[1, 2])
                .dilations(&[1, 2])
                .padding(Padding::symmetric(&[0, 3])),
            vec![1, 2, 3, 20011],
        ),
    ] {
        assert!(check_everywhere("wide", &desc, Layout::ChannelsFirst, &shape) > 0);
    }
}

#[test]
fn plans_report_their_level_and_kernel() {
    let window = PoolDesc::max(&[3, 3]).strides(&[2, 2]);
    let plan = Plan::<f32>::new(&window, Layout::ChannelsLast, &[1, 8, 5, 5]).unwrap();
    assert_eq!(plan.isa(), Isa::default_for_process());
    let scalar = plan.clone().with_isa(Isa::Portable).unwrap();
    assert_eq!(scalar.kernel_name(), "channels_last_max/scalar");
    // 2x2/2 windows without padding on small channels-last inputs are read in place.
    let pairs =
        Plan::<f32>::new(&PoolDesc::max(&[2, 2]), Layout::ChannelsLast, &[1, 8, 4, 4]).unwrap();
    let pairs = pairs.with_isa(Isa::Portable).unwrap();
    assert_eq!(pairs.kernel_name(), "channels_last_pairs_max/scalar");
    let lp3 = Plan::<f32>::new(
        &PoolDesc::lp(&[2, 2], 3.0),
        Layout::ChannelsFirst,
        &[1, 8, 4, 4],
    )
    .unwrap();
    assert_eq!(lp3.kernel_name(), "scalar");
    for isa in Isa::ALL {
        let result = plan.clone().with_isa(isa);
        assert_eq!(result.is_ok(), isa.is_available(), "{isa}");
        if let Err(e) = result {
            assert!(e.to_string().contains(isa.name()));
        }
    }
    // Small channels-first planes run with vectors over planes, but for 2x2/2 windows with no
    // padding, whose rows are read in place on the 4-lane level where a row is shorter than a
    // vector.
    let small = Plan::<f32>::new(
        &PoolDesc::max(&[2, 2]).padding(Padding::symmetric(&[1, 1])),
        Layout::ChannelsFirst,
        &[1, 16, 8, 8],
    )
    .unwrap();
    assert!(
        small
            .kernel_name()
            .starts_with("channels_first_small_planes_max/"),
        "{}",
        small.kernel_name()
    );
    let tiny = Plan::<f32>::new(
        &PoolDesc::max(&[2, 2]),
        Layout::ChannelsFirst,
        &[1, 16, 8, 8],
    )
    .unwrap();
    let name = tiny.kernel_name();
    assert!(name.starts_with("channels_first_pairs_max/"), "{name}");
    // v3 keeps its rows of 8 pixels as one vector each (two output rows a vector); v4 runs
    // them on v3.
    let expected = match tiny.isa() {
        Isa::V4 => Isa::V3,
        isa => isa,
    };
    assert!(name.ends_with(&format!("/{expected}")), "{name}");
    // Rows of 6 outputs (12 pixels): the 4-lane level on v3; on v4, with a vector of planes,
    // the small-planes kernel (see `max_rows_too_short_for_v3_leave_pairs_on_v4`).
    let narrow = Plan::<f32>::new(
        &PoolDesc::max(&[2, 2]),
        Layout::ChannelsFirst,
        &[1, 16, 8, 12],
    )
    .unwrap();
    let name = narrow.kernel_name();
    match narrow.isa() {
        Isa::V4 => assert_eq!(name, "channels_first_small_planes_max/v4"),
        Isa::V3 | Isa::V2 => assert_eq!(name, "channels_first_pairs_max/v2"),
        _ => assert!(name.starts_with("channels_first_pairs_max/"), "{name}"),
    }
    // Stride-1 max windows run separably (values only); the direct kernel stays reachable.
    let sppf = PoolDesc::max(&[5, 5])
        .strides(&[1, 1])
        .padding(Padding::symmetric(&[2, 2]));
    for layout in [Layout::ChannelsFirst, Layout::ChannelsLast] {
        let plan = Plan::<f32>::new(&sppf, layout, &[1, 16, 20, 20]).unwrap();
        assert!(
            plan.kernel_name().starts_with("separable_max/")
                || plan.kernel_name().starts_with("separable_unpadded_max/v4"),
            "{}",
            plan.kernel_name()
        );
        assert!(
            !plan
                .without_separable()
                .kernel_name()
                .starts_with("separable")
        );
    }
    // A ring of row maxima too large to keep (5 rows of 2 x 2^21 channels): the direct kernel.
    let wide = Plan::<f32>::new(&sppf, Layout::ChannelsLast, &[1, 1 << 21, 6, 6]).unwrap();
    assert!(
        wide.kernel_name().starts_with("channels_last_max/"),
        "{}",
        wide.kernel_name()
    );
    // Common 2-D channels-first windows run the fixed-window kernel; dilated ones the general
    // row kernel; global channels-last pooling its one-pass kernel.
    let stem = PoolDesc::max(&[3, 3])
        .strides(&[2, 2])
        .padding(Padding::symmetric(&[1, 1]));
    let name = |desc: &PoolDesc, layout, shape: &[usize]| {
        Plan::<f32>::new(desc, layout, shape).unwrap().kernel_name()
    };
    // (One plane: the small-planes kernel takes such windows for groups of planes. Rows of at
    // most 64 outputs in 4 vectors, or 8 on 8-lane levels, run row maxima: 56 outputs on 8 and
    // 16 lanes.)
    let fixed = name(&stem, Layout::ChannelsFirst, &[1, 1, 112, 224]);
    assert!(
        fixed.starts_with("channels_first_fixed_window_max/"),
        "{fixed}"
    );
    let resnet = Plan::<f32>::new(&stem, Layout::ChannelsFirst, &[1, 1, 112, 112]).unwrap();
    let expected = if resnet.isa().lanes() >= 8 {
        "channels_first_short_rows_max/"
    } else {
        "channels_first_fixed_window_max/"
    };
    assert!(
        resnet.kernel_name().starts_with(expected),
        "{}",
        resnet.kernel_name()
    );
    let dilated = name(
        &stem.clone().dilations(&[2, 2]),
        Layout::ChannelsFirst,
        &[1, 4, 112, 112],
    );
    assert!(dilated.starts_with("channels_first_rows_max/"), "{dilated}");
    // Stride-1 sums on planes that fit L2 run along the flat planes with 16 lanes (AVX-512);
    // larger planes and other levels do not.
    let inception = PoolDesc::average(&[3, 3])
        .strides(&[1, 1])
        .padding(Padding::symmetric(&[1, 1]));
    for isa in Isa::ALL.into_iter().filter(|isa| isa.is_available()) {
        let plan = Plan::<f32>::new(&inception, Layout::ChannelsFirst, &[1, 32, 35, 35]);
        let flat = plan.unwrap().with_isa(isa).unwrap().kernel_name();
        let expected = isa.lanes() >= 16;
        assert_eq!(
            flat.starts_with("channels_first_flat_unpadded_"),
            expected,
            "{flat}"
        );
    }
    // Read in place, planes past L2 too.
    let large = Plan::<f32>::new(&inception, Layout::ChannelsFirst, &[1, 4, 224, 224]).unwrap();
    for isa in Isa::available().into_iter().filter(|isa| isa.lanes() >= 16) {
        let name = large.clone().with_isa(isa).unwrap().kernel_name();
        assert!(name.starts_with("channels_first_flat_unpadded"), "{name}");
    }
    let global = name(
        &PoolDesc::global_average(),
        Layout::ChannelsLast,
        &[2, 64, 7, 7],
    );
    assert!(
        global.starts_with("global_channels_last_average/"),
        "{global}"
    );
    assert_eq!(Isa::from_name("v3"), Some(Isa::V3));
    assert_eq!(Isa::from_name("avx9"), None);
}
