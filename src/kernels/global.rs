//! Channels-first global pooling: one reduction over each contiguous (n, c) plane.
//!
//! ```text
//! for each plane of the task:
//!     max with indices: per lane, the running (value, index) over elements lane, lane + L,
//!           ...; then the lanes are merged: a NaN with the largest index, else the largest
//!           value with the smallest index (the reference's "first maximum, last NaN" rule)
//!     sums and max values: each plane's terms in element order, on v3 and v4 32 planes at a
//!           time through 4x8 transposes (one vector holds one pixel of 8 planes; 4 such
//!           chains), elsewhere sums 8 planes side by side in scalar registers (8 independent
//!           chains) and max values a plane at a time as max with indices
//! ```
//!
//! All are bit-identical to the reference. Max values went through the indexed loop until
//! session 53: `[32, 2048, 7, 7]` (Zen 5, v4, one thread) took 1.21 ms there and takes 224 µs
//! in the transposed one (average 141 µs). Sums keep the reference's order on purpose: another
//! order (partial sums) rounds differently and even overflows differently (+∞ where the
//! sequential sum meets +∞ and −∞ and gives NaN), which the differential fuzz target found.
//! The transposed loop, measured with `profile_case nchw global` (old and new binaries
//! alternated, best of 6): [1, 2048, 7, 7] in L2 14-21 µs against 23-26 µs; [32, 2048, 7, 7]
//! 560 µs against 750-800 µs. (An earlier variant with in-lane 4x4 transposes measured no gain;
//! this one keeps 16 planes in flight and prefetches further ahead.)

use std::ops::Range;

use pulp::{Simd, WithSimd};

use super::prefetch::Prefetcher;
use super::reduce::{Max, Reducer};
use super::simd_io::{lanes, load, load_first, ramp};
#[cfg(target_arch = "x86_64")]
use super::transpose::{read_transposed_4, rows_of};
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
        // Sums, and max without indices: each plane's chain stays in one lane, in element order.
        if !R::TRACKS_INDEX {
            let planes = &input[rows.start * plane_len..rows.end * plane_len];
            let prefetch = input.len() >= PREFETCH_FROM;
            let prefetcher =
                |group_len: usize| Prefetcher::new(prefetch && group_len <= PREFETCH_MAX_GROUP);
            #[cfg(target_arch = "x86_64")]
            let (planes, output) = match super::transpose::as_v3(simd) {
                Some(v3) => {
                    let done = reduce_planes_transposed(
                        v3, rule, planes, plane_len, divisor, output, prefetcher,
                    );
                    (&planes[done * plane_len..], &mut output[done..])
                }
                None => (planes, output),
            };
            if R::SUMS {
                sum_planes(rule, planes, plane_len, divisor, output, prefetcher);
            } else {
                for (out, plane) in output.iter_mut().zip(planes.chunks_exact(plane_len.max(1))) {
                    *out = max_plane(simd, Max, plane).0;
                }
            }
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

/// Planes between the step being summed and the one prefetched to L1, in the transposed loop,
/// which runs faster than the portable one and needs its data earlier; the requests are spread
/// over the step's passes. Session 41, 4 chains, Zen 4, 8 alternated runs of `BATCH=32
/// ITERS=200 profile_case nchw global`: 32 planes ahead 312-400 µs, 64 290-398, 128 360-420;
/// the whole next step asked for at the step's start, as before: 486-1088 µs; the current
/// step at its start 354-1086; L2 requests 64-256 planes ahead beside those: 435-528 µs.
/// Earlier, with 2 chains, measured (as pairs of groups of 8 planes) with `profile_case nchw
/// global` (32 x 2048 planes of 7x7, best of 8 alternated runs, Xeon, v4): 32 planes 630 µs,
/// 64 575 µs, 128 660 µs. On an AMD EPYC Zen 3 (v3, best of 5 alternated): 16 planes 489 µs,
/// 32 476-487, 64 498.
///
/// Sessions 17-24 also asked for the data 32 pairs ahead into L2 (`_MM_HINT_T1`): on an AMD
/// EPYC Zen 1, whose 8 MiB L3 slices do not hold this 12.8 MB input, that ran 1.48-1.60 ms
/// against 1.70-1.78 ms without. On the Zen 3 (32 MiB L3: the input stays there between
/// calls, as a layer's output usually does) every L2 distance tried cost a third more: 649-685
/// µs with 32 pairs, 666 with 8, 690 with 16, 689 with 128, against 476-498 µs without
/// (best of 5 alternated, three series; two threads 359 against 293 µs). Removed.
const PREFETCH_PLANES: usize = 64;

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

/// On v3 and v4, planes at least 4 long are reduced (summed, or max values) 8 per vector: 4
/// pixels of each of 8 planes go through a 4x8 transpose, so that one vector holds one pixel of
/// the 8 planes, and are folded in pixel order (lane l is plane l's chain in the reference's
/// order, so the same bits). The last 1-3 pixels are read from `plane_len - 4` and only the
/// new ones are folded. Groups of 8 planes run side by side (4 or 2 of them, then one at a
/// time): independent chains hide the add's latency, where 2 chains adding 8 pixels at a time
/// (before session 41) left the loop waiting on them; with 4 columns a group live, no register
/// spills (session 39's 4 chains over whole 8x8 blocks did, and lost). Returns how many planes
/// (a multiple of 8) it reduced; the portable loops do the rest.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn reduce_planes_transposed<R: Reducer>(
    v3: pulp::x86::V3,
    rule: R,
    planes: &[f32],
    plane_len: usize,
    divisor: f32,
    output: &mut [f32],
    prefetcher: impl Fn(usize) -> Prefetcher,
) -> usize {
    // The common 7x7 head (ResNet, EfficientNet, MobileNet) gets its length as a constant: the
    // compiler folds the 32 row slices of a step into offsets from one pointer, and 4 chains
    // run (a constant for 8x8 planes measured no faster: 8.8 µs against 9.0 from L2). Other
    // lengths keep each row's slice in registers and run 2 chains, as many as the registers
    // hold. Session 41 (Zen 4, v3, `ITERS=2000 BATCH=1 profile_case nchw global`: [1, 2048, 7,
    // 7] from L2, 6 alternated runs, best): the constant and 4 chains 7.1 µs; a run-time
    // length with 4 chains 11.5 µs, 3 chains 8.9, 2 chains 8.8; before (2 chains of 8x8
    // blocks) 8.6 µs.
    let p = &prefetcher;
    match plane_len {
        49 => reduce_all_groups::<R, 4>(v3, rule, planes, 49, divisor, output, p),
        4.. => reduce_all_groups::<R, 2>(v3, rule, planes, plane_len, divisor, output, p),
        _ => 0,
    }
}

/// [`reduce_groups`] with `CHAINS` groups a step, then one group a step; returns the planes
/// reduced.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn reduce_all_groups<R: Reducer, const CHAINS: usize>(
    v3: pulp::x86::V3,
    rule: R,
    planes: &[f32],
    plane_len: usize,
    divisor: f32,
    output: &mut [f32],
    prefetcher: &impl Fn(usize) -> Prefetcher,
) -> usize {
    let done = reduce_groups::<R, CHAINS>(v3, rule, planes, plane_len, divisor, output, prefetcher);
    let (planes, output) = (&planes[done * plane_len..], &mut output[done..]);
    done + reduce_groups::<R, 1>(v3, rule, planes, plane_len, divisor, output, prefetcher)
}

/// [`reduce_planes_transposed`] for `GROUPS` groups of 8 planes a step; returns the planes
/// reduced.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn reduce_groups<R: Reducer, const GROUPS: usize>(
    v3: pulp::x86::V3,
    rule: R,
    planes: &[f32],
    plane_len: usize,
    divisor: f32,
    output: &mut [f32],
    prefetcher: &impl Fn(usize) -> Prefetcher,
) -> usize {
    let step_len = GROUPS * 8 * plane_len;
    let prefetcher = prefetcher(step_len);
    let no_index = v3.splat_u32s(0);
    let divisor = v3.splat_f32s(divisor);
    let whole = plane_len / 4 * 4;
    // Each pass over 4 pixels asks for its share of the step `PREFETCH_PLANES` ahead.
    let ahead_steps = PREFETCH_PLANES.div_ceil(8 * GROUPS);
    let per_pass = step_len.div_ceil(whole / 4).next_multiple_of(16);
    let mut steps = planes.chunks_exact(step_len);
    let mut outputs = output.chunks_exact_mut(8 * GROUPS);
    let mut done = 0;
    for (s, (step, out)) in (&mut steps).zip(&mut outputs).enumerate() {
        let ahead = (s + ahead_steps) * step_len;
        // Each group's 8 rows as slices of one length: one bounds check a pass, whatever the
        // plane length (indexing rows at `l * plane_len` ran twice as slow unless the length
        // was a constant).
        let mut groups = [[&step[..0]; 8]; GROUPS];
        for (g, rows) in groups.iter_mut().enumerate() {
            *rows = rows_of(step, g * 8 * plane_len, plane_len, plane_len);
        }
        let mut acc = [rule.init(v3, no_index); GROUPS];
        for pixel in (0..whole).step_by(4) {
            let at = (ahead + pixel / 4 * per_pass).min(planes.len());
            prefetcher.fetch_lines(&planes[at..], per_pass);
            for (rows, acc) in groups.iter().zip(&mut acc) {
                add_columns(v3, rule, acc, rows, pixel, 0);
            }
        }
        if whole < plane_len {
            let from = 4 - (plane_len - whole);
            for (rows, acc) in groups.iter().zip(&mut acc) {
                add_columns(v3, rule, acc, rows, plane_len - 4, from);
            }
        }
        for (out, acc) in out.chunks_exact_mut(8).zip(acc) {
            let sums: [f32; 8] = bytemuck::cast(rule.finish(v3, acc, divisor));
            out.copy_from_slice(&sums);
        }
        done += 8 * GROUPS;
    }
    done
}

/// Adds pixels `pixel + from..pixel + 4` of the 8 `rows` to `acc`, one pixel of the 8 rows
/// a vector (a function, not a closure: closures do not inherit the level's target features).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn add_columns<R: Reducer>(
    v3: pulp::x86::V3,
    rule: R,
    acc: &mut super::reduce::Acc<pulp::x86::V3>,
    rows: &[&[f32]; 8],
    pixel: usize,
    from: usize,
) {
    let r = |l: usize| &rows[l][pixel..pixel + 4];
    let four = [r(0), r(1), r(2), r(3), r(4), r(5), r(6), r(7)];
    for &column in &read_transposed_4(v3, four)[from..] {
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
