//! The two passes of the short-rows kernel's columns-first order (see
//! `short_rows::columns_first`): the maxima of a window's rows column by column, then the x
//! maxima of each output from that row of column maxima by deinterleaving loads.

use pulp::Simd;

use super::reduce::{Acc, MaxValue, Reducer};
use super::simd_io::{lanes, load, load_deinterleaved, load_first, store, store_clipped};

/// The maxima over `count` rows (from `first`, `stride` apart) of each of `width` columns,
/// written to `to[..width]`, and whether any element read is −0. Where `whole` and the rows'
/// vectors stay inside `input`, whole vectors are read past `width` (their extra columns are
/// no output's taps); otherwise the last vector is a masked load, −∞ past `width`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn column_maxima<S: Simd>(
    simd: S,
    input: &[f32],
    first: usize,
    count: usize,
    stride: usize,
    width: usize,
    whole: bool,
    to: &mut [f32],
) -> bool {
    let lanes = lanes::<S>();
    let span = width.div_ceil(lanes) * lanes;
    let in_place = whole && first + (count - 1) * stride + span <= input.len();
    let lowest = if in_place && count == 3 {
        let row = |r: usize| &input[first + r * stride..][..span];
        let rows = [row(0), row(1), row(2)];
        columns_of::<S, 3>(simd, rows, &mut to[..span])
    } else if in_place && count == 2 {
        let row = |r: usize| &input[first + r * stride..][..span];
        let rows = [row(0), row(1)];
        columns_of::<S, 2>(simd, rows, &mut to[..span])
    } else {
        columns_any::<S>(simd, input, first, count, stride, width, in_place, to)
    };
    any_lane(simd, simd.equal_i32s(lowest, simd.splat_i32s(i32::MIN)))
}

/// [`column_maxima`] over `N` rows of whole vectors; the lowest bit pattern read (as `i32`).
#[inline(always)]
fn columns_of<S: Simd, const N: usize>(simd: S, rows: [&[f32]; N], to: &mut [f32]) -> S::i32s {
    let lanes = lanes::<S>();
    let zero = simd.splat_u32s(0);
    let mut lowest = simd.splat_i32s(0);
    for x in (0..to.len()).step_by(lanes) {
        let mut acc = Acc {
            value: load::<S>(rows[0], x),
            index: zero,
        };
        lowest = simd.min_i32s(lowest, bytemuck::cast(acc.value));
        for row in &rows[1..] {
            let v = load::<S>(row, x);
            lowest = simd.min_i32s(lowest, bytemuck::cast(v));
            acc = MaxValue.add(simd, acc, v, zero);
        }
        store::<S>(to, x, acc.value);
    }
    lowest
}

/// [`column_maxima`] over any number of rows: whole vectors where `in_place`, else the last
/// vector a masked load.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn columns_any<S: Simd>(
    simd: S,
    input: &[f32],
    first: usize,
    count: usize,
    stride: usize,
    width: usize,
    in_place: bool,
    to: &mut [f32],
) -> S::i32s {
    let lanes = lanes::<S>();
    let zero = simd.splat_u32s(0);
    let mut lowest = simd.splat_i32s(0);
    for x in (0..width).step_by(lanes) {
        let n = if in_place {
            lanes
        } else {
            (width - x).min(lanes)
        };
        let mut acc = Acc {
            value: simd.splat_f32s(f32::NEG_INFINITY),
            index: zero,
        };
        for r in 0..count {
            let at = first + r * stride + x;
            let v = if n == lanes {
                load::<S>(input, at)
            } else {
                load_first::<S>(simd, input, at, n, f32::NEG_INFINITY)
            };
            lowest = simd.min_i32s(lowest, bytemuck::cast(v));
            acc = if r == 0 {
                Acc {
                    value: v,
                    index: zero,
                }
            } else {
                MaxValue.add(simd, acc, v, zero)
            };
        }
        store::<S>(to, x, acc.value);
    }
    lowest
}

/// Whether any lane of `mask` is set: one `movemask` on x86.
#[inline(always)]
fn any_lane<S: Simd>(simd: S, mask: S::m32s) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use core::any::Any;
        use core::arch::x86_64::{__m128, __m256};
        let token = &simd as &dyn Any;
        if let Some(v3) = token.downcast_ref::<pulp::x86::V3>() {
            let m: __m256 = bytemuck::cast(mask);
            return v3.avx._mm256_movemask_ps(m) != 0;
        }
        if let Some(v2) = token.downcast_ref::<pulp::x86::V2>() {
            let m: __m128 = bytemuck::cast(mask);
            return v2.sse._mm_movemask_ps(m) != 0;
        }
    }
    simd.first_true_m32s(mask) < lanes::<S>()
}

/// What an x pass found in its results, for the caller to check its grouping.
pub(crate) struct Doubt {
    /// A lane is NaN.
    pub nan: bool,
    /// A lane is 0 or −0.
    pub zero: bool,
}

/// The x pass over one row of column maxima (−∞ where the padding lies): each output's `KX`
/// taps (at `2 ox`, `2 ox + 1`, `2 ox + 2` of the row) by the max rule, stored to `out`. Lanes
/// past `out`'s end are checked too (a false alarm costs only a recomputation).
#[inline(always)]
pub(crate) fn x_maxima<S: Simd, const KX: usize, const V: usize>(
    simd: S,
    column: &[f32],
    out: &mut [f32],
) -> Doubt {
    let lanes = lanes::<S>();
    let zero = simd.splat_u32s(0);
    let rule = MaxValue;
    let fzero = simd.splat_f32s(0.0);
    let mut numbers = simd.equal_f32s(fzero, fzero);
    let mut zeros = simd.not_m32s(numbers);
    for v in 0..V {
        let at = 2 * v * lanes;
        let [t0, t1] = load_deinterleaved(simd, column, at);
        let mut acc = Acc {
            value: t0,
            index: zero,
        };
        acc = rule.add(simd, acc, t1, zero);
        if KX == 3 {
            let [t2, _] = load_deinterleaved(simd, column, at + 2);
            acc = rule.add(simd, acc, t2, zero);
        }
        let value = acc.value;
        numbers = simd.and_m32s(numbers, simd.equal_f32s(value, value));
        zeros = simd.or_m32s(zeros, simd.equal_f32s(value, fzero));
        store_clipped(simd, out, v * lanes, value);
    }
    Doubt {
        nan: any_lane(simd, simd.not_m32s(numbers)),
        zero: any_lane(simd, zeros),
    }
}
