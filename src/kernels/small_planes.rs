//! Channels-first pooling of small planes whose output rows are shorter than four vectors (such as
//! 8x8 inputs pooled 2x2), where vectors over the output width would mostly hold nothing, and of
//! planes of any size whose windows are all square 2x2 or 3x3 ones (in bands of output rows when
//! a plane's block is too large). Vectors run over planes instead:
//!
//! ```text
//! for each block of L planes (n, c) .. (n, c + L) of the task (L = lanes):
//!     block[pixel][l] = input plane l, pixel        (the block transposed to channels-last)
//!     for each output pixel (oz, oy, ox) the task needs:
//!         acc = init (max: −∞ at the window's first input element)
//!         for each tap (z, y, x) inside the input, in row-major window order:
//!             acc = rule(acc, block[z, y, x][0..L])      (one vector load per tap)
//!         results[pixel][0..L] = finish(acc, divisor)      (one vector store)
//!     output[plane l, pixel] = results[pixel][l] for the rows of each plane the task holds
//! ```
//!
//! Every lane sees its window in the reference's order, so results are bit-identical to it.
//! When every window is a square 2x2 or 3x3 one with x stride 1 or 2 and no dilation, the block
//! holds the padding too (the op's neutral value), every window is whole in it, and the tap
//! loops are unrolled at compile time, 4 outputs side by side ([`Scheme::whole`]); a block then
//! holds the input rows of one band of output rows. With that and with the copy-out loop skipped
//! when the transpose wrote every pixel, `tiny_max` NCHW went from 1.3-1.5 µs to 0.33-0.57 µs
//! (`profile_case nchw tiny`, binaries alternated on a slow phase of the machine, best of 8;
//! NHWC ran 0.47-0.53 µs in the same minutes).

use std::ops::Range;

use pulp::{Simd, WithSimd};

use super::DivisorFactors;
use super::fixed_window::{PREFETCH_FROM, PREFETCH_ROWS};
use super::prefetch::Prefetcher;
use super::reduce::{Acc, Reducer, fused_one};
use super::simd_io::{lanes, load, store};
use crate::Plan;
use crate::geometry::{Axis, Taps};
use crate::plan::Reduction;

/// Elements of the scratch that holds one transposed block of inputs (32 KiB: it stays in L1),
/// and the bound for its transposed results. A 128 KiB block let 55x55 planes in, but they ran
/// no faster than the row kernel (16 planes, 3x3/2 max, v3: 95-99 µs against 100-110 µs).
const SCRATCH: usize = 8 * 1024;

/// The same bounds for one band of output rows of plans whose windows are all whole in the
/// block ([`Scheme::whole`]), whatever their size (128 KiB each: L2). Measured with
/// `profile_case` against 16 Ki elements (old and new binaries alternated, best 3 of 6-8
/// runs): `alexnet` NCHW (55x55 planes, 3x3/2) 164-233 µs in the row kernel to 135-144 µs
/// here, `train` NCHW (56x56 planes with a 57x57 block, 3x3/2 pad 1) 4.3-6.6 ms to 3.3-5.6 ms.
/// `inception`'s 35x35 planes fit either way: see [`Scheme::of`].
const WHOLE_SCRATCH: usize = 32 * 1024;

/// The widest level's lanes (v4): output rows are shorter than 4 of its vectors.
const MAX_LANES: usize = 16;

/// Whether the plan's planes are small enough for this kernel and its output rows shorter
/// than the row kernel's block of 4 vectors, or its windows all whole 2x2 or 3x3 ones (in
/// bands of output rows whose block fits [`WHOLE_SCRATCH`]) with at least 3/4 of the lanes
/// of its groups of planes in use. Measured with `examples/profile_case.rs small`
/// (16 planes, 3x3/2 max, v3): 16x16 planes 8 µs here against 15-28 µs in the row kernel,
/// 24x24 16 µs against 34 µs, 32x32 29 µs against 42 µs. With results written to a transposed
/// block and copied out per plane (no per-lane branches), 16x16 planes went to 3.5-4.4 µs and
/// the 8x8 `tiny_max` to 1.2-1.6 µs from 1.7-2.8 µs (old and new binaries alternated, 4 runs).
/// On v4 (16 lanes), whole windows with x stride 2 run faster in the fixed-window kernel
/// (`profile_case nchw <case>`, Xeon with AVX-512, best of 5-7 alternated runs, this kernel
/// against that one): `resnet` 362 against 223 µs, `alexnet` 117 against 112 µs, `train` 3.40
/// against 2.90 ms; stride-1 `inception` stays here (328 against 344 µs). Those were max
/// windows: 3x3/2 sums run here on v4 too, where the fixed-window kernel took 5x as long
/// (Zen 4, v4, `nnpool bench --suite`, medians of 3 alternated rounds: 256 of 28x28 42 against
/// 237 µs, 256 of 27x27 unpadded 42 against 228, 32 of 112x112 90 against 106, 8 x 64 of
/// 56x56 418 against 555; session 61).
pub(crate) fn applies(plan: &Plan<f32>, lanes: usize) -> bool {
    // A group of planes costs the same with any number of them in use.
    let planes = plan.batch.saturating_mul(plan.channels);
    let filled = planes.saturating_mul(4) >= (planes.div_ceil(lanes) * lanes).saturating_mul(3);
    // Max plans may run with indices, which use the plain block (never larger).
    let whole = filled && Scheme::of(plan, false, lanes).whole.is_some();
    let max = matches!(plan.reduction, Reduction::Max);
    narrow(plan, lanes) || (whole && !(max && lanes >= 16 && plan.axes[2].stride == 2))
}

/// Whether the plan's planes and results fit the transposed block whole, with output rows
/// shorter than 4 vectors.
pub(crate) fn narrow(plan: &Plan<f32>, lanes: usize) -> bool {
    narrow_axes(&plan.axes, lanes)
}

/// [`narrow`] for a plan's (z, y, x) axes.
pub(crate) fn narrow_axes(axes: &[Axis; 3], lanes: usize) -> bool {
    let plane: usize = axes.iter().map(|a| a.input).product();
    let out_pixels: usize = axes.iter().map(|a| a.output).product();
    let fits = |pixels: usize| {
        pixels.saturating_mul(lanes) <= SCRATCH && out_pixels.saturating_mul(lanes) <= SCRATCH
    };
    axes[2].output < 4 * lanes.min(MAX_LANES) && fits(plane)
}

/// Where a block keeps each plane: `height` rows of `width` pixels (z and y flattened), the
/// plane's pixels from row `top`, column `left`, the rest (padding) the op's neutral value.
/// With whole windows, a block holds the rows of one band of output rows.
#[derive(Clone, Copy, PartialEq, Eq)]
struct BlockShape {
    top: usize,
    left: usize,
    height: usize,
    width: usize,
}

impl BlockShape {
    fn pixels(self) -> usize {
        self.height * self.width
    }
}

/// How the kernel lays out a block and visits its windows.
#[derive(Clone, Copy)]
struct Scheme {
    shape: BlockShape,
    /// `k` when every window is a whole `k`x`k` one inside the block (2 or 3, 2-D, no
    /// dilation, x stride 1 or 2): the tap loops are compiled, with no per-output tap counts.
    whole: Option<usize>,
    /// Output rows per band (one block each): all of a plane's rows unless `whole`.
    band: usize,
}

impl Scheme {
    /// The scheme for `plan` on a level with `lanes` lanes; `indexed` (max with indices) keeps
    /// the plain layout, whose pixels are the plane's indices. Windows that reach into padding
    /// are whole in a block that holds the padding (the op's neutral value: −∞ never wins a
    /// max, +0 changes no sum's bits) with the average divisor from [`DivisorFactors`]. Measured
    /// with `profile_case` (old and new binaries alternated, best 3 of 8 runs): `inception`
    /// NCHW (288 planes of 35x35, which left the row kernel for this one) 360-496 µs to
    /// 280-356 µs, with NHWC at 237-317 µs in the same minutes; `small` (16 planes of 16x16,
    /// 3x3/2 pad 1) 2.3-3.4 µs to 1.7-2.3 µs. Most of the remaining instructions are the
    /// transposes in and out (`callgrind`).
    fn of(plan: &Plan<f32>, indexed: bool, lanes: usize) -> Scheme {
        let [az, ay, ax] = &plan.axes;
        let plain = Scheme {
            shape: BlockShape {
                top: 0,
                left: 0,
                height: az.input * ay.input,
                width: ax.input,
            },
            whole: None,
            band: az.output * ay.output,
        };
        let k = ax.kernel;
        // The average divisor is the product of a y and an x factor ([`DivisorFactors`]),
        // exact while the window's size is below 2^24.
        let compiled = az.input == 1
            && az.output == 1
            && az.kernel <= 1 << 20
            && matches!(k, 2 | 3)
            && matches!(ax.stride, 1 | 2)
            && ay.kernel == k
            && ay.dilation == 1
            && ax.dilation == 1;
        let inside = |a: &crate::geometry::Axis| a.interior() == (0..a.output);
        if !compiled || (indexed && !(inside(ay) && inside(ax))) {
            return plain;
        }
        // Columns from the first window's first tap to the last window's last tap (or the
        // input's end); with windows inside the input, the input's columns.
        let width = (ax.input + ax.pad_begin).max((ax.output - 1) * ax.stride + k);
        let block_rows = |band: usize| (band - 1) * ay.stride + k;
        // The most output rows whose block and results fit the scratch.
        let row_len = width.saturating_mul(lanes);
        let by_block = match (WHOLE_SCRATCH / row_len.max(1)).checked_sub(k) {
            Some(spare) => spare / ay.stride + 1,
            None => 0,
        };
        let by_results = WHOLE_SCRATCH / ax.output.saturating_mul(lanes).max(1);
        let band = ay.output.min(by_block).min(by_results);
        // Planes too large for one block with windows that do not overlap (each input read
        // once, memory-bound) stream faster through the row kernel: `vgg` NCHW (112x112 planes,
        // 2x2/2) ran 5.0-5.4 ms there against 5.3-5.8 ms here in bands (best 3 of 8, alternated).
        if band == 0 || (band < ay.output && ay.kernel <= ay.stride) {
            return plain;
        }
        Scheme {
            shape: BlockShape {
                top: ay.pad_begin,
                left: ax.pad_begin,
                height: block_rows(band),
                width,
            },
            whole: Some(k),
            band,
        }
    }

    /// The block rows (padded input rows, from the first padding row) that output rows `band`
    /// read: the whole plane unless windows are whole.
    fn padded_rows(&self, band: &Range<usize>, stride: usize) -> Range<usize> {
        match self.whole {
            Some(k) => band.start * stride..(band.end - 1) * stride + k,
            None => 0..self.shape.height,
        }
    }
}

/// One block of `lanes` planes transposed to channels-last (`block[pixel][lane]`) and the
/// outputs it computes into `values` (and `chosen` for indices), by output pixel from the
/// first output row of the band.
struct BlockWindows<'a> {
    block: &'a [f32],
    values: &'a mut [f32],
    chosen: &'a mut [f32],
    /// Block and output row lengths.
    width: usize,
    out_width: usize,
    /// (y, x) strides.
    strides: (usize, usize),
    /// The output rows to compute (of the plane, flattened (oz, oy)).
    rows: Range<usize>,
    /// The plane's index of the block's first pixel (whole windows in a band's block).
    first_pixel: usize,
}

impl BlockWindows<'_> {
    /// Every window a whole `K`x`K` one ([`Scheme::whole`]) with x stride `SX`, the block
    /// holding the rows of `self.rows` from its first row: the taps unrolled at compile time,
    /// in the reference's row-major order, for [`OUTPUTS_AT_ONCE`] outputs of a row side by
    /// side (independent chains). A row's last 1-3 outputs go in one more group that ends at
    /// the row's end and overlaps the one before (recomputing outputs to the same bits): one
    /// at a time they took 54 instructions each (`inception` NCHW, 35 outputs a row: 2.18 M
    /// instructions a call against 2.09 M). Rows narrower than a group run singly (as 1-3
    /// chains side by side, `inception` NCHW took 550-580 µs against 484-488). `divisors` is
    /// read only if the rule divides.
    #[inline(always)]
    fn whole<S: Simd, R: Reducer, const K: usize, const SX: usize>(
        mut self,
        simd: S,
        rule: R,
        divisors: &DivisorFactors,
    ) {
        let sy = self.strides.0;
        debug_assert_eq!(self.strides.1, SX);
        debug_assert!(K == 2 || K == 3, "whole windows are 2x2 or 3x3");
        // Average's sums take every other tap on the multiply-add pipes (`fused_one`); L1 and
        // L2 add other terms than the tap.
        let one = if R::DIVIDES { fused_one(simd) } else { None };
        for (local, oy) in self.rows.clone().enumerate() {
            let row = OutputRow {
                top: local * sy * self.width,
                out: local * self.out_width,
                divisor: if R::DIVIDES { divisors.rows[oy] } else { 1.0 },
                columns: divisors.columns,
                one,
            };
            let groups = self.out_width / OUTPUTS_AT_ONCE;
            if groups > 0 {
                // The row's K block rows, sliced once to the reach of its groups' windows:
                // each group's windows are then sliced with no check (the group count bounds
                // them), one check per window row and group before. `inception` NCHW: 2.16 M
                // against 2.37 M instructions a call.
                let lanes = lanes::<S>();
                let group_span = OUTPUTS_AT_ONCE * SX * lanes;
                let window_span = ((OUTPUTS_AT_ONCE - 1) * SX + K) * lanes;
                let reach = (groups - 1) * group_span + window_span;
                let block_row = |ty: usize| {
                    let ty = ty.min(K - 1);
                    &self.block[(row.top + ty * self.width) * lanes..][..reach]
                };
                // K is 2 or 3 (whole windows): with 2 the third row is not read.
                let block_rows = [block_row(0), block_row(1), block_row(2)];
                for group in 0..groups {
                    let at = group * group_span;
                    let rows = [
                        &block_rows[0][at..][..window_span],
                        &block_rows[1][at..][..window_span],
                        &block_rows[2][at..][..window_span],
                    ];
                    let ox = group * OUTPUTS_AT_ONCE;
                    self.outputs::<S, R, K, SX, OUTPUTS_AT_ONCE>(simd, rule, &row, ox, Some(rows));
                }
                if self.out_width % OUTPUTS_AT_ONCE != 0 {
                    let ox = self.out_width - OUTPUTS_AT_ONCE;
                    self.outputs::<S, R, K, SX, OUTPUTS_AT_ONCE>(simd, rule, &row, ox, None);
                }
            } else {
                for ox in 0..self.out_width {
                    self.outputs::<S, R, K, SX, 1>(simd, rule, &row, ox, None);
                }
            }
        }
    }

    /// Outputs `ox..ox + N` of one output row, computed side by side and stored.
    #[inline(always)]
    fn outputs<S: Simd, R: Reducer, const K: usize, const SX: usize, const N: usize>(
        &mut self,
        simd: S,
        rule: R,
        row: &OutputRow<S>,
        ox: usize,
        rows: Option<[&[f32]; 3]>,
    ) {
        let accs = self.windows::<S, R, K, SX, N>(simd, rule, row.top + ox * SX, rows, row.one);
        // The group's divisor factors and results sliced once: one bounds check each per
        // group, not per output.
        let lanes = lanes::<S>();
        let columns = if R::DIVIDES {
            &row.columns[ox..][..N]
        } else {
            &[]
        };
        let at = (row.out + ox) * lanes;
        let values = &mut self.values[at..][..N * lanes];
        for (j, acc) in accs.into_iter().enumerate() {
            let divisor = if R::DIVIDES {
                simd.splat_f32s(row.divisor * columns[j])
            } else {
                simd.splat_f32s(1.0)
            };
            store::<S>(values, j * lanes, rule.finish(simd, acc, divisor));
        }
        if R::TRACKS_INDEX {
            let chosen = &mut self.chosen[at..][..N * lanes];
            for (j, acc) in accs.into_iter().enumerate() {
                store::<S>(chosen, j * lanes, bytemuck::cast(acc.index));
            }
        }
    }

    /// The `N` windows of a row whose first taps are `first`, `first + SX`, ...: from `rows`,
    /// the window rows already sliced to the windows' reach, or with one bounds check per
    /// window row.
    #[inline(always)]
    fn windows<S: Simd, R: Reducer, const K: usize, const SX: usize, const N: usize>(
        &self,
        simd: S,
        rule: R,
        first: usize,
        rows: Option<[&[f32]; 3]>,
        one: Option<S::f32s>,
    ) -> [Acc<S>; N] {
        let lanes = lanes::<S>();
        let index = |pixel: usize| simd.splat_u32s((self.first_pixel + pixel) as u32);
        // Value-only max: each window row's taps on a chain of their own, the rows folded in
        // order (as in `fixed_window::fold_rows`: the same bits, shorter chains).
        let split = !R::SUMS && !R::TRACKS_INDEX;
        // Plain loops, not `core::array::from_fn`: its closures were compiled out of line (and
        // without the level's features) once this function had two callers with `N = 4`
        // (`inception` NCHW 2.38 M instructions a call against 2.09 M).
        let mut accs = [rule.init(simd, index(first)); N];
        for (j, acc) in accs.iter_mut().enumerate().skip(1) {
            *acc = rule.init(simd, index(first + j * SX));
        }
        for ty in 0..K {
            let start = first + ty * self.width;
            let span = ((N - 1) * SX + K) * lanes;
            let row = match rows {
                Some(rows) => &rows[ty][..span],
                None => &self.block[start * lanes..][..span],
            };
            let mut row_accs = accs;
            if split {
                for (j, acc) in row_accs.iter_mut().enumerate() {
                    acc.value = load::<S>(row, j * SX * lanes);
                }
            }
            for tx in usize::from(split)..K {
                for (j, acc) in row_accs.iter_mut().enumerate() {
                    let value = load::<S>(row, (j * SX + tx) * lanes);
                    // Odd taps as `fma(x, 1, sum)`: the same bits as the add.
                    *acc = match one {
                        Some(one) if (ty * K + tx) % 2 == 1 => Acc {
                            value: simd.mul_add_f32s(value, one, acc.value),
                            index: acc.index,
                        },
                        _ => rule.add(simd, *acc, value, index(start + j * SX + tx)),
                    };
                }
            }
            if split && ty > 0 {
                for (acc, row_acc) in accs.iter_mut().zip(row_accs) {
                    *acc = rule.add(simd, *acc, row_acc.value, acc.index);
                }
            } else {
                accs = row_accs;
            }
        }
        accs
    }

    /// Stores the result (and index) of output pixel `at` of the band (counted from its first
    /// row).
    #[inline(always)]
    fn finish<S: Simd, R: Reducer>(
        &mut self,
        simd: S,
        rule: R,
        acc: Acc<S>,
        at: usize,
        divisor: f32,
    ) {
        let at = at * lanes::<S>();
        store::<S>(
            self.values,
            at,
            rule.finish(simd, acc, simd.splat_f32s(divisor)),
        );
        if R::TRACKS_INDEX {
            store::<S>(self.chosen, at, bytemuck::cast(acc.index));
        }
    }
}

impl BlockWindows<'_> {
    /// Any window of a plain block (the whole plane: its pixels are the plane's indices): tap
    /// counts per output, `x_taps` holding the first outputs' x taps (the rest are computed on
    /// the fly).
    /// Tried and not kept here: four output pixels per pass with their chains interleaved
    /// (`tiny` NCHW no faster, 16x16 planes 10 % slower, best of 6-10 alternated runs; the
    /// whole-window loop does gain from it).
    #[inline(always)]
    fn general<S: Simd, R: Reducer>(mut self, simd: S, rule: R, plan: &Plan<f32>, x_taps: &[Taps]) {
        let lanes = lanes::<S>();
        let [az, ay, ax] = &plan.axes;
        let plane_index = |z: usize, y: usize, x: usize| (z * ay.input + y) * ax.input + x;
        for (local, row) in self.rows.clone().enumerate() {
            let (oz, oy) = (row / ay.output, row % ay.output);
            let (tz, ty) = (az.taps(oz), ay.taps(oy));
            for ox in 0..ax.output {
                let tx = x_taps.get(ox).copied().unwrap_or_else(|| ax.taps(ox));
                let first = plane_index(tz.first, ty.first, tx.first);
                let mut acc = rule.init(simd, simd.splat_u32s(first as u32));
                for iz in 0..tz.count {
                    let z = tz.first + iz * az.dilation;
                    for iy in 0..ty.count {
                        let y = ty.first + iy * ay.dilation;
                        for ix in 0..tx.count {
                            let x = tx.first + ix * ax.dilation;
                            let pixel = plane_index(z, y, x);
                            let value = load::<S>(self.block, pixel * lanes);
                            acc = rule.add(simd, acc, value, simd.splat_u32s(pixel as u32));
                        }
                    }
                }
                let divisor = super::divisor(plan.reduction, &[tz, ty, tx]);
                self.finish(simd, rule, acc, local * ax.output + ox, divisor);
            }
        }
    }
}

/// Where one output row of a band's whole windows starts and how it divides.
struct OutputRow<'a, S: Simd> {
    /// The block pixel of its first window's first tap, and its first output's.
    top: usize,
    out: usize,
    /// The row's divisor factor and the columns' ones (average only).
    divisor: f32,
    columns: &'a [f32],
    /// 1 in every lane, opaque to the compiler, where sums may take multiply-adds.
    one: Option<S::f32s>,
}

/// Outputs of a row computed side by side with whole windows: independent chains hide the
/// adder's latency (sums are latency-bound one output at a time).
const OUTPUTS_AT_ONCE: usize = 4;

/// One task: the output rows `rows` (flattened (n, c, oz, oy)) of a channels-first plan.
pub(crate) struct SmallPlanes<'a, R> {
    pub rule: R,
    pub plan: &'a Plan<f32>,
    pub input: &'a [f32],
    pub output: &'a mut [f32],
    pub indices: Option<&'a mut [i64]>,
    pub rows: Range<usize>,
}

impl<R: Reducer> WithSimd for SmallPlanes<'_, R> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Self {
            rule,
            plan,
            input,
            output,
            indices,
            rows,
        } = self;
        let lanes = lanes::<S>();
        let [az, ay, ax] = plan.axes;
        let plane_len = az.input * ay.input * ax.input;
        let rows_per_plane = az.output * ay.output;
        let out_pixels = rows_per_plane * ax.output;
        let scheme = Scheme::of(plan, R::TRACKS_INDEX, lanes);
        let shape = scheme.shape;
        // Thread-local scratch for the transposed input block, then the transposed results of
        // a band (values, and indices as u32 bits), then the divisor factors: a stack array
        // would be zeroed on every call (a quarter of a tiny 8x8 call's time went to that
        // memset).
        let block_len = shape.pixels() * lanes;
        let band_len = scheme.band * ax.output * lanes;
        let factors = if R::DIVIDES && scheme.whole.is_some() {
            rows_per_plane + ax.output
        } else {
            0
        };
        let mut scratch = super::scratch::take(block_len + 2 * band_len + factors);
        let (block, results) = scratch.split_at_mut(block_len);
        let (values, results) = results.split_at_mut(band_len);
        let (chosen, results) = results.split_at_mut(band_len);
        let (row_factors, column_factors) =
            results[..factors].split_at_mut(factors.min(rows_per_plane));
        let divisors = DivisorFactors::new(plan, row_factors, column_factors);
        // The x taps of every output column, computed once (for at most 4 vectors of them; a
        // wider plan runs here only with whole windows, or as max with indices). Whole windows
        // need none: filling the array took 12 % of a `tiny` NCHW call (`perf`, AMD EPYC).
        let all_x_taps;
        let x_taps: &[Taps] = if scheme.whole.is_none() {
            let mut taps = [ax.taps(0); 4 * MAX_LANES];
            for (ox, taps) in taps.iter_mut().enumerate().take(ax.output) {
                *taps = ax.taps(ox);
            }
            all_x_taps = taps;
            &all_x_taps
        } else {
            &[]
        };
        // Columns of padding are written once; transposes write only the planes' columns.
        if shape.width != ax.input {
            fill_padding_columns(simd, block, shape, ax.input, R::FILL);
        }
        let ahead = Ahead::new(input.len() >= PREFETCH_FROM, PREFETCH_ROWS * ax.input);
        let mut destination = Destination {
            output,
            indices,
            rows: rows.clone(),
            rows_per_plane,
            out_width: ax.output,
        };
        let first_plane = rows.start / rows_per_plane;
        let end_plane = rows.end.div_ceil(rows_per_plane);
        let mut p0 = first_plane;
        while p0 < end_plane {
            let count = lanes.min(end_plane - p0);
            // Missing planes hold the neutral value and are never stored.
            if count < lanes {
                block.fill(R::FILL);
            }
            let planes = &input[p0 * plane_len..][..count * plane_len];
            // The output rows any plane of the group needs: with several planes, the first
            // needs the bottom rows and the last the top ones, so all of them.
            let group_rows = if count > 1 {
                0..rows_per_plane
            } else {
                let first = p0 * rows_per_plane;
                rows.start.saturating_sub(first)..(rows.end - first).min(rows_per_plane)
            };
            // Whole groups go back through the 8x8 transposes where they can (values only).
            let group_in_task = count == lanes
                && group_rows == (0..rows_per_plane)
                && rows.start <= p0 * rows_per_plane
                && (p0 + count) * rows_per_plane <= rows.end;
            let mut band_start = group_rows.start;
            while band_start < group_rows.end {
                let band = band_start..group_rows.end.min(band_start + scheme.band);
                band_start = band.end;
                let padded_rows = scheme.padded_rows(&band, ay.stride);
                load_block::<S, R>(simd, planes, plan, shape, padded_rows.clone(), block, ahead);
                let windows = BlockWindows {
                    block,
                    values: &mut *values,
                    chosen: &mut *chosen,
                    width: shape.width,
                    out_width: ax.output,
                    strides: (ay.stride, ax.stride),
                    rows: band.clone(),
                    first_pixel: padded_rows.start * shape.width,
                };
                match scheme.whole {
                    Some(2) if ax.stride == 1 => windows.whole::<S, R, 2, 1>(simd, rule, &divisors),
                    Some(2) => windows.whole::<S, R, 2, 2>(simd, rule, &divisors),
                    Some(3) if ax.stride == 1 => windows.whole::<S, R, 3, 1>(simd, rule, &divisors),
                    Some(3) => windows.whole::<S, R, 3, 2>(simd, rule, &divisors),
                    _ => windows.general(simd, rule, plan, x_taps),
                }
                // Back to channels-first: plane l's rows of the band, where the task holds them.
                let band_pixels = band.len() * ax.output;
                if group_in_task && !R::TRACKS_INDEX {
                    let at = (p0 * rows_per_plane - rows.start + band.start) * ax.output;
                    let out =
                        &mut destination.output[at..][..(count - 1) * out_pixels + band_pixels];
                    if transpose_out(simd, values, band_pixels, out_pixels, out) {
                        continue;
                    }
                }
                let lanes_of = LaneResults {
                    values,
                    chosen,
                    lanes,
                };
                lanes_of.copy_out(p0..p0 + count, &band, &mut destination);
            }
            p0 += count;
        }
        super::scratch::give_back(scratch);
    }
}

/// The task's outputs (and indices): its output rows `rows` of planes of `rows_per_plane` rows
/// of `out_width` pixels.
struct Destination<'a> {
    output: &'a mut [f32],
    indices: Option<&'a mut [i64]>,
    rows: Range<usize>,
    rows_per_plane: usize,
    out_width: usize,
}

/// A band's results in the transposed layout: pixel `p` of lane `l` at `p * lanes + l`.
struct LaneResults<'a> {
    values: &'a [f32],
    chosen: &'a [f32],
    lanes: usize,
}

impl LaneResults<'_> {
    /// Copies lane `l`'s results to plane `planes.start + l`'s rows of `band`, where the task
    /// holds them (element by element: the 8x8 transposes cover whole groups on v3 and v4).
    fn copy_out(&self, planes: Range<usize>, band: &Range<usize>, to: &mut Destination) {
        let (rows, width) = (&to.rows, to.out_width);
        for (l, plane) in planes.enumerate() {
            let plane_rows = plane * to.rows_per_plane;
            let lo = rows.start.max(plane_rows + band.start);
            let hi = rows.end.min(plane_rows + band.end);
            if lo >= hi {
                continue;
            }
            let band_row = |row: usize| (row - plane_rows - band.start) * width;
            let pixels = band_row(lo)..band_row(hi);
            let out = (lo - rows.start) * width..(hi - rows.start) * width;
            let lane = |results: &[f32], pixel: usize| results[pixel * self.lanes + l];
            for (o, pixel) in to.output[out.clone()].iter_mut().zip(pixels.clone()) {
                *o = lane(self.values, pixel);
            }
            if let Some(indices) = to.indices.as_deref_mut() {
                for (o, pixel) in indices[out].iter_mut().zip(pixels) {
                    *o = i64::from(lane(self.chosen, pixel).to_bits());
                }
            }
        }
    }
}

/// Writes `value` to the padding columns of every row of `block` (of shape `shape`), left and
/// right of the input's `input_width` columns, a vector a pixel. Filling the whole block
/// (43 KiB for `inception`'s 37x37 padded planes, once per task of 8 planes) took 56 k of
/// the 2.09 M instructions of an `inception` NCHW call (now 2.04 M).
#[inline(always)]
fn fill_padding_columns<S: Simd>(
    simd: S,
    block: &mut [f32],
    shape: BlockShape,
    input_width: usize,
    value: f32,
) {
    let lanes = lanes::<S>();
    let fill = simd.splat_f32s(value);
    let right = shape.left + input_width;
    for row in block.chunks_exact_mut(shape.width * lanes) {
        for pixel in (0..shape.left).chain(right..shape.width) {
            store::<S>(row, pixel * lanes, fill);
        }
    }
}

/// Fills `block` with the padded rows `padded_rows` (counted from the first padding row) of the
/// `planes` (at most `lanes` of them): input rows transposed in, rows outside the input the
/// op's neutral value. The padding columns keep what the caller wrote there.
#[inline(always)]
fn load_block<S: Simd, R: Reducer>(
    simd: S,
    planes: &[f32],
    plan: &Plan<f32>,
    shape: BlockShape,
    padded_rows: Range<usize>,
    block: &mut [f32],
    ahead: Ahead,
) {
    let lanes = lanes::<S>();
    let [az, ay, ax] = &plan.axes;
    let input_rows = az.input * ay.input;
    let plane_len = input_rows * ax.input;
    let row_len = shape.width * lanes;
    // The band's input rows, in padded rows, and where they start in the block.
    let start = padded_rows.start.max(shape.top).min(padded_rows.end);
    let end = padded_rows.end.min(shape.top + input_rows).max(start);
    let first_row = start - padded_rows.start;
    let rows_in = start.saturating_sub(shape.top)..end.saturating_sub(shape.top);
    block[..first_row * row_len].fill(R::FILL);
    block[(first_row + rows_in.len()) * row_len..padded_rows.len() * row_len].fill(R::FILL);
    if shape.width == ax.input {
        let pixels = rows_in.start * ax.input..rows_in.end * ax.input;
        let block = &mut block[first_row * row_len..];
        transpose_in(simd, planes, plane_len, pixels, block, ahead);
    } else {
        let planes = (planes, plane_len, ax.input);
        transpose_rows_in(simd, planes, rows_in, block, (shape, first_row), ahead);
    }
}

/// `block[(pixel - pixels.start) * lanes + l] = planes[l * plane_len + pixel]` for the
/// `planes.len() / plane_len` planes given (at most `lanes`). On v3 and v4 with `lanes`
/// planes, 8 pixels of 8 planes at a time go through an 8x8 transpose in registers (the scalar
/// loop was half of a `tiny_max` call in `perf`), the last 8 overlapping the ones before; on v4
/// each 8x8 block fills the lower or upper 8 lanes. Elsewhere, element by element.
#[inline(always)]
fn transpose_in<S: Simd>(
    simd: S,
    planes: &[f32],
    plane_len: usize,
    pixels: Range<usize>,
    block: &mut [f32],
    ahead: Ahead,
) {
    let lanes = lanes::<S>();
    let count = planes.len() / plane_len.max(1);
    let _ = simd;
    #[cfg(target_arch = "x86_64")]
    if count == lanes && pixels.len() >= 8 {
        use super::transpose::{as_v3, read_transposed, rows_of, write_strided};
        if let Some(v3) = as_v3(simd) {
            let len = pixels.len();
            for (half, eight) in planes.chunks_exact(8 * plane_len).enumerate() {
                let rows = rows_of(eight, pixels.start, plane_len, len);
                for next in (0..len).step_by(8) {
                    let at = next.min(len - 8);
                    if next % 16 == 0 {
                        ahead.fetch(eight, plane_len, pixels.start + at);
                    }
                    let values = read_transposed(v3, &rows, at);
                    write_strided(block, at * lanes + 8 * half, lanes, values);
                }
            }
            return;
        }
    }
    for l in 0..count {
        let source = &planes[l * plane_len..][pixels.clone()];
        for (at, &x) in source.iter().enumerate() {
            block[at * lanes + l] = x;
        }
    }
}

/// The planes' rows `rows` (2-D planes of `width` columns) into a block of shape `shape`,
/// from its row `first_row`: row `y` of plane `l` to
/// `block[((first_row + y - rows.start) * shape.width + left + x) * lanes + l]`. On v3 and v4
/// with `lanes` planes and rows of at least 8, 8 pixels of a row of 8 planes at a time through
/// the 8x8 transpose (the last 8 of a row overlapping the ones before); elsewhere element by
/// element.
#[inline(always)]
fn transpose_rows_in<S: Simd>(
    simd: S,
    (planes, plane_len, width): (&[f32], usize, usize),
    rows: Range<usize>,
    block: &mut [f32],
    (shape, first_row): (BlockShape, usize),
    ahead: Ahead,
) {
    let lanes = lanes::<S>();
    let count = planes.len() / plane_len.max(1);
    let first_input_row = rows.start;
    let target = |y: usize| (first_row + y - first_input_row) * shape.width + shape.left;
    let _ = simd;
    #[cfg(target_arch = "x86_64")]
    if count == lanes && width >= 8 {
        use super::transpose::{as_v3, read_transposed, rows_of, write_strided};
        if let Some(v3) = as_v3(simd) {
            let len = rows.len() * width;
            for (half, eight) in planes.chunks_exact(8 * plane_len).enumerate() {
                let source = rows_of(eight, rows.start * width, plane_len, len);
                for y in rows.clone() {
                    let row = (y - rows.start) * width;
                    for next in (0..width).step_by(8) {
                        let x = next.min(width - 8);
                        if next % 16 == 0 {
                            ahead.fetch(eight, plane_len, y * width + x);
                        }
                        let values = read_transposed(v3, &source, row + x);
                        write_strided(block, (target(y) + x) * lanes + 8 * half, lanes, values);
                    }
                }
            }
            return;
        }
    }
    for l in 0..count {
        for y in rows.clone() {
            let source = &planes[l * plane_len + y * width..][..width];
            for (x, &value) in source.iter().enumerate() {
                block[(target(y) + x) * lanes + l] = value;
            }
        }
    }
}

/// `planes[l * plane_stride + pixel] = results[pixel * lanes + l]` for `lanes` planes and
/// `pixels` pixels, 8 pixels of 8 planes at a time through the 8x8 transpose on v3 and v4
/// instead of element by element (`tiny_max` NCHW about 5 % faster); returns whether it wrote
/// them (not on other levels, nor for fewer than 8 pixels).
#[inline(always)]
fn transpose_out<S: Simd>(
    simd: S,
    results: &[f32],
    pixels: usize,
    plane_stride: usize,
    planes: &mut [f32],
) -> bool {
    let _ = (simd, results, pixels, plane_stride, &planes);
    #[cfg(target_arch = "x86_64")]
    {
        use super::transpose::{as_v3, read_strided, rows_of_mut, write_transposed};
        if let (Some(v3), true) = (as_v3(simd), pixels >= 8) {
            let lanes = lanes::<S>();
            for half in 0..lanes / 8 {
                let eight = &mut planes[half * 8 * plane_stride..];
                let mut eight = rows_of_mut(eight, plane_stride, pixels);
                // The last 8 pixels overlap the ones before when `pixels` is not a multiple of
                // 8 (rewriting the same values).
                for next in (0..pixels).step_by(8) {
                    let pixel = next.min(pixels - 8);
                    let values = read_strided(results, pixel * lanes + 8 * half, lanes);
                    write_transposed(v3, &mut eight, pixel, values);
                }
            }
            return true;
        }
    }
    false
}

/// Prefetch requests for the input rows a group's later bands read, `distance` elements ahead
/// in each of its planes (as the row kernels do, and on the same inputs).
#[derive(Clone, Copy)]
struct Ahead {
    prefetcher: Prefetcher,
    distance: usize,
}

impl Ahead {
    /// Requests `distance` elements ahead when `wanted`; none otherwise (with no check per
    /// plane: the loop over planes cost 7 % of `resnet` NCHW's instructions).
    fn new(wanted: bool, distance: usize) -> Ahead {
        Ahead {
            prefetcher: Prefetcher::new(wanted),
            distance: if wanted { distance } else { usize::MAX },
        }
    }

    /// Asks for the cache line `distance` past `pixel` in each of the 8 planes (where it lies
    /// in the plane).
    #[inline(always)]
    fn fetch(self, planes: &[f32], plane_len: usize, pixel: usize) {
        let target = pixel.saturating_add(self.distance);
        if target < plane_len {
            for plane in planes.chunks_exact(plane_len) {
                self.prefetcher.fetch(&plane[target..], 16);
            }
        }
    }
}
