//! Channels-first stride-1 sums with windows 3 wide and x padding 1 on each side (as
//! Inception's 3x3/1 average with pad 1), read straight from the input plane and written
//! straight into the output plane. Input and output rows then have the same width W, so
//! output `(oy, ox)` at flat position `q = oy * W + ox` reads its tap `(ty, tx)` at input
//! position `q + (ty * dy - top) * W + tx - 1`: one offset per tap for every output, and
//! vectors run along the flat plane across row ends, as in [`super::flat_planes`], but with no
//! padded copy of the plane and no copy of the results. Two things the padded plane gave for
//! free are done here instead:
//!
//! - x padding: in a row's first and last columns the left or right tap's flat position wraps
//!   onto the row before or after, so those taps are masked lane by lane (from a table of
//!   columns) and a masked lane keeps its sum, which is what adding the padding's +0 does (a
//!   sum that starts at +0 is never −0, so `s + 0 = s` bit for bit);
//! - y padding: output rows whose windows reach above or below the plane run as bands of
//!   rows with the same window rows inside the plane, leaving the others out.
//!
//! ```text
//! for each plane (n, c) of the task, or the rows of it the task holds:
//!     for each band of output rows whose windows have the same rows inside the plane:
//!         for blocks of 4 (then 1-3, then 1 ending at the band's end) vectors at positions q:
//!             acc = +0
//!             for each window row inside the plane, for its left, centre and right taps:
//!                 acc = column of q lets the tap in ? acc + input[q + offset] : acc
//!             output[q ..] = finish(acc, band's row factor * column factors[q % W ..])
//! ```
//!
//! The taps inside the input are visited in the reference's row-major order and the
//! divisors are the reference's: the results are bit-identical to the reference and to
//! the other kernels.
//!
//! Measured against the kernels these plans ran before (`nnpool bench --suite`, the old
//! choice behind a temporary switch in the same binary, alternated; v4, one thread, Zen 5):
//! `inception` (288 planes of 35x35) 68-71 against 102-106 µs, 64 of 56x56 38-41 against 51-54, 16 of
//! 112x112 37-45 against 50-53 (the padded flat planes); past that kernel's plane bound
//! (against the fixed-window rows) 32 of 224x224 294-307 against 615-790, 4 of 224x224
//! 44-51 against 63-68, 1 of 1024x1024 290-294 against 330-388. Other widths took a load
//! and a compare per masked tap and lost: 5x5 pad 2, 256 of 40x40, 337-346 against 293 µs;
//! 8 of 224x224, 300 against 260-276.

use std::ops::Range;

use pulp::{Simd, WithSimd};

use super::DivisorFactors;
use super::plane_reads::PlaneReads;
use super::reduce::{Acc, Reducer};
use super::simd_io::{lanes, load, shifted, store};
use crate::Plan;
use crate::geometry::Axis;

/// Most window rows (their offsets live in a stack array).
const MAX_WINDOW_ROWS: usize = 16;

/// Most elements a row may have: the column masks compare columns held as f32 with
/// thresholds half a column off (`0.5`, `W - 1.5`), exact below 2^23.
const MAX_WIDTH: usize = 1 << 22;

/// Whether the plan is a 2-D (or 1-D) window 3 wide with stride 1, x dilation 1 and x padding
/// 1 on each side, at most [`MAX_WINDOW_ROWS`] rows, on rows of at least two vectors and at
/// most [`MAX_WIDTH`], on a level with 16 lanes (the caller checks the op). Planes of any
/// size: the tables are a row long, and only the input's first and last planes are copied.
pub(crate) fn applies(plan: &Plan<f32>, lanes: usize) -> bool {
    let [az, ay, ax] = &plan.axes;
    let flat_2d = az.input == 1 && az.kernel == 1 && az.pad_begin == 0 && az.pad_end == 0;
    lanes >= 16
        && flat_2d
        && ay.stride == 1
        && ax.stride == 1
        && ax.kernel == 3
        && ax.dilation == 1
        && ax.pad_begin == 1
        && ax.pad_end == 1
        && ay.kernel <= MAX_WINDOW_ROWS
        && ax.output >= 2 * lanes
        && ax.input <= MAX_WIDTH
}

/// The window rows `ty` of output row `oy` that lie inside the input (`0 <= oy + ty * dy - top
/// < height`), as a range of `ty`.
pub(crate) fn window_rows(ay: &Axis, oy: usize) -> Range<usize> {
    let (top, dy) = (ay.pad_begin, ay.dilation);
    let first = top.saturating_sub(oy).div_ceil(dy);
    let end = match (ay.input - 1 + top).checked_sub(oy) {
        Some(reach) => (reach / dy + 1).min(ay.kernel),
        None => 0,
    };
    first.min(end)..end
}

/// One task: the output rows `rows` (flattened (n, c, oy)) of a plan for which [`applies`]
/// holds.
pub(crate) struct FlatUnpadded<'a, R> {
    pub rule: R,
    pub plan: &'a Plan<f32>,
    pub input: &'a [f32],
    pub output: &'a mut [f32],
    pub rows: Range<usize>,
}

impl<R: Reducer> WithSimd for FlatUnpadded<'_, R> {
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
        let width = ax.input;
        let plane_in = width * ay.input;
        // Reads reach an element before a plane and a vector past it (the shifts' last
        // vector): planes closer than that to the input's ends (its first and last) are
        // copied into `staging`, which only a task holding one of them needs.
        let (front, back) = (ax.kernel, ax.kernel + lanes);
        // Column tables cover a row and 4 vectors on, so a block starting at any column reads
        // them without wrapping: they stay in L1 whatever the plane's size.
        let period = width + 4 * lanes;
        let factors_len = if R::DIVIDES { ay.output + ax.output } else { 0 };
        let reads = PlaneReads::new(plane_in, front, back, input.len());
        let staging_len = reads.staging_len(
            rows.start / ay.output,
            rows.end.saturating_sub(1) / ay.output,
        );
        let mut scratch = super::scratch::take(2 * period + factors_len + staging_len);
        let (columns, rest) = scratch.split_at_mut(period);
        let (column_factors, rest) = rest.split_at_mut(period);
        let (factors, rest) = rest.split_at_mut(factors_len);
        let staging = &mut rest[..staging_len];
        for (c, column) in columns.iter_mut().enumerate() {
            *column = (c % width) as f32;
        }
        column_factors.fill(1.0);
        let (row_factors, factors) = factors.split_at_mut(factors_len.min(ay.output));
        if R::DIVIDES {
            let factors = DivisorFactors::new(plan, row_factors, factors);
            for (c, factor) in column_factors.iter_mut().enumerate() {
                *factor = factors.columns[c % width];
            }
        }
        let row_factor = |oy: usize| row_factors.get(oy).copied().unwrap_or(1.0);
        // Bands of a plane's output rows whose windows have the same rows inside the plane
        // and the same divisor factor, found once per task (per plane, the divisions cost 20 %
        // of `inception`'s time).
        let mut bands: Vec<(Range<usize>, Range<usize>, f32)> = Vec::new();
        for oy in 0..ay.output {
            let (window, factor) = (window_rows(&ay, oy), row_factor(oy));
            match bands.last_mut() {
                Some((rows, last, f)) if *last == window && *f == factor => rows.end = oy + 1,
                _ => bands.push((oy..oy + 1, window, factor)),
            }
        }
        let tables = Tables {
            columns,
            column_factors,
            width,
        };
        let mut row = rows.start;
        while row < rows.end {
            let (p, first) = (row / ay.output, row % ay.output);
            let last = ay.output.min(first + rows.end - row);
            let (source, origin) = reads.plane(p, input, staging, R::FILL);
            for (band_rows, window, row_factor) in &bands {
                let (oy, end) = (band_rows.start.max(first), band_rows.end.min(last));
                if oy >= end {
                    continue;
                }
                // Each window row's first tap, from its output's position plus `origin`.
                let mut starts = [0isize; MAX_WINDOW_ROWS];
                for (start, ty) in starts.iter_mut().zip(window.clone()) {
                    let row = (ty * ay.dilation) as isize - ay.pad_begin as isize;
                    *start = origin as isize + row * width as isize - ax.pad_begin as isize;
                }
                let band = Band {
                    source,
                    starts: &starts[..window.len()],
                    positions: oy * width..end * width,
                    row_factor: *row_factor,
                };
                let out = (row + oy - first - rows.start) * width;
                let out = &mut output[out..][..band.positions.len()];
                if window.len() == 3 {
                    reduce_band::<S, R, 3>(simd, rule, &band, tables, out);
                } else {
                    reduce_band::<S, R, 0>(simd, rule, &band, tables, out);
                }
            }
            row += last - first;
        }
        super::scratch::give_back(scratch);
    }
}

/// Per-column tables, from column 0 through 4 vectors past the row's end: each column's
/// index and its average divisor factor.
#[derive(Clone, Copy)]
struct Tables<'a> {
    columns: &'a [f32],
    column_factors: &'a [f32],
    width: usize,
}

/// Output rows of one plane with the same window rows inside it: positions `positions` of the
/// plane, whose window row `i` starts at `source[q + starts[i]]` for position `q`, and whose
/// divisors are `row_factor` times their column's.
struct Band<'a> {
    source: &'a [f32],
    starts: &'a [isize],
    positions: Range<usize>,
    row_factor: f32,
}

/// The band's outputs into `out` (from its first position): blocks of 4 vectors, then 1-3,
/// then one vector ending at the band's end (rows are at least a vector long, so it overlaps
/// outputs already written, with the same values).
#[inline(always)]
fn reduce_band<S: Simd, R: Reducer, const KY: usize>(
    simd: S,
    rule: R,
    band: &Band,
    tables: Tables,
    out: &mut [f32],
) {
    let lanes = lanes::<S>();
    let Range { start, end } = band.positions;
    macro_rules! block {
        ($v:literal, $at:expr) => {
            block::<S, R, $v, KY>(
                simd,
                rule,
                (band, tables),
                ($at, $at % tables.width),
                &mut out[$at - start..],
            )
        };
    }
    let mut at = start;
    while at + 4 * lanes <= end {
        block!(4, at);
        at += 4 * lanes;
    }
    match (end - at) / lanes {
        1 => block!(1, at),
        2 => block!(2, at),
        3 => block!(3, at),
        _ => {}
    }
    at += (end - at) / lanes * lanes;
    if at < end {
        block!(1, end - lanes);
    }
}

/// `V` vectors of outputs from position `at` (column `column`) into `out[..V * lanes]`: every
/// tap inside the plane in row-major order on `V` independent chains, the taps left and right
/// of the centre masked by column. Each window row's 3 taps come from its `V + 1` vectors
/// from the left tap, shifted in registers where the level can (else loaded). `KY` > 0 is
/// the number of window rows, compiled in (0: the band's).
#[inline(always)]
fn block<S: Simd, R: Reducer, const V: usize, const KY: usize>(
    simd: S,
    rule: R,
    (band, tables): (&Band, Tables),
    (at, column): (usize, usize),
    out: &mut [f32],
) {
    let lanes = lanes::<S>();
    let zero = simd.splat_u32s(0);
    // The left tap is inside the row from column 1, the right one up to column `width - 2`.
    let from = simd.splat_f32s(0.5);
    let through = simd.splat_f32s(tables.width as f32 - 1.5);
    let mut inside = [[simd.less_than_f32s(from, from); V]; 2];
    let [left_inside, right_inside] = &mut inside;
    for (v, (left, right)) in left_inside.iter_mut().zip(right_inside).enumerate() {
        let columns = load::<S>(tables.columns, column + v * lanes);
        *left = simd.less_than_f32s(from, columns);
        *right = simd.less_than_f32s(columns, through);
    }
    let mut accs: [Acc<S>; V] = [rule.init(simd, zero); V];
    let window_rows = if KY > 0 { KY } else { band.starts.len() };
    for &start in &band.starts[..window_rows] {
        let first = (at as isize + start) as usize;
        let span = &band.source[first..][..(V + 1) * lanes];
        let mut wide = [simd.splat_f32s(0.0); 5];
        for (v, w) in wide[..=V].iter_mut().enumerate() {
            *w = load::<S>(span, v * lanes);
        }
        for t in 0..3 {
            for (v, acc) in accs.iter_mut().enumerate() {
                let x = match t {
                    0 => wide[v],
                    _ => match shifted(simd, wide[v], wide[v + 1], t) {
                        Some(x) => x,
                        None => load::<S>(span, v * lanes + t),
                    },
                };
                let added = rule.add(simd, *acc, x, zero).value;
                acc.value = match t {
                    0 => simd.select_f32s(inside[0][v], added, acc.value),
                    2 => simd.select_f32s(inside[1][v], added, acc.value),
                    _ => added,
                };
            }
        }
    }
    for (v, acc) in accs.into_iter().enumerate() {
        let divisor = if R::DIVIDES {
            let factors = load::<S>(tables.column_factors, column + v * lanes);
            simd.mul_f32s(simd.splat_f32s(band.row_factor), factors)
        } else {
            simd.splat_f32s(1.0)
        };
        store::<S>(out, v * lanes, rule.finish(simd, acc, divisor));
    }
}
