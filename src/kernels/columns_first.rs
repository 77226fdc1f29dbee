//! The two passes of the short-rows kernel's columns-first order (see
//! `short_rows::columns_first`): the maxima of a window's rows column by column, then the x
//! maxima of each output from that row of column maxima by deinterleaving loads.
//!
//! Both passes take the one-`maxps` max rule ([`MaxOfNumbers`]), exact where no NaN is read:
//! the column pass, which reads every element, reports whether one is NaN (one unordered
//! compare per two rows), and the caller computes that output row again the reference's way.
//! The NaN-propagating rule in both passes (three instructions a tap, and a NaN test on every
//! output) took longer: `alexnet` NCHW 154-157 against 139-141 µs (AMD EPYC Zen 1, v3,
//! `profile_case nchw alexnet`, best of 5 alternated). Not checking a row twice where two
//! windows share it (a carried flag) saved 1 µs more, not kept.

use pulp::Simd;

use super::reduce::{Acc, MaxOfNumbers, Reducer};
use super::simd_io::{
    in_order, lanes, load, load_deinterleaved_unordered, load_first, store, store_clipped,
};

/// What the column pass read, as the lane bits of two masks (a `movemask` each on x86; kept
/// as bits, not `bool`s, so that no compare-and-pack is made per window row).
#[derive(Clone, Copy, Default)]
pub(crate) struct Found {
    nan_lanes: u32,
    negative_zero_lanes: u32,
}

impl Found {
    /// From the lowest bit pattern read (as `i32`) and a vector with all ones where a NaN was.
    #[inline(always)]
    fn of<S: Simd>(simd: S, lowest: S::i32s, nan: S::i32s) -> Self {
        let negative_zero = simd.equal_i32s(lowest, simd.splat_i32s(i32::MIN));
        Found {
            nan_lanes: lane_bits(simd, simd.less_than_i32s(nan, simd.splat_i32s(0))),
            negative_zero_lanes: lane_bits(simd, negative_zero),
        }
    }

    /// An element is NaN (the maxima written are then not the rule's).
    #[inline(always)]
    pub(crate) fn nan(self) -> bool {
        self.nan_lanes != 0
    }

    /// An element is −0.
    #[inline(always)]
    pub(crate) fn negative_zero(self) -> bool {
        self.negative_zero_lanes != 0
    }
}

/// The maxima over `count` rows (from `first`, `stride` apart) of each of `width` columns,
/// written to `to[..width]`, by the one-`maxps` rule, and what was read. Where `whole` and the
/// rows' vectors stay inside `input`, whole vectors are read past `width` (their extra columns
/// are no output's taps, though a NaN there is reported); otherwise the last vector is a
/// masked load, −∞ past `width`.
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
) -> Found {
    let lanes = lanes::<S>();
    let span = width.div_ceil(lanes) * lanes;
    let in_place = whole && first + (count - 1) * stride + span <= input.len();
    let row = |r: usize| &input[first + r * stride..][..span];
    let (lowest, nan) = match (in_place, count) {
        (true, 3) => columns_of::<S, 3>(simd, [row(0), row(1), row(2)], &mut to[..span]),
        (true, 2) => columns_of::<S, 2>(simd, [row(0), row(1)], &mut to[..span]),
        _ => columns_any::<S>(simd, input, first, count, stride, width, in_place, to),
    };
    Found::of(simd, lowest, nan)
}

/// [`column_maxima`] for `N` 3-row windows, each starting at the one before's last row (a y
/// stride of 2): the `R = 2 N + 1` rows (from `first`, `stride` apart) are read once, window
/// `k`'s maxima (of rows `2 k` to `2 k + 2`) written to `to[k * row_len..][..width]`, and what
/// the rows held returned for all `N`. `None`, with nothing written, unless `whole` and the
/// rows' whole vectors lie inside `input`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn column_maxima_run<S: Simd, const N: usize, const R: usize>(
    simd: S,
    input: &[f32],
    first: usize,
    stride: usize,
    width: usize,
    whole: bool,
    to: &mut [f32],
    row_len: usize,
) -> Option<Found> {
    debug_assert_eq!(R, 2 * N + 1);
    let lanes = lanes::<S>();
    let vectors = width.div_ceil(lanes);
    let span = vectors * lanes;
    if !whole || first + (R - 1) * stride + span > input.len() {
        return None;
    }
    // The rows split off one after another (a compare or two each, in registers), and the
    // loop counts vectors, so that the loads need no check of their own (the stores still
    // take one each): `alexnet` NCHW 809 -> 773 thousand instructions a call, `resnet` 1.73 ->
    // 1.62 million (pairs).
    let mut rest = &input[first..];
    let mut rows = [rest; R];
    for row in &mut rows {
        *row = &rest[..span];
        rest = rest.get(stride..).unwrap_or(&[]);
    }
    // One slice for the `N` rows of maxima, `row_len` (a constant) apart: one address
    // register for the stores (a slice a row took 15 registers with the input rows').
    let to = to.get_mut(..(N - 1) * row_len + vectors * lanes)?;
    let mut lowest = simd.splat_i32s(0);
    let mut nan = simd.splat_i32s(0);
    for v in 0..vectors {
        let x = v * lanes;
        let values = load_rows(simd, &rows, x, &mut lowest, &mut nan);
        for k in 0..N {
            store::<S>(to, k * row_len + x, max_of(simd, &values[2 * k..2 * k + 3]));
        }
    }
    Some(Found::of(simd, lowest, nan))
}

/// [`column_maxima`] over `N` rows of whole vectors; the lowest bit pattern read (as `i32`)
/// and all ones in the lanes where a NaN was read.
#[inline(always)]
fn columns_of<S: Simd, const N: usize>(
    simd: S,
    rows: [&[f32]; N],
    to: &mut [f32],
) -> (S::i32s, S::i32s) {
    let lanes = lanes::<S>();
    let mut lowest = simd.splat_i32s(0);
    let mut nan = simd.splat_i32s(0);
    for (v, to) in to.chunks_exact_mut(lanes).enumerate() {
        let values = load_rows(simd, &rows, v * lanes, &mut lowest, &mut nan);
        store::<S>(to, 0, max_of(simd, &values));
    }
    (lowest, nan)
}

/// The vectors at `x` of `rows`, folding their lowest bit pattern (as `i32`) into `lowest` and
/// all ones where one is NaN into `nan`.
#[inline(always)]
fn load_rows<S: Simd, const N: usize>(
    simd: S,
    rows: &[&[f32]; N],
    x: usize,
    lowest: &mut S::i32s,
    nan: &mut S::i32s,
) -> [S::f32s; N] {
    let mut values = [simd.splat_f32s(0.0); N];
    for (value, row) in values.iter_mut().zip(rows) {
        *value = load::<S>(row, x);
        *lowest = simd.min_i32s(*lowest, bytemuck::cast(*value));
    }
    // One unordered compare tests two rows.
    for pair in values.chunks(2) {
        *nan = simd.or_i32s(*nan, unordered(simd, pair[0], pair[pair.len() - 1]));
    }
    values
}

/// The maximum of `values` in order by the one-`maxps` rule.
#[inline(always)]
fn max_of<S: Simd>(simd: S, values: &[S::f32s]) -> S::f32s {
    let zero = simd.splat_u32s(0);
    let mut acc = Acc {
        value: values[0],
        index: zero,
    };
    for &v in &values[1..] {
        acc = MaxOfNumbers.add(simd, acc, v, zero);
    }
    acc.value
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
) -> (S::i32s, S::i32s) {
    let lanes = lanes::<S>();
    let zero = simd.splat_u32s(0);
    let mut lowest = simd.splat_i32s(0);
    let mut nan = simd.splat_i32s(0);
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
            nan = simd.or_i32s(nan, unordered(simd, v, v));
            acc = if r == 0 {
                Acc {
                    value: v,
                    index: zero,
                }
            } else {
                MaxOfNumbers.add(simd, acc, v, zero)
            };
        }
        store::<S>(to, x, acc.value);
    }
    (lowest, nan)
}

/// All ones in the lanes where `a` or `b` is NaN, else 0: one compare on x86.
#[inline(always)]
fn unordered<S: Simd>(simd: S, a: S::f32s, b: S::f32s) -> S::i32s {
    #[cfg(target_arch = "x86_64")]
    {
        use core::any::Any;
        use core::arch::x86_64::{__m128, __m256, _CMP_UNORD_Q};
        let token = &simd as &dyn Any;
        if let Some(v3) = token.downcast_ref::<pulp::x86::V3>() {
            let (a, b): (__m256, __m256) = (bytemuck::cast(a), bytemuck::cast(b));
            return bytemuck::cast(v3.avx._mm256_cmp_ps::<_CMP_UNORD_Q>(a, b));
        }
        if let Some(v2) = token.downcast_ref::<pulp::x86::V2>() {
            let (a, b): (__m128, __m128) = (bytemuck::cast(a), bytemuck::cast(b));
            return bytemuck::cast(v2.sse._mm_cmpunord_ps(a, b));
        }
    }
    let numbers = simd.and_m32s(simd.equal_f32s(a, a), simd.equal_f32s(b, b));
    simd.select_i32s(numbers, simd.splat_i32s(0), simd.splat_i32s(-1))
}

/// Nonzero when any lane of `mask` is set: one `movemask` on x86.
#[inline(always)]
fn lane_bits<S: Simd>(simd: S, mask: S::m32s) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        use core::any::Any;
        use core::arch::x86_64::{__m128, __m256};
        let token = &simd as &dyn Any;
        if let Some(v3) = token.downcast_ref::<pulp::x86::V3>() {
            let m: __m256 = bytemuck::cast(mask);
            return v3.avx._mm256_movemask_ps(m) as u32;
        }
        if let Some(v2) = token.downcast_ref::<pulp::x86::V2>() {
            let m: __m128 = bytemuck::cast(mask);
            return v2.sse._mm_movemask_ps(m) as u32;
        }
    }
    u32::from(simd.first_true_m32s(mask) < lanes::<S>())
}

/// The x pass over one row of column maxima (−∞ where the padding lies, no NaN): each output's
/// `KX` taps (at `2 ox`, `2 ox + 1`, `2 ox + 2` of the row) by the one-`maxps` rule, in the
/// unordered loads' lane order until stored to `out`, which holds the row and the output rows
/// after it: the row's last vector is stored whole where `out` has room (what it writes past
/// the row is for the next row's pass to write over; a masked store took 10 instructions a
/// row), else up to `out`'s end. With `ZEROS`, whether a result is 0 or −0, lanes past the
/// row's end included (a false alarm costs only a recomputation); without, `false`.
#[inline(always)]
pub(crate) fn x_maxima<S: Simd, const KX: usize, const V: usize, const ZEROS: bool>(
    simd: S,
    column: &[f32],
    out: &mut [f32],
) -> bool {
    let lanes = lanes::<S>();
    // One bounds check for the row: the loads below then need none (`resnet`'s 7-vector rows
    // ran 37 instructions a vector with them, 13 of them the work).
    let column = &column[..(2 * V + 1) * lanes];
    let fzero = simd.splat_f32s(0.0);
    let mut zeros = simd.not_m32s(simd.equal_f32s(fzero, fzero));
    // Every vector but the last is whole (the row has more than `V - 1` vectors of outputs):
    // stored without `store_clipped`'s test (3 instructions a vector on `alexnet`'s rows).
    // The last is stored whole unless `out` ends inside it.
    let (whole, last) = out.split_at_mut(((V - 1) * lanes).min(out.len()));
    for (v, to) in whole.chunks_exact_mut(lanes).enumerate() {
        let value = x_vector::<S, KX>(simd, column, v);
        if ZEROS {
            zeros = simd.or_m32s(zeros, simd.equal_f32s(value, fzero));
        }
        store::<S>(to, 0, in_order(simd, value));
    }
    let value = x_vector::<S, KX>(simd, column, V - 1);
    if ZEROS {
        zeros = simd.or_m32s(zeros, simd.equal_f32s(value, fzero));
    }
    store_clipped(simd, last, 0, in_order(simd, value));
    ZEROS && lane_bits(simd, zeros) != 0
}

/// Output vector `v` of [`x_maxima`]'s row, lanes in the loads' order.
#[inline(always)]
fn x_vector<S: Simd, const KX: usize>(simd: S, column: &[f32], v: usize) -> S::f32s {
    let zero = simd.splat_u32s(0);
    let rule = MaxOfNumbers;
    let at = 2 * v * lanes::<S>();
    let [t0, t1] = load_deinterleaved_unordered(simd, column, at);
    let mut acc = Acc {
        value: t0,
        index: zero,
    };
    acc = rule.add(simd, acc, t1, zero);
    if KX == 3 {
        let [t2, _] = load_deinterleaved_unordered(simd, column, at + 2);
        acc = rule.add(simd, acc, t2, zero);
    }
    acc.value
}
