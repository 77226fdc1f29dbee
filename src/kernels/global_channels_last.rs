//! Global pooling in channels-last layout (max values, average, L1, L2): one pass over each
//! image's pixels in memory order, with a running result per channel in a buffer that stays in
//! L1.
//!
//! ```text
//! for each image n of the task:
//!     acc[0..C] = init
//!     for each pixel p (in row-major order): acc[c] = rule(acc[c], input[n, p, c]) for every c
//!         (8 pixels a pass over the channels: each vector of acc loaded and stored once for them)
//!     output[n, c] = finish(acc[c], divisor)
//! ```
//!
//! The window kernel (`channels_last.rs`) walks a channel block through every pixel instead:
//! for a [32, 2048, 7, 7] input that is 49 reads 8 KiB apart per block, which the hardware
//! prefetchers do not follow (2.3-2.9 ms at one thread, about 3 times a copy of the same
//! bytes). Folding one pixel a pass (a store for every vector read) took 689-861 µs for
//! `global_avg` NHWC against 330-410 µs for 8 a pass (`ITERS=200 profile_case nhwc global`,
//! AMD EPYC Zen 3, v3, 3 rounds alternated). Each channel still sees its pixels in the
//! reference's order, so results are bit-identical to it.

use std::ops::Range;

use pulp::{Simd, WithSimd};

use super::reduce::{Acc, Reducer};
use super::scratch;
use super::simd_io::{lanes, load, load_first, store, store_first};
use crate::Plan;

/// One task: the output rows `rows` (one per image) of a global channels-last plan.
pub(crate) struct GlobalChannelsLast<'a, R> {
    pub rule: R,
    pub plan: &'a Plan<f32>,
    pub input: &'a [f32],
    pub output: &'a mut [f32],
    pub rows: Range<usize>,
}

impl<R: Reducer> WithSimd for GlobalChannelsLast<'_, R> {
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
        let channels = plan.channels;
        if channels == 0 {
            return;
        }
        let pixels: usize = plan.axes.iter().map(|a| a.input).product();
        let taps = plan.axes.map(|a| a.taps(0));
        let divisor = simd.splat_f32s(super::divisor(plan.reduction, &taps));
        let zero = simd.splat_u32s(0);
        let init = rule.init(simd, zero).value;
        let acc_len = channels.div_ceil(lanes) * lanes;
        let mut buffer = scratch::take(acc_len);
        {
            let acc = &mut buffer[..acc_len];
            for (local, n) in rows.enumerate() {
                let image = &input[n * pixels * channels..][..pixels * channels];
                for c in (0..acc.len()).step_by(lanes) {
                    store::<S>(acc, c, init);
                }
                let mut groups = image.chunks_exact(PIXELS_A_PASS * channels);
                for group in &mut groups {
                    let pixels = core::array::from_fn(|p| &group[p * channels..][..channels]);
                    fold_pixels::<S, R, PIXELS_A_PASS>(simd, rule, acc, pixels);
                }
                for pixel in groups.remainder().chunks_exact(channels) {
                    fold_pixels::<S, R, 1>(simd, rule, acc, [pixel]);
                }
                let out = &mut output[local * channels..][..channels];
                let mut c = 0;
                while c < channels {
                    let running = running_at::<S>(acc, c, zero);
                    let value = rule.finish(simd, running, divisor);
                    if c + lanes <= channels {
                        store::<S>(out, c, value);
                    } else {
                        store_first::<S>(simd, out, c, channels - c, value);
                    }
                    c += lanes;
                }
            }
        }
        scratch::give_back(buffer);
    }
}

/// Pixels folded into the running results in one pass over the channels: each vector of
/// running results is loaded and stored once for them, not once a pixel (a store a vector
/// read bound the loop), and that many reads `channels` apart stay few enough for the
/// hardware prefetchers to follow.
const PIXELS_A_PASS: usize = 8;

/// Folds `pixels` (each `channels` long), in order, into the running results `acc`.
#[inline(always)]
fn fold_pixels<S: Simd, R: Reducer, const G: usize>(
    simd: S,
    rule: R,
    acc: &mut [f32],
    pixels: [&[f32]; G],
) {
    let lanes = lanes::<S>();
    let zero = simd.splat_u32s(0);
    let channels = pixels[0].len();
    let whole = channels / lanes * lanes;
    let mut c = 0;
    while c < whole {
        let mut running = running_at::<S>(acc, c, zero);
        for pixel in pixels {
            running = rule.add(simd, running, load::<S>(pixel, c), zero);
        }
        store::<S>(acc, c, running.value);
        c += lanes;
    }
    if c < channels {
        let mut running = running_at::<S>(acc, c, zero);
        for pixel in pixels {
            let x = load_first(simd, pixel, c, channels - c, R::FILL);
            running = rule.add(simd, running, x, zero);
        }
        store::<S>(acc, c, running.value);
    }
}

/// The running result of channels `c..c + lanes` as an accumulator (no index: values only).
#[inline(always)]
fn running_at<S: Simd>(acc: &[f32], c: usize, zero: S::u32s) -> Acc<S> {
    Acc {
        value: load::<S>(acc, c),
        index: zero,
    }
}
