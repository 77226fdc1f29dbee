//! Channels-last (NWC, NHWC, NDHWC) kernel, vectorized over channels.
//!
//! ```text
//! for each output row (n, oz, oy) of the task:    z and y taps clipped to the input, once per row
//!     for ox in border ∪ interior ∪ border:       interior x taps need no clipping
//!         (large inputs, windows apart in y: prefetch the columns window ox + 2 reads first;
//!          windows sharing rows: prefetch to L2 the next output row's new rows at column ox)
//!         for channel blocks of 8 (sums) or 4, then the last 1-3 vectors, then a partial one:
//!             acc = init (max: −∞ at the window's first input element)
//!             for each tap (z, y, x) inside the input, in row-major window order:
//!                 acc = rule(acc, input[n, z, y, x, c..c + lanes])
//!             output[n, oz, oy, ox, c..] = finish(acc, divisor)
//! ```
//!
//! The channels of one pixel are contiguous, so every load is a plain vector load, padding taps
//! are simply not visited, and every lane sees its window in the reference's order: results are
//! bit-identical to the reference on every level. Several vector accumulators per block (4, 8 for
//! sums) hide the latency of each chain.
//!
//! Interior pixels of rows whose windows are whole in z and y run through
//! [`WholeRun`](super::whole_windows::WholeRun); for sums two such rows at a time where their
//! windows share rows (`inception` NHWC), see `whole_windows.rs`.

use std::ops::Range;

use pulp::{Simd, WithSimd};

use super::fixed_window::PREFETCH_FROM;
use super::prefetch::Prefetcher;
use super::reduce::{Acc, MaxValue, Reducer, has_fma};
use super::simd_io::{lanes, load, load_first, store, store_first, store_indices};
use super::whole_windows::{TapOffsets, WholeRun};
use crate::geometry::Taps;
use crate::{Isa, Plan};

/// One task: the output rows `rows` (flattened (n, oz, oy)) of a channels-last plan.
pub(crate) struct ChannelsLast<'a, R> {
    pub rule: R,
    pub plan: &'a Plan<f32>,
    pub input: &'a [f32],
    pub output: &'a mut [f32],
    pub indices: Option<&'a mut [i64]>,
    pub rows: Range<usize>,
}

/// A window's taps inside the input and how to address them.
#[derive(Clone, Copy)]
struct Window {
    taps: [Taps; 3],
    /// Input element offset of the pixel (n, 0, 0, 0).
    base: usize,
    /// Average divisor.
    divisor: f32,
}

impl<R: Reducer> WithSimd for ChannelsLast<'_, R> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        // One instance per way of prefetching, so that the loop of plans that do not prefetch
        // stays as it was (checking a flag per pixel made `tiny` NHWC 0.46 -> 0.49 µs).
        match ahead(self.plan, self.input.len()) {
            Ahead::Columns => self.run::<S, { Ahead::Columns as u8 }>(simd),
            Ahead::NextRows => self.run::<S, { Ahead::NextRows as u8 }>(simd),
            Ahead::Nothing => self.run::<S, { Ahead::Nothing as u8 }>(simd),
        }
    }
}

impl<R: Reducer> ChannelsLast<'_, R> {
    /// The task's rows; `AHEAD`: how to ask for the input ahead (an [`Ahead`]).
    #[inline(always)]
    fn run<S: Simd, const AHEAD: u8>(mut self, simd: S) {
        let plan = self.plan;
        let [az, ay, _] = &plan.axes;
        let square = square_window(plan, R::SUMS);
        // Rows whose windows are whole in z and y run their interior pixels through
        // [`WholeRun`], but not with prefetching (it asks per pixel) or 2x2 windows (`vgg`
        // NHWC keeps its compiled taps). 3x3 sums took fewer instructions there than with
        // theirs: `inception` NHWC 1.62 to 1.23 million a call.
        let offsets = if R::TRACKS_INDEX || AHEAD != Ahead::Nothing as u8 || square == 2 {
            None
        } else {
            TapOffsets::new(plan)
        };
        let pairs = R::SUMS && offsets.is_some() && pairs_share_rows(plan);
        let prefetcher = Prefetcher::new(AHEAD != Ahead::Nothing as u8);
        let how = (offsets.as_ref(), square, prefetcher);
        let mut cursor = super::RowCursor::new(self.rows.start, az.output, ay.output);
        // Whether the row's interior was computed with the row before it.
        let mut interior_done = false;
        for local_row in 0..self.rows.len() {
            let place = (local_row, cursor.outer, cursor.oz, cursor.oy);
            cursor.advance();
            let done = std::mem::take(&mut interior_done);
            let pair = pairs
                && !done
                && local_row + 1 < self.rows.len()
                && cursor.outer == place.1
                && cursor.oz == place.2
                && self.whole_rows(place.2, place.3)
                && self.whole_rows(place.2, place.3 + 1);
            if pair {
                self.interior_pair(simd, place, offsets.as_ref());
                interior_done = true;
                self.row::<S, AHEAD>(simd, place, true, how);
            } else {
                self.row::<S, AHEAD>(simd, place, done, how);
            }
        }
    }

    /// Whether the windows of output row (oz, oy) are whole in z and y.
    fn whole_rows(&self, oz: usize, oy: usize) -> bool {
        let [az, ay, _] = &self.plan.axes;
        oy < ay.output && az.taps(oz).count == az.kernel && ay.taps(oy).count == ay.kernel
    }

    /// The interior pixels of the task's output rows `local_row` and `local_row + 1` (row
    /// (n, oz, oy) and the next one, both of whole windows), with [`WholeRun::pair`].
    #[inline(always)]
    fn interior_pair<S: Simd>(
        &mut self,
        simd: S,
        (local_row, n, oz, oy): (usize, usize, usize, usize),
        offsets: Option<&TapOffsets>,
    ) {
        let Some(taps) = offsets else { return };
        let plan = self.plan;
        let [az, ay, ax] = &plan.axes;
        let interior = ax.interior();
        if interior.is_empty() {
            return;
        }
        let channels = plan.channels;
        let row_len = ax.output * channels;
        let run = whole_run(plan, self.input, taps, n, [az.taps(oz), ay.taps(oy)]);
        let (top, bottom) = self.output[local_row * row_len..].split_at_mut(row_len);
        let span = interior.start * channels..interior.end * channels;
        let shift = (ay.stride, ay.stride * plan.input_strides[3]);
        run.pair(
            simd,
            self.rule,
            [&mut top[span.clone()], &mut bottom[span]],
            channels,
            shift,
        );
    }

    /// The task's output row `local_row`, which is row (n, oz, oy), but for its interior
    /// pixels if `interior_done`; `offsets`, `square` and `prefetcher` as [`Self::run`] works
    /// them out.
    #[inline(always)]
    fn row<S: Simd, const AHEAD: u8>(
        &mut self,
        simd: S,
        (local_row, n, oz, oy): (usize, usize, usize, usize),
        interior_done: bool,
        (offsets, square, prefetcher): (Option<&TapOffsets>, usize, Prefetcher),
    ) {
        let (rule, plan, input) = (self.rule, self.plan, self.input);
        let [az, ay, ax] = plan.axes;
        let channels = plan.channels;
        let row_len = ax.output * channels;
        let interior = ax.interior();
        let (tz, ty) = (az.taps(oz), ay.taps(oy));
        // Rows whose windows are whole in y run their interior pixels with the window's
        // size as a constant.
        let whole_rows = if tz.count == 1 && ty.count == ay.kernel {
            square
        } else {
            0
        };
        let output = &mut self.output[local_row * row_len..][..row_len];
        let mut indices = self
            .indices
            .as_deref_mut()
            .map(|indices| &mut indices[local_row * row_len..][..row_len]);
        // The next output row's window rows that this one does not read, and the first of
        // them, for [`Ahead::NextRows`].
        let next_rows = (AHEAD == Ahead::NextRows as u8 && oy + 1 < ay.output).then(|| {
            let read_to = ty.first + (ty.count - 1) * ay.dilation;
            (ay.taps(oy + 1), read_to + 1)
        });
        let row = Row {
            plan,
            input,
            n,
            tz,
            ty,
            next_rows,
            whole: whole_rows,
            interior: interior.clone(),
            prefetcher,
        };
        // The interior pixels that `WholeRun` takes, if any (or took): skipped by the loop
        // below, so that the general pixel path is compiled once (three loops over it made
        // the library's release build 50 % longer).
        let whole_yz = tz.count == az.kernel && ty.count == ay.kernel;
        let interior_taps = match offsets {
            Some(taps) if whole_yz && !interior.is_empty() => Some(taps),
            _ => None,
        };
        let skip_from = if interior_taps.is_some() {
            interior.start
        } else {
            ax.output
        };
        let mut ox = 0;
        while ox < ax.output {
            if ox != skip_from {
                row.pixel::<S, R, AHEAD>(simd, rule, ox, output, indices.as_deref_mut());
                ox += 1;
                continue;
            }
            if let Some(taps) = interior_taps.filter(|_| !interior_done) {
                let run = whole_run(plan, input, taps, n, [tz, ty]);
                let interior_out =
                    &mut output[interior.start * channels..][..interior.len() * channels];
                run.pixels(simd, rule, interior_out, channels);
            }
            ox = interior.end;
        }
    }
}

/// The interior pixels of output row (n, `tz`, `ty`) (windows whole in z and y) as a
/// [`WholeRun`] over `input` with tap offsets `taps`.
fn whole_run<'a>(
    plan: &Plan<f32>,
    input: &'a [f32],
    taps: &'a TapOffsets,
    n: usize,
    [tz, ty]: [Taps; 2],
) -> WholeRun<'a> {
    let ax = &plan.axes[2];
    let strides = &plan.input_strides;
    let tx = ax.taps(ax.interior().start);
    WholeRun {
        input,
        taps,
        first: n * strides[0]
            + tz.first * strides[2]
            + ty.first * strides[3]
            + tx.first * strides[4],
        step: ax.stride * strides[4],
        divisor: super::divisor(plan.reduction, &[tz, ty, tx]),
    }
}

/// Whether two output rows one after the other share window rows that [`WholeRun::pair`]
/// can read once for both: 2-D windows (or depth 1) without y dilation, y stride below the
/// window's height.
fn pairs_share_rows(plan: &Plan<f32>) -> bool {
    let [az, ay, _] = &plan.axes;
    az.kernel == 1 && ay.dilation == 1 && ay.stride < ay.kernel
}

/// One output row's windows in z and y, for [`Row::pixel`].
struct Row<'a> {
    plan: &'a Plan<f32>,
    input: &'a [f32],
    /// The image.
    n: usize,
    tz: Taps,
    ty: Taps,
    /// The next output row's y taps and the first y this row does not read, if it prefetches
    /// them.
    next_rows: Option<(Taps, usize)>,
    /// The size of the interior's whole windows if they run with compiled tap loops, else 0.
    whole: usize,
    interior: Range<usize>,
    prefetcher: Prefetcher,
}

impl Row<'_> {
    /// All channels of output pixel `ox`, written at `output[ox * C..]` (the row's outputs).
    #[inline(always)]
    fn pixel<S: Simd, R: Reducer, const AHEAD: u8>(
        &self,
        simd: S,
        rule: R,
        ox: usize,
        output: &mut [f32],
        indices: Option<&mut [i64]>,
    ) {
        let Row {
            plan,
            input,
            n,
            tz,
            ty,
            whole,
            ..
        } = *self;
        let ax = &plan.axes[2];
        if AHEAD == Ahead::Columns as u8 && ox + PREFETCH_PIXELS < ax.output {
            let tx = ax.taps_given_interior(ox + PREFETCH_PIXELS, &self.interior);
            prefetch_columns::<false>(self.prefetcher, plan, input, n, [tz, ty, tx], 0);
        }
        let tx = ax.taps_given_interior(ox, &self.interior);
        if AHEAD == Ahead::NextRows as u8 {
            if let Some((next_ty, from_y)) = self.next_rows {
                let taps = [tz, next_ty, tx];
                prefetch_columns::<true>(self.prefetcher, plan, input, n, taps, from_y);
            }
        }
        let taps = [tz, ty, tx];
        let window = Window {
            taps,
            base: n * plan.input_strides[0],
            divisor: if R::DIVIDES {
                super::divisor(plan.reduction, &taps)
            } else {
                1.0
            },
        };
        let at = ox * plan.channels;
        let whole = if self.interior.contains(&ox) {
            whole
        } else {
            0
        };
        match whole {
            2 => pixel::<S, R, 2>(simd, rule, plan, input, window, output, indices, at),
            3 => pixel::<S, R, 3>(simd, rule, plan, input, window, output, indices, at),
            _ => pixel::<S, R, 0>(simd, rule, plan, input, window, output, indices, at),
        }
    }
}

/// How many output pixels ahead [`prefetch_columns`] asks for the input. Measured with
/// `profile_case nhwc vgg` (AMD EPYC Zen 1, v3, best of 3 alternated runs): no prefetch
/// 7.56 ms, 1 pixel 5.69, 2 pixels 5.61, 3 pixels 5.66, 4 pixels 5.73, 6 pixels 6.23, 16 pixels
/// 6.56; with 2 threads, none 5.83 ms against 2 pixels 4.53.
const PREFETCH_PIXELS: usize = 2;

/// How a task asks for its input ahead.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ahead {
    /// Inputs below [`PREFETCH_FROM`]: they stay in the caches between calls.
    Nothing,
    /// Windows that do not overlap in y, so that every input row streams from memory once and
    /// the loads wait on it (`vgg`): [`prefetch_columns`], [`PREFETCH_PIXELS`] ahead, to L1.
    Columns,
    /// Windows that share rows (`train`'s 3x3/2): [`prefetch_columns`] of the next output
    /// row's new rows, one output row ahead, to L2. Columns ahead (to L1, in the current
    /// output row's rows) cost more than they saved there (Zen 1: 3.61 against 4.09 ms 2
    /// pixels ahead; 3.90 against 4.07 ms asking only for the rows the previous output row had
    /// not read). Measured on the Zen 4 with `profile_case nhwc train` (v3; old and new
    /// binaries, 6 alternated rounds): without prefetching 2.69-3.53 ms (its interior through
    /// [`WholeRun`]), with the next rows 1.90-2.75 ms. Tried in the same way: the rows of the
    /// current output row 4, 8 or 16 pixels ahead into L1, 2.50-3.48 ms; the next rows 2, 3 or
    /// 5 output rows ahead, no better than 1; the whole next rows at once at the start of each
    /// output row (keeping [`WholeRun`]), 3.02-3.32 ms against 2.51-3.40 without.
    NextRows,
}

/// How a task of `plan` on an input of `input_len` elements asks for its input ahead.
fn ahead(plan: &Plan<f32>, input_len: usize) -> Ahead {
    let ay = &plan.axes[1];
    if input_len < PREFETCH_FROM {
        Ahead::Nothing
    } else if ay.kernel <= ay.stride {
        Ahead::Columns
    } else {
        Ahead::NextRows
    }
}

/// Asks for the input columns that the window of image `n` with `taps` reads and the window
/// before it did not (its first x-stride pixels, all channels), in each z tap and in its rows
/// from `from_y` on: into L2 if `TO_L2`, else into L1.
#[inline(always)]
fn prefetch_columns<const TO_L2: bool>(
    prefetcher: Prefetcher,
    plan: &Plan<f32>,
    input: &[f32],
    n: usize,
    [tz, ty, tx]: [Taps; 3],
    from_y: usize,
) {
    let [az, ay, ax] = &plan.axes;
    let strides = &plan.input_strides;
    for iz in 0..tz.count {
        let z = tz.first + iz * az.dilation;
        for iy in 0..ty.count {
            let y = ty.first + iy * ay.dilation;
            if y < from_y {
                continue;
            }
            let at = n * strides[0] + z * strides[2] + y * strides[3] + tx.first * strides[4];
            let columns = &input[at.min(input.len())..];
            if TO_L2 {
                prefetcher.fetch_to_l2(columns, ax.stride * plan.channels);
            } else {
                prefetcher.fetch(columns, ax.stride * plan.channels);
            }
        }
    }
}

/// Whether max values run with [`MaxFlagged`](super::reduce::MaxFlagged): windows of more than
/// 4 taps. Measured with `profile_case nhwc <case>` (AMD EPYC Zen 1, v3, best of 5 alternated
/// runs, [`MaxValue`] in blocks of 4 against flagged in blocks of 8): `alexnet` 118 against
/// 84 µs, `resnet` 344 against 243 µs, `train` 3.53 against 3.16 ms. 2x2 windows lost with
/// the first version (one add per vector, blocks of 4): `tiny` 0.50 against 0.61 µs, the
/// check per block costing more than its 4 taps save. An input with a NaN in every block
/// computes each block twice. Only on x86 levels: elsewhere the rule has no one-instruction
/// max, and the probe would only add work.
pub(crate) fn flags_nan(plan: &Plan<f32>, isa: Isa) -> bool {
    let x86 = matches!(isa, Isa::V2 | Isa::V3 | Isa::V4);
    x86 && plan.axes.iter().map(|axis| axis.kernel).product::<usize>() > 4
}

/// The window size when the plan's windows are 2x2 ones in 2-D (or 1x2x2 in 3-D), or 3x3 ones
/// of a rule that `sums`, with no dilation, else 0: their whole windows then run with
/// compile-time tap loops. Measured with `profile_case nhwc <case>` (AMD EPYC, v3; best of 5
/// alternated runs, before against after): `tiny` 0.545 to 0.455 µs, `vgg` 7.39 to 7.23 ms.
/// 3x3 max windows were slower on a Zen 1 (`resnet` 329 to 350 µs, `alexnet` 111 to 115 µs,
/// `train` 3.32 to 3.49 ms) and take more instructions with today's flagged max on a Zen 3
/// (`resnet` 1.69 to 1.78 million a call, `alexnet` 636 to 685 thousand); 3x3 sums take
/// fewer: `inception` 2.02 to 1.64 million (cachegrind; time within the VM's noise); rows of
/// whole windows now run them through [`WholeRun`] instead, which takes fewer still.
fn square_window(plan: &Plan<f32>, sums: bool) -> usize {
    let [az, ay, ax] = &plan.axes;
    let flat_z = az.kernel == 1 && az.dilation == 1;
    let size = ax.kernel;
    let square = ay.kernel == size && (size == 2 || (size == 3 && sums));
    if flat_z && square && ay.dilation == 1 && ax.dilation == 1 {
        size
    } else {
        0
    }
}

/// All channels of one output pixel, written at `output[at..at + C]`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn pixel<S: Simd, R: Reducer, const K: usize>(
    simd: S,
    rule: R,
    plan: &Plan<f32>,
    input: &[f32],
    window: Window,
    output: &mut [f32],
    mut indices: Option<&mut [i64]>,
    at: usize,
) {
    let lanes = lanes::<S>();
    let channels = plan.channels;
    let mut c = 0;
    // Sums have more latency than throughput to hide: 8 chains at a time (`inception` NHWC
    // 19 % faster than with blocks of 4, best of 10 alternated runs). So has flagged max,
    // whose maxima stay in registers beside 4 probes (`profile_case nhwc`, AMD EPYC Zen 1, v3,
    // best of 5 alternated, blocks of 4 against 8: `alexnet` 99 against 89 µs, `resnet` 300
    // against 251 µs, `train` 3.68 against 3.42 ms). Indexed max was not tried.
    while (R::SUMS || R::FLAGS_NAN) && c + 8 * lanes <= channels {
        let accs = checked_block::<S, R, 8, K>(simd, rule, plan, input, window, c, lanes);
        finish(
            simd,
            rule,
            window,
            &accs,
            output,
            indices.as_deref_mut(),
            at + c,
            lanes,
        );
        c += 8 * lanes;
    }
    while c + 4 * lanes <= channels {
        let accs = checked_block::<S, R, 4, K>(simd, rule, plan, input, window, c, lanes);
        finish(
            simd,
            rule,
            window,
            &accs,
            output,
            indices.as_deref_mut(),
            at + c,
            lanes,
        );
        c += 4 * lanes;
    }
    // The last 1-3 whole vectors as one block: their chains run side by side and the tap loops
    // run once (`tiny_max` NHWC, 16 channels: 0.47 -> 0.29 µs; 24 channels 56x56 3x3/2:
    // 38 -> 18 µs, best of 10 and 6 alternated runs).
    macro_rules! rest {
        ($v:literal) => {{
            let accs = checked_block::<S, R, $v, K>(simd, rule, plan, input, window, c, lanes);
            let (out, idx) = (&mut *output, indices.as_deref_mut());
            finish(simd, rule, window, &accs, out, idx, at + c, lanes);
            c += $v * lanes;
        }};
    }
    match (channels - c) / lanes {
        0 => {}
        1 => rest!(1),
        2 => rest!(2),
        _ => rest!(3),
    }
    if c < channels {
        let accs = checked_block::<S, R, 1, K>(simd, rule, plan, input, window, c, channels - c);
        finish(
            simd,
            rule,
            window,
            &accs,
            output,
            indices,
            at + c,
            channels - c,
        );
    }
}

/// [`block`], with the windows that a [`Reducer::FLAGS_NAN`] rule flagged computed again with
/// [`MaxValue`].
#[inline(always)]
fn checked_block<S: Simd, R: Reducer, const V: usize, const K: usize>(
    simd: S,
    rule: R,
    plan: &Plan<f32>,
    input: &[f32],
    window: Window,
    c: usize,
    width: usize,
) -> [Acc<S>; V] {
    let accs = block::<S, R, V, K>(simd, rule, plan, input, window, c, width);
    if R::FLAGS_NAN && any_flagged(simd, rule, &accs) {
        return block::<S, MaxValue, V, K>(simd, MaxValue, plan, input, window, c, width);
    }
    accs
}

/// Whether a [`Reducer::FLAGS_NAN`] rule flagged a lane of `accs`.
#[inline(always)]
pub(super) fn any_flagged<S: Simd, R: Reducer, const V: usize>(
    simd: S,
    rule: R,
    accs: &[Acc<S>; V],
) -> bool {
    let zero = simd.splat_f32s(0.0);
    let mut flagged = simd.not_m32s(simd.equal_f32s(zero, zero));
    for acc in accs {
        flagged = simd.or_m32s(flagged, rule.flagged(simd, *acc));
    }
    simd.first_true_m32s(flagged) < lanes::<S>()
}

/// `V` vectors of channels starting at `c`; the last one holds `width` channels. `K` is 0, or
/// the size of a square window that is whole in the input (its tap counts are then constants).
#[inline(always)]
fn block<S: Simd, R: Reducer, const V: usize, const K: usize>(
    simd: S,
    rule: R,
    plan: &Plan<f32>,
    input: &[f32],
    window: Window,
    c: usize,
    width: usize,
) -> [Acc<S>; V] {
    let lanes = lanes::<S>();
    let [az, ay, ax] = &plan.axes;
    let [tz, ty, tx] = window.taps;
    let strides = &plan.input_strides;
    let plane_index = |z: usize, y: usize, x: usize| ((z * ay.input + y) * ax.input + x) as u32;
    let first = simd.splat_u32s(plane_index(tz.first, ty.first, tx.first));
    let mut accs = [rule.init(simd, first); V];
    let (z_count, y_count, x_count) = match K {
        0 => (tz.count, ty.count, tx.count),
        _ => (1, K, K),
    };
    // A whole window starts from its first tap ([`Reducer::first`]: one fold fewer for max
    // values); other windows were not measured that way.
    let add = |acc: Acc<S>, value: S::f32s, index, first_tap: bool| {
        if K != 0 && first_tap {
            rule.first(simd, value, index)
        } else {
            rule.add(simd, acc, value, index)
        }
    };
    for iz in 0..z_count {
        let z = tz.first + iz * az.dilation;
        for iy in 0..y_count {
            let y = ty.first + iy * ay.dilation;
            let row = window.base + z * strides[2] + y * strides[3] + c;
            for ix in 0..x_count {
                let first_tap = iz == 0 && iy == 0 && ix == 0;
                let x = tx.first + ix * ax.dilation;
                let at = row + x * strides[4];
                let index = if R::TRACKS_INDEX {
                    simd.splat_u32s(plane_index(z, y, x))
                } else {
                    first
                };
                if width < lanes {
                    // A whole vector where the input goes on past the channels (the lanes past
                    // `width` hold other pixels' values, which no lane of the result mixes
                    // with and which are never stored); at the input's end, a copy. The copy
                    // everywhere (a store-forwarding stall per tap) made 3-channel 224x224
                    // NHWC 3x3/1 average 4.6 ms; now 1.2 ms (NCHW 0.09 ms: small channel
                    // counts leave most lanes idle here).
                    let value = if at + lanes <= input.len() {
                        load::<S>(input, at)
                    } else {
                        load_first(simd, input, at, width, R::FILL)
                    };
                    accs[0] = add(accs[0], value, index, first_tap);
                    if R::FLAGS_NAN {
                        let probe = simd.add_f32s(pulp::cast(accs[0].index), value);
                        accs[0].index = pulp::cast(probe);
                    }
                } else {
                    // One bounds check per tap: the block's V vectors are contiguous.
                    let pixel = &input[at..at + V * lanes];
                    for (v, acc) in accs.iter_mut().enumerate() {
                        *acc = add(*acc, load::<S>(pixel, v * lanes), index, first_tap);
                    }
                    if R::FLAGS_NAN {
                        probe_nan(simd, &mut accs, pixel);
                    }
                }
            }
        }
    }
    accs
}

/// Folds one tap's `V` vectors (`pixel`) into the NaN probes of a [`Reducer::FLAGS_NAN`] rule,
/// kept in the index lanes of the first `(V + 1) / 2` accumulators: `fma(a, b, probe)` takes
/// two vectors a step, and is NaN from then on when `a` or `b` is (or on 0 × ∞ or ∞ − ∞, false
/// alarms that cost only time). Against one add per vector, `profile_case nhwc <case>` (AMD
/// EPYC Zen 1, v3, best of 4 alternated runs): `alexnet` 103 against 95 µs, `resnet` 301
/// against 296 µs. Levels without FMA (pulp's multiply-add is a software `fma` there) add the
/// pair and then the probe.
#[inline(always)]
pub(super) fn probe_nan<S: Simd, const V: usize>(simd: S, accs: &mut [Acc<S>; V], pixel: &[f32]) {
    let lanes = lanes::<S>();
    for (pair, acc) in pixel.chunks_exact(2 * lanes).zip(accs.iter_mut()) {
        let (a, b) = (load::<S>(pair, 0), load::<S>(pair, lanes));
        let probe = pulp::cast(acc.index);
        let probe = if has_fma::<S>() {
            simd.mul_add_f32s(a, b, probe)
        } else {
            simd.add_f32s(simd.add_f32s(a, b), probe)
        };
        acc.index = pulp::cast(probe);
    }
    if V % 2 == 1 {
        let x = load::<S>(pixel, (V - 1) * lanes);
        let probe = simd.add_f32s(pulp::cast(accs[V / 2].index), x);
        accs[V / 2].index = pulp::cast(probe);
    }
}

/// Finishes and stores `V` accumulators at `output[at..]`; the last one holds `width` lanes.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn finish<S: Simd, R: Reducer, const V: usize>(
    simd: S,
    rule: R,
    window: Window,
    accs: &[Acc<S>; V],
    output: &mut [f32],
    mut indices: Option<&mut [i64]>,
    at: usize,
    width: usize,
) {
    let lanes = lanes::<S>();
    let divisor = simd.splat_f32s(window.divisor);
    for (v, acc) in accs.iter().enumerate() {
        let value = rule.finish(simd, *acc, divisor);
        let at = at + v * lanes;
        if width < lanes {
            store_first::<S>(simd, output, at, width, value);
        } else {
            store::<S>(output, at, value);
        }
        if let Some(indices) = indices.as_deref_mut() {
            store_indices::<S>(indices, at, width.min(lanes), acc.index);
        }
    }
}
