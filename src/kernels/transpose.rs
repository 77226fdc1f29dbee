//! The AVX 8x8 register transpose, shared by the kernels that move channels-first planes
//! through vectors (small planes, global sums). x86-64 only; the kernels fall back to their
//! portable loops elsewhere. On v4 the same 8x8 blocks serve 16-lane vectors: each holds the
//! upper or lower 8 lanes.

use core::arch::x86_64::__m256;

use pulp::Simd;
use pulp::x86::{V3, V4};

/// The level's token as `V3` when the kernel runs on v3 or v4 (which has every v3
/// instruction), `None` on every other level.
#[inline(always)]
pub(crate) fn as_v3<S: Simd>(simd: S) -> Option<V3> {
    use core::any::Any;
    let simd = &simd as &dyn Any;
    match simd.downcast_ref::<V3>() {
        Some(v3) => Some(*v3),
        None => simd.downcast_ref::<V4>().map(|v4| **v4),
    }
}

/// The 8 rows `data[start + l * stride..][..len]`, for [`read_transposed`] in a loop: rows of one
/// length share one bounds check per block, where reading each block's rows at a stride checked
/// each row (`callgrind` on `profile_case nchw resnet`: 3.92 → 2.91 million instructions per
/// call). Building a block by `array::from_fn` or `array::map` was worse still: neither call
/// was inlined.
#[inline(always)]
pub(crate) fn rows_of(data: &[f32], start: usize, stride: usize, len: usize) -> [&[f32]; 8] {
    let mut rest = &data[start..];
    let mut next = || {
        let row = &rest[..len];
        rest = rest.get(stride..).unwrap_or(&[]);
        row
    };
    [
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
    ]
}

/// The 8 rows `data[l * stride..][..len]` (`len` <= `stride`), for [`write_transposed`]. Built
/// row by row and inlined, so that the compiler sees every row's length as `len` and checks
/// one bound per block, not one per row and half (`core::array::from_fn` hid the lengths:
/// 114 instructions per block of `inception` NCHW's copy-out, 40 of them such checks).
#[inline(always)]
pub(crate) fn rows_of_mut(data: &mut [f32], stride: usize, len: usize) -> [&mut [f32]; 8] {
    let mut rest = data;
    let mut next = || {
        let all = core::mem::take(&mut rest);
        let (row, tail) = all.split_at_mut(stride.min(all.len()));
        rest = tail;
        &mut row[..len]
    };
    [
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
    ]
}

/// The 8x8 block `rows[l][at..][..8]` transposed (column k: pixel k of the 8 rows), as
/// a full 8x8 transpose gives it but in fewer shuffles: the 128-bit stage is done by the
/// loads (rows `l` and `l + 4` share a register, one half each), so 16 in-lane shuffles
/// remain of 24, and shuffles were the bound of the global sums (one shuffle port).
#[inline(always)]
pub(crate) fn read_transposed(v3: V3, rows: &[&[f32]; 8], at: usize) -> [__m256; 8] {
    // Not two `read_transposed_4`: slicing each row's 4 pixels first ran `inception` NCHW
    // (through `via_planes`) 312-630 µs against 220-345.
    let pair = |l: usize, from: usize| -> __m256 {
        halves(
            v3,
            &rows[l][at + from..at + from + 4],
            &rows[l + 4][at + from..at + from + 4],
        )
    };
    let low = transpose_4x4_pairs(v3, [pair(0, 0), pair(1, 0), pair(2, 0), pair(3, 0)]);
    let high = transpose_4x4_pairs(v3, [pair(0, 4), pair(1, 4), pair(2, 4), pair(3, 4)]);
    [
        low[0], low[1], low[2], low[3], high[0], high[1], high[2], high[3],
    ]
}

/// Half of [`read_transposed`]: `rows` are 4 pixels of 8 rows; column k holds pixel k of the 8
/// rows (lane l from row l). 8 loads (half of them inserts) and 8 in-lane shuffles. (Loading
/// the upper halves by broadcast and a blend, to spare the shuffle port the inserts, measured
/// no faster on Zen 4: `global` NCHW from L2 10.5-13 µs against 9.7-13.)
#[inline(always)]
pub(crate) fn read_transposed_4(v3: V3, rows: [&[f32]; 8]) -> [__m256; 4] {
    let pair = |l: usize| halves(v3, rows[l], rows[l + 4]);
    transpose_4x4_pairs(v3, [pair(0), pair(1), pair(2), pair(3)])
}

/// `low` in the lower 128 bits, `high` in the upper (one load and one insert from memory).
#[inline(always)]
fn halves(v3: V3, low: &[f32], high: &[f32]) -> __m256 {
    use core::arch::x86_64::__m128;
    let low: __m128 = bytemuck::pod_read_unaligned(bytemuck::cast_slice(low));
    let high: __m128 = bytemuck::pod_read_unaligned(bytemuck::cast_slice(high));
    v3.avx
        ._mm256_insertf128_ps::<1>(v3.avx._mm256_castps128_ps256(low), high)
}

/// A 4x4 transpose in each 128-bit half of 4 registers: pairs interleaved, then 64-bit pairs.
#[inline(always)]
fn transpose_4x4_pairs(v3: V3, r: [__m256; 4]) -> [__m256; 4] {
    let avx = v3.avx;
    let t = [
        avx._mm256_unpacklo_ps(r[0], r[1]),
        avx._mm256_unpackhi_ps(r[0], r[1]),
        avx._mm256_unpacklo_ps(r[2], r[3]),
        avx._mm256_unpackhi_ps(r[2], r[3]),
    ];
    [
        avx._mm256_shuffle_ps::<0x44>(t[0], t[2]),
        avx._mm256_shuffle_ps::<0xEE>(t[0], t[2]),
        avx._mm256_shuffle_ps::<0x44>(t[1], t[3]),
        avx._mm256_shuffle_ps::<0xEE>(t[1], t[3]),
    ]
}

/// The 8x8 block whose rows are `data[at + k * stride..][..8]`.
#[inline(always)]
pub(crate) fn read_strided(data: &[f32], at: usize, stride: usize) -> [__m256; 8] {
    let block = &data[at..at + 7 * stride + 8];
    let mut rows = [bytemuck::Zeroable::zeroed(); 8];
    for (k, row) in rows.iter_mut().enumerate() {
        *row = bytemuck::pod_read_unaligned(bytemuck::cast_slice(&block[k * stride..][..8]));
    }
    rows
}

/// Writes `rows[k]` to `data[at + k * stride..][..8]`.
#[inline(always)]
pub(crate) fn write_strided(data: &mut [f32], at: usize, stride: usize, rows: [__m256; 8]) {
    let block: &mut [f32] = &mut data[at..at + 7 * stride + 8];
    for (k, row) in rows.iter().enumerate() {
        block[k * stride..][..8].copy_from_slice(bytemuck::cast_slice(core::slice::from_ref(row)));
    }
}

/// Writes the 8x8 block `r` transposed to `rows` (`rows[k][at..][..8]` := element k of each
/// `r[l]`, in order of l), the mirror of [`read_transposed`]: after the in-lane 4x4 stage the
/// 128-bit halves go straight to memory, where the third shuffle stage (`vperm2f128`, 8 µops
/// on AMD Zen 1) would have paired them first. On an AMD EPYC (Zen 1, v3) no change was
/// measured: `inception` NCHW 494 µs against 486 before, `small` 2.69 against 2.76 µs.
#[inline(always)]
pub(crate) fn write_transposed(v3: V3, rows: &mut [&mut [f32]; 8], at: usize, r: [__m256; 8]) {
    use core::arch::x86_64::__m128;
    let low = transpose_4x4_pairs(v3, [r[0], r[1], r[2], r[3]]);
    let high = transpose_4x4_pairs(v3, [r[4], r[5], r[6], r[7]]);
    let avx = v3.avx;
    let mut put = |row: usize, from: usize, half: __m128| {
        rows[row][at + from..at + from + 4].copy_from_slice(bytemuck::cast_slice(&[half]));
    };
    for k in 0..4 {
        put(k, 0, avx._mm256_castps256_ps128(low[k]));
        put(k, 4, avx._mm256_castps256_ps128(high[k]));
        put(k + 4, 0, avx._mm256_extractf128_ps::<1>(low[k]));
        put(k + 4, 4, avx._mm256_extractf128_ps::<1>(high[k]));
    }
}
