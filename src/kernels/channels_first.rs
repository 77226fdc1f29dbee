//! Channels-first (NCW, NCHW, NCDHW) kernel, vectorized over the output width.
//!
//! ```text
//! for each chunk of the output width (usually the whole row):
//!     every ring slot := the op's neutral value (the padding, written once per chunk)
//!     for each output row (n, c, oz, oy) of the task:
//!         for each input row (z, y) of the window inside the input, in row-major order:
//!             unless ring slot (z mod ring_z, y mod ring_y) already holds it: copy the row's
//!             elements into the slot, split by phase (element q goes to phase q mod s, slot
//!             q / s), so that tap x of every output in a vector is one contiguous load
//!         for blocks of 4 (then 1) output vectors:
//!             acc = init
//!             for each window row, for each x tap: acc = rule(acc, slot[phase][index..])
//!             output[n, c, oz, oy, ox..] = finish(acc, divisor per lane)
//! ```
//!
//! The ring spans a window's rows ((k - 1) * d + 1 per axis), so consecutive output rows of a
//! plane reuse the rows they share: each input row is copied once per chunk, not once per window
//! that reads it. The padded slots make horizontal padding cost no branch in the hot loop, and
//! their padding never changes within a chunk, so a row copy writes only input elements.
//! Splitting by phase turns stride 2 (and any stride) into contiguous loads, and stride 1 into
//! a plain copy. A padding tap holds the op's neutral value (−∞ for max, 0 for sums), which
//! leaves every lane's result bit-identical to the reference's (a running sum is never −0, so
//! adding +0 changes nothing). Max indices of windows whose input is all −∞ are set afterwards
//! to the window's first input element, as the reference does.

use std::ops::Range;

use pulp::{Simd, WithSimd};

use super::reduce::{Acc, Reducer};
use super::simd_io::{lanes, load, load_deinterleaved, ramp, store, store_first, store_indices};
use crate::Plan;
use crate::geometry::{Axis, Taps};
use crate::plan::Reduction;

/// Elements of the per-task scratch that holds the ring of rows (64 KiB: the rows of one
/// window stay in L1/L2 while a chunk of outputs is computed; sized by reasoning, not yet by a
/// sweep).
pub(crate) const SCRATCH: usize = 16 * 1024;

/// Most slots the ring of input rows may have (z span × y span of a window); larger windows run
/// the scalar kernel.
pub(crate) const MAX_RING_SLOTS: usize = 128;

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

/// How the output row is cut into chunks that fit the scratch, where each x tap reads, and how
/// input rows map to ring slots.
#[derive(Clone, Copy)]
struct Layout {
    /// Outputs per chunk (a multiple of the lanes).
    chunk: usize,
    /// Slots per phase buffer: the chunk plus the largest tap shift.
    phase_len: usize,
    /// Rows of the ring along z and y: a window's span on each axis.
    ring: (usize, usize),
    /// Per x tap: offset in a row's buffer of output 0's element (phase * phase_len + shift).
    tap_slots: [usize; MAX_TAPS_X],
}

impl Layout {
    /// Elements of one ring slot (all phases of one row).
    fn slot_len(&self, stride: usize) -> usize {
        stride * self.phase_len
    }

    /// The ring slots of the window rows of an output row, in row-major order, into `slots`
    /// (row (z, y) goes to slot (z mod ring_z) * ring_y + y mod ring_y); their count. Two
    /// divisions per output row: the taps step through the ring without one.
    fn window_slots(
        &self,
        (az, ay): (&Axis, &Axis),
        (tz, ty): (Taps, Taps),
        slots: &mut [usize; MAX_RING_SLOTS],
    ) -> usize {
        let (ring_z, ring_y) = self.ring;
        let mut n = 0;
        let mut z_slot = tz.first % ring_z;
        for _ in 0..tz.count {
            let mut y_slot = ty.first % ring_y;
            for _ in 0..ty.count {
                slots[n] = z_slot * ring_y + y_slot;
                n += 1;
                y_slot += ay.dilation;
                if y_slot >= ring_y {
                    y_slot -= ring_y;
                }
            }
            z_slot += az.dilation;
            if z_slot >= ring_z {
                z_slot -= ring_z;
            }
        }
        n
    }
}

/// Rows of the ring along z and y (a window's span on each axis), if their product is at most
/// [`MAX_RING_SLOTS`].
fn ring_shape(plan: &Plan<f32>) -> Option<(usize, usize)> {
    let [az, ay, _] = &plan.axes;
    let span = |kernel: usize, dilation: usize| (kernel - 1).checked_mul(dilation)?.checked_add(1);
    let ring = (span(az.kernel, az.dilation)?, span(ay.kernel, ay.dilation)?);
    (ring.0.checked_mul(ring.1)? <= MAX_RING_SLOTS).then_some(ring)
}

/// The chunking for a plan on a level with `lanes` lanes, or `None` when the ring does not fit
/// the scratch with even one vector of outputs per chunk (huge windows: the scalar kernel takes
/// those). The scratch holds the ring and, for average, a chunk of per-output tap counts.
pub(crate) fn chunking(plan: &Plan<f32>, lanes: usize) -> Option<(usize, usize)> {
    let ax = &plan.axes[2];
    if ax.kernel > MAX_TAPS_X {
        return None;
    }
    let (ring_z, ring_y) = ring_shape(plan)?;
    let max_shift = (ax.kernel - 1).checked_mul(ax.dilation)? / ax.stride;
    // Per output slot: one element per phase of every ring row, plus one tap count.
    let per_slot = (ring_z * ring_y).checked_mul(ax.stride)?.checked_add(1)?;
    let slots = SCRATCH / per_slot;
    let chunk = slots.checked_sub(max_shift + lanes)? / lanes * lanes;
    if chunk == 0 {
        return None;
    }
    let chunk = chunk.min(ax.output.div_ceil(lanes) * lanes);
    Some((chunk, chunk + max_shift))
}

/// Elements of scratch a task needs: the ring, then one tap count per output of a chunk.
fn scratch_len(plan: &Plan<f32>, layout: &Layout) -> usize {
    layout.ring.0 * layout.ring.1 * layout.slot_len(plan.axes[2].stride) + layout.chunk
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
        let Some(ring) = ring_shape(plan) else {
            unreachable!("chunking found the ring's shape");
        };
        let layout = Layout {
            chunk,
            phase_len,
            ring,
            tap_slots,
        };
        // A stack buffer sized in steps, so that small problems do not pay for zeroing a large one.
        let needed = scratch_len(plan, &layout);
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

/// The task's rows, with `scratch` for the ring of rows and a chunk's tap counts.
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
    let slot_len = layout.slot_len(ax.stride);
    let (ring, x_counts) = scratch.split_at_mut(layout.ring.0 * layout.ring.1 * slot_len);
    let mut x0 = 0;
    while x0 < ax.output {
        let width = layout.chunk.min(ax.output - x0);
        // The padding, once per chunk: row copies write input elements only.
        ring.fill(R::FILL);
        let mut held = [None::<(usize, usize, usize)>; MAX_RING_SLOTS];
        let mut slots = [0usize; MAX_RING_SLOTS];
        if R::DIVIDES {
            for (i, count) in x_counts[..width].iter_mut().enumerate() {
                *count = counted_taps(plan.reduction, ax.taps(x0 + i)) as f32;
            }
        }
        let mut cursor = super::RowCursor::new(rows.start, az.output, ay.output);
        for local_row in 0..rows.len() {
            let (plane, oz, oy) = (cursor.outer, cursor.oz, cursor.oy);
            cursor.advance();
            let (tz, ty) = (az.taps(oz), ay.taps(oy));
            // Dense channels-first: plane (n, c) starts at (n * C + c) * D * H * W.
            let base = plane * strides[1];
            let window_rows = layout.window_slots((&az, &ay), (tz, ty), &mut slots);
            let mut slots_of_rows = slots[..window_rows].iter();
            for iz in 0..tz.count {
                let z = tz.first + iz * az.dilation;
                for iy in 0..ty.count {
                    let y = ty.first + iy * ay.dilation;
                    let Some(&slot) = slots_of_rows.next() else {
                        unreachable!("one slot per window row");
                    };
                    if held[slot] != Some((plane, z, y)) {
                        held[slot] = Some((plane, z, y));
                        let source = &input[base + z * strides[2] + y * strides[3]..][..ax.input];
                        let buffer = &mut ring[slot * slot_len..][..slot_len];
                        copy_row(simd, buffer, source, &ax, x0, layout.phase_len);
                    }
                }
            }
            let row_indices = RowIndices {
                taps_z: tz,
                taps_y: ty,
                height: ay.input,
                interior,
                zy_count: counted_taps(plan.reduction, tz) * counted_taps(plan.reduction, ty),
            };
            let out_row = local_row * ax.output;
            let mut v = 0;
            // Blocks of V output vectors: 4 while they fill, then the last 1 to 4 as one block,
            // so the taps are walked once more, not once per vector.
            macro_rules! block_of {
                ($v:literal) => {{
                    let accs = block::<S, R, $v>(
                        simd,
                        rule,
                        plan,
                        (ring, &slots[..window_rows]),
                        &layout,
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
                        (x0, v),
                        width - v,
                        row_indices,
                        &x_counts[..width],
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
        }
        x0 += width;
    }
}

/// The taps of one axis that an average counts in its divisor: those inside the input, or
/// with `count_include_pad` those inside the padded input.
pub(crate) fn counted_taps(reduction: Reduction, taps: Taps) -> usize {
    match reduction {
        Reduction::Average {
            count_include_pad: true,
            ..
        } => taps.padded_count,
        _ => taps.count,
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
    /// The counted taps (see `counted_taps`) of the z and y axes, multiplied.
    zy_count: usize,
}

/// Fills `buffer` for outputs `x0..`: phase `p`, slot `i` holds padded position
/// `(x0 + i) * s + p`, i.e. input element `(x0 + i) * s + p - pb`; slots outside the input keep
/// what they hold (the caller writes the padding once).
/// Stride 1 is a plain copy; stride 2 splits pairs of vectors into even and odd lanes; larger
/// strides copy element by element.
#[inline(always)]
pub(crate) fn copy_row<S: Simd>(
    simd: S,
    buffer: &mut [f32],
    source: &[f32],
    ax: &Axis,
    x0: usize,
    phase_len: usize,
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
    (ring, slots): (&[f32], &[usize]),
    layout: &Layout,
    rows: RowIndices,
    ox0: usize,
    v0: usize,
) -> [Acc<S>; V] {
    let lanes = lanes::<S>();
    let [az, ay, ax] = &plan.axes;
    let zero = simd.splat_u32s(0);
    let mut accs = [rule.init(simd, zero); V];
    let (s, d) = (ax.stride, ax.dilation);
    let slot_len = layout.slot_len(s);
    let mut slots = slots.iter();
    for iz in 0..rows.taps_z.count {
        let z = rows.taps_z.first + iz * az.dilation;
        for iy in 0..rows.taps_y.count {
            let y = rows.taps_y.first + iy * ay.dilation;
            let Some(&slot) = slots.next() else {
                unreachable!("one slot per window row");
            };
            let buffer = &ring[slot * slot_len..][..slot_len];
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
    (x0, v0): (usize, usize),
    remaining: usize,
    rows: RowIndices,
    x_counts: &[f32],
) {
    let lanes = lanes::<S>();
    let ax = &plan.axes[2];
    let interior = rows.interior;
    let ox0 = x0 + v0;
    for (v, acc) in accs.iter().enumerate() {
        let ox = ox0 + v * lanes;
        let count = remaining.saturating_sub(v * lanes).min(lanes);
        if count == 0 {
            break;
        }
        let divisor = match plan.reduction {
            _ if !R::DIVIDES => simd.splat_f32s(1.0),
            Reduction::Average {
                divisor_override: Some(d),
                ..
            } => simd.splat_f32s(d),
            _ if ox >= interior.0 && ox + lanes <= interior.1 => {
                simd.splat_f32s((rows.zy_count * ax.kernel) as f32)
            }
            _ => {
                // The same integer product as the reference's, converted once.
                let mut lanes_divisor = [1.0f32; 16];
                let counts = &x_counts[ox - x0..][..count];
                for (slot, &x_count) in lanes_divisor.iter_mut().zip(counts) {
                    *slot = (rows.zy_count * x_count as usize) as f32;
                }
                load::<S>(&lanes_divisor, 0)
            }
        };
        let value = rule.finish(simd, *acc, divisor);
        let at = out_row + ox;
        if count == lanes {
            store::<S>(output, at, value);
        } else {
            store_first::<S>(simd, output, at, count, value);
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
