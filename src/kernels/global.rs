//! Channels-first global pooling: one reduction over each contiguous (n, c) plane.
//!
//! ```text
//! for each plane of the task:
//!     max:  per lane, the running (value, index) over elements lane, lane + L, ...; then the
//!           lanes are merged: a NaN with the largest index, else the largest value with the
//!           smallest index (the reference's "first maximum, last NaN" rule)
//!     sums: each plane's terms in element order, on v3 and v4 16 planes at a time through 8x8
//!           transposes (one vector holds one pixel of 8 planes), elsewhere 8 planes side by
//!           side in scalar registers (8 independent chains)
//! ```
//!
//! Both are bit-identical to the reference. Sums keep the reference's order on purpose: another
//! order (partial sums) rounds differently and even overflows differently (+∞ where the
//! sequential sum meets +∞ and −∞ and gives NaN), which the differential fuzz target found.
//! The transposed loop, measured with `profile_case nchw global` (old and new binaries
//! alternated, best of 6): [1, 2048, 7, 7] in L2 14-21 µs against 23-26 µs; [32, 2048, 7, 7]
//! 560 µs against 750-800 µs. (An earlier variant with in-lane 4x4 transposes measured no gain;
//! this one keeps 16 planes in flight and prefetches further ahead.)

use std::ops::Range;

use pulp::{Simd, WithSimd};

use super::prefetch::Prefetcher;
use super::reduce::Reducer;
use super::simd_io::{lanes, load, load_first, ramp};
#[cfg(target_arch = "x86_64")]
use super::transpose::{read_transposed, rows_of};
use crate::Plan;

/// One task: the planes `rows` (flattened (n, c)) of a channels-first global plan.
pub(crate) struct GlobalChannelsFirst<'a, R> {
    pub rule: R,
    pub plan: &'a Plan<f32>,
    pub input: &'a [f32],
    pub output: &'a mut [f32],
    pub indices: Option<&'a mut [i64]>,
    pub rows: Range<usize>,
}

impl<R: Reducer> WithSimd for GlobalChannelsFirst<'_, R> {
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
        let plane_len: usize = plan.axes.iter().map(|a| a.input).product();
        let divisor = super::divisor(plan.reduction, &plan.axes.map(|a| a.taps(0)));
        if R::SUMS {
            let planes = &input[rows.start * plane_len..rows.end * plane_len];
            let prefetch = input.len() >= PREFETCH_FROM;
            let prefetcher =
                |group_len: usize| Prefetcher::new(prefetch && group_len <= PREFETCH_MAX_GROUP);
            #[cfg(target_arch = "x86_64")]
            let (planes, output) = match super::transpose::as_v3(simd) {
                Some(v3) => {
                    let done = sum_planes_transposed(
                        v3, rule, planes, plane_len, divisor, output, prefetcher,
                    );
                    (&planes[done * plane_len..], &mut output[done..])
                }
                None => (planes, output),
            };
            sum_planes(rule, planes, plane_len, divisor, output, prefetcher);
            return;
        }
        for (local, plane) in rows.enumerate() {
            let data = &input[plane * plane_len..][..plane_len];
            let (value, index) = max_plane(simd, rule, data);
            output[local] = value;
            if let Some(indices) = indices.as_deref_mut() {
                indices[local] = index as i64;
            }
        }
    }
}

/// Planes summed side by side (`sum_planes` splits a group into exactly 8): independent chains
/// keep the adder busy while each plane's sum stays in the reference's order.
const PLANES_AT_ONCE: usize = 8;

/// Groups of planes between the one being summed and the one being prefetched.
const PREFETCH_GROUPS: usize = 4;

/// Pairs of groups between the pair being summed and the one prefetched to L1, in the
/// transposed loop, which runs faster than the portable one and needs its data earlier.
/// Measured with `profile_case nchw global` (32 x 2048 planes of 7x7, best of 8 alternated
/// runs, Xeon, v4): 2 pairs 630 µs, 4 pairs 575 µs, 8 pairs 660 µs. On an AMD EPYC Zen 3
/// (v3, best of 5 alternated): 1 pair 489 µs, 2 pairs 476-487, 4 pairs 498.
///
/// Sessions 17-24 also asked for the data 32 pairs ahead into L2 (`_MM_HINT_T1`): on an AMD
/// EPYC Zen 1, whose 8 MiB L3 slices do not hold this 12.8 MB input, that ran 1.48-1.60 ms
/// against 1.70-1.78 ms without. On the Zen 3 (32 MiB L3: the input stays there between
/// calls, as a layer's output usually does) every L2 distance tried cost a third more: 649-685
/// µs with 32 pairs, 666 with 8, 690 with 16, 689 with 128, against 476-498 µs without
/// (best of 5 alternated, three series; two threads 359 against 293 µs). Removed.
const PREFETCH_PAIRS: usize = 2;

/// Plan inputs from this many elements (8 MiB) prefetch. Measured with `BATCH=n profile_case
/// nchw global` (n x 2048 planes of 7x7, without and with prefetching alternated, 2-4 runs):
/// 12.8 MB 1.0-1.14 ms against 2.9-3.5 ms; 4.8 and 6.4 MB no clear difference (283-416 µs
/// against 336-379 µs, 489-566 µs against 425-695 µs); 400 KB to 1.6 MB slower by about 15 %
/// (28-40 µs against 25-33 µs, 111-149 µs against 104-119 µs). Only inputs past the caches
/// gain.
const PREFETCH_FROM: usize = 2 * 1024 * 1024;

/// Largest group (elements) that is prefetched (16 KiB): small planes need it, and the distance
/// of larger groups would reach past L1 and L2.
const PREFETCH_MAX_GROUP: usize = 4096;

/// Each plane's terms summed in element order (the reference's order, so the same bits and the
/// same overflow to ±∞ or NaN), several planes at a time, then finished.
#[inline(always)]
fn sum_planes<R: Reducer>(
    rule: R,
    planes: &[f32],
    plane_len: usize,
    divisor: f32,
    output: &mut [f32],
    prefetcher: impl Fn(usize) -> Prefetcher,
) {
    let group_len = PLANES_AT_ONCE * plane_len.max(1);
    let mut groups = planes.chunks_exact(group_len);
    let mut outputs = output.chunks_exact_mut(PLANES_AT_ONCE);
    let prefetcher = prefetcher(group_len);
    for (g, (group, out)) in (&mut groups).zip(&mut outputs).enumerate() {
        let ahead = ((g + PREFETCH_GROUPS) * group_len).min(planes.len());
        prefetcher.fetch_lines(&planes[ahead..], group_len);
        let (p0, rest) = group.split_at(plane_len);
        let (p1, rest) = rest.split_at(plane_len);
        let (p2, rest) = rest.split_at(plane_len);
        let (p3, rest) = rest.split_at(plane_len);
        let (p4, rest) = rest.split_at(plane_len);
        let (p5, rest) = rest.split_at(plane_len);
        let (p6, p7) = rest.split_at(plane_len);
        let mut sums = [0.0f32; PLANES_AT_ONCE];
        // Zipped iterators: one loop counter and no bounds check per element.
        let columns = p0
            .iter()
            .zip(p1)
            .zip(p2)
            .zip(p3)
            .zip(p4)
            .zip(p5)
            .zip(p6)
            .zip(p7);
        for (((((((&a, &b), &c), &d), &e), &f), &g), &h) in columns {
            for (sum, x) in sums.iter_mut().zip([a, b, c, d, e, f, g, h]) {
                *sum += rule.term(x);
            }
        }
        for (out, sum) in out.iter_mut().zip(sums) {
            *out = rule.finish_one(sum, divisor);
        }
    }
    let rest = groups.remainder().chunks_exact(plane_len.max(1));
    for (out, plane) in outputs.into_remainder().iter_mut().zip(rest) {
        let sum = plane.iter().fold(0.0f32, |sum, &x| sum + rule.term(x));
        *out = rule.finish_one(sum, divisor);
    }
}

/// On v3 and v4, planes at least 8 long are summed 8 per vector: 8 pixels of each of 8 planes go
/// through the 8x8 transpose, so that one vector holds one pixel of the 8 planes, and are added
/// in pixel order (lane l is plane l's sum in the reference's order, so the same bits). A row
/// past the last multiple of 8 is read from `plane_len - 8` and only its new columns are added.
/// Two groups per step give two independent chains of adds. Returns how many planes (a multiple
/// of 16) it summed; the portable loop does the rest.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn sum_planes_transposed<R: Reducer>(
    v3: pulp::x86::V3,
    rule: R,
    planes: &[f32],
    plane_len: usize,
    divisor: f32,
    output: &mut [f32],
    prefetcher: impl Fn(usize) -> Prefetcher,
) -> usize {
    if plane_len < 8 {
        return 0;
    }
    let group_len = 8 * plane_len;
    let whole = plane_len / 8 * 8;
    let prefetcher = prefetcher(2 * group_len);
    let no_index = v3.splat_u32s(0);
    let mut pairs = planes.chunks_exact(2 * group_len);
    let mut outputs = output.chunks_exact_mut(16);
    let mut done = 0;
    for (p, (pair, out)) in (&mut pairs).zip(&mut outputs).enumerate() {
        let ahead = ((2 * (p + PREFETCH_PAIRS)) * group_len).min(planes.len());
        prefetcher.fetch_lines(&planes[ahead..], 2 * group_len);
        let (first, second) = pair.split_at(group_len);
        let first = rows_of(first, 0, plane_len, plane_len);
        let second = rows_of(second, 0, plane_len, plane_len);
        let mut acc = [rule.init(v3, no_index); 2];
        for pixel in (0..whole).step_by(8) {
            add_columns(v3, rule, &mut acc[0], &first, pixel, 0);
            add_columns(v3, rule, &mut acc[1], &second, pixel, 0);
        }
        if whole < plane_len {
            let from = 8 - (plane_len - whole);
            add_columns(v3, rule, &mut acc[0], &first, plane_len - 8, from);
            add_columns(v3, rule, &mut acc[1], &second, plane_len - 8, from);
        }
        let divisor = v3.splat_f32s(divisor);
        for (out, acc) in out.chunks_exact_mut(8).zip(acc) {
            let sums: [f32; 8] = bytemuck::cast(rule.finish(v3, acc, divisor));
            out.copy_from_slice(&sums);
        }
        done += 16;
    }
    done
}

/// Adds columns `from..8` of the 8x8 block at `pixel` of the 8 `planes` to `acc`
/// (a function, not a closure: closures do not inherit the level's target features).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn add_columns<R: Reducer>(
    v3: pulp::x86::V3,
    rule: R,
    acc: &mut super::reduce::Acc<pulp::x86::V3>,
    planes: &[&[f32]; 8],
    pixel: usize,
    from: usize,
) {
    for &column in &read_transposed(v3, planes, pixel)[from..] {
        *acc = rule.add(v3, *acc, bytemuck::cast(column), v3.splat_u32s(0));
    }
}

/// The plane's maximum and its index, by the reference's rule.
#[inline(always)]
fn max_plane<S: Simd, R: Reducer>(simd: S, rule: R, data: &[f32]) -> (f32, u32) {
    let lanes = lanes::<S>();
    let mut acc = rule.init(simd, ramp(simd, 0, 1));
    let mut i = 0;
    while i + lanes <= data.len() {
        acc = rule.add(simd, acc, load::<S>(data, i), ramp(simd, i as u32, 1));
        i += lanes;
    }
    if i < data.len() {
        // Missing lanes hold −∞ and never replace.
        let value = load_first(simd, data, i, data.len() - i, f32::NEG_INFINITY);
        acc = rule.add(simd, acc, value, ramp(simd, i as u32, 1));
    }
    let values: &[f32] = bytemuck::cast_slice(core::slice::from_ref(&acc.value));
    let indices: &[u32] = bytemuck::cast_slice(core::slice::from_ref(&acc.index));
    let mut best = (values[0], indices[0]);
    for (&value, &index) in values.iter().zip(indices).skip(1) {
        let better = if best.0.is_nan() || value.is_nan() {
            value.is_nan() && (!best.0.is_nan() || index > best.1)
        } else {
            value > best.0 || (value == best.0 && index < best.1)
        };
        if better {
            best = (value, index);
        }
    }
    best
}
