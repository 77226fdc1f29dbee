//! Channels-first pooling with stride 1 or 2 on planes small enough for L2, such as a 5x5/1
//! average on 40x40 planes or AlexNet's 3x3/2 max on 55x55 ones (sums, and max values with
//! stride 2; stride-1 sums 3 wide with x padding 1, as Inception's, run unpadded instead:
//! [`super::flat_unpadded`]). With stride 1 a padded plane read as one flat array is a 1-D problem:
//! output `(oy, ox)` sits at flat position `oy * W + ox` (W the padded width) and its tap
//! `(ty, tx)` at that position plus `ty * W + tx`, the same offset for every output. So
//! vectors run along the flat plane across row ends, with no per-row work, and the
//! `W - X_out` positions between two output rows are computed and dropped. With stride 2 the
//! plane is stored as its 4 phases (even and odd rows by even and odd columns, each `W / 2`
//! wide): output `(oy, ox)` sits at `oy * W / 2 + ox` and each tap at a fixed offset in one
//! phase, so the same loop runs over the phases.
//!
//! ```text
//! plane := the op's neutral value (the padding, written once per task)
//! for each plane (n, c) of the task, or the rows of it the task holds:
//!     plane[phase of (top + y, left + x)] = input row y, for the input rows its windows read
//!     for blocks of 4 (then 1-4) vectors at flat positions i:
//!         acc = init; for each tap offset in row-major window order: acc = rule(acc, plane[i + offset ..])
//!         (value-only max: each window row's taps on a chain of their own, rows folded in order)
//!         results[i ..] = finish(acc, divisors[i ..])
//!     output row oy = results[oy * phase width ..][.. X_out]
//! ```
//!
//! Every output visits its taps in the reference's row-major order, the padding holding the
//! op's neutral value (+0 changes no bits of a sum that starts at +0; −∞ never wins a max), and
//! divides by the reference's divisor: results are bit-identical to the reference and to the
//! other kernels.
//!
//! Where it runs instead of the small-planes kernel (groups of planes transposed to vectors
//! over planes and back) or the fixed-window kernel (vectors along each output row) was
//! measured: see [`applies`].

use std::ops::Range;

use pulp::{Simd, WithSimd};

use super::DivisorFactors;
use super::fixed_window::{PREFETCH_FROM, PREFETCH_ROWS};
use super::prefetch::Prefetcher;
use super::reduce::{Acc, Reducer};
use super::simd_io::{can_shift, copy_short, lanes, load, load_deinterleaved, shifted, store};
use crate::Plan;
use crate::geometry::Axis;

/// Most elements of a padded plane (64 KiB of f32; with its results and divisors in L2).
const MAX_PLANE: usize = 16 * 1024;

/// Most elements of a plane split into stride-2 phases (16 KiB of f32: L1).
const MAX_SPLIT_PLANE: usize = 4 * 1024;

/// Most taps a window may have (their offsets live in a stack array).
const MAX_TAPS: usize = 64;

/// Whether the plan is a 1-D or 2-D window with stride 1, or 2 on both axes, whose planes fit
/// [`MAX_PLANE`] ([`MAX_SPLIT_PLANE`] split into phases), with output rows of at least two
/// vectors (one with stride 2), on a level with 16 lanes (the caller checks the op). Measured
/// with `SHAPE=.. profile_case nchw <case>` (Xeon with AVX-512; best of 3-5 alternated runs;
/// this kernel against the one chosen otherwise, µs). Stride 1, `inception` (3x3/1 average,
/// pad 1):
///
/// | planes | v4 | v3 |
/// |---|---|---|
/// | 288 of 35x35 | 220-227 against 327-334 | 289-293 against 283-297 |
/// | 64 of 56x56 | 148 against 180 | 182 against 168 |
/// | 16 of 112x112 | 139 against 175 | 209 against 169 |
/// | 768 of 17x17 | 237 against 181 | 217 against 164 |
/// | 2048 of 8x8 | 176 against 91 | 159 against 95 |
/// | 4 of 224x224 (plane past the bound) | 169 against 102 | 227 against 123 |
///
/// On an AMD EPYC (Zen 1, v3; session 18, best of 3 alternated) letting 8 lanes in changed
/// little either: 288 of 35x35 513 against 496, 64 of 56x56 267 against 283, 768 of 17x17
/// 400 against 346.
///
/// With 16 lanes the other kernels fit these rows poorly (rows of 2-3 vectors with one
/// partly empty, or transposed blocks of 16 planes larger than L1); with 8 they do not, and
/// on small planes the per-row copies in and out cost more than the transposes.
///
/// Stride 2 (3x3/2 max, v4): `alexnet` (96 planes of 55x55) 91-97 against 104-113; `resnet`
/// (112x112 planes, 52 KiB split: past L1) 407 against 225; `train` (26 MB of 56x56 planes,
/// memory-bound, with prefetching) 3.22 against 2.72 ms, so inputs from `PREFETCH_FROM`
/// keep the streaming row kernel. Prefetching here: `inception` with 8 images (11 MB)
/// 3.74 -> 2.91 ms.
pub(crate) fn applies(plan: &Plan<f32>, lanes: usize) -> bool {
    let [az, ay, ax] = &plan.axes;
    let flat_2d = az.input == 1 && az.kernel == 1 && az.pad_begin == 0 && az.pad_end == 0;
    let Some(shape) = FlatShape::of(plan) else {
        return false;
    };
    let stride = ax.stride;
    lanes >= 16
        && flat_2d
        && ay.stride == stride
        && (stride == 1 || stride == 2)
        && ax.output >= 2 * lanes / stride
        && ay.kernel.saturating_mul(ax.kernel) <= MAX_TAPS
        && shape.plane_len()
            <= if stride == 1 {
                MAX_PLANE
            } else {
                MAX_SPLIT_PLANE
            }
        && (stride == 1 || plan.input_len() < PREFETCH_FROM)
}

/// A padded plane's layout: `height` rows of `width` elements, the input from row `top`,
/// column `left`, stored as `stride * stride` phase planes of `phase_rows` rows of
/// `phase_width`: padded element `(Y, X)` in phase `(Y % s, X % s)` at `(Y / s, X / s)`.
#[derive(Clone, Copy)]
struct FlatShape {
    top: usize,
    left: usize,
    stride: usize,
    phase_rows: usize,
    phase_width: usize,
    out_width: usize,
}

impl FlatShape {
    /// The layout for the plan's y and x axes (their common stride): wide enough for the input
    /// and for every window; `None` if a size overflows.
    fn of(plan: &Plan<f32>) -> Option<FlatShape> {
        let [_, ay, ax] = &plan.axes;
        let stride = ax.stride;
        let extent = |a: &Axis| -> Option<usize> {
            let span = (a.kernel - 1).checked_mul(a.dilation)?;
            let windows = (a.output - 1)
                .checked_mul(a.stride)?
                .checked_add(span)?
                .checked_add(1)?;
            Some(
                a.pad_begin
                    .checked_add(a.input)?
                    .max(windows)
                    .div_ceil(stride),
            )
        };
        Some(FlatShape {
            top: ay.pad_begin,
            left: ax.pad_begin,
            stride,
            phase_rows: extent(ay)?,
            phase_width: extent(ax)?,
            out_width: ax.output,
        })
    }

    fn phase_len(self) -> usize {
        self.phase_rows.saturating_mul(self.phase_width)
    }

    fn plane_len(self) -> usize {
        self.phase_len()
            .saturating_mul(self.stride)
            .saturating_mul(self.stride)
    }

    /// Flat positions from output row `rows.start` through the last output of row
    /// `rows.end - 1`.
    fn flat_outputs(self, rows: Range<usize>) -> usize {
        match rows.len() {
            0 => 0,
            n => (n - 1) * self.phase_width + self.out_width,
        }
    }

    /// Where padded element `(y, x)` lies in the plane.
    fn at(self, y: usize, x: usize) -> usize {
        let s = self.stride;
        let phase = (y % s) * s + x % s;
        phase * self.phase_len() + (y / s) * self.phase_width + x / s
    }
}

/// One task: the output rows `rows` (flattened (n, c, oy)) of a plan for which [`applies`]
/// holds.
pub(crate) struct FlatPlanes<'a, R> {
    pub rule: R,
    pub plan: &'a Plan<f32>,
    pub input: &'a [f32],
    pub output: &'a mut [f32],
    pub rows: Range<usize>,
}

impl<R: Reducer> WithSimd for FlatPlanes<'_, R> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Self {
            rule,
            plan,
            input,
            output,
            rows,
        } = self;
        let lanes = lanes::<S>();
        let [_, ay, ax] = plan.axes;
        let Some(shape) = FlatShape::of(plan) else {
            unreachable!("the plan chose this kernel only for shapes that fit");
        };
        // Each tap's offset from its window's output, in row-major window order.
        let mut offsets = [0; MAX_TAPS];
        let taps = ay.kernel * ax.kernel;
        for (tap, offset) in offsets[..taps].iter_mut().enumerate() {
            let (ty, tx) = (tap / ax.kernel, tap % ax.kernel);
            *offset = shape.at(ty * ay.dilation, tx * ax.dilation);
        }
        let taps = Taps {
            offsets: &offsets[..taps],
            per_row: ax.kernel,
            shifts: shape.stride == 1 && ax.dilation == 1 && ax.kernel < lanes && can_shift(simd),
        };
        // A vector that starts at the last output reads `lanes - 1` elements past it: the
        // plane, results and divisors have that much slack (the plane one vector more, for
        // the vector after a window row's last that the shifts read).
        let plane_len = shape.plane_len() + 2 * lanes;
        let flat_len = shape.flat_outputs(0..ay.output) + lanes;
        let (divisors_len, factors_len) = if R::DIVIDES {
            (flat_len, ay.output + ax.output)
        } else {
            (0, 0)
        };
        let mut scratch = super::scratch::take(plane_len + flat_len + divisors_len + factors_len);
        let (plane, rest) = scratch.split_at_mut(plane_len);
        let (results, rest) = rest.split_at_mut(flat_len);
        let (divisors, factors) = rest.split_at_mut(divisors_len);
        plane.fill(R::FILL);
        if R::DIVIDES {
            let (rows, columns) = factors[..factors_len].split_at_mut(ay.output);
            let factors = DivisorFactors::new(plan, rows, columns);
            // Positions between output rows and past the last output divide by 1.
            divisors.fill(1.0);
            for (oy, &row) in factors.rows.iter().enumerate() {
                let line = &mut divisors[oy * shape.phase_width..][..ax.output];
                for (divisor, &column) in line.iter_mut().zip(factors.columns) {
                    *divisor = row * column;
                }
            }
        }
        let plane_stride = plan.input_strides[1];
        let prefetcher = Prefetcher::new(input.len() >= PREFETCH_FROM);
        let mut row = rows.start;
        let mut out = 0;
        while row < rows.end {
            let (p, first) = (row / ay.output, row % ay.output);
            let last = ay.output.min(first + rows.end - row);
            let source = &input[p * plane_stride..][..plane_stride];
            // The same rows `PREFETCH_ROWS` rows further on in the input.
            let ahead = Ahead {
                input: input
                    .get(p * plane_stride + PREFETCH_ROWS * ax.input..)
                    .unwrap_or(&[]),
                prefetcher,
            };
            load_rows(simd, plane, shape, (source, ahead), &ay, first..last);
            let start = first * shape.phase_width;
            let flat = start..start + shape.flat_outputs(first..last);
            reduce_flat(simd, rule, (plane, taps), flat, results, divisors);
            for oy in first..last {
                let from = &results[oy * shape.phase_width..][..ax.output];
                copy_short(&mut output[out..][..ax.output], from);
                out += ax.output;
            }
            row += last - first;
        }
        super::scratch::give_back(scratch);
    }
}

/// Copies into `plane` the input rows (of `source`, one input plane) that the windows of
/// output rows `rows` read.
#[inline(always)]
fn load_rows<S: Simd>(
    simd: S,
    plane: &mut [f32],
    shape: FlatShape,
    (source, ahead): (&[f32], Ahead),
    ay: &Axis,
    rows: Range<usize>,
) {
    let width = source.len() / ay.input;
    for y in ay.input_span(rows) {
        let row = &source[y * width..][..width];
        ahead
            .prefetcher
            .fetch(ahead.input.get(y * width..).unwrap_or(&[]), width);
        let padded_y = shape.top + y;
        if shape.stride == 1 {
            copy_short(&mut plane[shape.at(padded_y, shape.left)..][..width], row);
        } else {
            split_row(simd, plane, shape, row, padded_y);
        }
    }
}

/// Prefetch requests for the input rows a plane copies, `PREFETCH_ROWS` rows ahead (into the
/// next plane near a plane's end), as the row kernels do on inputs past L2.
#[derive(Clone, Copy)]
struct Ahead<'a> {
    input: &'a [f32],
    prefetcher: Prefetcher,
}

/// Input row `row` (padded row `y`) into its two x phases (stride 2): element `x` to
/// `shape.at(y, left + x)`, 2 vectors at a time through a deinterleaving load (the last pair
/// overlapping the one before), element by element at the end.
#[inline(always)]
fn split_row<S: Simd>(simd: S, plane: &mut [f32], shape: FlatShape, row: &[f32], y: usize) {
    let lanes = lanes::<S>();
    let width = row.len();
    // Where the even and the odd elements of the row go, from their first.
    let (even, odd) = (shape.at(y, shape.left), shape.at(y, shape.left + 1));
    let mut done = 0;
    if width >= 2 * lanes {
        let last = (width - 2 * lanes) & !1;
        let mut x = 0;
        loop {
            let [evens, odds] = load_deinterleaved(simd, row, x);
            store::<S>(plane, even + x / 2, evens);
            store::<S>(plane, odd + x / 2, odds);
            if x == last {
                break;
            }
            x = (x + 2 * lanes).min(last);
        }
        done = last + 2 * lanes;
    }
    for (x, &value) in row.iter().enumerate().skip(done) {
        let at = if x % 2 == 0 { even } else { odd };
        plane[at + x / 2] = value;
    }
}

/// A window's taps as offsets in the plane from its output's flat position, in row-major
/// order, `per_row` to a window row.
#[derive(Clone, Copy)]
struct Taps<'a> {
    offsets: &'a [usize],
    per_row: usize,
    /// Whether a window row's taps are consecutive elements (stride and x dilation 1) and
    /// the level can shift a vector along by a few elements in registers ([`shifted`]).
    shifts: bool,
}

/// The outputs at flat positions `flat` into `results`: blocks of 4 vectors, then 1-4.
/// Tried and not kept: the x window compiled in for widths 2, 3 and 5 with a load per tap
/// (`profile_case nchw inception` 24.3 against 27.2 µs on 32 planes, best of 7), 8 vectors per
/// block (no faster). Kept: width 3 with its taps shifted in registers (most of these loads
/// straddle two cache lines, a shift does not).
#[inline(always)]
fn reduce_flat<S: Simd, R: Reducer>(
    simd: S,
    rule: R,
    (plane, taps): (&[f32], Taps),
    flat: Range<usize>,
    results: &mut [f32],
    divisors: &[f32],
) {
    // The x window compiled in where the taps allow it: 3 wide, as in `inception`
    // (`profile_case nchw inception`, best of 7 alternated: 234-240 against 258 µs).
    if taps.shifts && taps.per_row == 3 {
        reduce_flat_kx::<S, R, 3>(simd, rule, (plane, taps), flat, results, divisors)
    } else {
        reduce_flat_kx::<S, R, 0>(simd, rule, (plane, taps), flat, results, divisors)
    }
}

#[inline(always)]
fn reduce_flat_kx<S: Simd, R: Reducer, const KX: usize>(
    simd: S,
    rule: R,
    (plane, taps): (&[f32], Taps),
    flat: Range<usize>,
    results: &mut [f32],
    divisors: &[f32],
) {
    let lanes = lanes::<S>();
    let mut at = flat.start;
    // A macro, not a closure: closures are compiled without the level's target features.
    macro_rules! block {
        ($v:literal) => {
            finish_block::<S, R, $v, KX>(simd, rule, (plane, taps), at, results, divisors)
        };
    }
    while at + 4 * lanes <= flat.end {
        block!(4);
        at += 4 * lanes;
    }
    // Fewer than 4 vectors' worth remain: 1-4 vectors, the last one partly past the end.
    match (flat.end.saturating_sub(at)).div_ceil(lanes) {
        0 => {}
        1 => block!(1),
        2 => block!(2),
        3 => block!(3),
        _ => block!(4),
    }
}

/// `V` vectors of outputs from flat position `at`: every tap in order on `V` independent
/// chains (one bounds check per tap covers its `V` loads), then the rule's finish. Value-only
/// max folds per-row chains in order, as `fixed_window::fold_rows` does (the same bits).
#[inline(always)]
fn finish_block<S: Simd, R: Reducer, const V: usize, const KX: usize>(
    simd: S,
    rule: R,
    (plane, taps): (&[f32], Taps),
    at: usize,
    results: &mut [f32],
    divisors: &[f32],
) {
    let lanes = lanes::<S>();
    let zero = simd.splat_u32s(0);
    let split = !R::SUMS && !R::TRACKS_INDEX;
    let mut accs: [Acc<S>; V] = [rule.init(simd, zero); V];
    for (r, row) in taps.offsets.chunks_exact(taps.per_row).enumerate() {
        // With the x window compiled in (`KX` > 0: consecutive taps, a level that shifts in
        // registers), every tap of a window row comes from the row's `V + 1` vectors from its
        // first tap (`V` <= 4), shifted: one load per vector and window row, not `KX`.
        let mut wide = [simd.splat_f32s(0.0); 5];
        if KX > 0 {
            let span = &plane[at + row[0]..][..(V + 1) * lanes];
            for (v, w) in wide[..=V].iter_mut().enumerate() {
                *w = load::<S>(span, v * lanes);
            }
        }
        macro_rules! tap {
            ($t:expr, $v:expr) => {{
                let t: usize = $t;
                let in_registers = match t {
                    _ if KX == 0 => None,
                    0 => Some(wide[$v]),
                    _ => shifted(simd, wide[$v], wide[$v + 1], t),
                };
                match in_registers {
                    Some(x) => x,
                    None => load::<S>(&plane[at + row[t]..][..V * lanes], $v * lanes),
                }
            }};
        }
        let mut row_accs = if split {
            core::array::from_fn(|v| Acc {
                value: tap!(0, v),
                index: zero,
            })
        } else {
            accs
        };
        let count = if KX > 0 { KX } else { row.len() };
        for t in usize::from(split)..count {
            for (v, acc) in row_accs.iter_mut().enumerate() {
                *acc = rule.add(simd, *acc, tap!(t, v), zero);
            }
        }
        accs = if split && r > 0 {
            core::array::from_fn(|v| rule.add(simd, accs[v], row_accs[v].value, zero))
        } else {
            row_accs
        };
    }
    for (v, acc) in accs.into_iter().enumerate() {
        let divisor = if R::DIVIDES {
            load::<S>(divisors, at + v * lanes)
        } else {
            simd.splat_f32s(1.0)
        };
        store::<S>(results, at + v * lanes, rule.finish(simd, acc, divisor));
    }
}
