//! Channels-first pooling of small planes whose output rows are shorter than four vectors (such as
//! 8x8 inputs pooled 2x2), where vectors over the output width would mostly hold nothing, and of
//! mid-sized planes (up to about 40x40) whose windows are all square 2x2 or 3x3 ones.
//! Vectors run over planes instead:
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
//! loops are unrolled at compile time, 4 outputs side by side ([`Scheme::whole`]). With that and with the copy-out loop skipped
//! when the transpose wrote every pixel, `tiny_max` NCHW went from 1.3-1.5 µs to 0.33-0.57 µs
//! (`profile_case nchw tiny`, binaries alternated on a slow phase of the machine, best of 8;
//! NHWC ran 0.47-0.53 µs in the same minutes).

use std::ops::Range;

use pulp::{Simd, WithSimd};

use super::reduce::{Acc, Reducer};
use super::simd_io::{lanes, load, store};
use crate::Plan;
use crate::geometry::Taps;

/// Elements of the scratch that holds one transposed block of inputs (32 KiB: it stays in L1),
/// and the bound for its transposed results. A 128 KiB block let 55x55 planes in, but they ran
/// no faster than the row kernel (16 planes, 3x3/2 max, v3: 95-99 µs against 100-110 µs).
const SCRATCH: usize = 8 * 1024;

/// The same bounds for plans whose windows are all whole in the block ([`Scheme::whole`]),
/// whatever their output width (128 KiB each: L2). Measured with `profile_case` against 16 Ki
/// elements (old and new binaries alternated, best 3 of 6-8 runs): `alexnet` NCHW (55x55
/// planes, 3x3/2) 164-233 µs in the row kernel to 135-144 µs here, `train` NCHW (56x56 planes
/// with a 57x57 block, 3x3/2 pad 1) 4.3-6.6 ms to 3.3-5.6 ms. `inception`'s 35x35 planes fit
/// either way: see [`Scheme::of`].
const WHOLE_SCRATCH: usize = 32 * 1024;

/// The widest level's lanes (v4): output rows are shorter than 4 of its vectors.
const MAX_LANES: usize = 16;

/// Whether the plan's planes are small enough for this kernel and its output rows shorter
/// than the row kernel's block of 4 vectors, or its windows all whole 2x2 or 3x3 ones in a
/// block of at most [`WHOLE_SCRATCH`]. Measured with `examples/profile_case.rs small`
/// (16 planes, 3x3/2 max, v3): 16x16 planes 8 µs here against 15-28 µs in the row kernel,
/// 24x24 16 µs against 34 µs, 32x32 29 µs against 42 µs. With results written to a transposed
/// block and copied out per plane (no per-lane branches), 16x16 planes went to 3.5-4.4 µs and
/// the 8x8 `tiny_max` to 1.2-1.6 µs from 1.7-2.8 µs (old and new binaries alternated, 4 runs).
pub(crate) fn applies(plan: &Plan<f32>, lanes: usize) -> bool {
    let plane: usize = plan.axes.iter().map(|a| a.input).product();
    let out_pixels: usize = plan.axes.iter().map(|a| a.output).product();
    let fits = |pixels: usize, limit: usize| {
        pixels.saturating_mul(lanes) <= limit && out_pixels.saturating_mul(lanes) <= limit
    };
    let narrow = plan.axes[2].output < 4 * lanes.min(MAX_LANES) && fits(plane, SCRATCH);
    // Max plans may run with indices, which use the plain block (never larger).
    let scheme = Scheme::of(plan, false);
    narrow || (scheme.whole.is_some() && fits(scheme.shape.pixels(), WHOLE_SCRATCH))
}

/// Where a block keeps each plane: `height` rows of `width` pixels (z and y flattened), the
/// plane's pixels from row `top`, column `left`, the rest (padding) the op's neutral value.
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
}

impl Scheme {
    /// The scheme for `plan`; `indexed` (max with indices) keeps the plain layout, whose pixels
    /// are the plane's indices. Windows that reach into padding are whole in a block that holds
    /// the padding (the op's neutral value: −∞ never wins a max, +0 changes no sum's bits) with
    /// the average divisor looked up per output. Measured with `profile_case` (old and new
    /// binaries alternated, best 3 of 8 runs): `inception` NCHW (288 planes of 35x35, which
    /// left the row kernel for this one) 360-496 µs to 280-356 µs, with NHWC at 237-317 µs in
    /// the same minutes; `small` (16 planes of 16x16, 3x3/2 pad 1) 2.3-3.4 µs to 1.7-2.3 µs.
    /// Most of the remaining instructions are the transposes in and out (`callgrind`).
    fn of(plan: &Plan<f32>, indexed: bool) -> Scheme {
        let [az, ay, ax] = &plan.axes;
        let plain = Scheme {
            shape: BlockShape {
                top: 0,
                left: 0,
                height: az.input * ay.input,
                width: ax.input,
            },
            whole: None,
        };
        let k = ax.kernel;
        let compiled = az.input == 1
            && az.output == 1
            && matches!(k, 2 | 3)
            && matches!(ax.stride, 1 | 2)
            && ay.kernel == k
            && ay.dilation == 1
            && ax.dilation == 1;
        if !compiled {
            return plain;
        }
        let inside = |a: &crate::geometry::Axis| a.interior() == (0..a.output);
        if inside(ay) && inside(ax) {
            return Scheme {
                whole: Some(k),
                ..plain
            };
        }
        if indexed {
            return plain;
        }
        // Rows and columns from the first window's first tap to the last window's last tap
        // (or the input's end).
        let extent = |a: &crate::geometry::Axis| {
            (a.input + a.pad_begin).max((a.output - 1) * a.stride + a.kernel)
        };
        Scheme {
            shape: BlockShape {
                top: ay.pad_begin,
                left: ax.pad_begin,
                height: extent(ay),
                width: extent(ax),
            },
            whole: Some(k),
        }
    }
}

/// One block of `lanes` planes transposed to channels-last (`block[pixel][lane]`) and the
/// outputs it computes into `values` (and `chosen` for indices), by output pixel.
struct BlockWindows<'a> {
    block: &'a [f32],
    values: &'a mut [f32],
    chosen: &'a mut [f32],
    /// Block and output row lengths.
    width: usize,
    out_width: usize,
    /// (y, x) strides.
    strides: (usize, usize),
    /// The output rows to compute.
    rows: Range<usize>,
}

impl BlockWindows<'_> {
    /// Every window a whole `K`x`K` one ([`Scheme::whole`]) with x stride `SX`: the taps
    /// unrolled at compile time, in the reference's row-major order, for [`OUTPUTS_AT_ONCE`]
    /// outputs of a row side by side (independent chains), then the row's last ones singly.
    /// `divisors` holds each output pixel's average divisor (read only if the rule divides).
    #[inline(always)]
    fn whole<S: Simd, R: Reducer, const K: usize, const SX: usize>(
        mut self,
        simd: S,
        rule: R,
        divisors: &[f32],
    ) {
        let sy = self.strides.0;
        debug_assert_eq!(self.strides.1, SX);
        for oy in self.rows.clone() {
            let top = oy * sy * self.width;
            let mut ox = 0;
            while ox + OUTPUTS_AT_ONCE <= self.out_width {
                let accs = self.windows::<S, R, K, SX, OUTPUTS_AT_ONCE>(simd, rule, top + ox * SX);
                for (j, acc) in accs.into_iter().enumerate() {
                    self.finish(simd, rule, acc, oy * self.out_width + ox + j, divisors);
                }
                ox += OUTPUTS_AT_ONCE;
            }
            for ox in ox..self.out_width {
                let [acc] = self.windows::<S, R, K, SX, 1>(simd, rule, top + ox * SX);
                self.finish(simd, rule, acc, oy * self.out_width + ox, divisors);
            }
        }
    }

    /// The `N` windows of a row whose first taps are `first`, `first + SX`, ...: one bounds
    /// check per window row.
    #[inline(always)]
    fn windows<S: Simd, R: Reducer, const K: usize, const SX: usize, const N: usize>(
        &self,
        simd: S,
        rule: R,
        first: usize,
    ) -> [Acc<S>; N] {
        let lanes = lanes::<S>();
        let mut accs: [Acc<S>; N] =
            core::array::from_fn(|j| rule.init(simd, simd.splat_u32s((first + j * SX) as u32)));
        for ty in 0..K {
            let start = first + ty * self.width;
            let row = &self.block[start * lanes..][..((N - 1) * SX + K) * lanes];
            for tx in 0..K {
                for (j, acc) in accs.iter_mut().enumerate() {
                    let value = load::<S>(row, (j * SX + tx) * lanes);
                    let pixel = (start + j * SX + tx) as u32;
                    *acc = rule.add(simd, *acc, value, simd.splat_u32s(pixel));
                }
            }
        }
        accs
    }

    /// Stores output pixel `out_pixel`'s result (and index).
    #[inline(always)]
    fn finish<S: Simd, R: Reducer>(
        &mut self,
        simd: S,
        rule: R,
        acc: Acc<S>,
        out_pixel: usize,
        divisors: &[f32],
    ) {
        let lanes = lanes::<S>();
        let divisor = if R::DIVIDES {
            simd.splat_f32s(divisors[out_pixel])
        } else {
            simd.splat_f32s(1.0)
        };
        let at = out_pixel * lanes;
        store::<S>(self.values, at, rule.finish(simd, acc, divisor));
        if R::TRACKS_INDEX {
            store::<S>(self.chosen, at, bytemuck::cast(acc.index));
        }
    }
}

impl BlockWindows<'_> {
    /// Any window of a plain block (its pixels are the plane's indices): tap counts per output,
    /// `x_taps` holding the first outputs' x taps (the rest are computed on the fly).
    /// Tried and not kept here: four output pixels per pass with their chains interleaved
    /// (`tiny` NCHW no faster, 16x16 planes 10 % slower, best of 6-10 alternated runs; the
    /// whole-window loop does gain from it).
    #[inline(always)]
    fn general<S: Simd, R: Reducer>(self, simd: S, rule: R, plan: &Plan<f32>, x_taps: &[Taps]) {
        let lanes = lanes::<S>();
        let [az, ay, ax] = &plan.axes;
        let plane_index = |z: usize, y: usize, x: usize| (z * ay.input + y) * ax.input + x;
        for row in self.rows {
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
                let at = (row * ax.output + ox) * lanes;
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
    }
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
            mut indices,
            rows,
        } = self;
        let lanes = lanes::<S>();
        let [az, ay, ax] = plan.axes;
        let plane_len = az.input * ay.input * ax.input;
        let rows_per_plane = az.output * ay.output;
        let out_pixels = rows_per_plane * ax.output;
        // Thread-local scratch for the transposed input block, then the transposed results
        // (values, and indices as u32 bits): a stack array would be zeroed on every call (a
        // quarter of a tiny 8x8 call's time went to that memset).
        let scheme = Scheme::of(plan, R::TRACKS_INDEX);
        let shape = scheme.shape;
        let padded = shape.pixels() != plane_len;
        let block_len = shape.pixels() * lanes;
        let mut scratch = super::scratch::take(block_len + (2 * lanes + 1) * out_pixels);
        let (block, results) = scratch.split_at_mut(block_len);
        let (values, results) = results.split_at_mut(out_pixels * lanes);
        let (chosen, divisors) = results.split_at_mut(out_pixels * lanes);
        let divisors = &mut divisors[..out_pixels];
        // The x taps of every output column, computed once (for at most 4 vectors of them; a
        // wider plan runs here only with whole windows, or as max with indices).
        let mut x_taps = [ax.taps(0); 4 * MAX_LANES];
        if scheme.whole.is_none() {
            for (ox, taps) in x_taps.iter_mut().enumerate().take(ax.output) {
                *taps = ax.taps(ox);
            }
        }
        // Whole windows with an average divisor: each output pixel's divisor.
        if scheme.whole.is_some() && R::DIVIDES {
            let x_taps: Vec<_> = (0..ax.output).map(|ox| ax.taps(ox)).collect();
            for (oy, divisors) in divisors.chunks_exact_mut(ax.output).enumerate() {
                let ty = ay.taps(oy);
                for (divisor, &tx) in divisors.iter_mut().zip(&x_taps) {
                    *divisor = super::divisor(plan.reduction, &[az.taps(0), ty, tx]);
                }
            }
        }
        // The padding around the planes is written once; transposes write only the planes.
        if padded {
            block.fill(R::FILL);
        }
        let first_plane = rows.start / rows_per_plane;
        let end_plane = rows.end.div_ceil(rows_per_plane);
        let mut p0 = first_plane;
        while p0 < end_plane {
            let count = lanes.min(end_plane - p0);
            // Transpose: missing planes hold the neutral value and are never stored.
            if count < lanes {
                block.fill(R::FILL);
            }
            let planes = &input[p0 * plane_len..][..count * plane_len];
            if padded {
                transpose_rows_in(simd, planes, (ay.input, ax.input), block, shape);
            } else {
                transpose_in(simd, planes, plane_len, block);
            }
            // The output rows any plane of the block needs: with several planes, the first
            // needs the bottom rows and the last the top ones, so all of them.
            let (row_lo, row_hi) = if count > 1 {
                (0, rows_per_plane)
            } else {
                let first = p0 * rows_per_plane;
                (
                    rows.start.saturating_sub(first),
                    (rows.end - first).min(rows_per_plane),
                )
            };
            let windows = BlockWindows {
                block,
                values: &mut *values,
                chosen: &mut *chosen,
                width: shape.width,
                out_width: ax.output,
                strides: (ay.stride, ax.stride),
                rows: row_lo..row_hi,
            };
            match scheme.whole {
                Some(2) if ax.stride == 1 => windows.whole::<S, R, 2, 1>(simd, rule, divisors),
                Some(2) => windows.whole::<S, R, 2, 2>(simd, rule, divisors),
                Some(3) if ax.stride == 1 => windows.whole::<S, R, 3, 1>(simd, rule, divisors),
                Some(3) => windows.whole::<S, R, 3, 2>(simd, rule, divisors),
                _ => windows.general(simd, rule, plan, &x_taps),
            }
            // Back to channels-first: plane l's rows, where the task holds them. Whole planes
            // of 8 go through the 8x8 transpose where they can (values only).
            let whole = count == 8
                && (row_lo, row_hi) == (0, rows_per_plane)
                && rows.start <= p0 * rows_per_plane
                && (p0 + count) * rows_per_plane <= rows.end;
            let transposed = if whole && !R::TRACKS_INDEX {
                let out_start = (p0 * rows_per_plane - rows.start) * ax.output;
                let out = &mut output[out_start..][..count * out_pixels];
                transpose_out(simd, values, out_pixels, out)
            } else {
                0
            };
            // Nothing is left when the transpose wrote every pixel (skipping the loop saves a
            // third of a `tiny_max` call: its set-up ran per plane even with nothing to copy).
            let planes_left = if transposed < out_pixels { count } else { 0 };
            for l in 0..planes_left {
                let plane_rows = (p0 + l) * rows_per_plane;
                let lo = rows.start.max(plane_rows + row_lo);
                let hi = rows.end.min(plane_rows + row_hi);
                if lo >= hi {
                    continue;
                }
                let pixels = (lo - plane_rows) * ax.output..(hi - plane_rows) * ax.output;
                let out = (lo - rows.start) * ax.output..(hi - rows.start) * ax.output;
                // Pixels the transpose wrote (whole planes: from the plane's first pixel).
                let pixels = pixels.start + transposed..pixels.end;
                let out = out.start + transposed..out.end;
                let lane = |results: &[f32], pixel: usize| results[pixel * lanes + l];
                for (o, pixel) in output[out.clone()].iter_mut().zip(pixels.clone()) {
                    *o = lane(values, pixel);
                }
                if let Some(indices) = indices.as_deref_mut() {
                    for (o, pixel) in indices[out].iter_mut().zip(pixels) {
                        *o = i64::from(lane(chosen, pixel).to_bits());
                    }
                }
            }
            p0 += count;
        }
        super::scratch::give_back(scratch);
    }
}

/// `block[pixel * lanes + l] = planes[l * plane_len + pixel]` for the `planes.len() / plane_len`
/// planes given (at most `lanes`). On v3 with 8 planes, 8 pixels at a time go through an 8x8
/// transpose in registers (the scalar loop was half of a `tiny_max` call in `perf`); elsewhere,
/// and for the pixels past the last multiple of 8, element by element.
#[inline(always)]
fn transpose_in<S: Simd>(simd: S, planes: &[f32], plane_len: usize, block: &mut [f32]) {
    let lanes = lanes::<S>();
    let count = planes.len() / plane_len.max(1);
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
    let mut done = 0;
    let _ = simd;
    #[cfg(target_arch = "x86_64")]
    if count == 8 {
        use super::transpose::{as_v3, read_block, transpose_8x8, write_block};
        if let Some(v3) = as_v3(simd) {
            done = plane_len / 8 * 8;
            for pixel in (0..done).step_by(8) {
                let rows = read_block(planes, pixel, plane_len);
                write_block(block, pixel * 8, 8, transpose_8x8(v3, rows));
            }
        }
    }
    if done == plane_len {
        return;
    }
    for l in 0..count {
        let source = &planes[l * plane_len..][..plane_len];
        for (pixel, &x) in source.iter().enumerate().skip(done) {
            block[pixel * lanes + l] = x;
        }
    }
}

/// The planes' rows into a block of shape `shape` (2-D planes of `(height, width)`): row `y`
/// of plane `l` to `block[((top + y) * shape.width + left + x) * lanes + l]`. On v3 with 8 planes
/// and rows of at least 8, 8 pixels of a row at a time through the 8x8 transpose (the last 8
/// of a row overlapping the ones before); elsewhere element by element.
#[inline(always)]
fn transpose_rows_in<S: Simd>(
    simd: S,
    planes: &[f32],
    (height, width): (usize, usize),
    block: &mut [f32],
    shape: BlockShape,
) {
    let lanes = lanes::<S>();
    let plane_len = height * width;
    let count = planes.len() / plane_len.max(1);
    let _ = simd;
    #[cfg(target_arch = "x86_64")]
    if count == 8 && width >= 8 {
        use super::transpose::{as_v3, read_block, transpose_8x8, write_block};
        if let Some(v3) = as_v3(simd) {
            for y in 0..height {
                let source = y * width;
                let target = (shape.top + y) * shape.width + shape.left;
                for next in (0..width).step_by(8) {
                    let x = next.min(width - 8);
                    let rows = read_block(planes, source + x, plane_len);
                    write_block(block, (target + x) * 8, 8, transpose_8x8(v3, rows));
                }
            }
            return;
        }
    }
    for l in 0..count {
        for y in 0..height {
            let source = &planes[l * plane_len + y * width..][..width];
            let target = (shape.top + y) * shape.width + shape.left;
            for (x, &value) in source.iter().enumerate() {
                block[(target + x) * lanes + l] = value;
            }
        }
    }
}

/// `planes[l * out_pixels + pixel] = results[pixel * 8 + l]` for 8 planes, 8 pixels at a time
/// through the 8x8 transpose on v3 instead of element by element (`tiny_max` NCHW about 5 %
/// faster); returns how many pixels of each plane it wrote (0 elsewhere).
#[inline(always)]
fn transpose_out<S: Simd>(
    simd: S,
    results: &[f32],
    out_pixels: usize,
    planes: &mut [f32],
) -> usize {
    let _ = (simd, results, out_pixels, &planes);
    #[cfg(target_arch = "x86_64")]
    {
        use super::transpose::{as_v3, read_block, transpose_8x8, write_block};
        if let (Some(v3), true) = (as_v3(simd), out_pixels >= 8) {
            // The last 8 pixels overlap the ones before when `out_pixels` is not a multiple
            // of 8 (rewriting the same values).
            for next in (0..out_pixels).step_by(8) {
                let pixel = next.min(out_pixels - 8);
                let rows = read_block(results, pixel * 8, 8);
                write_block(planes, pixel, out_pixels, transpose_8x8(v3, rows));
            }
            return out_pixels;
        }
    }
    0
}
