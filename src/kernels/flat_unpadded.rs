//! Channels-first stride-1 sums whose windows keep the row width (x padding `left + right =
//! kernel - 1`, as Inception's 3x3/1 average with pad 1), read straight from the input plane
//! and written straight into the output plane. Input and output rows then have the same width
//! W, so output `(oy, ox)` at flat position `q = oy * W + ox` reads its tap `(ty, tx)` at input
//! position `q + (ty * dy - top) * W + tx - left`: one offset per tap for every output, and
//! vectors run along the flat plane across row ends, as in [`super::flat_planes`], but with no
//! padded copy of the plane and no copy of the results. Two things the padded plane gave for
//! free are done here instead:
//!
//! - x padding: near a row's ends a tap's flat position wraps onto the row before or after, so
//!   each tap left or right of the centre is masked lane by lane (from a table of each
//!   position's column) and a masked lane keeps its sum, which is what adding the padding's +0
//!   does (a sum that starts at +0 is never −0, so `s + 0 = s` bit for bit);
//! - y padding: output rows whose windows reach above or below the plane run as bands of
//!   rows with the same window rows inside the plane, leaving the others out.
//!
//! ```text
//! for each plane (n, c) of the task, or the rows of it the task holds:
//!     for each band of output rows whose windows have the same rows inside the plane:
//!         for blocks of 4 (then 1-3, then 1 ending at the band's end) vectors at positions q:
//!             acc = +0
//!             for each window row inside the plane, for each tap in row order:
//!                 acc = column of q lets the tap in ? acc + input[q + offset] : acc
//!             output[q ..] = finish(acc, divisors[q ..])
//! ```
//!
//! The taps inside the input are visited in the reference's row-major order and the
//! divisors are the reference's: the results are bit-identical to the reference and to
//! the padded kernel's.

use std::ops::Range;

use pulp::{Simd, WithSimd};

use super::DivisorFactors;
use super::reduce::{Acc, Reducer};
use super::simd_io::{can_shift, lanes, load, shifted, store};
use crate::Plan;
use crate::geometry::Axis;

/// Most outputs a plane may have: its column and divisor tables (64 KiB each for f32) stay in
/// L2, as the padded kernel's plane does.
const MAX_PLANE: usize = 16 * 1024;

/// Most window rows (their offsets live in a stack array).
const MAX_WINDOW_ROWS: usize = 16;

/// Whether the plan is a 2-D (or 1-D) window with stride 1 whose x padding keeps the row width
/// (x dilation 1, `left + right = kernel - 1`), window rows at most [`MAX_WINDOW_ROWS`], rows
/// of at least two vectors, planes of at most [`MAX_PLANE`] outputs, on a level with 16 lanes
/// (the caller checks the op).
pub(crate) fn applies(plan: &Plan<f32>, lanes: usize) -> bool {
    let [az, ay, ax] = &plan.axes;
    let flat_2d = az.input == 1 && az.kernel == 1 && az.pad_begin == 0 && az.pad_end == 0;
    lanes >= 16
        && flat_2d
        && ay.stride == 1
        && ax.stride == 1
        && ax.dilation == 1
        && ax.pad_begin.checked_add(ax.pad_end).map(|p| p + 1) == Some(ax.kernel)
        && ax.output == ax.input
        && ax.kernel < lanes
        && ay.kernel <= MAX_WINDOW_ROWS
        && ax.output >= 2 * lanes
        && ay.output.saturating_mul(ax.output) <= MAX_PLANE
}

/// The window rows `ty` of output row `oy` that lie inside the input (`0 <= oy + ty * dy - top
/// < height`), as a range of `ty`.
fn window_rows(ay: &Axis, oy: usize) -> Range<usize> {
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
        let plane_out = width * ay.output;
        // Reads reach `left` elements before a plane and a vector past it (the shifts' last
        // vector): planes closer than that to the input's ends are copied into `staging`.
        let (front, back) = (ax.kernel, ax.kernel + lanes);
        let divides = if R::DIVIDES { plane_out } else { 0 };
        let factors_len = if R::DIVIDES { ay.output + ax.output } else { 0 };
        let staging_len = front + plane_in + back;
        let mut scratch = super::scratch::take(plane_out + divides + factors_len + staging_len);
        let (columns, rest) = scratch.split_at_mut(plane_out);
        let (divisors, rest) = rest.split_at_mut(divides);
        let (factors, rest) = rest.split_at_mut(factors_len);
        let staging = &mut rest[..staging_len];
        for (q, column) in columns.iter_mut().enumerate() {
            *column = (q % width) as f32;
        }
        if R::DIVIDES {
            let (rows, columns) = factors.split_at_mut(ay.output);
            let factors = DivisorFactors::new(plan, rows, columns);
            for (row, &factor) in divisors.chunks_exact_mut(width).zip(factors.rows) {
                for (divisor, &column) in row.iter_mut().zip(factors.columns) {
                    *divisor = factor * column;
                }
            }
        }
        // Bands of a plane's output rows whose windows have the same rows inside the plane,
        // found once per task (per plane, the divisions cost 20 % of `inception`'s time).
        let mut bands: Vec<(Range<usize>, Range<usize>)> = Vec::new();
        for oy in 0..ay.output {
            let window = window_rows(&ay, oy);
            match bands.last_mut() {
                Some((rows, last)) if *last == window => rows.end = oy + 1,
                _ => bands.push((oy..oy + 1, window)),
            }
        }
        let shifts = can_shift(simd);
        let tables = Tables {
            columns,
            divisors,
            width,
            left: ax.pad_begin,
            kernel_x: ax.kernel,
        };
        let mut row = rows.start;
        while row < rows.end {
            let (p, first) = (row / ay.output, row % ay.output);
            let last = ay.output.min(first + rows.end - row);
            let base = p * plane_in;
            let (source, origin) = if base >= front && base + plane_in + back <= input.len() {
                (&input[..], base)
            } else {
                staging.fill(R::FILL);
                staging[front..][..plane_in].copy_from_slice(&input[base..][..plane_in]);
                (&staging[..], front)
            };
            for (band_rows, window) in &bands {
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
                };
                let out = (row + oy - first - rows.start) * width;
                let out = &mut output[out..][..band.positions.len()];
                let three = shifts && ax.kernel == 3 && ax.pad_begin == 1;
                match (three, window.len()) {
                    (true, 3) => reduce_band::<S, R, 3, 3>(simd, rule, &band, tables, out),
                    (true, _) => reduce_band::<S, R, 3, 0>(simd, rule, &band, tables, out),
                    _ => reduce_band::<S, R, 0, 0>(simd, rule, &band, tables, out),
                }
            }
            row += last - first;
        }
        super::scratch::give_back(scratch);
    }
}

/// Per-plane tables, the same for every plane: each output position's column and divisor.
#[derive(Clone, Copy)]
struct Tables<'a> {
    columns: &'a [f32],
    divisors: &'a [f32],
    width: usize,
    left: usize,
    kernel_x: usize,
}

/// Output rows of one plane with the same window rows inside it: positions `positions` of the
/// plane, whose window row `i` starts at `source[q + starts[i]]` for position `q`.
struct Band<'a> {
    source: &'a [f32],
    starts: &'a [isize],
    positions: Range<usize>,
}

/// The band's outputs into `out` (from its first position): blocks of 4 vectors, then 1-3,
/// then one vector ending at the band's end (rows are at least a vector long, so it overlaps
/// outputs already written, with the same values).
#[inline(always)]
fn reduce_band<S: Simd, R: Reducer, const KX: usize, const KY: usize>(
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
            block::<S, R, $v, KX, KY>(simd, rule, band, tables, $at, &mut out[$at - start..])
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

/// `V` vectors of outputs from position `at` into `out[..V * lanes]`: every tap inside the
/// plane in row-major order on `V` independent chains, taps left and right of the centre
/// masked by column; with `KX` = 3 (3 wide, 1 to the left, a level that shifts in registers)
/// each window row's taps come from its `V + 1` vectors, shifted; `KY` > 0 is the number of
/// window rows, compiled in (0: the band's).
#[inline(always)]
fn block<S: Simd, R: Reducer, const V: usize, const KX: usize, const KY: usize>(
    simd: S,
    rule: R,
    band: &Band,
    tables: Tables,
    at: usize,
    out: &mut [f32],
) {
    let lanes = lanes::<S>();
    let zero = simd.splat_u32s(0);
    let (width, left, kernel_x) = if KX == 3 {
        (tables.width, 1, 3)
    } else {
        (tables.width, tables.left, tables.kernel_x)
    };
    let mut columns = [simd.splat_f32s(0.0); V];
    for (v, column) in columns.iter_mut().enumerate() {
        *column = load::<S>(tables.columns, at + v * lanes);
    }
    // Whether tap `t` of a window row lies inside the row for the outputs of vector `v`:
    // left of the centre from column `left - t`, right of it up to `width - 1 + left - t`.
    macro_rules! inside {
        ($t:expr, $v:expr) => {{
            let t: usize = $t;
            if t < left {
                let from = simd.splat_f32s((left - t) as f32 - 0.5);
                Some(simd.less_than_f32s(from, columns[$v]))
            } else if t > left {
                let through = simd.splat_f32s((width - 1 + left - t) as f32 + 0.5);
                Some(simd.less_than_f32s(columns[$v], through))
            } else {
                None
            }
        }};
    }
    // With the x window compiled in, the masks once for all window rows.
    let mut masks = [[None; V]; 3];
    if KX == 3 {
        for (t, masks) in masks.iter_mut().enumerate() {
            for (v, mask) in masks.iter_mut().enumerate() {
                *mask = inside!(t, v);
            }
        }
    }
    let mut accs: [Acc<S>; V] = [rule.init(simd, zero); V];
    let window_rows = if KY > 0 { KY } else { band.starts.len() };
    for &start in &band.starts[..window_rows] {
        let first = (at as isize + start) as usize;
        let mut wide = [simd.splat_f32s(0.0); 5];
        if KX > 0 {
            let span = &band.source[first..][..(V + 1) * lanes];
            for (v, w) in wide[..=V].iter_mut().enumerate() {
                *w = load::<S>(span, v * lanes);
            }
        }
        let count = if KX > 0 { KX } else { kernel_x };
        for t in 0..count {
            for (v, acc) in accs.iter_mut().enumerate() {
                let in_registers = match t {
                    _ if KX == 0 => None,
                    0 => Some(wide[v]),
                    _ => shifted(simd, wide[v], wide[v + 1], t),
                };
                let x = match in_registers {
                    Some(x) => x,
                    None => load::<S>(&band.source[first + t..][..V * lanes], v * lanes),
                };
                let added = rule.add(simd, *acc, x, zero);
                let inside = if KX == 3 { masks[t][v] } else { inside!(t, v) };
                acc.value = match inside {
                    Some(inside) => simd.select_f32s(inside, added.value, acc.value),
                    None => added.value,
                };
            }
        }
    }
    for (v, acc) in accs.into_iter().enumerate() {
        let divisor = if R::DIVIDES {
            load::<S>(tables.divisors, at + v * lanes)
        } else {
            simd.splat_f32s(1.0)
        };
        store::<S>(out, v * lanes, rule.finish(simd, acc, divisor));
    }
}
