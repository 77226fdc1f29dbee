//! Channels-first separable max (values) with stride 1 and rows that keep their width (x
//! padding `kx - 1` in all, as SPPF's 5x5/1 pad 2), read straight from the input plane, with
//! no padded copy of it: the idea of [`super::flat_unpadded`] applied to the two passes of
//! [`super::separable_bands`].
//!
//! ```text
//! for each plane (n, c) of the task, or the rows of it the task holds:
//!     h[q]   = max over tx of input[q + tx - left]       one loop over the input rows read;
//!              taps that wrap onto the row before or after masked by column (−∞ padding);
//!              one-instruction max, and again with the NaN rule if a centre tap was NaN
//!     out[q] = max over ty of h[q + (ty * dy - top) * W]  one loop per band of output rows
//!              whose windows have the same rows inside the plane; on rows of 4 vectors or
//!              more, two output rows at a time, their shared window rows folded once; on
//!              narrower rows, two of which are whole vectors, each vector of two rows goes
//!              down the band, folding each pair of window rows once
//! ```
//!
//! Both passes take taps in window order, so the result is the reference's (see
//! [`super::separable`]). Only the input's first and last planes are copied (their taps reach
//! `left` elements before and `kx - 1 - left` after them).
//!
//! Measured against the padded bands (`nnpool bench --suite`, the old choice behind a temporary
//! switch in the same binary, alternated; NCHW, one thread, Zen 5, µs): `sppf` (256 planes of
//! 40x40, 5x5 pad 2) 113-115 against 128-130 (v3), 5x5 on 512 of 20x20 73-87 against 109-111,
//! 9x9 pad 4 on 256 of 20x20 69-70 against 103-111, 3x3 pad 1 on 64 of 56x56 40 against 45-46.

use std::ops::Range;

use pulp::{Simd, WithSimd};

use super::flat_unpadded::window_rows;
use super::plane_reads::PlaneReads;
use super::reduce::{Acc, MaxOfNumbers, MaxValue, Reducer};
use super::simd_io::{lanes, load, store};
use crate::Plan;

/// Runs `$block` with `$at` and `$v` for blocks of `$v` = 4 vectors over `$range`, then 1 at a
/// time, then one vector ending at the range's end (overlapping outputs already written, with
/// the same values); the range holds at least a vector. (A macro: a closure would be compiled
/// without the level's features.)
macro_rules! blocks {
    ($range:expr, $lanes:expr, |$at:ident, $v:ident| $block:expr) => {{
        let Range { start, end } = $range;
        let lanes = $lanes;
        let mut at = start;
        while at + 4 * lanes <= end {
            let ($at, $v) = (at, 4);
            $block;
            at += 4 * lanes;
        }
        while at + lanes <= end {
            let ($at, $v) = (at, 1);
            $block;
            at += lanes;
        }
        if at < end {
            let ($at, $v) = (end - lanes, 1);
            $block;
        }
    }};
}

/// Most window rows and columns (the rows' offsets live in a stack array).
const MAX_WINDOW: usize = 16;

/// Most elements a row may have: the column masks compare columns held as f32 with thresholds
/// half a column off, exact below 2^23.
const MAX_WIDTH: usize = 1 << 22;

/// Most elements of a plane: its row maxima are kept whole (256 KiB, in L2).
const MAX_PLANE: usize = 1 << 16;

/// Inputs below this many elements (4 MiB): larger ones, read from memory, ran faster through
/// the padded bands of [`super::separable_bands`], whose copy streams each plane in
/// (`nnpool bench --suite`, 5x5/1 pad 2 on 8 x 256 x 40x40, 13 MB: 1.38-1.70 ms here against
/// 1.11-1.15 ms there).
const MAX_INPUT: usize = 1 << 20;

/// Whether the plan is a 2-D max with stride 1, x dilation 1, output rows as wide as
/// the input's (at least a vector, at most [`MAX_WIDTH`]), windows of at most [`MAX_WINDOW`]
/// rows and columns whose every output row reads a row of the input, planes of at most
/// [`MAX_PLANE`] elements, inputs under [`MAX_INPUT`], on a level with 16 lanes (the caller
/// checks the op).
pub(crate) fn applies(plan: &Plan<f32>, lanes: usize) -> bool {
    let [az, ay, ax] = &plan.axes;
    let flat_2d = az.input == 1 && az.kernel == 1 && az.pad_begin == 0 && az.pad_end == 0;
    let shape = lanes >= 16
        && flat_2d
        && ay.stride == 1
        && ax.stride == 1
        && ax.dilation == 1
        && ax.kernel >= 2
        && ax.kernel <= MAX_WINDOW
        && ay.kernel <= MAX_WINDOW
        && ax.output == ax.input
        && ax.input >= lanes
        && ax.input <= MAX_WIDTH
        && ax
            .input
            .checked_mul(ay.input)
            .is_some_and(|p| p <= MAX_PLANE)
        && plan.input_len() < MAX_INPUT;
    // A stride-1 row is only worth two passes with a window of more than one tap each way.
    shape && ay.kernel >= 2 && (0..ay.output).all(|oy| !window_rows(ay, oy).is_empty())
}

/// One task: the output rows `rows` (flattened (n, c, oy)) of a plan for which [`applies`]
/// holds.
pub(crate) struct SeparableUnpadded<'a> {
    pub plan: &'a Plan<f32>,
    pub input: &'a [f32],
    pub output: &'a mut [f32],
    pub rows: Range<usize>,
}

impl WithSimd for SeparableUnpadded<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Self {
            plan,
            input,
            output,
            rows,
        } = self;
        let lanes = lanes::<S>();
        let [_, ay, ax] = plan.axes;
        let width = ax.input;
        let plane_in = width * ay.input;
        let (left, right) = (ax.pad_begin, ax.kernel - 1 - ax.pad_begin);
        // Reads reach `left` elements before a plane and `right` past it: planes closer than
        // that to the input's ends are copied into `staging` with −∞ around.
        let period = width + 4 * lanes;
        let reads = PlaneReads::new(plane_in, left, right, input.len());
        let staging_len = reads.staging_len(
            rows.start / ay.output,
            rows.end.saturating_sub(1) / ay.output,
        );
        let mut scratch = super::scratch::take(period + plane_in + staging_len);
        let (columns, rest) = scratch.split_at_mut(period);
        let (h, rest) = rest.split_at_mut(plane_in);
        let staging = &mut rest[..staging_len];
        for (c, column) in columns.iter_mut().enumerate() {
            *column = (c % width) as f32;
        }
        // Bands of a plane's output rows whose windows have the same rows inside the plane.
        let mut bands: Vec<(Range<usize>, Range<usize>)> = Vec::new();
        for oy in 0..ay.output {
            let window = window_rows(&ay, oy);
            match bands.last_mut() {
                Some((rows, last)) if *last == window => rows.end = oy + 1,
                _ => bands.push((oy..oy + 1, window)),
            }
        }
        // The input rows that output rows `rows` of a plane read (their windows' first and
        // last rows need not grow with the output row when y is dilated).
        let read_by = |rows: Range<usize>| {
            let (mut from, mut to) = (usize::MAX, 0);
            for oy in rows {
                let window = window_rows(&ay, oy);
                let row = |ty: usize| oy + ty * ay.dilation - ay.pad_begin;
                from = from.min(row(window.start));
                to = to.max(row(window.end - 1) + 1);
            }
            from..to
        };
        let whole_plane = read_by(0..ay.output);
        let passes = Passes::new(columns, width, left, ax.kernel);
        let mut row = rows.start;
        while row < rows.end {
            let (p, first) = (row / ay.output, row % ay.output);
            let last = ay.output.min(first + rows.end - row);
            let (source, origin) = reads.plane(p, input, staging, f32::NEG_INFINITY);
            // The input rows the task's output rows of this plane read.
            let read = if last - first == ay.output {
                whole_plane.clone()
            } else {
                read_by(first..last)
            };
            let positions = read.start * width..read.end * width;
            let out = &mut output[(row - rows.start) * width..][..(last - first) * width];
            passes.run(
                simd,
                (source, origin, positions),
                h,
                &bands,
                (first, last),
                out,
                &ay,
            );
            row += last - first;
        }
        super::scratch::give_back(scratch);
    }
}

/// What both passes over a plane share: the column table (columns from 0 through 4 vectors
/// past a row's end), the row width, the x window and each x tap's column bound (see
/// [`Passes::row_maxima`]).
#[derive(Clone, Copy)]
struct Passes<'a> {
    columns: &'a [f32],
    width: usize,
    left: usize,
    kx: usize,
    bounds: [f32; MAX_WINDOW],
}

impl<'a> Passes<'a> {
    fn new(columns: &'a [f32], width: usize, left: usize, kx: usize) -> Self {
        // Tap `tx` lies inside the row from column `left - tx` (left of the centre) or through
        // column `width - 1 - (tx - left)` (right of it): bounds half a column off.
        let mut bounds = [0.0; MAX_WINDOW];
        for (tx, bound) in bounds.iter_mut().enumerate().take(kx) {
            *bound = if tx < left {
                (left - tx) as f32 - 0.5
            } else {
                (width - (tx - left)) as f32 - 0.5
            };
        }
        Self {
            columns,
            width,
            left,
            kx,
            bounds,
        }
    }

    /// The row maxima of the input positions `positions` of the plane at `source[origin..]`
    /// into `h` (at the same positions), then output rows `first..last` of the plane into
    /// `out`, band by band: with the one-instruction max, or with [`MaxValue`] where the row
    /// maxima pass finds a NaN in the rows.
    #[inline(always)]
    #[allow(clippy::too_many_arguments, unused_assignments)] // (`nan` after the second pass)
    fn run<S: Simd>(
        self,
        simd: S,
        (source, origin, positions): (&[f32], usize, Range<usize>),
        h: &mut [f32],
        bands: &[(Range<usize>, Range<usize>)],
        (first, last): (usize, usize),
        out: &mut [f32],
        ay: &crate::geometry::Axis,
    ) {
        let lanes = lanes::<S>();
        let start = origin as isize - self.left as isize;
        let mut nan = simd.less_than_f32s(simd.splat_f32s(0.0), simd.splat_f32s(0.0));
        macro_rules! row_maxima {
            ($rule:expr, $kx:literal, $left:literal) => {
                blocks!(positions.clone(), lanes, |at, v| match v {
                    4 =>
                        nan = self.row_maxima::<S, _, 4, $kx, $left>(
                            simd, $rule, source, start, at, h, nan
                        ),
                    _ =>
                        nan = self.row_maxima::<S, _, 1, $kx, $left>(
                            simd, $rule, source, start, at, h, nan
                        ),
                })
            };
            ($rule:expr) => {
                match (self.kx, self.left) {
                    (5, 2) => row_maxima!($rule, 5, 2),
                    (3, 1) => row_maxima!($rule, 3, 1),
                    _ => row_maxima!($rule, 0, 0),
                }
            };
        }
        row_maxima!(MaxOfNumbers);
        if simd.first_true_m32s(nan) < lanes {
            row_maxima!(MaxValue);
            self.column_maxima(simd, MaxValue, h, bands, (first, last), out, ay);
        } else {
            self.column_maxima(simd, MaxOfNumbers, h, bands, (first, last), out, ay);
        }
    }

    /// Output rows `first..last` of the plane into `out` from its row maxima `h`, band by band.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn column_maxima<S: Simd, R: Reducer>(
        self,
        simd: S,
        rule: R,
        h: &[f32],
        bands: &[(Range<usize>, Range<usize>)],
        (first, last): (usize, usize),
        out: &mut [f32],
        ay: &crate::geometry::Axis,
    ) {
        let lanes = lanes::<S>();
        let width = self.width;
        for (band_rows, window) in bands {
            let (oy, end) = (band_rows.start.max(first), band_rows.end.min(last));
            if oy >= end {
                continue;
            }
            let mut starts = [0isize; MAX_WINDOW];
            for (start, ty) in starts.iter_mut().zip(window.clone()) {
                *start = ((ty * ay.dilation) as isize - ay.pad_begin as isize) * width as isize;
            }
            let starts = &starts[..window.len()];
            let out_start = (oy - first) * width;
            let out = &mut out[out_start..][..(end - oy) * width];
            let from = oy * width;
            // Output rows whose windows' rows follow on (no y dilation) share rows: down
            // strips on narrow rows, in pairs on wide ones, each shared row is read and folded
            // once; the rows left, or all of them, in flat blocks.
            let mut oy = oy;
            let ky = starts.len();
            if ay.dilation == 1
                && (4..=5).contains(&ky)
                && (2 * width) % lanes == 0
                && width < PAIRS_FROM * lanes
                && end - oy >= 4
            {
                // Two rows of positions are whole vectors: each vector of them goes down the
                // band two output rows a step (see [`column_strip`]; 4- and 5-row windows:
                // 3-row ones measured 0.95x and 1.07x the flat pass).
                let steps = (end - oy) / 2;
                let (first_row, row) = (starts[0], oy * width);
                blocks!(row..row + 2 * width, lanes, |at, v| {
                    let out = &mut out[at - from..];
                    match (v, ky) {
                        (4, 4) => column_strip::<S, R, 4, 4>(
                            simd, rule, h, first_row, width, steps, at, out,
                        ),
                        (4, _) => column_strip::<S, R, 4, 5>(
                            simd, rule, h, first_row, width, steps, at, out,
                        ),
                        (_, 4) => column_strip::<S, R, 1, 4>(
                            simd, rule, h, first_row, width, steps, at, out,
                        ),
                        _ => column_strip::<S, R, 1, 5>(
                            simd, rule, h, first_row, width, steps, at, out,
                        ),
                    }
                });
                oy += 2 * steps;
            }
            // Pairs: see [`PAIRS_FROM`].
            if ay.dilation == 1 && ky >= 2 && width >= PAIRS_FROM * lanes {
                let (first_row, rows) = (starts[0], starts.len());
                while oy + 2 <= end {
                    let row = oy * width;
                    blocks!(row..row + width, lanes, |at, v| {
                        let out = &mut out[at - from..];
                        match v {
                            4 => column_maxima_pair::<S, R, 4>(
                                simd, rule, h, first_row, rows, width, at, out,
                            ),
                            _ => column_maxima_pair::<S, R, 1>(
                                simd, rule, h, first_row, rows, width, at, out,
                            ),
                        }
                    });
                    oy += 2;
                }
            }
            if oy < end {
                blocks!(oy * width..end * width, lanes, |at, v| match v {
                    4 => column_maxima::<S, R, 4>(simd, rule, h, starts, at, &mut out[at - from..]),
                    _ => column_maxima::<S, R, 1>(simd, rule, h, starts, at, &mut out[at - from..]),
                });
            }
        }
    }

    /// `V` vectors of row maxima from plane position `at` into `h[at..]`: each tap
    /// `source[start + at + tx]`, in order, masked where it falls outside the position's row
    /// (a masked lane keeps its maximum, as a −∞ padding tap would). `KX` > 0 and `LEFT`: the
    /// x window compiled in (0: the plan's). Returns `nan` with the lanes of the centre taps
    /// that hold a NaN set (the rule for taps without NaN is only right if none does).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn row_maxima<S: Simd, R: Reducer, const V: usize, const KX: usize, const LEFT: usize>(
        self,
        simd: S,
        rule: R,
        source: &[f32],
        start: isize,
        at: usize,
        h: &mut [f32],
        mut nan: S::m32s,
    ) -> S::m32s {
        let lanes = lanes::<S>();
        let (kx, left) = if KX > 0 {
            (KX, LEFT)
        } else {
            (self.kx, self.left)
        };
        let column = at % self.width;
        let mut columns = [simd.splat_f32s(0.0); V];
        for (v, c) in columns.iter_mut().enumerate() {
            *c = load::<S>(self.columns, column + v * lanes);
        }
        let zero = simd.splat_u32s(0);
        let mut accs: [Acc<S>; V] = [rule.init(simd, zero); V];
        let first = (start + at as isize) as usize;
        let span = &source[first..][..V * lanes + if KX > 0 { KX } else { kx } - 1];
        for tx in 0..kx {
            let bound = simd.splat_f32s(self.bounds[tx]);
            for (v, acc) in accs.iter_mut().enumerate() {
                let x = load::<S>(span, v * lanes + tx);
                let added = rule.add(simd, *acc, x, zero).value;
                acc.value = if tx == left {
                    nan = simd.or_m32s(nan, simd.not_m32s(simd.equal_f32s(x, x)));
                    added
                } else {
                    let inside = if tx < left {
                        simd.less_than_f32s(bound, columns[v])
                    } else {
                        simd.less_than_f32s(columns[v], bound)
                    };
                    simd.select_f32s(inside, added, acc.value)
                };
            }
        }
        let h = &mut h[at..][..V * lanes];
        for (v, acc) in accs.into_iter().enumerate() {
            store::<S>(h, v * lanes, acc.value);
        }
        nan
    }
}

/// `V` vectors of output from plane position `at` into `out[..V * lanes]`: the max over the
/// window rows `h[at + start]` for each of `starts`, in order.
#[inline(always)]
fn column_maxima<S: Simd, R: Reducer, const V: usize>(
    simd: S,
    rule: R,
    h: &[f32],
    starts: &[isize],
    at: usize,
    out: &mut [f32],
) {
    let lanes = lanes::<S>();
    let zero = simd.splat_u32s(0);
    let mut accs: [Acc<S>; V] = [rule.init(simd, zero); V];
    for &start in starts {
        let row = &h[(at as isize + start) as usize..][..V * lanes];
        for (v, acc) in accs.iter_mut().enumerate() {
            *acc = rule.add(simd, *acc, load::<S>(row, v * lanes), zero);
        }
    }
    let out = &mut out[..V * lanes];
    for (v, acc) in accs.into_iter().enumerate() {
        store::<S>(out, v * lanes, acc.value);
    }
}

/// Rows of at least this many vectors take the column pass in pairs of output rows
/// ([`column_maxima_pair`]). A pair's blocks stay inside one row, so narrower rows run blocks
/// of one vector and, where the width is not a whole number of vectors, an overlapping last
/// one, and lose what the shared rows save. Zen 4, v4, 5x5/1 pad 2, `SHAPE=1,c,w,w
/// profile_case nchw sppf`, pairs against the whole band in flat blocks (a temporary switch in
/// one binary, alternated, µs): w 128 104-105 against 123-126, 224 92-93 against 103-104, 96
/// 104-108 against 117-119, 64 87-88 against 100-104, 80 148-155 against 153-158; narrower,
/// pairs lost: 48 55 against 56, 40 (`sppf`) 167-180 against 155-164, 32 104-107 against
/// 103-105, 20 121-129 against 104.
const PAIRS_FROM: usize = 4;

/// `V` vectors of two output rows from plane position `at`, the first into `out[..V * lanes]`
/// and the second (at `at + width`) into `out[width..][..V * lanes]`: the first's window rows
/// are the `rows` rows of `h` from `at + first_row`, `width` apart, and the second's one row on.
/// The `rows - 1` rows both hold are folded once, then the first's own row before them and the
/// second's after them: the same order of taps (the max rule is associative while earlier
/// operands stay on the left), so the same bits as [`column_maxima`].
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn column_maxima_pair<S: Simd, R: Reducer, const V: usize>(
    simd: S,
    rule: R,
    h: &[f32],
    first_row: isize,
    rows: usize,
    width: usize,
    at: usize,
    out: &mut [f32],
) {
    let lanes = lanes::<S>();
    let zero = simd.splat_u32s(0);
    let span = &h[(at as isize + first_row) as usize..][..rows * width + V * lanes];
    // (Slices, not a closure: a closure is compiled without the level's features.)
    let mut shared: [Acc<S>; V] = [rule.init(simd, zero); V];
    let own_first = &span[..V * lanes];
    let next = &span[width..][..V * lanes];
    for (v, acc) in shared.iter_mut().enumerate() {
        *acc = rule.first(simd, load::<S>(next, v * lanes), zero);
    }
    for r in 2..rows {
        let row = &span[r * width..][..V * lanes];
        for (v, acc) in shared.iter_mut().enumerate() {
            *acc = rule.add(simd, *acc, load::<S>(row, v * lanes), zero);
        }
    }
    let own_second = &span[rows * width..][..V * lanes];
    let (first, second) = out.split_at_mut(width);
    for (v, acc) in shared.into_iter().enumerate() {
        let above = rule.first(simd, load::<S>(own_first, v * lanes), zero);
        store::<S>(
            first,
            v * lanes,
            rule.add(simd, above, acc.value, zero).value,
        );
        let below = rule.add(simd, acc, load::<S>(own_second, v * lanes), zero);
        store::<S>(second, v * lanes, below.value);
    }
}

/// `V` vectors of `2 steps` output rows, two a step: from plane position `at` into
/// `out[2 k width..][..V lanes]` for step `k`, where `2 width` is a whole number of vectors
/// and the band's windows are `KY` rows (2 to 5) from `at + first_row`, `width` apart. With `H i`
/// the row of `h` `i` rows on and `P i = H i ∘ H (i + 1)`, step `k`'s output is `P 2k ∘ P (2k +
/// 2) ∘ ...`, with `∘ H (2k + KY - 1)` for odd `KY`: each pair is folded once for the steps
/// that hold it, in the taps' order (the max rule is associative while earlier operands stay on
/// the left), so the bits are [`column_maxima`]'s. A 5-row window takes 2 loads and 3 max an
/// output vector instead of 5 and 5.
///
/// Rows narrower than [`PAIRS_FROM`] vectors whose two rows are whole vectors (16, 24, ... 56
/// wide on 16 lanes) run it for windows of 4 or 5 rows. Zen 4, v4, 5x5/1 pad 2,
/// `SHAPE=1,c,w,w profile_case nchw sppf`, a temporary switch in one binary, alternated, best
/// of 10 rounds, while a CI run shared the machine (µs, strips against the flat pass): w 40
/// (`sppf`) 146-147 against 172-176, 24 129 against 151, 32 91 against 106, 48 53 against 56;
/// against the pairs, 64 85-90 against 90-93, 128 109 against 105, 224 96 against 93 (on wide
/// planes the strips walk `h` down its columns, out of L1). With 3 rows it measured 0.95x the
/// flat pass on 128 of 40x40 and 1.07x on 64 of 56x56 (`nnpool bench --suite`, 3 alternated
/// rounds, CI running), so those keep the flat pass.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn column_strip<S: Simd, R: Reducer, const V: usize, const KY: usize>(
    simd: S,
    rule: R,
    h: &[f32],
    first_row: isize,
    width: usize,
    steps: usize,
    at: usize,
    out: &mut [f32],
) {
    let lanes = lanes::<S>();
    let zero = simd.splat_u32s(0);
    // The ring below holds 2 pairs at most.
    debug_assert!((2..=5).contains(&KY) && steps >= 1);
    let pairs_per_output = KY / 2;
    // Rows `0..2 steps + KY - 2` are read.
    let last_row = 2 * steps + KY - 3;
    let span = &h[(at as isize + first_row) as usize..][..last_row * width + V * lanes];
    let out = &mut out[..(2 * steps - 2) * width + V * lanes];
    let init = rule.init(simd, zero);
    // The pairs of the current step, oldest first (at most 2).
    let mut ring = [[init; V]; 2];
    for (p, pair) in ring.iter_mut().enumerate().take(pairs_per_output) {
        let (upper, lower) = (
            &span[2 * p * width..][..V * lanes],
            &span[(2 * p + 1) * width..][..V * lanes],
        );
        for (v, acc) in pair.iter_mut().enumerate() {
            let first = rule.first(simd, load::<S>(upper, v * lanes), zero);
            *acc = rule.add(simd, first, load::<S>(lower, v * lanes), zero);
        }
    }
    for k in 0..steps {
        let tail_row = 2 * k + KY - 1;
        let mut result = ring[0];
        if pairs_per_output == 2 {
            for (v, acc) in result.iter_mut().enumerate() {
                *acc = rule.add(simd, *acc, ring[1][v].value, zero);
            }
        }
        // Odd windows end on a row of their own, which starts the next step's new pair.
        let mut tail = [init; V];
        if KY % 2 == 1 {
            let row = &span[tail_row * width..][..V * lanes];
            for ((acc, t), v) in result.iter_mut().zip(tail.iter_mut()).zip(0..) {
                let x = load::<S>(row, v * lanes);
                *t = rule.first(simd, x, zero);
                *acc = rule.add(simd, *acc, x, zero);
            }
        }
        let to = &mut out[2 * k * width..][..V * lanes];
        for (v, acc) in result.iter().enumerate() {
            store::<S>(to, v * lanes, acc.value);
        }
        if k + 1 == steps {
            break;
        }
        // The next step's new pair: rows `2 k + 2 t` and one on (`t` = pairs an output).
        let upper_row = 2 * k + 2 * pairs_per_output;
        let mut new = tail;
        if KY % 2 == 0 {
            let upper = &span[upper_row * width..][..V * lanes];
            for (v, acc) in new.iter_mut().enumerate() {
                *acc = rule.first(simd, load::<S>(upper, v * lanes), zero);
            }
        }
        let lower = &span[(upper_row + 1) * width..][..V * lanes];
        for (v, acc) in new.iter_mut().enumerate() {
            *acc = rule.add(simd, *acc, load::<S>(lower, v * lanes), zero);
        }
        if pairs_per_output == 2 {
            ring[0] = ring[1];
            ring[1] = new;
        } else {
            ring[0] = new;
        }
    }
}
