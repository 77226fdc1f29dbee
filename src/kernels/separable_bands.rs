//! Separable max, channels-first, x stride 1: a band of one plane's output rows at a time.
//!
//! ```text
//! block = the band's input rows, with −∞ around them (padding, rows past the input)
//! h[i]   = max over tx of block[i + tx * dx]          one vector loop over the whole band
//! out[i] = max over ty of h[i + ty * dy * pitch]      one loop (y stride 1) or one per row
//! ```
//!
//! The block's rows are `pitch` = output width + (kx - 1) * dx elements apart, so a window's
//! taps are fixed offsets in the flat block and both passes run over the band as one long row:
//! a 40-wide plane is 5 vectors per row, and loops per row cost more than the maxima (`sppf`
//! NCHW). The last (kx - 1) * dx elements of each h row mix two rows and no result reads them.
//! Both passes take taps in window order, so the result is the reference's (see
//! [`super::separable`]).
//!
//! With y stride and dilation 1 and 3- or 5-row windows, the y pass takes output rows in pairs
//! ([`row_pairs`]): the rows they share are merged once for both, and the results go straight
//! to the output. The NaN test that chooses the one-instruction max is made while the block is
//! filled. `sppf` NCHW (`profile_case nchw sppf`, best of 5 alternated, AMD EPYC Zen 1 at v3):
//! 604–610 µs before, 544 with the pairs, 525 with the NaN test in the fill.

use std::ops::Range;

use pulp::Simd;

use super::channels_first::MAX_TAPS_X;
use super::reduce::{Acc, MaxOfNumbers, MaxValue, Reducer, copy_finding_nan};
use super::scratch;
use super::separable::{MAX_RING, MAX_RING_ELEMENTS, max_of_long_rows, max_of_rows};
use super::simd_io::{copy_short, lanes, load, store, store_first};
use crate::Plan;

/// Elements of one band's block (and of its h and y-stride-1 output buffers): 32 KiB each, so
/// the three stay in L2 while a band is worked on.
const BAND_ELEMENTS: usize = 8 * 1024;

/// Padded row length and rows of input a single output row reads, when the band path applies:
/// x stride 1 and a one-row band whose three buffers stay under the separable kernel's bound.
pub(crate) fn shape(plan: &Plan<f32>) -> Option<(usize, usize)> {
    let [_, ay, ax] = &plan.axes;
    if ax.stride != 1 || ax.kernel > MAX_TAPS_X {
        return None;
    }
    let pitch = (ax.kernel - 1)
        .checked_mul(ax.dilation)?
        .checked_add(ax.output)?;
    let window_rows = (ay.kernel - 1).checked_mul(ay.dilation)?.checked_add(1)?;
    let fits = window_rows.checked_mul(pitch)?.checked_mul(3)? <= MAX_RING_ELEMENTS;
    fits.then_some((pitch, window_rows))
}

/// Output rows `rows` (flattened (plane, oz, oy)) of a channels-first plan for which [`shape`]
/// is `Some`, written to `output` (the rows' own slice).
#[inline(always)]
pub(crate) fn run<S: Simd>(
    simd: S,
    plan: &Plan<f32>,
    input: &[f32],
    output: &mut [f32],
    rows: Range<usize>,
) {
    let Some((pitch, window_rows)) = shape(plan) else {
        unreachable!("the separable kernel takes this path only where `shape` holds");
    };
    let [az, ay, ax] = plan.axes;
    let width = ax.output;
    // Most output rows per band: those whose input rows fit BAND_ELEMENTS, at least one.
    let band_rows = (BAND_ELEMENTS / pitch).max(window_rows);
    let band = (band_rows - window_rows) / ay.stride + 1;
    let block_len = ((band - 1) * ay.stride + window_rows) * pitch;
    // h has a vector of slack: a row pair's last, partial vectors read past the last h row.
    // So has the third buffer, which holds a row pair's shared maxima (`row_pairs`).
    let slack = lanes::<S>();
    let mut buffer = scratch::take(3 * block_len + 2 * slack);
    {
        let (block, rest) = buffer.split_at_mut(block_len);
        let (h, flat_out) = rest.split_at_mut(block_len + slack);
        // The padding columns: written once, `fill_block` writes only between them.
        block.fill(f32::NEG_INFINITY);
        let mut x_starts = [0usize; MAX_TAPS_X];
        for (tx, start) in x_starts[..ax.kernel].iter_mut().enumerate() {
            *start = tx * ax.dilation;
        }
        let x_starts = &x_starts[..ax.kernel];
        let mut y_starts = [0usize; MAX_RING];
        for (ty, start) in y_starts[..ay.kernel].iter_mut().enumerate() {
            *start = ty * ay.dilation * pitch;
        }
        let x_span = (ax.kernel - 1) * ax.dilation;
        let mut row = rows.start;
        while row < rows.end {
            let (slab, oy) = (row / ay.output, row % ay.output);
            let (outer, oz) = (slab / az.output, slab % az.output);
            let count = band.min(ay.output - oy).min(rows.end - row);
            let block_rows = (count - 1) * ay.stride + window_rows;
            let len = block_rows * pitch;
            let plane = outer * plan.input_strides[1] + az.taps(oz).first * plan.input_strides[2];
            let nan = fill_block(
                simd,
                &mut block[..len],
                &input[plane..][..ay.input * ax.input],
                (ay, ax, pitch),
                oy * ay.stride,
            );
            let out = &mut output[(row - rows.start) * width..][..count * width];
            let passes = Passes {
                block: &block[..len],
                h: &mut h[..len - x_span + slack],
                flat: flat_out,
                x_starts,
                y_starts: &y_starts[..ay.kernel],
                pitch,
                y_stride: ay.stride,
            };
            if nan {
                passes.run(simd, MaxValue, out, width);
            } else {
                passes.run(simd, MaxOfNumbers, out, width);
            }
            row += count;
        }
    }
    scratch::give_back(buffer);
}

/// One band's two passes over its filled block.
struct Passes<'a> {
    block: &'a [f32],
    /// The h rows and a vector of slack after them.
    h: &'a mut [f32],
    flat: &'a mut [f32],
    x_starts: &'a [usize],
    y_starts: &'a [usize],
    pitch: usize,
    y_stride: usize,
}

impl Passes<'_> {
    /// Row maxima into `h`, then the band's output rows (`width` wide) into `out`.
    #[inline(always)]
    fn run<S: Simd, R: Reducer>(self, simd: S, rule: R, out: &mut [f32], width: usize) {
        let Passes {
            block,
            h,
            flat,
            x_starts,
            y_starts,
            pitch,
            y_stride,
        } = self;
        let slack = lanes::<S>();
        let h_rows = h.len() - slack;
        max_of_long_rows(simd, rule, block, x_starts, &mut h[..h_rows]);
        let h = &*h;
        // Rows of a window one pitch apart: y stride and dilation 1.
        let adjacent = y_stride == 1 && y_starts.get(1) == Some(&pitch);
        if adjacent && y_starts.len() == 3 {
            row_pairs::<S, R, 3>(simd, rule, h, pitch, out, width, flat);
        } else if adjacent && y_starts.len() == 5 {
            row_pairs::<S, R, 5>(simd, rule, h, pitch, out, width, flat);
        } else if y_stride == 1 {
            let flat = &mut flat[..(out.len() / width - 1) * pitch + width];
            max_of_long_rows(simd, rule, h, y_starts, flat);
            for (r, out_row) in out.chunks_exact_mut(width).enumerate() {
                copy_short(out_row, &flat[r * pitch..][..width]);
            }
        } else {
            for (r, out_row) in out.chunks_exact_mut(width).enumerate() {
                let mut starts = [0usize; MAX_RING];
                for (start, y_start) in starts.iter_mut().zip(y_starts) {
                    *start = y_start + r * y_stride * pitch;
                }
                max_of_rows(simd, rule, h, &starts[..y_starts.len()], out_row);
            }
        }
    }
}

/// The output rows of a band with y stride and dilation 1 and a `K`-row window, two at a
/// time: rows r and r + 1 share their window's middle `K - 1` h rows, whose maximum is taken
/// once for both into `middle` (the max rule is associative while earlier rows stay on the
/// left, see [`super::separable`]), and each is stored straight to `out`. `h` holds a vector of
/// slack past its last row, `middle` at least a row's whole vectors.
///
/// A pair runs in one loop over its vectors ([`fused_pair`]); a lone last row in steps, each
/// a loop over two or three rows' vectors (`fold_pair`, `fold_into`). History: indexing the
/// pair's rows at `t * pitch + x` in one loop cost two bounds checks a load (`sppf` NCHW ran
/// 72 instructions a vector for 13 of work), and an array of the rows' slices filled by a loop
/// went to the stack; the steps then ran 11 instructions a vector for 3 of work. (Plain loops:
/// with zipped `chunks_exact` iterators and a closure for the rows, the compiler left
/// `Zip::new` and the closure as calls.)
#[inline(always)]
fn row_pairs<S: Simd, R: Reducer, const K: usize>(
    simd: S,
    rule: R,
    h: &[f32],
    pitch: usize,
    out: &mut [f32],
    width: usize,
    middle: &mut [f32],
) {
    let lanes = lanes::<S>();
    let span = width.div_ceil(lanes) * lanes;
    let middle = &mut middle[..span];
    for (pair, out_rows) in out.chunks_mut(2 * width).enumerate() {
        let (first, second) = out_rows.split_at_mut(width);
        if second.len() == width {
            let data = &h[2 * pair * pitch..][..K * pitch + span];
            fused_pair::<S, R, K>(simd, rule, data, pitch, first, second);
            continue;
        }
        // A lone last row: its K h rows, the middle ones merged first as for a pair.
        let data = &h[2 * pair * pitch..][..(K - 1) * pitch + span];
        fold_pair::<S, R>(simd, rule, middle, &data[pitch..], &data[2 * pitch..]);
        for t in 3..K {
            fold_into::<S, R>(simd, rule, middle, &data[t * pitch..][..span]);
        }
        fold_pair::<S, R>(simd, rule, first, &data[..span], middle);
    }
}

/// Output rows `first` and `second` of a pair from their `K + 1` h rows in `data` (`pitch`
/// apart, each with whole vectors past the row's end), in one loop over the vectors: the
/// middle rows' maximum stays in a register. The rows are sliced once, in an array literal
/// (a loop that filled an array of slices went through the stack), so that the loads need no
/// checks. `sppf` NCHW (AMD EPYC Zen 3, v3): 2.87 M against 3.92 M instructions a call with a
/// loop per step (cachegrind), 285 against 367 µs (`profile_case nchw sppf`, best of 6
/// alternated).
#[inline(always)]
fn fused_pair<S: Simd, R: Reducer, const K: usize>(
    simd: S,
    rule: R,
    data: &[f32],
    pitch: usize,
    first: &mut [f32],
    second: &mut [f32],
) {
    let lanes = lanes::<S>();
    let width = first.len();
    let span = width.div_ceil(lanes) * lanes;
    let second = &mut second[..width];
    let top = &data[..span];
    let bottom = &data[K * pitch..][..span];
    // The K - 1 middle rows (K is 3 or 5; with 3 the last two are not read).
    let middle = [
        &data[pitch..][..span],
        &data[2 * pitch..][..span],
        &data[3.min(K - 1) * pitch..][..span],
        &data[4.min(K - 1) * pitch..][..span],
    ];
    // A macro, not a closure: closures are compiled without the level's target features.
    macro_rules! pair {
        ($x:expr) => {{
            let x: usize = $x;
            let mut m = fold(simd, rule, load::<S>(middle[0], x), load::<S>(middle[1], x));
            for row in &middle[2..K - 1] {
                m = fold(simd, rule, m, load::<S>(row, x));
            }
            (
                fold(simd, rule, load::<S>(top, x), m),
                fold(simd, rule, m, load::<S>(bottom, x)),
            )
        }};
    }
    let whole = width / lanes;
    for v in 0..whole {
        let (a, b) = pair!(v * lanes);
        store::<S>(first, v * lanes, a);
        store::<S>(second, v * lanes, b);
    }
    let x = whole * lanes;
    if x < width {
        let (a, b) = pair!(x);
        store_first::<S>(simd, first, x, width - x, a);
        store_first::<S>(simd, second, x, width - x, b);
    }
}

/// `to = rule(to, a)` vector by vector (`to` holds whole vectors, `a` is as long).
#[inline(always)]
fn fold_into<S: Simd, R: Reducer>(simd: S, rule: R, to: &mut [f32], a: &[f32]) {
    let lanes = lanes::<S>();
    let a = &a[..to.len()];
    let mut x = 0;
    while x + lanes <= to.len() {
        let value = fold(simd, rule, load::<S>(to, x), load::<S>(a, x));
        store::<S>(to, x, value);
        x += lanes;
    }
}

/// `out = rule(a, b)` vector by vector: `a` and `b` hold whole vectors as far as `out` reaches;
/// the last vector of `out` (an output row) may be partial.
#[inline(always)]
fn fold_pair<S: Simd, R: Reducer>(simd: S, rule: R, out: &mut [f32], a: &[f32], b: &[f32]) {
    let lanes = lanes::<S>();
    let span = out.len().div_ceil(lanes) * lanes;
    let (a, b) = (&a[..span], &b[..span]);
    let mut x = 0;
    while x + lanes <= out.len() {
        store::<S>(out, x, fold(simd, rule, load::<S>(a, x), load::<S>(b, x)));
        x += lanes;
    }
    if x < out.len() {
        let value = fold(simd, rule, load::<S>(a, x), load::<S>(b, x));
        store_first::<S>(simd, out, x, out.len() - x, value);
    }
}

/// `x` folded into the running maximum `running` by `rule` (no indices).
#[inline(always)]
fn fold<S: Simd, R: Reducer>(simd: S, rule: R, running: S::f32s, x: S::f32s) -> S::f32s {
    let zero = simd.splat_u32s(0);
    let acc = Acc {
        value: running,
        index: zero,
    };
    rule.add(simd, acc, x, zero).value
}

/// Writes the block's rows between its padding columns (already −∞ and never written here):
/// padded row `first + r` (padded coordinates start at −pad_begin) holds input row
/// `first + r - pad_begin`, or −∞ outside the input. Returns whether the rows hold a NaN.
#[inline(always)]
fn fill_block<S: Simd>(
    simd: S,
    block: &mut [f32],
    plane: &[f32],
    (ay, ax, pitch): (crate::geometry::Axis, crate::geometry::Axis, usize),
    first: usize,
) -> bool {
    let left = ax.pad_begin.min(pitch);
    let mut nan = false;
    let inside = ax.input.min(pitch - left);
    for (r, block_row) in block.chunks_exact_mut(pitch).enumerate() {
        let row = &mut block_row[left..left + inside];
        match (first + r)
            .checked_sub(ay.pad_begin)
            .filter(|&y| y < ay.input)
        {
            Some(y) => nan |= copy_finding_nan(simd, row, &plane[y * ax.input..][..inside]),
            None => row.fill(f32::NEG_INFINITY),
        }
    }
    nan
}
