//! Channels-first 2x2 windows with stride 2 and no padding (values only), on planes whose
//! output rows are shorter than four vectors, such as `tiny_max` (8x8 planes, 4 outputs a row):
//! each output row reads its two input rows in place, one deinterleaving load per row and
//! vector of outputs, with no block, ring or copy.
//!
//! ```text
//! for each output row (plane, oz, oy) of the task:
//!     upper, lower = input rows 2 oy and 2 oy + 1 of (plane, oz)
//!     for each vector of outputs at ox:
//!         a, b = even and odd elements of upper[2 ox ..]; c, d = the same of lower[2 ox ..]
//!         output[.., ox ..] = finish(rule(rule(rule(rule(init, a), b), c), d), divisor)
//! ```
//!
//! The taps are folded in the reference's row-major order, so results are bit-identical to it.
//! Rows narrower than the level's vector run on a narrower level ([`level`]: on v4, rows of
//! 8-15 outputs on v3, shorter ones on the 4-lane level), except input rows of exactly one
//! vector on v2 and v3, whose outputs fill half a vector: there four input rows make two output
//! rows in one vector ([`two_rows_at_a_time`]; `tiny` NCHW on v3 went from 5,400 to 1,100
//! instructions a call). Max runs here on planes that fit the small-planes block, average and
//! Lp on any planes of inputs under 16 MiB ([`applies_to_sums`]).
//!
//! Channels-last inputs under L2's size run the same walk over rows of pixels: each output
//! pixel's channels from the four pixels of its window, a plain vector load per tap
//! ([`pixel_pairs`]; `tiny` NHWC went from 3,620 to 1,420 instructions a call).

use std::ops::Range;

use pulp::{Simd, WithSimd};

use super::fixed_window::PREFETCH_FROM;
use super::reduce::Reducer;
use super::simd_io::{
    deinterleaved_unordered, deinterleaves_in_registers, deinterleaves_in_registers_on, in_order,
    lanes, load, load_deinterleaved, load_first, store, store_first,
};
use crate::geometry::Axis;
use crate::isa::Isa;
use crate::{Layout, Plan};

/// Whether the plan is a 2x2 window with stride 2, no padding and no dilation in y and x (a
/// flat 1-wide z window, if any), every window whole in the input, with output rows shorter
/// than 4 vectors of `lanes` (where the small-planes kernel ran before). Measured with
/// `profile_case nchw tiny` (AMD EPYC, v3; best of 5 alternated runs): see session 17's
/// changes in `docs/speed-history.md`.
pub(crate) fn applies(plan: &Plan<f32>, lanes: usize) -> bool {
    whole_pairs(plan) && plan.axes[2].output < 4 * lanes
}

/// Whether max values on a 16-lane level leave the plan to the small-planes kernel: rows that
/// would run on the 4-lane level a masked vector at a time ([`level`]: fewer than 8 outputs,
/// input rows not one vector of v2 or v3), over at least a vector of planes. Zen 5, v4, one
/// thread, `nnpool bench --suite` (2x2/2 max, 2 alternated rounds, µs, pairs on v2 against
/// small planes on v4): `[1, 512, 14, 14]` 15.9 against 9.5, `[4, 512, 14, 14]` 63 against
/// 45, `[1, 256, 12, 12]` 7.0 against 3.7, `[1, 256, 10, 10]` 5.2 against 3.6, `[1, 1024, 6,
/// 6]` 7.7 against 5.4, `[1, 256, 15, 15]` 8.5 against 6.2, `[1, 16, 14, 14]` 0.52 against
/// 0.39; kept here: `[1, 3, 14, 14]` 0.11 against 0.42, `[1, 1024, 4, 4]` (two rows a v2
/// vector) 1.2 against 7.0. Average took as long either way (`[1, 512, 14, 14]` 12.0 µs).
pub(crate) fn leaves_max_to_small_planes(plan: &Plan<f32>, lanes: usize) -> bool {
    let x = &plan.axes[2];
    let one_vector = |isa: Isa| rows_of_one_vector(x.input, x.output, isa);
    lanes == Isa::V4.lanes()
        && x.output < Isa::V3.lanes()
        && !one_vector(Isa::V3)
        && !one_vector(Isa::V2)
        && plan.batch.saturating_mul(plan.channels) >= lanes
}

/// Whether a channels-first plan of a sum rule (average, Lp) runs here: as for [`applies`],
/// on inputs under [`SUMS_UP_TO`], planes of any size (max takes it only where the
/// small-planes kernel, which runs max with indices, takes the planes too).
pub(crate) fn applies_to_sums(plan: &Plan<f32>, lanes: usize) -> bool {
    applies(plan, lanes) && plan.input_len() < SUMS_UP_TO
}

/// Channels-first sum rules run here on inputs under this many elements (16 MiB); larger ones
/// stream through the fixed-window kernel, which asks for its rows ahead. 2x2/2 average on
/// v4 (Zen 5, one thread, `nnpool bench --suite`, session 53; before, only planes that fit
/// the small-planes block ran here, and the rest ran fixed-window): `[1, 256, 28, 28]` 13.7
/// against 174 µs, `[1, 128, 56, 56]` 23.6 against 62 µs, `[2, 128, 112, 112]` (12.8 MB) 196
/// against 474 µs, but `[4, 128, 112, 112]` (25.7 MB) 1252 against 967 µs and `[8, 128, 112,
/// 112]` 2913 against 2065 µs.
const SUMS_UP_TO: usize = 1 << 22;

/// Whether a channels-last plan runs here ([`pixel_pairs`]): 2x2 windows as for [`applies`],
/// on inputs under [`PREFETCH_FROM`] (larger ones stream through the channels-last kernel,
/// which asks for its input ahead). The channels-last kernel's general tap loops took
/// about 150 instructions an output pixel besides the work.
pub(crate) fn applies_channels_last(plan: &Plan<f32>) -> bool {
    plan.layout == Layout::ChannelsLast && whole_pairs(plan) && plan.input_len() < PREFETCH_FROM
}

/// A 2x2 window with stride 2, no padding and no dilation in y and x (a flat 1-wide z window,
/// if any), every window whole in the input.
fn whole_pairs(plan: &Plan<f32>) -> bool {
    let [az, ay, ax] = &plan.axes;
    let flat_z = az.kernel == 1 && az.stride == 1 && az.pad_begin == 0 && az.pad_end == 0;
    let pair = |a: &Axis| {
        a.kernel == 2
            && a.stride == 2
            && a.dilation == 1
            && a.pad_begin == 0
            && a.pad_end == 0
            && a.output >= 1
            && 2 * a.output <= a.input
    };
    flat_z && pair(ay) && pair(ax)
}

/// The level the kernel runs on for x axis `x`: the plan's level where a row holds at least
/// one of its vectors, or two rows make one ([`rows_of_one_vector`]); else, on v4, v3 where v3
/// fits that way (rows of 8-15 outputs, or input rows of 8); else v2 (a whole vector a row
/// instead of a masked part of one).
pub(crate) fn level(x: &Axis, isa: Isa) -> Isa {
    let fits = |isa: Isa| x.output >= isa.lanes() || rows_of_one_vector(x.input, x.output, isa);
    // v4's 16 lanes are too wide for rows of 8, but v3 (which v4 machines have) makes two
    // output rows a vector of them: `tiny` NCHW on an AMD EPYC with AVX-512 took 231-250 ns
    // a call on v2 and 99 ns on v3 (`NNPOOL_ISA=v2|v3 ITERS=200000 profile_case nchw tiny`).
    // Rows of 14 outputs (2x2/2 average over [1, 256, 28, 28]) took 13.9 µs on v3 and 19.7 on
    // v2 (Zen 5, `nnpool bench --isa v3|v2`, session 53).
    if fits(isa) {
        isa
    } else if isa == Isa::V4 && Isa::V3.is_available() && fits(Isa::V3) {
        Isa::V3
    } else if matches!(isa, Isa::V3 | Isa::V4) && Isa::V2.is_available() {
        Isa::V2
    } else {
        isa
    }
}

/// Whether input rows are one vector of the level (`tiny_max`'s 8 pixels on v3) and every
/// column in a window: a vector of outputs is then two output rows, and four loads, four
/// in-register shuffles and one reorder make it. Only where the shuffles stay in registers.
fn rows_of_one_vector(width: usize, out_width: usize, isa: Isa) -> bool {
    width == isa.lanes() && 2 * out_width == width && deinterleaves_in_registers(isa)
}

/// One task: the output rows `rows` (flattened (n, c, oz, oy), channels-last (n, oz, oy)) of a
/// plan.
pub(crate) struct Pairs<'a, R> {
    pub rule: R,
    pub plan: &'a Plan<f32>,
    pub input: &'a [f32],
    pub output: &'a mut [f32],
    pub rows: Range<usize>,
}

impl<R: Reducer> WithSimd for Pairs<'_, R> {
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
        let [az, ay, ax] = &plan.axes;
        // Elements a pixel: its channels in channels-last layout.
        let channels_last = plan.layout == Layout::ChannelsLast;
        let pixel = if channels_last { plan.channels } else { 1 };
        let width = ax.input * pixel;
        let out_width = ax.output * pixel;
        let divisor = simd.splat_f32s(if R::DIVIDES {
            super::divisor(plan.reduction, &[az.taps(0), ay.taps(0), ax.taps(0)])
        } else {
            1.0
        });
        // A 1-deep z window with stride 1 and no padding has a slice per output slice, so the
        // flattened (n, c, oz) (channels-last: (n, oz)) is the input's flattened (n, c, z).
        let rows_per_plane = ay.output;
        // Where a plane's input rows are all in windows, output row r reads input rows 2r and
        // 2r + 1 of the flattened input: the task is one run of rows, whatever its planes.
        let one_run = ay.input == 2 * ay.output;
        let two_rows_a_vector = !channels_last
            && width == lanes
            && 2 * out_width == width
            && deinterleaves_in_registers_on(simd);
        let mut row = rows.start;
        let mut out_rest = output;
        // Divided once: a division per plane took a third of a `tiny` call (`perf`).
        let (mut plane, mut oy) = (row / rows_per_plane, row % rows_per_plane);
        while row < rows.end {
            let count = if one_run {
                rows.end - row
            } else {
                (rows_per_plane - oy).min(rows.end - row)
            };
            let (out_rows, rest) = core::mem::take(&mut out_rest).split_at_mut(count * out_width);
            out_rest = rest;
            let first = (plane * ay.input + 2 * oy) * width;
            if channels_last {
                let row_pairs = &input[first..first + count * 2 * width];
                pixel_pairs(
                    simd, rule, row_pairs, width, out_rows, out_width, pixel, divisor,
                );
            } else if two_rows_a_vector {
                let row_pairs = &input[first..first + count * 2 * width];
                two_rows_at_a_time(simd, rule, row_pairs, out_rows, divisor);
            } else {
                row_by_row(
                    simd, rule, input, first, width, out_width, out_rows, divisor,
                );
            }
            row += count;
            plane += 1;
            oy = 0;
        }
    }
}

/// Output rows of `lanes / 2` from input rows of one vector (`row_pairs`: two input rows per
/// output row), two output rows per vector. The even elements of the two upper rows are tap
/// 0 of both output rows, their odd elements tap 1; the lower rows give taps 2 and 3. Each
/// output row fills one half of the level's pair order ([`in_order`] joins them).
#[inline(always)]
fn two_rows_at_a_time<S: Simd, R: Reducer>(
    simd: S,
    rule: R,
    row_pairs: &[f32],
    out_rows: &mut [f32],
    divisor: S::f32s,
) {
    let lanes = lanes::<S>();
    let count = out_rows.len() / (lanes / 2);
    // Chunks of constant length: no bounds checks in the loop.
    let quads = row_pairs
        .chunks_exact(4 * lanes)
        .zip(out_rows.chunks_exact_mut(lanes));
    for (four, out) in quads {
        let [a, b] = deinterleaved_unordered(simd, load::<S>(four, 0), load::<S>(four, 2 * lanes));
        let [c, d] =
            deinterleaved_unordered(simd, load::<S>(four, lanes), load::<S>(four, 3 * lanes));
        let value = fold(simd, rule, [a, b, c, d], divisor);
        store::<S>(out, 0, in_order(simd, value));
    }
    if count % 2 == 1 {
        // The last row alone: both halves of the vector compute it.
        let two = &row_pairs[2 * lanes * (count - 1)..][..2 * lanes];
        let (upper, lower) = (load::<S>(two, 0), load::<S>(two, lanes));
        let [a, b] = deinterleaved_unordered(simd, upper, upper);
        let [c, d] = deinterleaved_unordered(simd, lower, lower);
        let value = in_order(simd, fold(simd, rule, [a, b, c, d], divisor));
        store_first::<S>(simd, out_rows, (count - 1) * (lanes / 2), lanes / 2, value);
    }
}

/// Channels-last output rows of `out_width` elements (pixels of `channels`) from `row_pairs`,
/// two input rows of `width` elements per output row: each output pixel's channels from the
/// two pixels above each other in both rows, a vector at a time.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn pixel_pairs<S: Simd, R: Reducer>(
    simd: S,
    rule: R,
    row_pairs: &[f32],
    width: usize,
    out_rows: &mut [f32],
    out_width: usize,
    channels: usize,
    divisor: S::f32s,
) {
    let lanes = lanes::<S>();
    let lines = row_pairs
        .chunks_exact(2 * width)
        .zip(out_rows.chunks_exact_mut(out_width));
    for (pair, out_row) in lines {
        let (upper, lower) = pair.split_at(width);
        // An odd width's last pixel is in no window: the chunks leave it out.
        let pixels = upper
            .chunks_exact(2 * channels)
            .zip(lower.chunks_exact(2 * channels))
            .zip(out_row.chunks_exact_mut(channels));
        for ((upper, lower), out) in pixels {
            let (a, b) = upper.split_at(channels);
            let (c, d) = lower.split_at(channels);
            // Chunks of constant length: no bounds checks in the loop.
            let vectors = a
                .chunks_exact(lanes)
                .zip(b.chunks_exact(lanes))
                .zip(c.chunks_exact(lanes))
                .zip(d.chunks_exact(lanes))
                .zip(out.chunks_exact_mut(lanes));
            for ((((a, b), c), d), out) in vectors {
                let taps = [
                    load::<S>(a, 0),
                    load::<S>(b, 0),
                    load::<S>(c, 0),
                    load::<S>(d, 0),
                ];
                store::<S>(out, 0, fold(simd, rule, taps, divisor));
            }
            let k = channels - channels % lanes;
            if k < channels {
                let count = channels - k;
                let fill = R::FILL;
                let taps = [
                    load_first(simd, a, k, count, fill),
                    load_first(simd, b, k, count, fill),
                    load_first(simd, c, k, count, fill),
                    load_first(simd, d, k, count, fill),
                ];
                store_first::<S>(simd, out, k, count, fold(simd, rule, taps, divisor));
            }
        }
    }
}

/// Output rows of `out_width` whose input rows (two per output row, `width` long) start at
/// `input[first..]`, one at a time.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn row_by_row<S: Simd, R: Reducer>(
    simd: S,
    rule: R,
    input: &[f32],
    first: usize,
    width: usize,
    out_width: usize,
    out_rows: &mut [f32],
    divisor: S::f32s,
) {
    let lanes = lanes::<S>();
    let count = out_rows.len() / out_width;
    let row_pairs = &input[first..first + count * 2 * width];
    let lines = row_pairs
        .chunks_exact(2 * width)
        .zip(out_rows.chunks_exact_mut(out_width));
    for (pair_index, (pair, out_row)) in lines.enumerate() {
        let (upper, lower) = pair.split_at(width);
        let mut ox = 0;
        while ox + lanes <= out_width {
            let [a, b] = load_deinterleaved(simd, upper, 2 * ox);
            let [c, d] = load_deinterleaved(simd, lower, 2 * ox);
            store::<S>(out_row, ox, fold(simd, rule, [a, b, c, d], divisor));
            ox += lanes;
        }
        if ox < out_width {
            let count = out_width - ox;
            let upper = first + pair_index * 2 * width + 2 * ox;
            let lower = upper + width;
            // Where a whole pair of vectors lies inside the input, its extra lanes (other
            // pixels) are computed and not stored; at the input's end, a copy.
            let [a, b] = tail_pair(simd, input, upper, 2 * count, R::FILL);
            let [c, d] = tail_pair(simd, input, lower, 2 * count, R::FILL);
            let value = fold(simd, rule, [a, b, c, d], divisor);
            store_first::<S>(simd, out_row, ox, count, value);
        }
    }
}

/// The window's four taps folded in order and finished. Max values start from the first tap
/// ([`Reducer::first`]), one fold fewer: `tiny` NCHW 0.55 to 0.51 µs (AMD EPYC, best of 5
/// alternated runs).
#[inline(always)]
fn fold<S: Simd, R: Reducer>(simd: S, rule: R, taps: [S::f32s; 4], divisor: S::f32s) -> S::f32s {
    let zero = simd.splat_u32s(0);
    let mut acc = rule.first(simd, taps[0], zero);
    for &tap in &taps[1..] {
        acc = rule.add(simd, acc, tap, zero);
    }
    rule.finish(simd, acc, divisor)
}

/// The even and odd elements of `data[at..at + count]` (`count < 2 * lanes`), through a copy
/// filled with `fill` when a whole pair of vectors would leave `data`.
#[inline(always)]
fn tail_pair<S: Simd>(simd: S, data: &[f32], at: usize, count: usize, fill: f32) -> [S::f32s; 2] {
    let lanes = lanes::<S>();
    if at + 2 * lanes <= data.len() {
        return load_deinterleaved(simd, data, at);
    }
    let mut pair = [fill; 2 * 16];
    pair[..count].copy_from_slice(&data[at..at + count]);
    load_deinterleaved(simd, &pair[..2 * lanes], 0)
}
