//! Channels-last output pixels whose windows lie whole inside the input (the interior pixels of
//! rows whose z and y taps are all inside), for rules without indices:
//!
//! ```text
//! offsets := each tap's distance from its window's first element, row-major (once per task)
//! (x stride 1: the whole run is one such pixel, its channels all its pixels' channels)
//! for each such pixel of a row (its window's first element one x stride after the last one's):
//!     (window off a vector boundary: one vector at its start, the blocks from the boundary on,
//!      one vector ending at its end instead of a partial one)
//!     for channel blocks of 8 (sums, flagged max) or 4, then the last 1-3 vectors, then a
//!     partial one:
//!         acc = the first tap's vectors
//!         for each later offset t: acc = rule(acc, input[window + t + c..])
//!         output[.., c..] = finish(acc, divisor)
//! ```
//!
//! `channels_last.rs` computes the same thing for any pixel, working out each window's taps,
//! divisor and addresses per pixel and per block: ~350 of the ~540 instructions an output pixel
//! took on `resnet` NHWC (64 channels, 3x3/2 max). Here a tap costs its vectors' work, an offset
//! and one bounds check. Taps are visited in the reference's order, so results are
//! bit-identical to it (and to the general kernel).
//!
//! Sums whose next output row's windows share rows with this one's (y stride below the
//! window's height, no y dilation, depth 1) take two output rows at a time ([`WholeRun::pair`]):
//! every input vector of a shared row is loaded once and added to both rows' accumulators, in
//! each one's row-major order.

use pulp::Simd;

use super::channels_last::{any_flagged, probe_nan};
use super::reduce::{Acc, MaxValue, Reducer};
use super::simd_io::{lanes, load, load_first, store, store_first, to_boundary};
use crate::Plan;

/// Most taps a window may have here (a 4x4x4 window); larger ones take the general kernel.
const MAX_TAPS: usize = 64;

/// Pixels of at least this many vectors start their blocks on a vector boundary. Measured with
/// `profile_case nhwc inception` (v3, 16 bytes off: `OFFSET=4 BEST=10`, best of 3 alternated
/// rounds, before against after): 288 channels 104 against 96 µs (84 µs on a boundary), 192
/// channels 71 against 68, 128 channels 48 against 48 (no cost off the boundary there); 64
/// channels (`resnet` NHWC, 3x3/2 max) lost, 76 against 104 µs, its one block of 8 vectors
/// split into four.
pub(super) const ALIGN_FROM: usize = 16;

/// A whole window's taps, as element offsets from its first element in row-major order.
#[derive(Clone, Copy)]
pub(super) struct TapOffsets {
    offsets: [usize; MAX_TAPS],
    count: usize,
    /// Taps a window row has (the window's width).
    per_row: usize,
}

impl TapOffsets {
    /// The offsets of `plan`'s windows (a channels-last plan), or `None` past [`MAX_TAPS`].
    pub fn new(plan: &Plan<f32>) -> Option<TapOffsets> {
        let [az, ay, ax] = &plan.axes;
        let count = az.kernel.checked_mul(ay.kernel)?.checked_mul(ax.kernel)?;
        if count > MAX_TAPS {
            return None;
        }
        let strides = &plan.input_strides;
        let mut offsets = [0; MAX_TAPS];
        let mut taps = offsets.iter_mut();
        for kz in 0..az.kernel {
            for ky in 0..ay.kernel {
                for kx in 0..ax.kernel {
                    // Each term is below the input's length: the window fits in the input.
                    let offset = kz * az.dilation * strides[2]
                        + ky * ay.dilation * strides[3]
                        + kx * ax.dilation * strides[4];
                    *taps.next()? = offset;
                }
            }
        }
        Some(TapOffsets {
            offsets,
            count,
            per_row: ax.kernel,
        })
    }

    fn get(&self) -> &[usize] {
        &self.offsets[..self.count]
    }
}

/// Whole windows one after another along a row: the first one's first element is at
/// `input[first..]`, each next one `step` elements on; each pixel's `channels` outputs follow
/// one another in `output`.
pub(super) struct WholeRun<'a> {
    pub input: &'a [f32],
    pub taps: &'a TapOffsets,
    pub first: usize,
    pub step: usize,
    pub divisor: f32,
}

impl WholeRun<'_> {
    /// Every pixel of the run, whose outputs fill `output` (`channels` a pixel).
    #[inline(always)]
    pub fn pixels<S: Simd, R: Reducer>(
        &self,
        simd: S,
        rule: R,
        output: &mut [f32],
        channels: usize,
    ) {
        let divisor = simd.splat_f32s(self.divisor);
        // x stride 1: output element j of the run reads `input[first + offset + j]` for each
        // tap offset, so the whole run is one wide pixel (no per-pixel head, tail or block
        // split). One loop for both, so that `pixel` is compiled once.
        let width = if self.step == channels {
            output.len()
        } else {
            channels
        };
        let mut window = self.first;
        for out in output.chunks_exact_mut(width) {
            self.pixel(simd, rule, window, out, divisor);
            window += self.step;
        }
    }

    /// The runs of two output rows at once, `outputs[0]` this run's and `outputs[1]` that of
    /// the windows `shift.1` elements further on, `shift.0` (fewer than the window's) rows
    /// down: each input vector of a row the two windows share is loaded once for both. Sums
    /// only (other rules run the two rows one after the other). Each output still takes its
    /// taps in row-major order, so the bits are those of [`Self::pixels`].
    ///
    /// The rows that output row oy + 1 shares with oy were loaded again from L2 for it:
    /// the rows of 3x3 windows over 35 pixels of 288 channels, 121 KB, do not stay in the 48
    /// KB L1. In C with intrinsics (Zen 5, `inception`'s interior): 9.3 cycles an output
    /// vector one row at a time, 6.3 two rows at a time, 5.7 four rows at a time. Here,
    /// `inception` NHWC on one thread: 59–63 µs one row at a time, 50–53 µs two (session 56).
    #[inline(always)]
    pub fn pair<S: Simd, R: Reducer>(
        &self,
        simd: S,
        rule: R,
        [top, bottom]: [&mut [f32]; 2],
        channels: usize,
        shift: (usize, usize),
    ) {
        if !R::SUMS {
            self.pixels(simd, rule, top, channels);
            let below = WholeRun {
                first: self.first + shift.1,
                ..*self
            };
            below.pixels(simd, rule, bottom, channels);
            return;
        }
        let divisor = simd.splat_f32s(self.divisor);
        let width = if self.step == channels {
            top.len()
        } else {
            channels
        };
        let mut window = self.first;
        let pixels = top
            .chunks_exact_mut(width)
            .zip(bottom.chunks_exact_mut(width));
        for (top, bottom) in pixels {
            self.pixel_pair(simd, rule, window, [top, bottom], shift, divisor);
            window += self.step;
        }
    }

    /// One pixel's channels of both rows of [`Self::pair`].
    #[inline(always)]
    fn pixel_pair<S: Simd, R: Reducer>(
        &self,
        simd: S,
        rule: R,
        window: usize,
        [top, bottom]: [&mut [f32]; 2],
        shift: (usize, usize),
        divisor: S::f32s,
    ) {
        let lanes = lanes::<S>();
        let channels = top.len();
        let mut c = 0;
        // As in `pixel`: wide pixels start their blocks on a vector boundary.
        let head = if channels >= ALIGN_FROM * lanes {
            to_boundary::<S>(self.input, window)
        } else {
            0
        };
        // 3x3 windows with y stride 1 (`inception`) take their tap loops with constant counts
        // (see [`Self::block_pair`]'s `K`).
        let three = self.taps.count == 9 && self.taps.per_row == 3 && shift.0 == 1;
        macro_rules! block {
            ($v:literal, $c:expr) => {{
                let outs = [&mut top[$c..], &mut bottom[$c..]];
                if three {
                    self.block_pair::<S, R, $v, 3>(simd, rule, window + $c, outs, shift, divisor);
                } else {
                    self.block_pair::<S, R, $v, 0>(simd, rule, window + $c, outs, shift, divisor);
                }
            }};
        }
        if head != 0 {
            block!(1, 0);
            c = head;
        }
        // Blocks of 4 vectors: 8 accumulators, which v3's 16 registers hold beside a load.
        while c + 4 * lanes <= channels {
            block!(4, c);
            c += 4 * lanes;
        }
        match (channels - c) / lanes {
            0 => {}
            1 => block!(1, c),
            2 => block!(2, c),
            _ => block!(3, c),
        }
        c += (channels - c) / lanes * lanes;
        if c < channels && head != 0 {
            block!(1, channels - lanes);
        } else if c < channels {
            self.partial(simd, rule, window + c, &mut top[c..], divisor);
            let below = window + shift.1 + c;
            self.partial(simd, rule, below, &mut bottom[c..], divisor);
        }
    }

    /// `V` whole vectors of channels of both rows of [`Self::pair`], from `input[at..]`. `K`
    /// is 0, or the width and height of a square window with y stride 1 (its tap loops then
    /// have constant counts, unrolled: 3x3, `inception` NHWC, 1.62 to 1.41 million
    /// instructions a call on v3 under callgrind; v4 one thread, `profile_case nhwc
    /// inception`, 33 alternated pairs of runs on a noisy VM: faster in 20, best 48.5 against
    /// 51.0 µs; see `docs/speed-history.md`, session 58).
    #[inline(always)]
    fn block_pair<S: Simd, R: Reducer, const V: usize, const K: usize>(
        &self,
        simd: S,
        rule: R,
        at: usize,
        [top, bottom]: [&mut [f32]; 2],
        (rows, below): (usize, usize),
        divisor: S::f32s,
    ) {
        let lanes = lanes::<S>();
        let unused = simd.splat_u32s(0);
        let (taps, rows, per_row) = if K != 0 {
            (&self.taps.offsets[..K * K], 1, K)
        } else {
            (self.taps.get(), rows, self.taps.per_row)
        };
        // Taps of the top window only, then of both (the bottom window's first rows), then of
        // the bottom window only (its last rows, `below` further on).
        let top_only = rows * per_row;
        let bottom_only = taps.len() - top_only;
        // (A macro, not a closure: closures in kernels are compiled without the level's
        // target features.)
        macro_rules! load_at {
            ($offset:expr) => {
                &self.input[at + $offset..][..V * lanes]
            };
        }
        let mut up = [rule.init(simd, unused); V];
        let mut down = up;
        let pixel = load_at!(taps[0]);
        for (v, acc) in up.iter_mut().enumerate() {
            *acc = rule.first(simd, load::<S>(pixel, v * lanes), unused);
        }
        for &offset in &taps[1..top_only] {
            let pixel = load_at!(offset);
            for (v, acc) in up.iter_mut().enumerate() {
                *acc = rule.add(simd, *acc, load::<S>(pixel, v * lanes), unused);
            }
        }
        let pixel = load_at!(taps[top_only]);
        for (v, (up, down)) in up.iter_mut().zip(&mut down).enumerate() {
            let value = load::<S>(pixel, v * lanes);
            *up = rule.add(simd, *up, value, unused);
            *down = rule.first(simd, value, unused);
        }
        for &offset in &taps[top_only + 1..] {
            let pixel = load_at!(offset);
            for (v, (up, down)) in up.iter_mut().zip(&mut down).enumerate() {
                let value = load::<S>(pixel, v * lanes);
                *up = rule.add(simd, *up, value, unused);
                *down = rule.add(simd, *down, value, unused);
            }
        }
        for &offset in &taps[bottom_only..] {
            let pixel = load_at!(below + offset);
            for (v, acc) in down.iter_mut().enumerate() {
                *acc = rule.add(simd, *acc, load::<S>(pixel, v * lanes), unused);
            }
        }
        for (accs, out) in [(up, top), (down, bottom)] {
            for (acc, out) in accs.iter().zip(out[..V * lanes].chunks_exact_mut(lanes)) {
                store::<S>(out, 0, rule.finish(simd, *acc, divisor));
            }
        }
    }

    /// One pixel's channels, whose window starts at `input[window..]`.
    #[inline(always)]
    fn pixel<S: Simd, R: Reducer>(
        &self,
        simd: S,
        rule: R,
        window: usize,
        out: &mut [f32],
        divisor: S::f32s,
    ) {
        let lanes = lanes::<S>();
        let channels = out.len();
        let mut c = 0;
        // Wide pixels off a vector boundary: a first vector, then the rest from the next
        // boundary on (its first channels again, with the same bits). See [`ALIGN_FROM`].
        let head = if channels >= ALIGN_FROM * lanes {
            to_boundary::<S>(self.input, window)
        } else {
            0
        };
        if head != 0 {
            self.block::<S, R, 1>(simd, rule, window, out, divisor);
            c = head;
        }
        // Block sizes as in `channels_last::pixel`, for the same reasons.
        while (R::SUMS || R::FLAGS_NAN) && c + 8 * lanes <= channels {
            self.block::<S, R, 8>(simd, rule, window + c, &mut out[c..], divisor);
            c += 8 * lanes;
        }
        while c + 4 * lanes <= channels {
            self.block::<S, R, 4>(simd, rule, window + c, &mut out[c..], divisor);
            c += 4 * lanes;
        }
        match (channels - c) / lanes {
            0 => {}
            1 => self.block::<S, R, 1>(simd, rule, window + c, &mut out[c..], divisor),
            2 => self.block::<S, R, 2>(simd, rule, window + c, &mut out[c..], divisor),
            _ => self.block::<S, R, 3>(simd, rule, window + c, &mut out[c..], divisor),
        }
        c += (channels - c) / lanes * lanes;
        if c < channels && head != 0 {
            // The last vector ends at the pixel's end (again with the same bits where it
            // overlaps the one before).
            let last = channels - lanes;
            self.block::<S, R, 1>(simd, rule, window + last, &mut out[last..], divisor);
        } else if c < channels {
            self.partial(simd, rule, window + c, &mut out[c..], divisor);
        }
    }

    /// `V` whole vectors of channels from `input[at..]` into `out[..V * lanes]`.
    #[inline(always)]
    fn block<S: Simd, R: Reducer, const V: usize>(
        &self,
        simd: S,
        rule: R,
        at: usize,
        out: &mut [f32],
        divisor: S::f32s,
    ) {
        let lanes = lanes::<S>();
        let mut accs = self.sweep::<S, R, V>(simd, rule, at);
        if R::FLAGS_NAN && any_flagged(simd, rule, &accs) {
            accs = self.sweep::<S, MaxValue, V>(simd, MaxValue, at);
        }
        for (acc, out) in accs.iter().zip(out[..V * lanes].chunks_exact_mut(lanes)) {
            store::<S>(out, 0, rule.finish(simd, *acc, divisor));
        }
    }

    /// The accumulators of `V` vectors of channels from `input[at..]`.
    #[inline(always)]
    fn sweep<S: Simd, R: Reducer, const V: usize>(
        &self,
        simd: S,
        rule: R,
        at: usize,
    ) -> [Acc<S>; V] {
        let lanes = lanes::<S>();
        let unused = simd.splat_u32s(0);
        let taps = self.taps.get();
        let pixel = &self.input[at + taps[0]..][..V * lanes];
        let mut accs = [rule.init(simd, unused); V];
        for (v, acc) in accs.iter_mut().enumerate() {
            *acc = rule.first(simd, load::<S>(pixel, v * lanes), unused);
        }
        if R::FLAGS_NAN {
            probe_nan(simd, &mut accs, pixel);
        }
        for &offset in &taps[1..] {
            let pixel = &self.input[at + offset..][..V * lanes];
            for (v, acc) in accs.iter_mut().enumerate() {
                *acc = rule.add(simd, *acc, load::<S>(pixel, v * lanes), unused);
            }
            if R::FLAGS_NAN {
                probe_nan(simd, &mut accs, pixel);
            }
        }
        accs
    }

    /// The last `out.len()` (< lanes) channels, from `input[at..]`.
    #[inline(always)]
    fn partial<S: Simd, R: Reducer>(
        &self,
        simd: S,
        rule: R,
        at: usize,
        out: &mut [f32],
        divisor: S::f32s,
    ) {
        let mut acc = self.partial_sweep(simd, rule, at, out.len());
        if R::FLAGS_NAN && any_flagged(simd, rule, &[acc]) {
            acc = self.partial_sweep(simd, MaxValue, at, out.len());
        }
        store_first::<S>(simd, out, 0, out.len(), rule.finish(simd, acc, divisor));
    }

    /// The accumulator of the `width` (< lanes) channels at `input[at..]`.
    #[inline(always)]
    fn partial_sweep<S: Simd, R: Reducer>(
        &self,
        simd: S,
        rule: R,
        at: usize,
        width: usize,
    ) -> Acc<S> {
        let lanes = lanes::<S>();
        let unused = simd.splat_u32s(0);
        let mut acc = rule.init(simd, unused);
        for (t, &offset) in self.taps.get().iter().enumerate() {
            let at = at + offset;
            // As in `channels_last::block`: a whole vector where the input goes on (its other
            // lanes are never mixed in or stored), a copy at the input's end.
            let value = if at + lanes <= self.input.len() {
                load::<S>(self.input, at)
            } else {
                load_first(simd, self.input, at, width, R::FILL)
            };
            acc = if t == 0 {
                rule.first(simd, value, unused)
            } else {
                rule.add(simd, acc, value, unused)
            };
            if R::FLAGS_NAN {
                acc.index = pulp::cast(simd.add_f32s(pulp::cast(acc.index), value));
            }
        }
        acc
    }
}
