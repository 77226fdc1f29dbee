//! The inner loops behind a plan, and the choice among them. Each kernel sees validated geometry
//! and checked buffer lengths, and writes exactly the output rows of its task.
//!
//! Output rows are the unit of work everywhere: in channels-first layout a row is
//! (n, c, oz, oy) with `X_out` elements, in channels-last layout (n, oz, oy) with `X_out * C`;
//! in both the rows are contiguous, so a task is a plain sub-slice of the output.

pub(crate) mod channels_first;
pub(crate) mod channels_last;
mod channels_last_sums;
pub(crate) mod columns_first;
pub(crate) mod fixed_window;
pub(crate) mod flat_planes;
pub(crate) mod flat_unpadded;
pub(crate) mod global;
pub(crate) mod global_channels_last;
pub(crate) mod pairs;
mod plane_reads;
mod prefetch;
pub(crate) mod reduce;
pub(crate) mod scalar;
mod scratch;
pub(crate) mod separable;
mod separable_bands;
mod separable_unpadded;
pub(crate) mod short_rows;
mod simd_io;
pub(crate) mod small_planes;
#[cfg(target_arch = "x86_64")]
mod transpose;
pub(crate) mod via_planes;
mod whole_windows;

use std::ops::Range;

use crate::geometry::Taps;
use crate::isa::{Isa, OnLevels};
use crate::plan::Reduction;
use crate::{Layout, Plan};
pub(crate) use reduce::Rule;
use reduce::{Average, L1, L2, Max, MaxFlagged, MaxValue};

/// Which loop nest a plan runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// The scalar loops (see `scalar.rs` for when).
    Scalar,
    /// Vectorized over channels.
    ChannelsLast(Rule),
    /// Vectorized over the output width, with padded phase-split row buffers.
    ChannelsFirst(Rule),
    /// One vector reduction per (n, c) plane.
    GlobalChannelsFirst(Rule),
    /// One pass over each image's pixels with per-channel results (max values and sums; max
    /// with indices runs `ChannelsLast`).
    GlobalChannelsLast(Rule),
    /// Small channels-first planes with rows shorter than a vector: vectors over planes.
    SmallPlanes(Rule),
    /// Channels-first stride 1 or 2 on planes that fit L2: vectors along each flat plane.
    FlatPlanes(Rule),
    /// Channels-first stride-1 sums keeping the row width: vectors along each flat plane,
    /// straight from the input into the output.
    FlatUnpadded(Rule),
    /// Max as row maxima then column maxima (values only; with indices the direct kernel runs).
    SeparableMax,
    /// Channels-first separable max with stride 1 keeping the row width, read straight from the
    /// input plane (values only; with indices `ChannelsFirst` runs).
    SeparableUnpadded,
    /// Channels-first rows with the x window compiled in (max values and average; max with
    /// indices runs `ChannelsFirst`).
    FixedWindow(Rule),
    /// Channels-last images with fewer channels than lanes, transposed to planes for the
    /// channels-first kernel of the plan's `planes` (max with indices runs `ChannelsLast`).
    ViaPlanes(Rule),
    /// Channels-first max values with x stride 2 on rows of a few vectors: row maxima, then
    /// column maxima (with indices `ChannelsFirst` runs).
    ShortRowsMax,
    /// Channels-first 2x2 windows with stride 2 and no padding on short rows, read in place
    /// (max with indices runs `SmallPlanes`).
    Pairs(Rule),
    /// Channels-last 2x2 windows with stride 2 and no padding on inputs under L2's size, read in
    /// place (max with indices runs `ChannelsLast`).
    PairsChannelsLast(Rule),
}

impl Kernel {
    /// The kernel for a plan's geometry on a level with `lanes` lanes.
    pub fn choose(plan: &Plan<f32>, lanes: usize) -> Kernel {
        let Some(rule) = Rule::of(plan.reduction) else {
            return Kernel::Scalar;
        };
        // Vector kernels carry max indices in 32-bit lanes.
        let plane: usize = plan.axes.iter().map(|a| a.input).product();
        if rule == Rule::Max && u32::try_from(plane).is_err() {
            return Kernel::Scalar;
        }
        // Max needs the small-planes kernel to take its runs with indices; the sum rules never
        // have indices.
        let pairs = match rule {
            // (`narrow` planes are ones `small_planes::applies` takes.)
            Rule::Max => {
                pairs::applies(plan, lanes)
                    && small_planes::narrow(plan, lanes)
                    && !pairs::leaves_max_to_small_planes(plan, lanes)
            }
            _ => pairs::applies_to_sums(plan, lanes),
        };
        if plan.layout == Layout::ChannelsFirst && !plan.is_global() && pairs {
            return Kernel::Pairs(rule);
        }
        if !plan.is_global() && pairs::applies_channels_last(plan) {
            return Kernel::PairsChannelsLast(rule);
        }
        // Row maxima then column maxima, as the separable kernel, each input row reduced along
        // x straight from the input (see `short_rows.rs`).
        if rule == Rule::Max
            && plan.allow_separable
            && plan.layout == Layout::ChannelsFirst
            && !plan.is_global()
            && short_rows::applies(plan, lanes)
            && !small_planes::narrow(plan, lanes)
            && channels_first::chunking(plan, lanes).is_some()
        {
            return Kernel::ShortRowsMax;
        }
        // Global windows go to the global kernels below: the separable one took 30x as long
        // on `[32, 2048, 7, 7]` channels-first (session 53, v4: 4.15 ms against 0.14 ms).
        // Channels-first stride-1 max keeping the row width, on 16 lanes: straight from the
        // plane (`sppf` NCHW 113-115 µs against 128-130 on the padded bands at v3).
        if rule == Rule::Max
            && plan.allow_separable
            && plan.layout == Layout::ChannelsFirst
            && !plan.is_global()
            && separable::applies(plan, lanes)
            && separable_unpadded::applies(plan, lanes)
        {
            return Kernel::SeparableUnpadded;
        }
        if rule == Rule::Max
            && plan.allow_separable
            && !plan.is_global()
            && separable::applies(plan, lanes)
        {
            return Kernel::SeparableMax;
        }
        if plan.layout == Layout::ChannelsFirst
            && rule != Rule::Max
            && !plan.is_global()
            && flat_unpadded::applies(plan, lanes)
        {
            return Kernel::FlatUnpadded(rule);
        }
        // Sums with x stride 2 on groups of planes run in small planes where those take them
        // whole: flat planes took 1.2x to 1.6x as long (Zen 4, v4, 3x3/2 average: 128 of
        // 40x40 65 against 40 µs, 64 of 56x56 54-61 against 44, 96 of 55x55 80-94 against 65;
        // session 61). (Narrow planes, which small planes take however few, stay here.)
        let strided_sums = rule != Rule::Max && plan.axes[2].stride == 2;
        let whole_small_planes =
            small_planes::applies(plan, lanes) && !small_planes::narrow(plan, lanes);
        if plan.layout == Layout::ChannelsFirst
            && !plan.is_global()
            && flat_planes::applies(plan, lanes)
            && !(strided_sums && whole_small_planes)
            // Max only with stride 2 (stride-1 max runs separably or was not measured here),
            // and where max with indices can fall back to the row kernel.
            && (rule != Rule::Max
                || (plan.axes[2].stride == 2 && channels_first::chunking(plan, lanes).is_some()))
        {
            return Kernel::FlatPlanes(rule);
        }
        if plan.layout == Layout::ChannelsFirst
            && !plan.is_global()
            && small_planes::applies(plan, lanes)
        {
            return Kernel::SmallPlanes(rule);
        }
        match plan.layout {
            Layout::ChannelsLast if plan.is_global() => Kernel::GlobalChannelsLast(rule),
            Layout::ChannelsLast => Kernel::ChannelsLast(rule),
            Layout::ChannelsFirst if plan.is_global() => Kernel::GlobalChannelsFirst(rule),
            Layout::ChannelsFirst => {
                let padded_row = plan.axes[2].input + plan.axes[2].pad_begin + plan.axes[2].pad_end;
                match channels_first::chunking(plan, lanes) {
                    Some(_) if u32::try_from(padded_row).is_err() => Kernel::Scalar,
                    Some(_)
                        if matches!(rule, Rule::Max | Rule::Average)
                            && fixed_window::applies(plan, lanes) =>
                    {
                        Kernel::FixedWindow(rule)
                    }
                    Some(_) => Kernel::ChannelsFirst(rule),
                    None => Kernel::Scalar,
                }
            }
        }
    }

    /// The level the kernel runs on at level `isa` for the plan's x axis `x` (a narrower one
    /// for some).
    pub fn level(self, x: &crate::geometry::Axis, isa: Isa) -> Isa {
        match self {
            Kernel::Pairs(_) => pairs::level(x, isa),
            _ => isa,
        }
    }

    /// A name for reports: the loop nest and the rule.
    pub fn name(self) -> String {
        let rule = |r: Rule| format!("{r:?}").to_lowercase();
        match self {
            Kernel::Scalar => "scalar".to_string(),
            Kernel::ChannelsLast(r) => format!("channels_last_{}", rule(r)),
            Kernel::ChannelsFirst(r) => format!("channels_first_rows_{}", rule(r)),
            Kernel::GlobalChannelsFirst(r) => format!("global_channels_first_{}", rule(r)),
            Kernel::GlobalChannelsLast(r) => format!("global_channels_last_{}", rule(r)),
            Kernel::SmallPlanes(r) => format!("channels_first_small_planes_{}", rule(r)),
            Kernel::FlatPlanes(r) => format!("channels_first_flat_planes_{}", rule(r)),
            Kernel::FlatUnpadded(r) => format!("channels_first_flat_unpadded_{}", rule(r)),
            Kernel::SeparableMax => "separable_max".to_string(),
            Kernel::SeparableUnpadded => "separable_unpadded_max".to_string(),
            Kernel::FixedWindow(r) => format!("channels_first_fixed_window_{}", rule(r)),
            Kernel::ViaPlanes(r) => format!("channels_last_via_planes_{}", rule(r)),
            Kernel::ShortRowsMax => "channels_first_short_rows_max".to_string(),
            Kernel::Pairs(r) => format!("channels_first_pairs_{}", rule(r)),
            Kernel::PairsChannelsLast(r) => format!("channels_last_pairs_{}", rule(r)),
        }
    }
}

/// Walks output rows `(outer, oz, oy)` in order (outer = n, or the (n, c) plane in
/// channels-first layout) with one division at the start instead of three per row.
#[derive(Clone, Copy)]
pub(crate) struct RowCursor {
    pub outer: usize,
    pub oz: usize,
    pub oy: usize,
    depth: usize,
    height: usize,
}

impl RowCursor {
    pub fn new(row: usize, depth: usize, height: usize) -> RowCursor {
        RowCursor {
            outer: row / (depth * height),
            oz: (row / height) % depth,
            oy: row % height,
            depth,
            height,
        }
    }

    #[inline]
    pub fn advance(&mut self) {
        self.oy += 1;
        if self.oy == self.height {
            self.oy = 0;
            self.oz += 1;
            if self.oz == self.depth {
                self.oz = 0;
                self.outer += 1;
            }
        }
    }
}

/// `ceil(a / b)` for `a >= 0`, `b >= 1`, with a shift for powers of two (strides 1 and 2).
#[inline(always)]
pub(crate) fn div_ceil_fast(a: usize, b: usize) -> usize {
    if b.is_power_of_two() {
        (a + b - 1) >> b.trailing_zeros()
    } else {
        a.div_ceil(b)
    }
}

/// Number of output rows and elements per row (see the module doc).
pub(crate) fn row_shape(plan: &Plan<f32>) -> (usize, usize) {
    let [az, ay, ax] = &plan.axes;
    let spatial_rows = az.output * ay.output;
    match plan.layout {
        Layout::ChannelsFirst => (plan.batch * plan.channels * spatial_rows, ax.output),
        Layout::ChannelsLast => (plan.batch * spatial_rows, ax.output * plan.channels),
    }
}

/// The multiple of output rows a thread's band should hold: the small-planes kernel works on
/// groups of `lanes` whole planes, so bands of whole groups keep every group whole (a band
/// that ends inside a group leaves a partial group, transposed element by element); separable
/// max wants bands of several windows' rows; 1 for the other kernels. Measured with
/// `PAR=1 profile_case nchw <case>` (2 threads, unaligned and aligned binaries alternated, best
/// 3 of 6): `alexnet` 126-138 µs to 93-102 µs (its 8 bands of
/// 12 planes each held a group of 8 and one of 4), `inception` 263-316 µs to 239-300 µs,
/// `train` 2.47-2.70 ms to 2.37-2.74 ms.
pub(crate) fn band_rows_multiple(plan: &Plan<f32>) -> usize {
    match plan.kernel {
        Kernel::SmallPlanes(_) => {
            let [az, ay, _] = &plan.axes;
            az.output * ay.output * plan.isa.lanes()
        }
        // Each band computes the row maxima of its window rows again: at least 4 windows' rows
        // per band keep that under a quarter. `sppf` NHWC (40 rows, which were cut into 8 bands
        // of 5) at 2 threads: 346-395 -> 270-279 µs (`PAR=1 profile_case`, 3 alternated runs).
        Kernel::SeparableMax | Kernel::SeparableUnpadded => {
            let ay = &plan.axes[1];
            4 * ((ay.kernel - 1) * ay.dilation + 1)
        }
        _ => 1,
    }
}

/// The average divisor of a window (1 for other ops): the override, or the number of taps
/// inside the padded input (`count_include_pad`), or inside the input, as the reference counts
/// them.
#[inline(always)]
pub(crate) fn divisor(reduction: Reduction, taps: &[Taps; 3]) -> f32 {
    match reduction {
        Reduction::Average {
            divisor_override: Some(d),
            ..
        } => d,
        Reduction::Average {
            count_include_pad: true,
            ..
        } => taps.iter().map(|t| t.padded_count).product::<usize>() as f32,
        Reduction::Average { .. } => taps.iter().map(|t| t.count).product::<usize>() as f32,
        _ => 1.0,
    }
}

/// The average divisor of a whole window as a y factor per output row and an x factor per
/// output column: `y * x` is the reference's integer product of tap counts (both factors are
/// integers and the product is below 2^24, so exact), or the override (times 1).
pub(crate) struct DivisorFactors<'a> {
    pub rows: &'a [f32],
    pub columns: &'a [f32],
}

impl<'a> DivisorFactors<'a> {
    /// Fills `rows` (one per output row) and `columns` (one per output column) for `plan`.
    pub fn new(plan: &Plan<f32>, rows: &'a mut [f32], columns: &'a mut [f32]) -> Self {
        let [az, ay, ax] = &plan.axes;
        let one = crate::geometry::Taps {
            first: 0,
            count: 1,
            padded_count: 1,
        };
        let overridden = matches!(
            plan.reduction,
            crate::plan::Reduction::Average {
                divisor_override: Some(_),
                ..
            }
        );
        for (oy, factor) in rows.iter_mut().enumerate() {
            *factor = divisor(plan.reduction, &[az.taps(0), ay.taps(oy), one]);
        }
        for (ox, factor) in columns.iter_mut().enumerate() {
            *factor = if overridden {
                1.0
            } else {
                divisor(plan.reduction, &[one, one, ax.taps(ox)])
            };
        }
        DivisorFactors { rows, columns }
    }
}

/// Runs `kernel` on level `isa` for the output rows `rows`; `output` (and `indices`) hold
/// exactly those rows.
pub(crate) fn run_rows(
    plan: &Plan<f32>,
    kernel: Kernel,
    isa: Isa,
    input: &[f32],
    output: &mut [f32],
    indices: Option<&mut [i64]>,
    rows: Range<usize>,
) {
    // Max carries indices only when asked for them.
    let indexed = indices.is_some();
    // The level the kernel runs on (the plan's, or a narrower one for short rows).
    let isa = kernel.level(&plan.axes[2], isa);
    #[rustfmt::skip]
    macro_rules! with_rule {
        ($rule:expr, $task:ident) => {
            with_rule!($rule, $task, core::convert::identity)
        };
        // The sum rules through `$sums`: `ChannelsLastSums`, a wrapper task type in a module of
        // its own (a codegen unit of their own: see `channels_last_sums`), or no wrapper.
        ($rule:expr, $task:ident, $sums:path) => {
            match $rule {
                Rule::Max if indexed => go(isa, $task { rule: Max, plan, input, output, indices, rows }),
                Rule::Max => go(isa, $task { rule: MaxValue, plan, input, output, indices, rows }),
                Rule::Average => go(isa, $sums($task { rule: Average, plan, input, output, indices, rows })),
                Rule::L1 => go(isa, $sums($task { rule: L1, plan, input, output, indices, rows })),
                Rule::L2 => go(isa, $sums($task { rule: L2, plan, input, output, indices, rows })),
            }
        };
    }
    // Kernels without indices (max values only: with indices another kernel runs).
    #[rustfmt::skip]
    macro_rules! with_value_rule {
        ($rule:expr, $task:ident) => {
            match $rule {
                Rule::Max => go(isa, $task { rule: MaxValue, plan, input, output, rows }),
                Rule::Average => go(isa, $task { rule: Average, plan, input, output, rows }),
                Rule::L1 => go(isa, $task { rule: L1, plan, input, output, rows }),
                Rule::L2 => go(isa, $task { rule: L2, plan, input, output, rows }),
            }
        };
    }
    use channels_first::ChannelsFirst;
    use channels_last::ChannelsLast;
    use channels_last_sums::ChannelsLastSums;
    use flat_planes::FlatPlanes;
    use flat_unpadded::FlatUnpadded;
    use global::GlobalChannelsFirst;
    use global_channels_last::GlobalChannelsLast;
    use pairs::Pairs;
    use separable::SeparableMax;
    use small_planes::SmallPlanes;
    match kernel {
        Kernel::SeparableMax if indices.is_none() => go(
            isa,
            SeparableMax {
                plan,
                input,
                output,
                rows,
            },
        ),
        Kernel::SeparableMax if plan.layout == Layout::ChannelsLast => {
            with_rule!(Rule::Max, ChannelsLast, ChannelsLastSums)
        }
        Kernel::SeparableMax => with_rule!(Rule::Max, ChannelsFirst),
        Kernel::SeparableUnpadded if indices.is_none() => go(
            isa,
            separable_unpadded::SeparableUnpadded {
                plan,
                input,
                output,
                rows,
            },
        ),
        Kernel::SeparableUnpadded => with_rule!(Rule::Max, ChannelsFirst),
        Kernel::FixedWindow(Rule::Max) if indices.is_none() => {
            fixed_window(plan, MaxValue, isa, input, output, rows)
        }
        Kernel::FixedWindow(Rule::Average) => fixed_window(plan, Average, isa, input, output, rows),
        Kernel::FixedWindow(rule) => with_rule!(rule, ChannelsFirst),
        Kernel::Scalar => scalar::pool_rows(plan, input, output, indices, rows),
        Kernel::ChannelsLast(Rule::Max) if !indexed && channels_last::flags_nan(plan, isa) => {
            let rule = MaxFlagged;
            go(
                isa,
                ChannelsLast {
                    rule,
                    plan,
                    input,
                    output,
                    indices,
                    rows,
                },
            )
        }
        Kernel::ChannelsLast(rule) => with_rule!(rule, ChannelsLast, ChannelsLastSums),
        Kernel::ChannelsFirst(rule) => with_rule!(rule, ChannelsFirst),
        Kernel::GlobalChannelsFirst(rule) => with_rule!(rule, GlobalChannelsFirst),
        Kernel::GlobalChannelsLast(Rule::Max) if indices.is_some() => {
            with_rule!(Rule::Max, ChannelsLast, ChannelsLastSums)
        }
        Kernel::GlobalChannelsLast(rule) => with_value_rule!(rule, GlobalChannelsLast),
        Kernel::SmallPlanes(rule) => with_rule!(rule, SmallPlanes),
        Kernel::FlatPlanes(Rule::Max) if indices.is_some() => with_rule!(Rule::Max, ChannelsFirst),
        Kernel::FlatPlanes(rule) => with_value_rule!(rule, FlatPlanes),
        Kernel::FlatUnpadded(rule) => with_value_rule!(rule, FlatUnpadded),
        Kernel::ViaPlanes(rule) if indices.is_some() => {
            with_rule!(rule, ChannelsLast, ChannelsLastSums)
        }
        Kernel::ViaPlanes(_) => via_planes::run(plan, input, output, rows),
        Kernel::ShortRowsMax if indices.is_some() => with_rule!(Rule::Max, ChannelsFirst),
        Kernel::ShortRowsMax => short_rows(plan, isa, input, output, rows),
        Kernel::Pairs(Rule::Max) if indices.is_some() => with_rule!(Rule::Max, SmallPlanes),
        Kernel::Pairs(rule) => with_value_rule!(rule, Pairs),
        Kernel::PairsChannelsLast(Rule::Max) if indices.is_some() => {
            with_rule!(Rule::Max, ChannelsLast, ChannelsLastSums)
        }
        Kernel::PairsChannelsLast(rule) => with_value_rule!(rule, Pairs),
    }
}

/// Runs [`short_rows::ShortRows`] with the plan's x window and vectors a row as constants.
fn short_rows(plan: &Plan<f32>, isa: Isa, input: &[f32], output: &mut [f32], rows: Range<usize>) {
    use short_rows::ShortRows;
    macro_rules! with_shape {
        ($kx:literal, $v:literal) => {
            go(
                isa,
                ShortRows::<$kx, $v> {
                    plan,
                    input,
                    output,
                    rows,
                },
            )
        };
    }
    let vectors = plan.axes[2].output.div_ceil(isa.lanes());
    match (plan.axes[2].kernel, vectors) {
        (2, 1) => with_shape!(2, 1),
        (2, 2) => with_shape!(2, 2),
        (2, 3) => with_shape!(2, 3),
        (2, 4) => with_shape!(2, 4),
        (2, 5) => with_shape!(2, 5),
        (2, 6) => with_shape!(2, 6),
        (2, 7) => with_shape!(2, 7),
        (2, 8) => with_shape!(2, 8),
        (3, 1) => with_shape!(3, 1),
        (3, 2) => with_shape!(3, 2),
        (3, 3) => with_shape!(3, 3),
        (3, 4) => with_shape!(3, 4),
        (3, 5) => with_shape!(3, 5),
        (3, 6) => with_shape!(3, 6),
        (3, 7) => with_shape!(3, 7),
        (3, 8) => with_shape!(3, 8),
        _ => unreachable!("short_rows::applies admits only the shapes above"),
    }
}

/// Runs [`fixed_window::FixedWindow`] with the plan's x window and stride as constants.
fn fixed_window<R: reduce::Reducer>(
    plan: &Plan<f32>,
    rule: R,
    isa: Isa,
    input: &[f32],
    output: &mut [f32],
    rows: Range<usize>,
) {
    use fixed_window::FixedWindow;
    macro_rules! with_shape {
        ($kx:literal, $sx:literal) => {
            go(
                isa,
                FixedWindow::<R, $kx, $sx> {
                    rule,
                    plan,
                    input,
                    output,
                    rows,
                },
            )
        };
    }
    match (plan.axes[2].kernel, plan.axes[2].stride) {
        (2, 1) => with_shape!(2, 1),
        (2, 2) => with_shape!(2, 2),
        (3, 1) => with_shape!(3, 1),
        (3, 2) => with_shape!(3, 2),
        (5, 1) => with_shape!(5, 1),
        (5, 2) => with_shape!(5, 2),
        _ => unreachable!("fixed_window::applies admits only the shapes above"),
    }
}

#[inline(always)]
pub(crate) fn go<Op: OnLevels>(isa: Isa, op: Op) {
    op.run_on(isa)
}
