//! Loads and stores of whole vectors at any element offset of a slice. They are safe: the slice
//! is indexed (so a bad offset panics in debug and release alike rather than reading out of
//! bounds), and LLVM removes the checks where the loop bounds prove them.

use pulp::Simd;

/// Lanes of `S::f32s`.
#[inline(always)]
pub(crate) fn lanes<S: Simd>() -> usize {
    core::mem::size_of::<S::f32s>() / core::mem::size_of::<f32>()
}

/// How many elements `data[at..]` lies before the next multiple of a vector's size in memory
/// (0 if it starts on one). Loads that straddle two cache lines cost up to a third more
/// (`profile_case`, `OFFSET=4` against 0, `inception` NHWC 139 against 114 µs).
#[inline(always)]
pub(crate) fn to_boundary<S: Simd>(data: &[f32], at: usize) -> usize {
    let lanes = lanes::<S>();
    let element = (data.as_ptr() as usize / core::mem::size_of::<f32>()).wrapping_add(at);
    (lanes - element % lanes) % lanes
}

/// `S::f32s` from `data[at..at + lanes]`.
#[inline(always)]
pub(crate) fn load<S: Simd>(data: &[f32], at: usize) -> S::f32s {
    bytemuck::pod_read_unaligned(bytemuck::cast_slice(&data[at..at + lanes::<S>()]))
}

/// Writes `value` to `data[at..at + lanes]`.
#[inline(always)]
pub(crate) fn store<S: Simd>(data: &mut [f32], at: usize, value: S::f32s) {
    data[at..at + lanes::<S>()]
        .copy_from_slice(bytemuck::cast_slice(core::slice::from_ref(&value)));
}

/// Writes the first `count` lanes of `value` (`count <= lanes`) to `data[at..at + count]`: a
/// masked store on x86. Going through a stack copy, the pieces' loads waited on the vector's
/// store to the stack: 19 % of `alexnet` NCHW's time in the short-rows kernel (`perf`).
#[inline(always)]
pub(crate) fn store_first<S: Simd>(
    simd: S,
    data: &mut [f32],
    at: usize,
    count: usize,
    value: S::f32s,
) {
    simd.partial_store_f32s(&mut data[at..at + count], value);
}

/// Writes `value` to `data[at..]`: the whole vector where it fits, else its first lanes up to
/// `data`'s end (a row's last, partial vector).
#[inline(always)]
pub(crate) fn store_clipped<S: Simd>(simd: S, data: &mut [f32], at: usize, value: S::f32s) {
    let count = data.len() - at;
    if count >= lanes::<S>() {
        store::<S>(data, at, value);
    } else {
        store_first::<S>(simd, data, at, count, value);
    }
}

/// Loads `data[at..at + count]` (`count <= lanes`); the other lanes hold `fill`. A masked load
/// and a select: built in a stack buffer, the vector's load waited on the pieces' stores (a
/// failed store forward). The separable kernel's per-row y pass, forced on `sppf` NCHW (40-wide
/// rows, a partial vector each): 808 µs that way against 455 µs with the masked load.
#[inline(always)]
pub(crate) fn load_first<S: Simd>(
    simd: S,
    data: &[f32],
    at: usize,
    count: usize,
    fill: f32,
) -> S::f32s {
    let loaded = simd.partial_load_f32s(&data[at..at + count]);
    let inside = simd.less_than_u32s(ramp(simd, 0, 1), simd.splat_u32s(count as u32));
    simd.select_f32s(inside, loaded, simd.splat_f32s(fill))
}

/// `to.copy_from_slice(from)` in fixed 16-element pieces and a last `copy_pieces`, for rows of
/// a few vectors: `copy_from_slice` calls `memmove`, which cost `sppf` NCHW 23 % of its time
/// (`perf`) copying 40-element rows in and out of its blocks.
#[inline(always)]
pub(crate) fn copy_short(to: &mut [f32], from: &[f32]) {
    assert_eq!(to.len(), from.len(), "copy_short: lengths differ");
    let mut to_pieces = to.chunks_exact_mut(16);
    let mut from_pieces = from.chunks_exact(16);
    for (to, from) in (&mut to_pieces).zip(&mut from_pieces) {
        to.copy_from_slice(from);
    }
    copy_pieces(to_pieces.into_remainder(), from_pieces.remainder());
}

/// `to.copy_from_slice(from)` for at most 16 elements, as copies of 16, 8, 4, 2 and 1 elements.
/// A plain `copy_from_slice` of a run-time length is a call to `memcpy`, and LLVM merged the
/// full-vector store beside it into that call: a fixed-window row kernel spent 12-18 % of its
/// time in `memcpy` storing whole vectors (`perf`, `profile_case nchw alexnet`).
#[inline(always)]
pub(crate) fn copy_pieces(to: &mut [f32], from: &[f32]) {
    debug_assert!(to.len() == from.len() && to.len() <= 16);
    let mut done = 0;
    for piece in [16, 8, 4, 2, 1] {
        if to.len() & piece != 0 {
            to[done..done + piece].copy_from_slice(&from[done..done + piece]);
            done += piece;
        }
    }
}

/// Writes the first `count` index lanes, widened to i64, to `data[at..at + count]`.
#[inline(always)]
pub(crate) fn store_indices<S: Simd>(data: &mut [i64], at: usize, count: usize, value: S::u32s) {
    let lanes: &[u32] = bytemuck::cast_slice(core::slice::from_ref(&value));
    for (out, &index) in data[at..at + count].iter_mut().zip(lanes) {
        *out = i64::from(index);
    }
}

/// `[start, start + step, start + 2 step, ...]` with wrapping arithmetic.
#[inline(always)]
pub(crate) fn ramp<S: Simd>(simd: S, start: u32, step: u32) -> S::u32s {
    const IOTA: [u32; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
    let iota: S::u32s = bytemuck::pod_read_unaligned(bytemuck::cast_slice(&IOTA[..lanes::<S>()]));
    simd.add_u32s(
        simd.mul_u32s(iota, simd.splat_u32s(step)),
        simd.splat_u32s(start),
    )
}

/// The even and the odd elements of `data[at..at + 2 * lanes]`, each in order. x86 levels
/// shuffle in registers (the level's token is recovered from `S` by type, at no run-time cost);
/// other levels go through arrays.
#[inline(always)]
pub(crate) fn load_deinterleaved<S: Simd>(simd: S, data: &[f32], at: usize) -> [S::f32s; 2] {
    let lanes = lanes::<S>();
    let pair = &data[at..at + 2 * lanes];
    #[cfg(target_arch = "x86_64")]
    {
        use core::any::Any;
        use core::arch::x86_64::{__m128, __m256, __m512, __m512i};
        let back = |bytes: &[u8]| -> S::f32s { bytemuck::pod_read_unaligned(bytes) };
        let token = &simd as &dyn Any;
        if let Some(v3) = token.downcast_ref::<pulp::x86::V3>() {
            // Built from 128-bit halves, [p0..p3 | p8..p11] and [p4..p7 | p12..p15], the
            // in-lane shuffle gives the elements in order: no lane-crossing permute, which on
            // AMD Zen 1 is 3 µops a vector.
            let half = |from: usize| -> __m128 { read_pod(&pair[from..from + 4]) };
            let a: __m256 = v3.avx._mm256_set_m128(half(8), half(0));
            let b: __m256 = v3.avx._mm256_set_m128(half(12), half(4));
            let even = v3.avx._mm256_shuffle_ps::<0x88>(a, b);
            let odd = v3.avx._mm256_shuffle_ps::<0xDD>(a, b);
            return [
                back(bytemuck::bytes_of(&even)),
                back(bytemuck::bytes_of(&odd)),
            ];
        }
        if let Some(v4) = token.downcast_ref::<pulp::x86::V4>() {
            const EVEN: [i32; 16] = [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30];
            const ODD: [i32; 16] = [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31];
            let (a, b): (__m512, __m512) = (read_pod(&pair[..16]), read_pod(&pair[16..]));
            let (even, odd): (__m512i, __m512i) = (bytemuck::cast(EVEN), bytemuck::cast(ODD));
            let even = v4.avx512f._mm512_permutex2var_ps(a, even, b);
            let odd = v4.avx512f._mm512_permutex2var_ps(a, odd, b);
            return [
                back(bytemuck::bytes_of(&even)),
                back(bytemuck::bytes_of(&odd)),
            ];
        }
        if let Some(v2) = token.downcast_ref::<pulp::x86::V2>() {
            let (a, b): (__m128, __m128) = (read_pod(&pair[..4]), read_pod(&pair[4..]));
            let even = v2.sse._mm_shuffle_ps::<0x88>(a, b);
            let odd = v2.sse._mm_shuffle_ps::<0xDD>(a, b);
            return [
                back(bytemuck::bytes_of(&even)),
                back(bytemuck::bytes_of(&odd)),
            ];
        }
    }
    let _ = simd;
    let mut even = [0.0f32; 16];
    let mut odd = [0.0f32; 16];
    for (i, two) in pair.chunks_exact(2).enumerate() {
        even[i] = two[0];
        odd[i] = two[1];
    }
    [load::<S>(&even, 0), load::<S>(&odd, 0)]
}

/// The even and the odd elements of `data[at..at + 2 * lanes]` as [`load_deinterleaved`] gives
/// them, but with the lanes in the level's own order ([`pair_of_lane`]); [`in_order`] restores
/// the order. For kernels that only combine lanes with the same lanes: on v3 this is two plain
/// loads and one in-lane shuffle a vector, where the ordered load takes four half loads (the
/// `train` NCHW ring read each row with 11 instructions a vector for its 3 taps, 6 this way).
#[inline(always)]
pub(crate) fn load_deinterleaved_unordered<S: Simd>(
    simd: S,
    data: &[f32],
    at: usize,
) -> [S::f32s; 2] {
    if is_v3(simd) {
        let lanes = lanes::<S>();
        let pair = &data[at..at + 2 * lanes];
        return deinterleaved_unordered(simd, load::<S>(pair, 0), load::<S>(pair, lanes));
    }
    load_deinterleaved(simd, data, at)
}

/// The even and the odd elements of `first` followed by `second` (`2 * lanes` elements), in the
/// lane order of [`load_deinterleaved_unordered`]: one in-lane shuffle a vector on v2 and v3
/// ([`deinterleaves_in_registers`]), through memory on other levels.
#[inline(always)]
pub(crate) fn deinterleaved_unordered<S: Simd>(
    simd: S,
    first: S::f32s,
    second: S::f32s,
) -> [S::f32s; 2] {
    #[cfg(target_arch = "x86_64")]
    {
        use core::any::Any;
        use core::arch::x86_64::{__m128, __m256};
        let token = &simd as &dyn Any;
        if let Some(v3) = token.downcast_ref::<pulp::x86::V3>() {
            let (a, b): (__m256, __m256) = (bytemuck::cast(first), bytemuck::cast(second));
            let even = v3.avx._mm256_shuffle_ps::<0x88>(a, b);
            let odd = v3.avx._mm256_shuffle_ps::<0xDD>(a, b);
            return [bytemuck::cast(even), bytemuck::cast(odd)];
        }
        if let Some(v2) = token.downcast_ref::<pulp::x86::V2>() {
            let (a, b): (__m128, __m128) = (bytemuck::cast(first), bytemuck::cast(second));
            let even = v2.sse._mm_shuffle_ps::<0x88>(a, b);
            let odd = v2.sse._mm_shuffle_ps::<0xDD>(a, b);
            return [bytemuck::cast(even), bytemuck::cast(odd)];
        }
    }
    let lanes = lanes::<S>();
    let mut pair = [0.0f32; 32];
    store::<S>(&mut pair, 0, first);
    store::<S>(&mut pair, lanes, second);
    load_deinterleaved(simd, &pair, 0)
}

/// Whether [`deinterleaved_unordered`] stays in registers on level `isa` (v2 and v3).
pub(crate) fn deinterleaves_in_registers(isa: crate::isa::Isa) -> bool {
    matches!(isa, crate::isa::Isa::V2 | crate::isa::Isa::V3)
}

/// [`deinterleaves_in_registers`] for the level of `S`.
#[inline(always)]
pub(crate) fn deinterleaves_in_registers_on<S: Simd>(simd: S) -> bool {
    let _ = simd;
    #[cfg(target_arch = "x86_64")]
    {
        use core::any::TypeId;
        let level = TypeId::of::<S>();
        level == TypeId::of::<pulp::x86::V2>() || level == TypeId::of::<pulp::x86::V3>()
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// For each lane of [`load_deinterleaved_unordered`]'s vectors, which pair of the loaded
/// elements it holds (`[0, 1, 4, 5, 2, 3, 6, 7]` on v3: the in-lane shuffle takes two pairs from
/// each half of both loads), as `f32`.
#[inline(always)]
pub(crate) fn pair_of_lane<S: Simd>(simd: S) -> S::f32s {
    const IN_ORDER: [f32; 16] = [
        0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0,
    ];
    const V3_ORDER: [f32; 8] = [0.0, 1.0, 4.0, 5.0, 2.0, 3.0, 6.0, 7.0];
    if is_v3(simd) {
        return load::<S>(&V3_ORDER, 0);
    }
    load::<S>(&IN_ORDER, 0)
}

/// A vector in the order of [`load_deinterleaved_unordered`] put back in order: on v3 a swap
/// of the middle 64-bit pairs (one lane-crossing permute).
#[inline(always)]
pub(crate) fn in_order<S: Simd>(simd: S, value: S::f32s) -> S::f32s {
    #[cfg(target_arch = "x86_64")]
    {
        use core::any::Any;
        use core::arch::x86_64::__m256d;
        if let Some(v3) = (&simd as &dyn Any).downcast_ref::<pulp::x86::V3>() {
            let quads: __m256d = bytemuck::cast(value);
            return bytemuck::cast(v3.avx2._mm256_permute4x64_pd::<0xD8>(quads));
        }
    }
    let _ = simd;
    value
}

/// Whether `S` is x86-64-v3.
#[inline(always)]
fn is_v3<S: Simd>(simd: S) -> bool {
    let _ = simd;
    #[cfg(target_arch = "x86_64")]
    let v3 = core::any::TypeId::of::<S>() == core::any::TypeId::of::<pulp::x86::V3>();
    #[cfg(not(target_arch = "x86_64"))]
    let v3 = false;
    v3
}

/// A plain-old-data value from the bytes of `slice`.
#[inline(always)]
fn read_pod<T: bytemuck::Pod>(slice: &[f32]) -> T {
    bytemuck::pod_read_unaligned(bytemuck::cast_slice(slice))
}

/// The vector that starts `k` elements into `low`, where `high` is the vector after `low` in
/// memory (`low[k..]` then `high[..k]`): one `valignd` on v4, for `k` in 1..16; `None` on
/// other levels and for other `k`, where the caller loads it instead. Call it with `k` known at
/// compile time (a loop of constant length): with a run-time `k` the match is a jump table, and
/// `inception` NCHW took 900 µs instead of 240.
#[inline(always)]
pub(crate) fn shifted<S: Simd>(simd: S, low: S::f32s, high: S::f32s, k: usize) -> Option<S::f32s> {
    #[cfg(target_arch = "x86_64")]
    {
        use core::any::Any;
        use core::arch::x86_64::__m512i;
        if let Some(v4) = (&simd as &dyn Any).downcast_ref::<pulp::x86::V4>() {
            let (low, high): (__m512i, __m512i) = (bytemuck::cast(low), bytemuck::cast(high));
            let f = v4.avx512f;
            macro_rules! by {
                ($($k:literal)*) => {
                    match k {
                        $($k => f._mm512_alignr_epi32::<$k>(high, low),)*
                        _ => return None,
                    }
                };
            }
            return Some(bytemuck::cast(by!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15)));
        }
    }
    let _ = (simd, low, high, k);
    None
}

/// Whether [`shifted`] works on the level (v4).
#[inline(always)]
pub(crate) fn can_shift<S: Simd>(simd: S) -> bool {
    let low = simd.splat_f32s(0.0);
    shifted(simd, low, low, 1).is_some()
}
