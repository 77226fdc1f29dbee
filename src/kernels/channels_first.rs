//! Channels-first (NCW, NCHW, NCDHW) kernel, vectorized over the output width.
//!
//! ```text
//! for each output row (n, c, oz, oy) of the task:
//!     rows = the input rows (z, y) of the window inside the input, in row-major order
//!     for each chunk of the output row:
//!         for each of those input rows: copy it into a row buffer, padded with the op's
//!             neutral value and split by phase (element q goes to phase q mod s, slot q / s),
//!             so that tap x of every output in a vector is one contiguous load
//!         for blocks of 4 (then 1) output vectors:
//!             acc = init
//!             for each buffered row, for each x tap: acc = rule(acc, buffer[phase][slot..])
//!             output[n, c, oz, oy, ox..] = finish(acc, divisor per lane)
//! ```
//!
//! The padded row buffer makes horizontal padding cost no branch in the hot loop; splitting by
//! phase turns stride 2 (and any stride) into contiguous loads, and stride 1 into a plain copy.
//! A padding tap holds the op's neutral value (−∞ for max, 0 for sums), which leaves every lane's
//! result bit-identical to the reference's (a running sum is never −0, so adding +0 changes
//! nothing). Max indices of windows whose input is all −∞ are set afterwards to the window's
//! first input element, as the reference does.

use std::ops::Range;

use pulp::{Simd, WithSimd};

use super::reduce::{Acc, Reducer};
use super::simd_io::{lanes, load, load_deinterleaved, ramp, store, store_first, store_indices};
use crate::Plan;
use crate::geometry::{Axis, Taps};

/// Elements of the per-task scratch that holds the buffered rows (64 KiB: the rows of one window
/// stay in L1/L2 while a chunk of outputs is computed; sized by reasoning, not yet by a sweep).
pub(crate) const SCRATCH: usize = 16 * 1024;

/// One task: the output rows `rows` (flattened (n, c, oz, oy)) of a channels-first plan.
pub(crate) struct ChannelsFirst<'a, R> {
    pub rule: R,
    pub plan: &'a Plan<f32>,
    pub input: &'a [f32],
    pub output: &'a mut [f32],
    pub indices: Option<&'a mut [i64]>,
    pub rows: Range<usize>,
}

/// Largest kernel width the row-buffer kernel takes (its tap offsets live in a stack array).
pub(crate) const MAX_TAPS_X: usize = 64;

/// How the output row is cut into chunks that fit the scratch, and where each x tap reads.
#[derive(Clone, Copy)]
struct Layout {
    /// Outputs per chunk (a multiple of the lanes).
    chunk: usize,
    /// Slots per phase buffer: the chunk plus the largest tap shift.
    phase_len: usize,
    /// Per x tap: offset in a row's buffer of output 0's element (phase * phase_len + shift).
    tap_slots: [usize; MAX_TAPS_X],
}

/// The chunking for a plan on a level with `lanes` lanes, or `None` when even one vector of
/// outputs does not fit the scratch (huge windows: the scalar kernel takes those).
pub(crate) fn chunking(plan: &Plan<f32>, lanes: usize) -> Option<(usize, usize)> {
    let [az, ay, ax] = &plan.axes;
    if ax.kernel > MAX_TAPS_X {
        return None;
    }
    let rows = az.kernel.checked_mul(ay.kernel)?;
    let max_shift = (ax.kernel - 1).checked_mul(ax.dilation)? / ax.stride;
    let per_slot = rows.checked_mul(ax.stride)?;
    let slots = SCRATCH / per_slot;
    let chunk = slots.checked_sub(max_shift + lanes)? / lanes * lanes;
    if chunk == 0 {
        return None;
    }
    let chunk = chunk.min(ax.output.div_ceil(lanes) * lanes);
    Some((chunk, chunk + max_shift))
}

/// Elements of scratch a task needs: one phase-split buffer per input row of a window.
fn scratch_len(plan: &Plan<f32>, phase_len: usize) -> usize {
    let [az, ay, ax] = &plan.axes;
    az.kernel * ay.kernel * ax.stride * phase_len
}

impl<R: Reducer> WithSimd for ChannelsFirst<'_, R> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Self {
            rule,
            plan,
            input,
            output,
            indices,
            rows,
        } = self;
        let lanes = lanes::<S>();
        let Some((chunk, phase_len)) = chunking(plan, lanes) else {
            unreachable!("the plan chose this kernel only where the rows fit the scratch");
        };
        // Tap tx reads padded position ox*s + tx*d: phase (tx*d) mod s, slot ox + (tx*d) / s.
        let mut tap_slots = [0; MAX_TAPS_X];
        let ax = &plan.axes[2];
        for (tx, slot) in tap_slots[..ax.kernel].iter_mut().enumerate() {
            let offset = tx * ax.dilation;
            *slot = (offset % ax.stride) * phase_len + offset / ax.stride;
        }
        let layout = Layout {
            chunk,
            phase_len,
            tap_slots,
        };
        // A stack buffer sized in steps, so that small problems do not pay for zeroing a large one.
        let needed = scratch_len(plan, phase_len);
        if needed <= 512 {
            rows_with_scratch(
                simd,
                rule,
                plan,
                input,
                output,
                indices,
                rows,
                layout,
                &mut [0.0; 512],
            );
        } else if needed <= 4096 {
            rows_with_scratch(
                simd,
                rule,
                plan,
                input,
                output,
                indices,
                rows,
                layout,
                &mut [0.0; 4096],
            );
        } else {
            rows_with_scratch(
                simd,
                rule,
                plan,
                input,
                output,
                indices,
                rows,
                layout,
                &mut [0.0; SCRATCH],
            );
        }
    }
}

/// The task's rows, with `scratch` for the row buffers.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn rows_with_scratch<S: Simd, R: Reducer>(
    simd: S,
    rule: R,
    plan: &Plan<f32>,
    input: &[f32],
    output: &mut [f32],
    mut indices: Option<&mut [i64]>,
    rows: Range<usize>,
    layout: Layout,
    scratch: &mut [f32],
) {
    let lanes = lanes::<S>();
    let [az, ay, ax] = plan.axes;
    let strides = plan.input_strides;
    let interior = (ax.interior().start, ax.interior().end);
    let mut cursor = super::RowCursor::new(rows.start, az.output, ay.output);
    for local_row in 0..rows.len() {
        let (plane, oz, oy) = (cursor.outer, cursor.oz, cursor.oy);
        cursor.advance();
        let (tz, ty) = (az.taps(oz), ay.taps(oy));
        // Dense channels-first: plane (n, c) starts at (n * C + c) * D * H * W.
        let base = plane * strides[1];
        let out_row = local_row * ax.output;
        let mut x0 = 0;
        while x0 < ax.output {
            let width = layout.chunk.min(ax.output - x0);
            let mut buffered = 0;
            for iz in 0..tz.count {
                let z = tz.first + iz * az.dilation;
                for iy in 0..ty.count {
                    let y = ty.first + iy * ay.dilation;
                    let source = &input[base + z * strides[2] + y * strides[3]..][..ax.input];
                    let buffer = &mut scratch[buffered * ax.stride * layout.phase_len..]
                        [..ax.stride * layout.phase_len];
                    fill_row(simd, buffer, source, &ax, x0, layout.phase_len, R::FILL);
                    buffered += 1;
                }
            }
            let row_indices = RowIndices {
                taps_z: tz,
                taps_y: ty,
                height: ay.input,
                interior,
            };
            let mut v = 0;
            // Blocks of V output vectors: 4 while they fill, then the last 1 to 4 as one block,
            // so the taps are walked once more, not once per vector.
            macro_rules! block_of {
                ($v:literal) => {{
                    let accs = block::<S, R, $v>(
                        simd,
                        rule,
                        plan,
                        scratch,
                        layout,
                        row_indices,
                        x0 + v,
                        v,
                    );
                    store_block(
                        simd,
                        rule,
                        plan,
                        &accs,
                        output,
                        indices.as_deref_mut(),
                        out_row,
                        x0 + v,
                        width - v,
                        row_indices,
                    );
                }};
            }
            while v + 4 * lanes <= width {
                block_of!(4);
                v += 4 * lanes;
            }
            match (width - v).div_ceil(lanes) {
                0 => {}
                1 => block_of!(1),
                2 => block_of!(2),
                3 => block_of!(3),
                _ => block_of!(4),
            }
            x0 += width;
        }
    }
}

/// The input rows of one output row, for plane indices.
#[derive(Clone, Copy)]
struct RowIndices {
    taps_z: Taps,
    taps_y: Taps,
    height: usize,
    /// The interior outputs of the x axis, as (start, end).
    interior: (usize, usize),
}

/// Copies the input row into `buffer` for outputs `x0..`: phase `p`, slot `i` holds padded
/// position `(x0 + i) * s + p`, i.e. input element `(x0 + i) * s + p - pb`, or `fill` outside
/// the input. Stride 1 is a plain copy; stride 2 splits pairs of vectors into even and odd
/// lanes; larger strides copy element by element.
#[inline(always)]
pub(crate) fn fill_row<S: Simd>(
    simd: S,
    buffer: &mut [f32],
    source: &[f32],
    ax: &Axis,
    x0: usize,
    phase_len: usize,
    fill: f32,
) {
    let s = ax.stride as isize;
    let width = ax.input as isize;
    // Per phase: input position of slot 0 and the slots lo..hi that hold input elements.
    let mut spans = [(0isize, 0usize, 0usize); 2];
    for (p, phase) in buffer.chunks_exact_mut(phase_len).enumerate() {
        let start = (x0 * ax.stride + p) as isize - ax.pad_begin as isize;
        let slots_before = |position: isize| {
            if position <= 0 {
                0
            } else {
                super::div_ceil_fast(position as usize, ax.stride)
            }
        };
        let lo = slots_before(-start).min(phase_len);
        let hi = slots_before(width - start).clamp(lo, phase_len);
        phase[..lo].fill(fill);
        phase[hi..].fill(fill);
        if p < 2 {
            spans[p] = (start, lo, hi);
        }
        if lo == hi || ax.stride == 2 {
            continue;
        }
        let from = (start + lo as isize * s) as usize;
        if ax.stride == 1 {
            phase[lo..hi].copy_from_slice(&source[from..from + (hi - lo)]);
        } else {
            let strided = source[from..].iter().step_by(ax.stride);
            for (slot, &value) in phase[lo..hi].iter_mut().zip(strided) {
                *slot = value;
            }
        }
    }
    if ax.stride == 2 {
        let (even, odd) = buffer.split_at_mut(phase_len);
        fill_pairs(simd, even, &mut odd[..phase_len], source, spans);
    }
}

/// Stride 2: where both phases hold input, pairs of vectors split into even and odd elements
/// (the last vector overlapping the one before rather than leaving a scalar tail); the ends
/// element by element.
#[inline(always)]
fn fill_pairs<S: Simd>(
    simd: S,
    even: &mut [f32],
    odd: &mut [f32],
    source: &[f32],
    spans: [(isize, usize, usize); 2],
) {
    let lanes = lanes::<S>();
    let [(start, lo0, hi0), (_, lo1, hi1)] = spans;
    // Slot i of phase 0 is source[start + 2i], of phase 1 source[start + 2i + 1].
    let lo = lo0.max(lo1);
    let hi = hi0.min(hi1).max(lo);
    let split = |i: usize| (start + 2 * i as isize) as usize;
    let mut done = lo;
    if hi - lo >= lanes {
        let mut i = lo;
        loop {
            let [e, o] = load_deinterleaved(simd, source, split(i));
            store::<S>(even, i, e);
            store::<S>(odd, i, o);
            if i + lanes == hi {
                break;
            }
            i = (i + lanes).min(hi - lanes);
        }
        done = hi;
    }
    let element = |slot: usize, phase: isize| source[(start + 2 * slot as isize + phase) as usize];
    for slot in (lo0..lo.min(hi0)).chain(done.max(lo0)..hi0) {
        even[slot] = element(slot, 0);
    }
    for slot in (lo1..lo.min(hi1)).chain(done.max(lo1)..hi1) {
        odd[slot] = element(slot, 1);
    }
}

/// `V` output vectors starting at output `ox0` (slot `v0` of the chunk).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn block<S: Simd, R: Reducer, const V: usize>(
    simd: S,
    rule: R,
    plan: &Plan<f32>,
    scratch: &[f32],
    layout: Layout,
    rows: RowIndices,
    ox0: usize,
    v0: usize,
) -> [Acc<S>; V] {
    let lanes = lanes::<S>();
    let [az, ay, ax] = &plan.axes;
    let zero = simd.splat_u32s(0);
    let mut accs = [rule.init(simd, zero); V];
    let (s, d) = (ax.stride, ax.dilation);
    let mut buffered = 0;
    for iz in 0..rows.taps_z.count {
        let z = rows.taps_z.first + iz * az.dilation;
        for iy in 0..rows.taps_y.count {
            let y = rows.taps_y.first + iy * ay.dilation;
            let buffer = &scratch[buffered * s * layout.phase_len..][..s * layout.phase_len];
            // Plane index of padded x position 0 of output ox0 in this row (wrapping: padding
            // lanes hold the fill value and never win, so their index is never kept).
            let row_index = ((z * rows.height + y) * ax.input) as u32;
            let x_start = (ox0 * s) as u32;
            let lane_base = row_index
                .wrapping_add(x_start)
                .wrapping_sub(ax.pad_begin as u32);
            for (tx, &slot) in layout.tap_slots[..ax.kernel].iter().enumerate() {
                let at = slot + v0;
                for (v, acc) in accs.iter_mut().enumerate() {
                    let index = if R::TRACKS_INDEX {
                        let first = lane_base.wrapping_add((tx * d + v * lanes * s) as u32);
                        ramp(simd, first, s as u32)
                    } else {
                        zero
                    };
                    let value = load::<S>(buffer, at + v * lanes);
                    *acc = rule.add(simd, *acc, value, index);
                }
            }
            buffered += 1;
        }
    }
    accs
}

/// Finishes `V` vectors of outputs `ox0..` and stores those below `remaining`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn store_block<S: Simd, R: Reducer, const V: usize>(
    simd: S,
    rule: R,
    plan: &Plan<f32>,
    accs: &[Acc<S>; V],
    output: &mut [f32],
    mut indices: Option<&mut [i64]>,
    out_row: usize,
    ox0: usize,
    remaining: usize,
    rows: RowIndices,
) {
    let lanes = lanes::<S>();
    let ax = &plan.axes[2];
    let interior = rows.interior;
    for (v, acc) in accs.iter().enumerate() {
        let ox = ox0 + v * lanes;
        let count = remaining.saturating_sub(v * lanes).min(lanes);
        if count == 0 {
            break;
        }
        let divisor = if !R::DIVIDES {
            simd.splat_f32s(1.0)
        } else if ox >= interior.0 && ox + lanes <= interior.1 {
            let taps = [
                rows.taps_z,
                rows.taps_y,
                ax.taps_given_interior(ox, &(interior.0..interior.1)),
            ];
            simd.splat_f32s(super::divisor(plan.reduction, &taps))
        } else {
            let mut lanes_divisor = [1.0f32; 16];
            for (lane, slot) in lanes_divisor[..count].iter_mut().enumerate() {
                let taps = [rows.taps_z, rows.taps_y, ax.taps(ox + lane)];
                *slot = super::divisor(plan.reduction, &taps);
            }
            load::<S>(&lanes_divisor, 0)
        };
        let value = rule.finish(simd, *acc, divisor);
        let at = out_row + ox;
        if count == lanes {
            store::<S>(output, at, value);
        } else {
            store_first::<S>(output, at, count, value);
        }
        if let Some(indices) = indices.as_deref_mut() {
            store_indices::<S>(indices, at, count, acc.index);
            // Windows whose input is all −∞ keep −∞ and report their first input element.
            let values: &[f32] = bytemuck::cast_slice(core::slice::from_ref(&value));
            for (lane, &x) in values[..count].iter().enumerate() {
                if x == f32::NEG_INFINITY {
                    let tx = ax.taps(ox + lane);
                    let first =
                        (rows.taps_z.first * rows.height + rows.taps_y.first) * ax.input + tx.first;
                    indices[at + lane] = first as i64;
                }
            }
        }
    }
}
