//! Channels-first pooling of small planes whose output rows are shorter than four vectors (such as
//! 8x8 inputs pooled 2x2), where vectors over the output width would mostly hold nothing.
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
//! When every window is a whole 2x2 or 3x3 one (no padding, no dilation), the tap loops are
//! unrolled at compile time ([`whole_windows`]). With that and with the copy-out loop skipped
//! when the transpose wrote every pixel, `tiny_max` NCHW went from 1.3-1.5 µs to 0.33-0.57 µs
//! (`profile_case nchw tiny`, binaries alternated on a slow phase of the machine, best of 8;
//! NHWC ran 0.47-0.53 µs in the same minutes).

use std::ops::Range;

use pulp::{Simd, WithSimd};

use super::reduce::Reducer;
use super::simd_io::{lanes, load, store};
use crate::Plan;

/// Elements of the scratch that holds one transposed block of inputs (32 KiB: it stays in L1),
/// and the bound for its transposed results. A 128 KiB block let 55x55 planes in, but they ran
/// no faster than the row kernel (16 planes, 3x3/2 max, v3: 95-99 µs against 100-110 µs).
const SCRATCH: usize = 8 * 1024;

/// The widest level's lanes (v4): output rows are shorter than 4 of its vectors.
const MAX_LANES: usize = 16;

/// Whether the plan's planes are small enough for this kernel and its output rows shorter
/// than the row kernel's block of 4 vectors. Measured with `examples/profile_case.rs small`
/// (16 planes, 3x3/2 max, v3): 16x16 planes 8 µs here against 15-28 µs in the row kernel,
/// 24x24 16 µs against 34 µs, 32x32 29 µs against 42 µs. With results written to a transposed
/// block and copied out per plane (no per-lane branches), 16x16 planes went to 3.5-4.4 µs and
/// the 8x8 `tiny_max` to 1.2-1.6 µs from 1.7-2.8 µs (old and new binaries alternated, 4 runs).
pub(crate) fn applies(plan: &Plan<f32>, lanes: usize) -> bool {
    let plane: usize = plan.axes.iter().map(|a| a.input).product();
    let out_pixels: usize = plan.axes.iter().map(|a| a.output).product();
    plan.axes[2].output < 4 * lanes.min(MAX_LANES)
        && plane.saturating_mul(lanes) <= SCRATCH
        && out_pixels.saturating_mul(lanes) <= SCRATCH
}

/// The kernel size `k` when every window of the plan is a whole `k`x`k` one (2-D, no tap
/// in padding, no dilation) and `k` has a compiled loop (2 or 3): no per-output tap counts.
fn whole_windows(plan: &Plan<f32>) -> Option<usize> {
    let [az, ay, ax] = &plan.axes;
    let whole = |a: &crate::geometry::Axis| a.dilation == 1 && a.interior() == (0..a.output);
    let k = ax.kernel;
    (az.input == 1
        && az.output == 1
        && whole(ay)
        && whole(ax)
        && ay.kernel == k
        && matches!(k, 2 | 3))
    .then_some(k)
}

/// One block of `lanes` planes transposed to channels-last (`block[pixel][lane]`) and the
/// outputs it computes into `values` (and `chosen` for indices), by output pixel.
struct BlockWindows<'a> {
    block: &'a [f32],
    values: &'a mut [f32],
    chosen: &'a mut [f32],
    /// Input and output row lengths.
    width: usize,
    out_width: usize,
    /// (y, x) strides.
    strides: (usize, usize),
    /// The output rows to compute.
    rows: Range<usize>,
}

impl BlockWindows<'_> {
    /// Every window a whole `K`x`K` one ([`whole_windows`]): the taps unrolled at compile time,
    /// in the reference's row-major order.
    #[inline(always)]
    fn whole<S: Simd, R: Reducer, const K: usize>(self, simd: S, rule: R, divisor: S::f32s) {
        let lanes = lanes::<S>();
        let (sy, sx) = self.strides;
        for oy in self.rows {
            for ox in 0..self.out_width {
                let first = oy * sy * self.width + ox * sx;
                let mut acc = rule.init(simd, simd.splat_u32s(first as u32));
                for ty in 0..K {
                    for tx in 0..K {
                        let pixel = first + ty * self.width + tx;
                        let value = load::<S>(self.block, pixel * lanes);
                        acc = rule.add(simd, acc, value, simd.splat_u32s(pixel as u32));
                    }
                }
                let at = (oy * self.out_width + ox) * lanes;
                store::<S>(self.values, at, rule.finish(simd, acc, divisor));
                if R::TRACKS_INDEX {
                    store::<S>(self.chosen, at, bytemuck::cast(acc.index));
                }
            }
        }
    }
}

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
        let mut scratch = super::scratch::take((plane_len + 2 * out_pixels) * lanes);
        let (block, results) = scratch.split_at_mut(plane_len * lanes);
        let (values, chosen) = results.split_at_mut(out_pixels * lanes);
        let chosen = &mut chosen[..out_pixels * lanes];
        // The x taps of every output column (at most 4 vectors of them), computed once, unless
        // every window is a whole 2x2 or 3x3 one.
        let whole_windows = whole_windows(plan);
        let mut x_taps = [ax.taps(0); 4 * MAX_LANES];
        if whole_windows.is_none() {
            for (ox, taps) in x_taps.iter_mut().enumerate().take(ax.output) {
                *taps = ax.taps(ox);
            }
        }
        let x_taps = &x_taps[..ax.output];
        let divisor_of_whole = simd.splat_f32s(super::divisor(
            plan.reduction,
            &plan.axes.map(|a| a.taps_given_interior(0, &(0..1))),
        ));
        let first_plane = rows.start / rows_per_plane;
        let end_plane = rows.end.div_ceil(rows_per_plane);
        let mut p0 = first_plane;
        while p0 < end_plane {
            let count = lanes.min(end_plane - p0);
            // Transpose: missing planes hold the neutral value and are never stored.
            let block = &mut block[..plane_len * lanes];
            if count < lanes {
                block.fill(R::FILL);
            }
            let planes = &input[p0 * plane_len..][..count * plane_len];
            transpose_in(simd, planes, plane_len, block);
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
            // Tried and not kept: four output pixels per pass with their chains interleaved
            // (`tiny` NCHW no faster, 16x16 planes 10 % slower, best of 6-10 alternated runs).
            let windows = BlockWindows {
                block,
                values: &mut *values,
                chosen: &mut *chosen,
                width: ax.input,
                out_width: ax.output,
                strides: (ay.stride, ax.stride),
                rows: row_lo..row_hi,
            };
            match whole_windows {
                Some(2) => windows.whole::<S, R, 2>(simd, rule, divisor_of_whole),
                Some(3) => windows.whole::<S, R, 3>(simd, rule, divisor_of_whole),
                _ => {
                    for row in row_lo..row_hi {
                        let (oz, oy) = (row / ay.output, row % ay.output);
                        let (tz, ty) = (az.taps(oz), ay.taps(oy));
                        for (ox, &tx) in x_taps.iter().enumerate() {
                            let plane_index =
                                |z: usize, y: usize, x: usize| (z * ay.input + y) * ax.input + x;
                            let first = plane_index(tz.first, ty.first, tx.first);
                            let mut acc = rule.init(simd, simd.splat_u32s(first as u32));
                            for iz in 0..tz.count {
                                let z = tz.first + iz * az.dilation;
                                for iy in 0..ty.count {
                                    let y = ty.first + iy * ay.dilation;
                                    for ix in 0..tx.count {
                                        let x = tx.first + ix * ax.dilation;
                                        let pixel = plane_index(z, y, x);
                                        let value = load::<S>(block, pixel * lanes);
                                        acc = rule.add(
                                            simd,
                                            acc,
                                            value,
                                            simd.splat_u32s(pixel as u32),
                                        );
                                    }
                                }
                            }
                            let divisor = super::divisor(plan.reduction, &[tz, ty, tx]);
                            let at = (row * ax.output + ox) * lanes;
                            store::<S>(
                                values,
                                at,
                                rule.finish(simd, acc, simd.splat_f32s(divisor)),
                            );
                            if R::TRACKS_INDEX {
                                store::<S>(chosen, at, bytemuck::cast(acc.index));
                            }
                        }
                    }
                }
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
        use super::transpose::{as_v3, read, transpose_8x8};
        if let Some(v3) = as_v3(simd) {
            done = plane_len / 8 * 8;
            // Whole chunks (one 8x8 block of the output each): no bounds check per column.
            let chunks = block[..done * 8].chunks_exact_mut(64);
            for (pixel, chunk) in (0..done).step_by(8).zip(chunks) {
                let rows: [core::arch::x86_64::__m256; 8] =
                    core::array::from_fn(|l| read(&planes[l * plane_len + pixel..][..8]));
                for (column, out) in transpose_8x8(v3, rows)
                    .iter()
                    .zip(chunk.chunks_exact_mut(8))
                {
                    out.copy_from_slice(bytemuck::cast_slice(core::slice::from_ref(column)));
                }
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
        use super::transpose::{as_v3, read, transpose_8x8};
        if let Some(v3) = as_v3(simd) {
            let done = out_pixels / 8 * 8;
            for pixel in (0..done).step_by(8) {
                let rows: [core::arch::x86_64::__m256; 8] =
                    core::array::from_fn(|k| read(&results[(pixel + k) * 8..][..8]));
                for (l, row) in transpose_8x8(v3, rows).iter().enumerate() {
                    planes[l * out_pixels + pixel..][..8]
                        .copy_from_slice(bytemuck::cast_slice(core::slice::from_ref(row)));
                }
            }
            return done;
        }
    }
    0
}
