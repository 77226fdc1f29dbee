//! Channels-first sums (average, L1, L2) with stride 1 on planes small enough for L2, such as
//! Inception's 3x3/1 average on 35x35 planes. With stride 1 a padded plane read as one flat
//! array is a 1-D problem: output `(oy, ox)` sits at flat position `oy * W + ox` (W the padded
//! width) and its tap `(ty, tx)` at that position plus `ty * W + tx`, the same offset for every
//! output. So vectors run along the flat plane across row ends, with no per-row work, and the
//! `W - X_out` positions between two output rows are computed and dropped:
//!
//! ```text
//! plane := the op's neutral value (the padding, written once per task)
//! for each plane (n, c) of the task, or the rows of it the task holds:
//!     plane[top + y][left ..] = input row y, for the input rows its windows read
//!     for blocks of 4 (then 1-3) vectors at flat positions i:
//!         acc = 0; for each tap offset in row-major window order: acc += plane[i + offset ..]
//!         results[i ..] = finish(acc, divisors[i ..])
//!     output row oy = results[oy * W ..][.. X_out]
//! ```
//!
//! Every output adds its taps in the reference's row-major order from +0, the padding adding
//! +0 (which changes no bits of a sum that starts at +0), and divides by the reference's
//! divisor: results are bit-identical to the reference and to the other kernels.
//!
//! Where it runs instead of the small-planes kernel (groups of planes transposed to vectors
//! over planes and back) or the fixed-window kernel (vectors along each output row) was
//! measured: see [`applies`].

use std::ops::Range;

use pulp::{Simd, WithSimd};

use super::DivisorFactors;
use super::reduce::{Acc, Reducer};
use super::simd_io::{copy_short, lanes, load, store};
use crate::Plan;
use crate::geometry::Axis;

/// Most elements of a padded plane (64 KiB of f32; with its results and divisors in L2).
const MAX_PLANE: usize = 16 * 1024;

/// Most taps a window may have (their offsets live in a stack array).
const MAX_TAPS: usize = 64;

/// Whether the plan is a 1-D or 2-D stride-1 window whose padded planes fit [`MAX_PLANE`], with
/// output rows of at least two vectors, on a level with 16 lanes (the caller checks the op:
/// sums only). Measured with `SHAPE=.. profile_case nchw inception` (3x3/1 average, pad 1;
/// Xeon with AVX-512; best of 3-5 alternated runs; this kernel against the one chosen
/// otherwise, µs):
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
/// With 16 lanes the other kernels fit these rows poorly (rows of 2-3 vectors with one
/// partly empty, or transposed blocks of 16 planes larger than L1); with 8 they do not, and
/// on small planes the per-row copies in and out cost more than the transposes.
pub(crate) fn applies(plan: &Plan<f32>, lanes: usize) -> bool {
    let [az, ay, ax] = &plan.axes;
    let flat_2d = az.input == 1 && az.kernel == 1 && az.pad_begin == 0 && az.pad_end == 0;
    let Some(shape) = FlatShape::of(plan) else {
        return false;
    };
    lanes >= 16
        && flat_2d
        && ay.stride == 1
        && ax.stride == 1
        && ax.output >= 2 * lanes
        && ay.kernel.saturating_mul(ax.kernel) <= MAX_TAPS
        && shape.plane_len() <= MAX_PLANE
}

/// A padded plane's layout: `height` rows of `width` elements, the input from row `top`,
/// column `left`.
#[derive(Clone, Copy)]
struct FlatShape {
    top: usize,
    left: usize,
    height: usize,
    width: usize,
    out_width: usize,
}

impl FlatShape {
    /// The layout for the plan's y and x axes: wide enough for the input and for every window
    /// (which never reaches past the padding with stride 1, but the plane holds it anyway);
    /// `None` if a size overflows.
    fn of(plan: &Plan<f32>) -> Option<FlatShape> {
        let [_, ay, ax] = &plan.axes;
        let extent = |a: &Axis| -> Option<usize> {
            let span = (a.kernel - 1).checked_mul(a.dilation)?;
            let windows = (a.output - 1).checked_add(span)?.checked_add(1)?;
            a.pad_begin.checked_add(a.input)?.max(windows).into()
        };
        Some(FlatShape {
            top: ay.pad_begin,
            left: ax.pad_begin,
            height: extent(ay)?,
            width: extent(ax)?,
            out_width: ax.output,
        })
    }

    fn plane_len(self) -> usize {
        self.height.saturating_mul(self.width)
    }

    /// Flat positions from output row `rows.start` through the last output of row
    /// `rows.end - 1`.
    fn flat_outputs(self, rows: Range<usize>) -> usize {
        match rows.len() {
            0 => 0,
            n => (n - 1) * self.width + self.out_width,
        }
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
            *offset = ty * ay.dilation * shape.width + tx * ax.dilation;
        }
        let offsets = &offsets[..taps];
        // A vector that starts at the last output reads `lanes - 1` elements past it: the
        // plane, results and divisors have that much slack.
        let plane_len = shape.plane_len() + lanes;
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
                let line = &mut divisors[oy * shape.width..][..ax.output];
                for (divisor, &column) in line.iter_mut().zip(factors.columns) {
                    *divisor = row * column;
                }
            }
        }
        let plane_stride = plan.input_strides[1];
        let mut row = rows.start;
        let mut out = 0;
        while row < rows.end {
            let (p, first) = (row / ay.output, row % ay.output);
            let last = ay.output.min(first + rows.end - row);
            let source = &input[p * plane_stride..][..plane_stride];
            load_rows(plane, shape, source, &ay, first..last);
            let flat = first * shape.width..first * shape.width + shape.flat_outputs(first..last);
            sum_flat(simd, rule, (plane, offsets), flat, results, divisors);
            for oy in first..last {
                let from = &results[oy * shape.width..][..ax.output];
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
fn load_rows(plane: &mut [f32], shape: FlatShape, source: &[f32], ay: &Axis, rows: Range<usize>) {
    // Every row from the first window's top to the last one's bottom (with dilation, a later
    // window may read a row above the first one's first tap).
    let span = (ay.kernel - 1) * ay.dilation + 1;
    let first_y = rows.start.saturating_sub(ay.pad_begin);
    let end_y = (rows.end - 1 + span)
        .saturating_sub(ay.pad_begin)
        .min(ay.input);
    let width = source.len() / ay.input;
    for y in first_y..end_y {
        let to = &mut plane[(shape.top + y) * shape.width + shape.left..][..width];
        copy_short(to, &source[y * width..][..width]);
    }
}

/// The outputs at flat positions `flat` into `results`: blocks of 4 vectors, then 1-4.
/// Tried and not kept: the x window compiled in for widths 2, 3 and 5 (`profile_case nchw
/// inception` 24.3 against 27.2 µs on 32 planes, best of 7), 8 vectors per block (no faster).
#[inline(always)]
fn sum_flat<S: Simd, R: Reducer>(
    simd: S,
    rule: R,
    (plane, offsets): (&[f32], &[usize]),
    flat: Range<usize>,
    results: &mut [f32],
    divisors: &[f32],
) {
    let lanes = lanes::<S>();
    let mut at = flat.start;
    // A macro, not a closure: closures are compiled without the level's target features.
    macro_rules! block {
        ($v:literal) => {
            finish_block::<S, R, $v>(simd, rule, (plane, offsets), at, results, divisors)
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
/// chains (one bounds check per tap covers its `V` loads), then the rule's finish.
#[inline(always)]
fn finish_block<S: Simd, R: Reducer, const V: usize>(
    simd: S,
    rule: R,
    (plane, offsets): (&[f32], &[usize]),
    at: usize,
    results: &mut [f32],
    divisors: &[f32],
) {
    let lanes = lanes::<S>();
    let zero = simd.splat_u32s(0);
    let mut accs: [Acc<S>; V] = [rule.init(simd, zero); V];
    for &offset in offsets {
        let tap = &plane[at + offset..][..V * lanes];
        for (v, acc) in accs.iter_mut().enumerate() {
            *acc = rule.add(simd, *acc, load::<S>(tap, v * lanes), zero);
        }
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
