//! Loads and stores of whole vectors at any element offset of a slice. They are safe: the slice
//! is indexed (so a bad offset panics in debug and release alike rather than reading out of
//! bounds), and LLVM removes the checks where the loop bounds prove them.

use pulp::Simd;

/// Lanes of `S::f32s`.
#[inline(always)]
pub(crate) fn lanes<S: Simd>() -> usize {
    core::mem::size_of::<S::f32s>() / core::mem::size_of::<f32>()
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

/// Writes the first `count` lanes of `value` to `data[at..at + count]`.
#[inline(always)]
pub(crate) fn store_first<S: Simd>(data: &mut [f32], at: usize, count: usize, value: S::f32s) {
    let lanes: &[f32] = bytemuck::cast_slice(core::slice::from_ref(&value));
    data[at..at + count].copy_from_slice(&lanes[..count]);
}

/// Loads `data[at..at + count]` (`count <= lanes`); the other lanes hold `fill`.
#[inline(always)]
pub(crate) fn load_first<S: Simd>(data: &[f32], at: usize, count: usize, fill: f32) -> S::f32s {
    let mut buffer = [fill; 16];
    buffer[..count].copy_from_slice(&data[at..at + count]);
    load::<S>(&buffer, 0)
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
