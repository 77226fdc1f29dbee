//! The AVX 8x8 register transpose, shared by the kernels that move 8 channels-first planes
//! through one vector (small planes, global sums). x86-64 only; the kernels fall back to their
//! portable loops elsewhere.

use core::arch::x86_64::__m256;

use pulp::Simd;
use pulp::x86::V3;

/// The level's token as `V3` when the kernel runs on v3 (the transposes are written for its
/// 8 lanes), `None` on every other level.
#[inline(always)]
pub(crate) fn as_v3<S: Simd>(simd: S) -> Option<V3> {
    use core::any::Any;
    (&simd as &dyn Any).downcast_ref::<V3>().copied()
}

/// The 8x8 block whose row `l` is `data[start + l * stride..][..8]`. Rows are peeled off one
/// after another (two compares each) and the array is written out, not built by
/// `array::from_fn`: that call was not inlined and, with `from_fn`'s checked slice per row,
/// cost more instructions than the transpose (`callgrind` on `profile_case nchw inception`).
#[inline(always)]
pub(crate) fn read_block(data: &[f32], start: usize, stride: usize) -> [__m256; 8] {
    let mut rest = &data[start..];
    let mut next = || {
        let row: __m256 = bytemuck::pod_read_unaligned(bytemuck::cast_slice(&rest[..8]));
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

/// Writes `rows[l]` to `data[start + l * stride..][..8]`.
#[inline(always)]
pub(crate) fn write_block(data: &mut [f32], start: usize, stride: usize, rows: [__m256; 8]) {
    let mut rest = &mut data[start..];
    for row in rows {
        rest[..8].copy_from_slice(bytemuck::cast_slice(core::slice::from_ref(&row)));
        rest = rest.get_mut(stride..).unwrap_or_default();
    }
}

/// Rows `r[l]` (plane l, 8 pixels) to columns (pixel k, 8 planes): pairs interleaved, then
/// 64-bit pairs, then 128-bit halves.
#[inline(always)]
pub(crate) fn transpose_8x8(v3: V3, r: [__m256; 8]) -> [__m256; 8] {
    let avx = v3.avx;
    let t = [
        avx._mm256_unpacklo_ps(r[0], r[1]),
        avx._mm256_unpackhi_ps(r[0], r[1]),
        avx._mm256_unpacklo_ps(r[2], r[3]),
        avx._mm256_unpackhi_ps(r[2], r[3]),
        avx._mm256_unpacklo_ps(r[4], r[5]),
        avx._mm256_unpackhi_ps(r[4], r[5]),
        avx._mm256_unpacklo_ps(r[6], r[7]),
        avx._mm256_unpackhi_ps(r[6], r[7]),
    ];
    let u = [
        avx._mm256_shuffle_ps::<0x44>(t[0], t[2]),
        avx._mm256_shuffle_ps::<0xEE>(t[0], t[2]),
        avx._mm256_shuffle_ps::<0x44>(t[1], t[3]),
        avx._mm256_shuffle_ps::<0xEE>(t[1], t[3]),
        avx._mm256_shuffle_ps::<0x44>(t[4], t[6]),
        avx._mm256_shuffle_ps::<0xEE>(t[4], t[6]),
        avx._mm256_shuffle_ps::<0x44>(t[5], t[7]),
        avx._mm256_shuffle_ps::<0xEE>(t[5], t[7]),
    ];
    [
        avx._mm256_permute2f128_ps::<0x20>(u[0], u[4]),
        avx._mm256_permute2f128_ps::<0x20>(u[1], u[5]),
        avx._mm256_permute2f128_ps::<0x20>(u[2], u[6]),
        avx._mm256_permute2f128_ps::<0x20>(u[3], u[7]),
        avx._mm256_permute2f128_ps::<0x31>(u[0], u[4]),
        avx._mm256_permute2f128_ps::<0x31>(u[1], u[5]),
        avx._mm256_permute2f128_ps::<0x31>(u[2], u[6]),
        avx._mm256_permute2f128_ps::<0x31>(u[3], u[7]),
    ]
}
