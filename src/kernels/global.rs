//! Channels-first global pooling: one reduction over each contiguous (n, c) plane.
//!
//! ```text
//! for each plane of the task:
//!     max:  per lane, the running (value, index) over elements lane, lane + L, ...; then the
//!           lanes are merged: a NaN with the largest index, else the largest value with the
//!           smallest index (the reference's "first maximum, last NaN" rule)
//!     sums: 16 partial sums, element i going to partial i mod 16 (as 16/L registers of L lanes),
//!           then added pairwise in a fixed tree (p[i] += p[i + 8], + 4, + 2, + 1)
//! ```
//!
//! Max is bit-identical to the reference. Sums are taken in an order that does not depend on the
//! level's lane count or the thread count, so they give the same bits everywhere; they differ
//! from the reference's sequential sum only by rounding (see the README's accuracy bound).

use std::ops::Range;

use pulp::{Simd, WithSimd};

use super::reduce::{Acc, Reducer};
use super::simd_io::{lanes, load, load_first, ramp};
use crate::Plan;

/// Partial sums per plane, whatever the level.
pub(crate) const PARTIALS: usize = 16;

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
        for (local, plane) in rows.enumerate() {
            let data = &input[plane * plane_len..][..plane_len];
            if !R::SUMS {
                let (value, index) = max_plane(simd, rule, data);
                output[local] = value;
                if let Some(indices) = indices.as_deref_mut() {
                    indices[local] = index as i64;
                }
            } else {
                let sum = sum_plane(simd, rule, data);
                let acc = Acc::<S> {
                    value: simd.splat_f32s(sum),
                    index: simd.splat_u32s(0),
                };
                let value = rule.finish(simd, acc, simd.splat_f32s(divisor));
                output[local] =
                    bytemuck::cast_slice::<S::f32s, f32>(core::slice::from_ref(&value))[0];
            }
        }
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
        let value = load_first::<S>(data, i, data.len() - i, f32::NEG_INFINITY);
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

/// The plane's sum of terms in the fixed 16-partial order.
#[inline(always)]
fn sum_plane<S: Simd, R: Reducer>(simd: S, rule: R, data: &[f32]) -> f32 {
    let lanes = lanes::<S>();
    let registers = PARTIALS / lanes;
    let zero_index = simd.splat_u32s(0);
    let mut partials = [rule.init(simd, zero_index); PARTIALS];
    let partials = &mut partials[..registers];
    let mut i = 0;
    while i + PARTIALS <= data.len() {
        for (g, acc) in partials.iter_mut().enumerate() {
            *acc = rule.add(simd, *acc, load::<S>(data, i + g * lanes), zero_index);
        }
        i += PARTIALS;
    }
    for (g, acc) in partials.iter_mut().enumerate() {
        let start = i + g * lanes;
        if start < data.len() {
            // Missing lanes hold 0, a neutral term.
            let count = (data.len() - start).min(lanes);
            *acc = rule.add(
                simd,
                *acc,
                load_first::<S>(data, start, count, 0.0),
                zero_index,
            );
        }
    }
    let mut sums = [0.0f32; PARTIALS];
    for (g, acc) in partials.iter().enumerate() {
        let values: &[f32] = bytemuck::cast_slice(core::slice::from_ref(&acc.value));
        sums[g * lanes..(g + 1) * lanes].copy_from_slice(values);
    }
    let mut width = PARTIALS / 2;
    while width > 0 {
        for j in 0..width {
            sums[j] += sums[j + width];
        }
        width /= 2;
    }
    sums[0]
}
