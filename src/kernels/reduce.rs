//! The per-op vector arithmetic, shared by every SIMD kernel: how a window's taps are combined
//! and how the result is finished. Each rule is lane-wise and visits taps in the order the kernel
//! gives them, so a kernel that visits them in row-major window order matches the reference bit
//! for bit.

use pulp::Simd;

use crate::plan::Reduction;

/// A running window result per lane: the value and, for max, the plane index of the chosen tap.
#[derive(Clone, Copy)]
pub(crate) struct Acc<S: Simd> {
    pub value: S::f32s,
    pub index: S::u32s,
}

/// One op's vector rule.
pub(crate) trait Reducer: Copy + Send + Sync {
    /// Whether `add` uses the tap index (only indexed max does).
    const TRACKS_INDEX: bool;
    /// Whether the result is finished with the average divisor.
    const DIVIDES: bool = false;
    /// Whether the rule sums terms (every rule but max).
    const SUMS: bool = true;
    /// What a padding tap holds: it must leave the result unchanged (−∞ for max, 0 for sums).
    const FILL: f32;
    /// Whether the rule only flags NaN taps ([`MaxFlagged`]): a kernel must check each result
    /// with [`Reducer::flagged`] and compute the flagged ones again with [`MaxValue`].
    const FLAGS_NAN: bool = false;

    /// The empty accumulator; `first_index` is the index a max reports if no tap replaces it.
    #[inline(always)]
    fn init<S: Simd>(self, simd: S, first_index: S::u32s) -> Acc<S> {
        Acc {
            value: simd.splat_f32s(Self::FILL),
            index: first_index,
        }
    }

    /// Folds one tap `x` (at plane index `index`) into the accumulator.
    fn add<S: Simd>(self, simd: S, acc: Acc<S>, x: S::f32s, index: S::u32s) -> Acc<S>;

    /// The accumulator of a window's first tap: `x` folded into the empty accumulator.
    #[inline(always)]
    fn first<S: Simd>(self, simd: S, x: S::f32s, index: S::u32s) -> Acc<S> {
        self.add(simd, self.init(simd, index), x, index)
    }

    /// The window's result; `divisor` is used by average only.
    fn finish<S: Simd>(self, simd: S, acc: Acc<S>, divisor: S::f32s) -> S::f32s;

    /// The lanes whose taps may have held a NaN (only for rules with [`Reducer::FLAGS_NAN`]).
    #[inline(always)]
    fn flagged<S: Simd>(self, simd: S, _acc: Acc<S>) -> S::m32s {
        let zero = simd.splat_f32s(0.0);
        simd.not_m32s(simd.equal_f32s(zero, zero))
    }

    /// One element's term in a sum, for scalar loops (the same arithmetic as `add`).
    #[inline(always)]
    fn term(self, x: f32) -> f32 {
        x
    }

    /// `finish` for one scalar sum.
    #[inline(always)]
    fn finish_one(self, sum: f32, _divisor: f32) -> f32 {
        sum
    }
}

/// The lanes where the running maximum stays: `x` is a number and not greater (the reference
/// replaces on greater or NaN). Written as `ordered & !greater` so that x86 needs two compares,
/// one `andnot` and the blend (the `replaces` form took two more operations for its NOTs).
/// Measured (`profile_case`, old and new binaries alternated, 3 runs): `sppf` NCHW 1.1-1.4 ms
/// from 1.7-1.9 ms, `resnet` NHWC 188-198 µs from 212-265 µs.
/// Tried and not kept (no gain in the same kind of runs): value-only max as two chains, a
/// greater-only select plus the last NaN's bits in the unused index lanes.
#[inline(always)]
fn max_keeps<S: Simd>(simd: S, x: S::f32s, running: S::f32s) -> S::m32s {
    let is_number = simd.equal_f32s(x, x);
    simd.and_m32s(is_number, simd.not_m32s(simd.greater_than_f32s(x, running)))
}

/// Max: `x` replaces the running value when it is greater or NaN (the reference's
/// `max_replaces`, negated in `max_keeps`), so the first maximum wins ties and NaN propagates
/// on every level.
#[derive(Clone, Copy)]
pub(crate) struct Max;

impl Reducer for Max {
    const TRACKS_INDEX: bool = true;
    const SUMS: bool = false;
    const FILL: f32 = f32::NEG_INFINITY;

    #[inline(always)]
    fn add<S: Simd>(self, simd: S, acc: Acc<S>, x: S::f32s, index: S::u32s) -> Acc<S> {
        let keep = max_keeps(simd, x, acc.value);
        Acc {
            value: simd.select_f32s(keep, acc.value, x),
            index: simd.select_u32s(keep, acc.index, index),
        }
    }

    #[inline(always)]
    fn finish<S: Simd>(self, _simd: S, acc: Acc<S>, _divisor: S::f32s) -> S::f32s {
        acc.value
    }
}

/// Max without indices: the same rule, with no index to carry.
#[derive(Clone, Copy)]
pub(crate) struct MaxValue;

impl Reducer for MaxValue {
    const TRACKS_INDEX: bool = false;
    const SUMS: bool = false;
    const FILL: f32 = f32::NEG_INFINITY;

    #[inline(always)]
    fn add<S: Simd>(self, simd: S, acc: Acc<S>, x: S::f32s, _index: S::u32s) -> Acc<S> {
        if let Some(value) = x86_max_value(simd, acc.value, x) {
            return Acc { value, ..acc };
        }
        let keep = max_keeps(simd, x, acc.value);
        Acc {
            value: simd.select_f32s(keep, acc.value, x),
            ..acc
        }
    }

    /// The first tap itself: it replaces −∞ unless it is −∞ (one fold fewer per window).
    #[inline(always)]
    fn first<S: Simd>(self, _simd: S, x: S::f32s, index: S::u32s) -> Acc<S> {
        Acc { value: x, index }
    }

    #[inline(always)]
    fn finish<S: Simd>(self, _simd: S, acc: Acc<S>, _divisor: S::f32s) -> S::f32s {
        acc.value
    }
}

/// Max without indices over taps that hold no NaN (the kernel has checked them): on x86 the
/// rule is then one `maxps(x, running)`, which keeps the running value unless `x` is greater
/// (ties keep the first, as the rule does), instead of three instructions. Other levels use
/// [`MaxValue`]'s select, which gives the same results.
#[derive(Clone, Copy)]
pub(crate) struct MaxOfNumbers;

impl Reducer for MaxOfNumbers {
    const TRACKS_INDEX: bool = false;
    const SUMS: bool = false;
    const FILL: f32 = f32::NEG_INFINITY;

    #[inline(always)]
    fn add<S: Simd>(self, simd: S, acc: Acc<S>, x: S::f32s, index: S::u32s) -> Acc<S> {
        if let Some(value) = x86_max_of_numbers(simd, acc.value, x) {
            return Acc { value, ..acc };
        }
        MaxValue.add(simd, acc, x, index)
    }

    /// The first tap itself, as for [`MaxValue`] (the taps hold no NaN).
    #[inline(always)]
    fn first<S: Simd>(self, simd: S, x: S::f32s, index: S::u32s) -> Acc<S> {
        MaxValue.first(simd, x, index)
    }

    #[inline(always)]
    fn finish<S: Simd>(self, _simd: S, acc: Acc<S>, _divisor: S::f32s) -> S::f32s {
        acc.value
    }
}

/// Max values with NaN taps flagged instead of handled: on x86 one `maxps(x, running)` per tap,
/// which passes over a NaN `x`, where [`MaxValue`]'s NaN test and blend sit on the chain. The
/// kernel keeps a NaN probe of the taps beside the maxima, in the unused index lanes (an add
/// or a multiply-add, on other pipes and off the chain), and computes a window whose probe is
/// NaN ([`Reducer::flagged`]) again with [`MaxValue`], so the results are [`MaxValue`]'s bit
/// for bit. Kernels choose it on x86 levels only; elsewhere `add` is [`MaxValue`]'s.
#[derive(Clone, Copy)]
pub(crate) struct MaxFlagged;

impl Reducer for MaxFlagged {
    const TRACKS_INDEX: bool = false;
    const SUMS: bool = false;
    const FILL: f32 = f32::NEG_INFINITY;
    const FLAGS_NAN: bool = true;

    #[inline(always)]
    fn init<S: Simd>(self, simd: S, _first_index: S::u32s) -> Acc<S> {
        Acc {
            value: simd.splat_f32s(Self::FILL),
            index: pulp::cast(simd.splat_f32s(0.0)),
        }
    }

    #[inline(always)]
    fn add<S: Simd>(self, simd: S, acc: Acc<S>, x: S::f32s, index: S::u32s) -> Acc<S> {
        match x86_max_of_numbers(simd, acc.value, x) {
            Some(value) => Acc { value, ..acc },
            None => MaxValue.add(simd, acc, x, index),
        }
    }

    /// The first tap itself (the kernel probes it like any other).
    #[inline(always)]
    fn first<S: Simd>(self, simd: S, x: S::f32s, index: S::u32s) -> Acc<S> {
        Acc {
            value: x,
            ..self.init(simd, index)
        }
    }

    #[inline(always)]
    fn flagged<S: Simd>(self, simd: S, acc: Acc<S>) -> S::m32s {
        let sum: S::f32s = pulp::cast(acc.index);
        simd.not_m32s(simd.equal_f32s(sum, sum))
    }

    #[inline(always)]
    fn finish<S: Simd>(self, _simd: S, acc: Acc<S>, _divisor: S::f32s) -> S::f32s {
        acc.value
    }
}

/// `maxps(x, running)` on x86 levels (`None` on others).
#[inline(always)]
fn x86_max_of_numbers<S: Simd>(simd: S, running: S::f32s, x: S::f32s) -> Option<S::f32s> {
    #[cfg(target_arch = "x86_64")]
    {
        use core::any::Any;
        use core::arch::x86_64::{__m128, __m256, __m512};
        let token = &simd as &dyn Any;
        if let Some(v3) = token.downcast_ref::<pulp::x86::V3>() {
            let (r, x): (__m256, __m256) = (bytemuck::cast(running), bytemuck::cast(x));
            return Some(bytemuck::cast(v3.avx._mm256_max_ps(x, r)));
        }
        if let Some(v4) = token.downcast_ref::<pulp::x86::V4>() {
            let (r, x): (__m512, __m512) = (bytemuck::cast(running), bytemuck::cast(x));
            return Some(bytemuck::cast(v4.avx512f._mm512_max_ps(x, r)));
        }
        if let Some(v2) = token.downcast_ref::<pulp::x86::V2>() {
            let (r, x): (__m128, __m128) = (bytemuck::cast(running), bytemuck::cast(x));
            return Some(bytemuck::cast(v2.sse._mm_max_ps(x, r)));
        }
    }
    let _ = (simd, running, x);
    None
}

/// Whether `data` holds a NaN: one compare and one `and` per vector, so that a max kernel can
/// take [`MaxOfNumbers`] for data without one.
#[inline(always)]
pub(crate) fn any_nan<S: Simd>(simd: S, data: &[f32]) -> bool {
    let lanes = super::simd_io::lanes::<S>();
    let mut vectors = data.chunks_exact(lanes);
    let zero = simd.splat_f32s(0.0);
    let mut numbers = simd.equal_f32s(zero, zero);
    for vector in &mut vectors {
        let x = super::simd_io::load::<S>(vector, 0);
        numbers = simd.and_m32s(numbers, simd.equal_f32s(x, x));
    }
    simd.first_true_m32s(simd.not_m32s(numbers)) < lanes
        || vectors.remainder().iter().any(|x| x.is_nan())
}

/// Whether level `S` has a fused multiply-add instruction (x86-64-v3 and v4).
#[inline(always)]
pub(crate) fn has_fma<S: Simd>() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use core::any::TypeId;
        let level = TypeId::of::<S>();
        level == TypeId::of::<pulp::x86::V3>() || level == TypeId::of::<pulp::x86::V4>()
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// 1.0 in every lane, hidden from the optimizer, on levels with a fused multiply-add (else
/// `None`). `fma(x, one, sum)` is `sum + x` bit for bit (`x · 1` is exact and the fused add
/// rounds once, NaN, ∞ and −0 included) but runs on the multiply pipes: on AMD Zen 1 adds
/// have two pipes of their own, shared with the divider, and multiply-adds two others, so a sum
/// that alternates them issues twice as many terms a cycle. LLVM folds a known 1 back into an
/// add, hence `black_box` (once per call, not per term). `inception` NCHW, small-planes kernel
/// (AMD EPYC Zen 1, v3, `profile_case nchw inception`, best of 6-8 alternated): 538-559 ->
/// 484-496 µs. Not used channels-last: `inception` NHWC took 498 against 332 µs with it.
#[inline(always)]
pub(crate) fn fused_one<S: Simd>(simd: S) -> Option<S::f32s> {
    has_fma::<S>().then(|| simd.splat_f32s(core::hint::black_box(1.0)))
}

/// `to.copy_from_slice(from)`, and whether `from` holds a NaN: [`any_nan`] folded into a copy,
/// so that the data is loaded once for both.
#[inline(always)]
pub(crate) fn copy_finding_nan<S: Simd>(simd: S, to: &mut [f32], from: &[f32]) -> bool {
    use super::simd_io::{copy_pieces, lanes, load, store};
    assert_eq!(to.len(), from.len(), "copy_finding_nan: lengths differ");
    let lanes = lanes::<S>();
    let mut to_vectors = to.chunks_exact_mut(lanes);
    let mut from_vectors = from.chunks_exact(lanes);
    let zero = simd.splat_f32s(0.0);
    let mut numbers = simd.equal_f32s(zero, zero);
    for (to, from) in (&mut to_vectors).zip(&mut from_vectors) {
        let x = load::<S>(from, 0);
        numbers = simd.and_m32s(numbers, simd.equal_f32s(x, x));
        store::<S>(to, 0, x);
    }
    let rest = from_vectors.remainder();
    copy_pieces(to_vectors.into_remainder(), rest);
    simd.first_true_m32s(simd.not_m32s(numbers)) < lanes || rest.iter().any(|x| x.is_nan())
}

/// The max rule on x86 levels in three instructions: `maxps(x, running)` is
/// `x > running ? x : running`, which is the rule except that a NaN `x` must replace the
/// running value, so a NaN test on `x` (independent of the running value) selects it back. Two
/// dependent instructions per tap instead of three. `None` on other levels (the level's token
/// is recovered from `S` by type, as in `simd_io::load_deinterleaved`).
#[inline(always)]
fn x86_max_value<S: Simd>(simd: S, running: S::f32s, x: S::f32s) -> Option<S::f32s> {
    #[cfg(target_arch = "x86_64")]
    {
        use core::any::Any;
        use core::arch::x86_64::{__m128, __m256, __m512, _CMP_UNORD_Q};
        let token = &simd as &dyn Any;
        if let Some(v3) = token.downcast_ref::<pulp::x86::V3>() {
            let (r, x): (__m256, __m256) = (bytemuck::cast(running), bytemuck::cast(x));
            let max = v3.avx._mm256_max_ps(x, r);
            let nan = v3.avx._mm256_cmp_ps::<_CMP_UNORD_Q>(x, x);
            let value: __m256 = v3.avx._mm256_blendv_ps(max, x, nan);
            return Some(bytemuck::cast(value));
        }
        if let Some(v4) = token.downcast_ref::<pulp::x86::V4>() {
            let (r, x): (__m512, __m512) = (bytemuck::cast(running), bytemuck::cast(x));
            let max = v4.avx512f._mm512_max_ps(x, r);
            let nan = v4.avx512f._mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x);
            let value: __m512 = v4.avx512f._mm512_mask_blend_ps(nan, max, x);
            return Some(bytemuck::cast(value));
        }
        if let Some(v2) = token.downcast_ref::<pulp::x86::V2>() {
            let (r, x): (__m128, __m128) = (bytemuck::cast(running), bytemuck::cast(x));
            let max = v2.sse._mm_max_ps(x, r);
            let nan = v2.sse._mm_cmpunord_ps(x, x);
            let value: __m128 = v2.sse4_1._mm_blendv_ps(max, x, nan);
            return Some(bytemuck::cast(value));
        }
    }
    let _ = (simd, running, x);
    None
}

/// Average: the sum in tap order, divided by the divisor.
///
/// Tried and not kept (AMD EPYC Zen 1, v3, `profile_case <layout> inception`, best of 3
/// alternated): the quotient without a divide, by the rounded reciprocal `y` and Markstein's
/// correction (`q0 = s y; r = s - q0 d; q = q0 + r y`, exact for integer divisors below 2^24
/// when the quotient is normal; checked against the divide on all mantissas of four binades
/// for divisors 1-2048). With a per-vector test sending zero, subnormal and non-finite
/// quotients through the divide: NHWC 329 against 501 µs, NCHW 547 against 744 µs; even
/// without the test NHWC took 370 against 333 µs. Multiplying by the divisor instead of
/// dividing (wrong, as a bound) took 291 µs: the divide costs about a tenth, but the two
/// extra FMA-unit instructions cost more.
///
/// Also tried (session 20, same machine and command): every other add of a window's chain as
/// `fma(x, 1, sum)`, whose single rounding gives the add's bits, so that Zen's add and
/// multiply-add pipes would share the adds (the 1 had to come through `black_box`: LLVM folds
/// a known 1 back into an add). NHWC 503 µs against 334 µs with adds only, NCHW 526 against
/// 526 µs: slower or no faster, so the adds stay adds.
#[derive(Clone, Copy)]
pub(crate) struct Average;

impl Reducer for Average {
    const TRACKS_INDEX: bool = false;
    const DIVIDES: bool = true;
    const FILL: f32 = 0.0;

    #[inline(always)]
    fn add<S: Simd>(self, simd: S, acc: Acc<S>, x: S::f32s, _index: S::u32s) -> Acc<S> {
        Acc {
            value: simd.add_f32s(acc.value, x),
            ..acc
        }
    }

    #[inline(always)]
    fn finish<S: Simd>(self, simd: S, acc: Acc<S>, divisor: S::f32s) -> S::f32s {
        simd.div_f32s(acc.value, divisor)
    }

    #[inline(always)]
    fn finish_one(self, sum: f32, divisor: f32) -> f32 {
        sum / divisor
    }
}

/// L1 pooling: the sum of `|x|`.
#[derive(Clone, Copy)]
pub(crate) struct L1;

impl Reducer for L1 {
    const TRACKS_INDEX: bool = false;
    const FILL: f32 = 0.0;

    #[inline(always)]
    fn add<S: Simd>(self, simd: S, acc: Acc<S>, x: S::f32s, _index: S::u32s) -> Acc<S> {
        Acc {
            value: simd.add_f32s(acc.value, simd.abs_f32s(x)),
            ..acc
        }
    }

    #[inline(always)]
    fn finish<S: Simd>(self, _simd: S, acc: Acc<S>, _divisor: S::f32s) -> S::f32s {
        acc.value
    }

    #[inline(always)]
    fn term(self, x: f32) -> f32 {
        x.abs()
    }
}

/// L2 pooling: `sqrt` of the sum of `x * x` (a multiply and an add, not a fused multiply-add,
/// so that every level rounds as the reference does).
#[derive(Clone, Copy)]
pub(crate) struct L2;

impl Reducer for L2 {
    const TRACKS_INDEX: bool = false;
    const FILL: f32 = 0.0;

    #[inline(always)]
    fn add<S: Simd>(self, simd: S, acc: Acc<S>, x: S::f32s, _index: S::u32s) -> Acc<S> {
        Acc {
            value: simd.add_f32s(acc.value, simd.mul_f32s(x, x)),
            ..acc
        }
    }

    #[inline(always)]
    fn finish<S: Simd>(self, simd: S, acc: Acc<S>, _divisor: S::f32s) -> S::f32s {
        simd.sqrt_f32s(acc.value)
    }

    #[inline(always)]
    fn term(self, x: f32) -> f32 {
        x * x
    }

    #[inline(always)]
    fn finish_one(self, sum: f32, _divisor: f32) -> f32 {
        sum.sqrt()
    }
}

/// Which vector rule a reduction uses, or `None` when only the scalar kernel implements it
/// (Lp with `p` other than 1 and 2 needs `powf`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rule {
    Max,
    Average,
    L1,
    L2,
}

impl Rule {
    pub fn of(reduction: Reduction) -> Option<Rule> {
        match reduction {
            Reduction::Max => Some(Rule::Max),
            Reduction::Average { .. } => Some(Rule::Average),
            Reduction::Lp { p: 1.0 } => Some(Rule::L1),
            Reduction::Lp { p: 2.0 } => Some(Rule::L2),
            Reduction::Lp { .. } => None,
        }
    }
}
