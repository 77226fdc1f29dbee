//! Channels-first max (values only) with stride 2 across short rows (at most 64 outputs, in 4
//! vectors, or 8 on 8-lane levels), such as the 3x3/2 pools of ResNet (56 outputs a row),
//! AlexNet (27) and a training batch's 56x56 planes (28): row maxima first, then column maxima.
//!
//! ```text
//! for each output row (plane, oy) of the task:
//!     for each input row y of its window not yet reduced in this plane:
//!         for each output vector v, straight from the input (x = 2 (v lanes + i) + tx - left):
//!             taps 0 and 1 = even and odd elements of a deinterleaving load, tap 2 = the even
//!             ones of a load 2 further on; lanes whose tap lies outside the row := −∞
//!             row_max[y mod ring][v] = max over tx in order
//!         (only rows whose loads would leave the input go through a copied row)
//!     output[plane, oy, ..] = the window rows' row maxima folded in window order
//! ```
//!
//! 3-wide windows go columns first instead ([`columns_first`]; inputs past 4 MiB ask for each
//! step's rows 8 rows ahead):
//!
//! ```text
//! for each band of up to 16 output rows of one plane:
//!     for each output row: columns[row][left + x] = max over the window rows of input[y][x]
//!         (four or two 3-row windows y stride 2 apart in one loop, shared rows read once)
//!     for each output row: output = the max of columns at 2 ox, 2 ox + 1, 2 ox + 2
//!         (deinterleaving loads, one `maxps` a tap); computed again as above if its rows held
//!         a NaN, or if a result is 0 and its rows held a −0
//! ```
//!
//! Reading the input in place matters: a first version copied each row into a padded line and
//! read it back at once, and its loads, straddling the copy's stores, waited on failed store
//! forwards (a `train` image took 890 µs against 61 µs).
//!
//! Each input row is reduced along x once, for every output row whose window holds it (with a
//! 3x3/2 window half the rows serve two). The fixed-window kernel copies the rows into phase
//! buffers and reads every tap of every window from them: on rows of 2 vectors its per-row
//! work cost more than the taps (see [`applies`]).
//!
//! Tried and not kept (AMD EPYC Zen 1, v3, best of 3 alternated): each row and fold by the
//! one-`maxps` rule with a NaN probe (a sum of the taps) and a second pass where it was NaN:
//! `alexnet` 177 against 177 µs, `resnet` 451 against 487 µs; the loads and shuffles bound it,
//! not the max rule.
//!
//! Each window row's taps form a chain in x order, and the rows' maxima are folded in window
//! order: the grouping of the fixed-window and flat kernels, which gives the reference's bits
//! (the max rule is associative when earlier operands stay on the left).

use std::ops::Range;

use pulp::{Simd, WithSimd};

use super::columns_first::{Found, column_maxima, column_maxima_run, x_maxima};
use super::fixed_window::{PREFETCH_FROM, PREFETCH_ROWS};
use super::prefetch::Prefetcher;
use super::reduce::{Acc, MaxValue, Reducer};
use super::scratch;
use super::simd_io::{
    in_order, lanes, load, load_deinterleaved_unordered, pair_of_lane, store, store_clipped,
};
use crate::Plan;

/// Most output vectors a row may have (each has a row maximum per window row in registers) on
/// levels of 8 lanes or more; narrower levels keep 4 (8 was not measured there).
const MAX_VECTORS: usize = 8;

/// Most outputs a row may have. Rows of 5-8 vectors on v3 (`resnet`'s 56 outputs: 7 vectors
/// of 8) ran in 323 µs against 379 µs for the small-planes kernel (`NNPOOL_ISA=v3
/// profile_case nchw resnet`, best of 5 alternated); on v4 the cap keeps rows to 4 vectors.
const MAX_OUTPUTS: usize = 64;

/// Most output vectors a row may have on a level with `lanes`.
fn max_vectors(lanes: usize) -> usize {
    if lanes >= 8 { MAX_VECTORS } else { 4 }
}

/// Most rows a window may have (the ring of row maxima has a slot per window row).
const MAX_KY: usize = 16;

/// Whether the plan is a 2-D (or 1-D) window 2 or 3 wide with x stride 2, no dilation, at most
/// [`MAX_OUTPUTS`] outputs and [`max_vectors`] vectors a row and at most [`MAX_KY`] window
/// rows (the caller checks the op: max without indices, and leaves planes that fit the
/// small-planes kernel's block whole to it). Measured with `profile_case nchw <case>` (3x3/2
/// max; best of 5 alternated runs, µs; this kernel against the one chosen before):
///
/// | case | v4 | v3 |
/// |---|---|---|
/// | `train` (32 x 64 planes of 56x56) | 2104 against 2871 (fixed window) | 3013 against 3614 (small planes) |
/// | `train`, 1 image | 52 against 61 (flat planes) | |
/// | `resnet` (64 planes of 112x112) | 185 against 260 (fixed window) | 323 against 379 (small planes) |
/// | `alexnet` (96 planes of 55x55) | 89 against 127 (flat planes) | 113 against 128 (small planes) |
///
/// (v4 figures before the masked tail store, which took `alexnet` to 68 µs.)
pub(crate) fn applies(plan: &Plan<f32>, lanes: usize) -> bool {
    let [az, ay, ax] = &plan.axes;
    let z_trivial = az.kernel == 1 && az.pad_begin == 0 && az.pad_end == 0;
    z_trivial
        && ax.stride == 2
        && (ax.kernel == 2 || ax.kernel == 3)
        && ax.dilation == 1
        && ay.dilation == 1
        && ay.kernel <= MAX_KY
        && ax.output <= MAX_OUTPUTS.min(max_vectors(lanes) * lanes)
}

/// One task: the output rows `rows` (flattened (n, c, oz, oy)) of a plan for which [`applies`]
/// holds, with `KX` its x kernel and `V` the vectors of an output row.
pub(crate) struct ShortRows<'a, const KX: usize, const V: usize> {
    pub plan: &'a Plan<f32>,
    pub input: &'a [f32],
    pub output: &'a mut [f32],
    pub rows: Range<usize>,
}

impl<const KX: usize, const V: usize> WithSimd for ShortRows<'_, KX, V> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Self {
            plan,
            input,
            output,
            rows,
        } = self;
        let span =
            plan.axes[2].pad_begin + plan.axes[2].input.div_ceil(lanes::<S>()) * lanes::<S>();
        if KX == 3 && span <= columns_row_len::<S, V>() {
            return columns_first::<S, KX, V>(simd, plan, input, output, rows);
        }
        let lanes = lanes::<S>();
        let [az, ay, ax] = plan.axes;
        debug_assert!(ax.kernel == KX && ax.output <= V * lanes && ax.output > (V - 1) * lanes);
        let taps = XTaps::<S, V>::new(simd, ax.input, ax.pad_begin);
        // A power of two, so that a row's slot is a mask, not a division.
        let ring_rows = ay.kernel.next_power_of_two();
        let row_len = V * lanes;
        let mut buffer = scratch::take(taps.reach + ring_rows * row_len);
        let prefetcher = Prefetcher::new(input.len() >= PREFETCH_FROM);
        {
            let (edge_row, ring) = buffer.split_at_mut(taps.reach);
            let strides = plan.input_strides;
            let y_interior = ay.interior();
            let mut base = usize::MAX;
            let mut reduced_to = 0;
            let mut cursor = super::RowCursor::new(rows.start, az.output, ay.output);
            for local_row in 0..rows.len() {
                let (plane, oz, oy) = (cursor.outer, cursor.oz, cursor.oy);
                cursor.advance();
                let ty = ay.taps_given_interior(oy, &y_interior);
                let row_base = plane * strides[1] + oz * az.stride * strides[2];
                if row_base != base {
                    base = row_base;
                    reduced_to = ty.first;
                }
                let mut slots = [0usize; MAX_KY];
                for (j, slot_of_row) in slots[..ty.count].iter_mut().enumerate() {
                    let y = ty.first + j;
                    let slot = (y & (ring_rows - 1)) * row_len;
                    *slot_of_row = slot;
                    if y >= reduced_to {
                        let row_start = base + y * strides[3];
                        let later = (row_start + PREFETCH_ROWS * strides[3]).min(input.len());
                        prefetcher.fetch(&input[later..], ax.input);
                        let maxima = match taps.direct(row_start, input.len()) {
                            Some(origin) => taps.row_maxima::<KX>(simd, input, origin),
                            None => {
                                taps.copy_edge_row(edge_row, input, row_start);
                                taps.row_maxima::<KX>(simd, edge_row, 0)
                            }
                        };
                        let ring_row = &mut ring[slot..][..row_len];
                        for (v, max) in maxima.into_iter().enumerate() {
                            store::<S>(ring_row, v * lanes, max);
                        }
                    }
                }
                reduced_to = reduced_to.max(ty.first + ty.count);
                let out = &mut output[local_row * ax.output..][..ax.output];
                fold_rows::<S, V>(simd, ring, &slots[..ty.count], out);
            }
        }
        scratch::give_back(buffer);
    }
}

/// Where the x taps of a row's `V` output vectors lie: output `i` of vector `v` has its taps at
/// input `2 (v lanes + i) + tx - left`, read by deinterleaving loads at `origin + 2 v lanes`
/// (taps 0 and 1) and 2 further (tap 2), `origin` being the row's start minus `left`. Lanes
/// whose tap lies outside the row are masked to −∞. The row maxima keep the loads' lane order
/// (see `simd_io::load_deinterleaved_unordered`) until an output row is stored.
struct XTaps<S: Simd, const V: usize> {
    /// The elements the loads read from `origin`.
    reach: usize,
    left: usize,
    /// Per vector and tap, the lanes inside the row.
    inside: [[S::m32s; 3]; V],
    /// Whether a vector has a lane outside the row.
    edge: [bool; V],
}

impl<S: Simd, const V: usize> XTaps<S, V> {
    #[inline(always)]
    fn new(simd: S, width: usize, left: usize) -> Self {
        let lanes = lanes::<S>();
        // Each lane's offset, 2 i for lane i in order, in the loads' lane order.
        let pair = pair_of_lane(simd);
        let even = simd.add_f32s(pair, pair);
        let all = simd.equal_f32s(even, even);
        let mut inside = [[all; 3]; V];
        let mut edge = [false; V];
        for (v, (inside, edge)) in inside.iter_mut().zip(&mut edge).enumerate() {
            for (tx, inside) in inside.iter_mut().enumerate() {
                // A lane reads input even + first: inside when -first <= even < width - first.
                let first = (2 * v * lanes + tx) as f64 - left as f64;
                let lowest = simd.splat_f32s(-first as f32);
                let end = simd.splat_f32s((width as f64 - first) as f32);
                *inside = simd.and_m32s(
                    simd.greater_than_or_equal_f32s(even, lowest),
                    simd.less_than_f32s(even, end),
                );
                let last = first + 2.0 * (lanes - 1) as f64;
                *edge |= first < 0.0 || last >= width as f64;
            }
        }
        XTaps {
            reach: 2 * V * lanes + 2,
            left,
            inside,
            edge,
        }
    }

    /// Where a row starting at input `row_start` can be read in place: its `origin`, if the
    /// loads stay inside `input_len` elements.
    #[inline(always)]
    fn direct(&self, row_start: usize, input_len: usize) -> Option<usize> {
        let origin = row_start.checked_sub(self.left)?;
        (origin + self.reach <= input_len).then_some(origin)
    }

    /// Copies the elements the loads of the row at `row_start` read into `to` (−∞ outside the
    /// input), for the first and last rows of the input.
    fn copy_edge_row(&self, to: &mut [f32], input: &[f32], row_start: usize) {
        for (i, to) in to.iter_mut().enumerate() {
            *to = (row_start + i)
                .checked_sub(self.left)
                .and_then(|at| input.get(at))
                .copied()
                .unwrap_or(f32::NEG_INFINITY);
        }
    }

    /// The maxima of each lane's `KX` taps, in order, from `data` at `origin` (lanes in the
    /// loads' order).
    #[inline(always)]
    fn row_maxima<const KX: usize>(&self, simd: S, data: &[f32], origin: usize) -> [S::f32s; V] {
        let lanes = lanes::<S>();
        let zero = simd.splat_u32s(0);
        let rule = MaxValue;
        let padding = simd.splat_f32s(f32::NEG_INFINITY);
        // Sliced to a constant length (the `reach`) once, so that the loads need no checks.
        let data = &data[origin..][..2 * V * lanes + 2];
        // Loops, not `array::from_fn`: closures are compiled without the level's target features.
        let mut maxima = [padding; V];
        for (v, max) in maxima.iter_mut().enumerate() {
            let at = 2 * v * lanes;
            let [mut t0, mut t1] = load_deinterleaved_unordered(simd, data, at);
            let [mut t2, _] = if KX == 3 {
                load_deinterleaved_unordered(simd, data, at + 2)
            } else {
                [padding, padding]
            };
            if self.edge[v] {
                let inside = &self.inside[v];
                t0 = simd.select_f32s(inside[0], t0, padding);
                t1 = simd.select_f32s(inside[1], t1, padding);
                t2 = simd.select_f32s(inside[2], t2, padding);
            }
            let mut acc = Acc {
                value: t0,
                index: zero,
            };
            acc = rule.add(simd, acc, t1, zero);
            if KX == 3 {
                acc = rule.add(simd, acc, t2, zero);
            }
            *max = acc.value;
        }
        maxima
    }
}

/// One output row: the row maxima in ring `slots` (window order) folded in order, their lanes
/// put back in order, the last vector stored in part where the row ends inside it. (Reading
/// the ring at the row's end, overlapping the vector before, would straddle two vector stores
/// just made: a failed store forward.)
#[inline(always)]
fn fold_rows<S: Simd, const V: usize>(simd: S, ring: &[f32], slots: &[usize], out: &mut [f32]) {
    let lanes = lanes::<S>();
    let zero = simd.splat_u32s(0);
    let rule = MaxValue;
    let row_len = V * lanes;
    let mut rows = slots.iter().map(|&slot| &ring[slot..][..row_len]);
    let Some(first) = rows.next() else {
        unreachable!("validated plans have no empty window");
    };
    let mut accs = [Acc {
        value: simd.splat_f32s(f32::NEG_INFINITY),
        index: zero,
    }; V];
    for (v, acc) in accs.iter_mut().enumerate() {
        acc.value = load::<S>(first, v * lanes);
    }
    for row in rows {
        for (v, acc) in accs.iter_mut().enumerate() {
            *acc = rule.add(simd, *acc, load::<S>(row, v * lanes), zero);
        }
    }
    for (v, acc) in accs.iter().enumerate() {
        store_clipped(simd, out, v * lanes, in_order(simd, acc.value));
    }
}

/// Output rows whose column maxima are computed before their x pass (16 rows of 128 floats,
/// 8 KiB, stay in L1 between the passes).
const BAND: usize = 16;

// Where [`columns_first`] runs: every 3-wide window whose rows fit its row length. On the AMD
// EPYC Zen 1 (v3, `profile_case nchw <case>`, best of 5 alternated, µs) it beat the row-first
// ring in cache (`alexnet` 150 against 178, `resnet` 383 against 442, one `train` image 105
// against 123) but not from memory (`train`, 26 MB: 4,853 against 4,656), so inputs from 4 MiB
// kept the ring until session 42. On the Zen 4 (v3, old and new binaries alternated, ms) the
// columns-first order with each step's rows asked for `PREFETCH_ROWS` rows ahead won at every
// size: `ITERS=40 profile_case nchw train` 1.41-1.56 against 1.72-2.02 (6 rounds), with `PAR=1`
// 0.89-1.17 against 0.96-1.43; 8 images (6.4 MB, from L3) 0.29-0.41 against 0.39-0.63.
// Without the prefetches it ran 1.81-2.33 ms, and one `fetch_lines` over the step's rows as a
// single span (instead of one request run a row) 1.83-2.44 ms. 2x2 windows keep the ring:
// with no row shared between windows, the column pass is extra work (Zen 1: `vgg` 8 112x112
// planes 56 against 66 µs in cache, 8.0 against 5.4 ms from memory).

/// The length of [`columns_first`]'s rows of column maxima: room for the x pass's loads
/// (`2 V + 1` vectors) and a vector more. A window row of `2 o + 2` elements at most (left
/// padding included) with `o <= V lanes` outputs fits in it rounded up to whole vectors.
fn columns_row_len<S: Simd, const V: usize>() -> usize {
    (2 * V + 2) * lanes::<S>()
}

/// The output rows `rows` of a 3-wide window, columns first: for a band of output rows, each
/// one's window rows are reduced column by column (plain loads, a row of column maxima each,
/// −∞ where the padding lies), then the x pass reads each row of maxima by deinterleaving loads.
///
/// The grouping (the reference reduces rows first) and the rule differ from the reference's,
/// which changes the bits in two cases: a maximum of 0 where the window holds both 0 and −0
/// (the first in row-major order wins the tie), and windows with a NaN (the one-`maxps` rule
/// does not propagate it). An output row whose rows held a NaN, or with a result of 0 where
/// its rows held a −0, is computed again the reference's way ([`exact_row`]), so every result
/// is the reference's.
#[inline(always)]
fn columns_first<S: Simd, const KX: usize, const V: usize>(
    simd: S,
    plan: &Plan<f32>,
    input: &[f32],
    output: &mut [f32],
    rows: Range<usize>,
) {
    let lanes = lanes::<S>();
    let [az, ay, ax] = plan.axes;
    let taps = XTaps::<S, V>::new(simd, ax.input, ax.pad_begin);
    let left = ax.pad_begin;
    let width = ax.input;
    // A constant, so that rows of maxima `row_len` apart share an address register.
    let row_len = columns_row_len::<S, V>();
    debug_assert!(row_len >= taps.reach.max(left + width.div_ceil(lanes) * lanes));
    // No window reaches past the row's end: whole vectors may be read there.
    let whole = 2 * (ax.output - 1) + KX <= left + width;
    let mut buffer = scratch::take(taps.reach + BAND * row_len);
    let prefetcher = Prefetcher::new(input.len() >= PREFETCH_FROM);
    {
        let (edge_row, columns) = buffer.split_at_mut(taps.reach);
        let columns = &mut columns[..BAND * row_len];
        columns.fill(f32::NEG_INFINITY);
        let strides = plan.input_strides;
        let y_interior = ay.interior();
        let mut cursor = super::RowCursor::new(rows.start, az.output, ay.output);
        let mut local_row = 0;
        while local_row < rows.len() {
            let (plane, oz, oy0) = (cursor.outer, cursor.oz, cursor.oy);
            let band = BAND.min(ay.output - oy0).min(rows.len() - local_row);
            let base = plane * strides[1] + oz * az.stride * strides[2];
            // Each row's window rows (offset of the first, count), found once: the pairing
            // below and a doubtful row's second pass both read them.
            let mut windows = [(0, 0); BAND];
            for (b, window) in windows[..band].iter_mut().enumerate() {
                let ty = ay.taps_given_interior(oy0 + b, &y_interior);
                *window = (base + ty.first * strides[3], ty.count);
            }
            let mut found = [Found::default(); BAND];
            let mut b = 0;
            while b < band {
                let (start, count) = windows[b];
                // Windows whose rows follow on (y stride 2) read their shared rows once.
                macro_rules! run_of {
                    ($n:literal, $rows:literal) => {
                        column_maxima_run::<S, $n, $rows>(
                            simd,
                            input,
                            start,
                            strides[3],
                            width,
                            whole,
                            &mut columns[b * row_len + left..],
                            row_len,
                        )
                        .map(|read| (read, $n))
                    };
                }
                let chain = chain_length(&windows[..band], b, strides[3]);
                // The rows this step reads, `PREFETCH_ROWS` rows on.
                let read = match chain {
                    4.. => 9,
                    2.. => 5,
                    _ => count,
                };
                for row in 0..read {
                    let later = (start + (PREFETCH_ROWS + row) * strides[3]).min(input.len());
                    prefetcher.fetch(&input[later..], width);
                }
                let run = match chain {
                    4.. => run_of!(4, 9),
                    2.. => run_of!(2, 5),
                    _ => None,
                };
                if let Some((read, n)) = run {
                    found[b..b + n].fill(read);
                    b += n;
                    continue;
                }
                let column = &mut columns[b * row_len..][..row_len];
                found[b] = column_maxima::<S>(
                    simd,
                    input,
                    start,
                    count,
                    strides[3],
                    width,
                    whole,
                    &mut column[left..],
                );
                b += 1;
            }
            // The output from the row on: the row's last vector may be stored whole, across
            // its end, where a later row is yet to be written.
            let mut rest = &mut output[local_row * ax.output..];
            let lines = columns.chunks_exact(row_len);
            for (column, (read, &(start, count))) in lines.zip(found.iter().zip(&windows[..band])) {
                let doubt = read.nan()
                    || if read.negative_zero() {
                        x_maxima::<S, KX, V, true>(simd, column, rest)
                    } else {
                        x_maxima::<S, KX, V, false>(simd, column, rest)
                    };
                let (out, after) = core::mem::take(&mut rest).split_at_mut(ax.output);
                if doubt {
                    exact_row::<S, KX, V>(
                        simd, &taps, input, start, count, strides[3], edge_row, out,
                    );
                }
                rest = after;
                cursor.advance();
            }
            local_row += band;
        }
    }
    scratch::give_back(buffer);
}

/// How many windows from `windows[b]` on (at most 4) are 3 rows each, each starting at the
/// one before's last row (`stride` apart).
#[inline(always)]
fn chain_length(windows: &[(usize, usize)], b: usize, stride: usize) -> usize {
    let Some(&(start, 3)) = windows.get(b) else {
        return 0;
    };
    let mut n = 1;
    while n < 4 && windows.get(b + n) == Some(&(start + 2 * n * stride, 3)) {
        n += 1;
    }
    n
}

/// One output row by the row-major rule: each window row's x maxima, folded in window order.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn exact_row<S: Simd, const KX: usize, const V: usize>(
    simd: S,
    taps: &XTaps<S, V>,
    input: &[f32],
    first: usize,
    count: usize,
    stride: usize,
    edge_row: &mut [f32],
    out: &mut [f32],
) {
    let lanes = lanes::<S>();
    let zero = simd.splat_u32s(0);
    let rule = MaxValue;
    let mut accs = [Acc {
        value: simd.splat_f32s(f32::NEG_INFINITY),
        index: zero,
    }; V];
    for r in 0..count {
        let row_start = first + r * stride;
        let maxima = match taps.direct(row_start, input.len()) {
            Some(origin) => taps.row_maxima::<KX>(simd, input, origin),
            None => {
                taps.copy_edge_row(edge_row, input, row_start);
                taps.row_maxima::<KX>(simd, edge_row, 0)
            }
        };
        for (acc, max) in accs.iter_mut().zip(maxima) {
            *acc = if r == 0 {
                Acc {
                    value: max,
                    index: zero,
                }
            } else {
                rule.add(simd, *acc, max, zero)
            };
        }
    }
    for (v, acc) in accs.iter().enumerate() {
        store_clipped(simd, out, v * lanes, in_order(simd, acc.value));
    }
}
