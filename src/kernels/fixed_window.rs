//! Channels-first rows for the common 2-D windows, with the x window and stride fixed at compile
//! time (`KX` in {2, 3, 5}, `SX` in {1, 2}, no dilation, a trivial z axis), for max without
//! indices and average:
//!
//! ```text
//! for each chunk of the output width (usually the whole row):
//!     every ring row := the op's neutral value (the padding, written once per chunk)
//!     for each output row (plane, oy) of the task:
//!         copy the window's input rows this plane has not yet copied into the ring
//!         (row y in slot y mod the ring size, ky rounded up to a power of two; split by
//!         phase as in `channels_first.rs`)
//!         for blocks of 4 (then 1) output vectors:
//!             acc = init
//!             for each window row in order, for tx in 0..KX: acc = rule(acc, row[phase][tx / SX + ..])
//!             (value-only max: each row's taps on their own chain, rows folded in order)
//!             output[plane, oy, ox..] = finish(acc, y count × x count per lane)
//! ```
//!
//! The general row kernel (`channels_first.rs`) computes the same thing for any window, but its
//! run-time tap loops, ring bookkeeping and many block shapes cost more than the arithmetic:
//! measured on a [1, 1, 112, 896] 3x3/2 max (`SHAPE=1,1,112,896 profile_case nchw resnet`, v3),
//! the block loop alone ran at 1.2-1.9 cycles per tap in a stand-alone copy and at 6.5 inside the
//! general kernel. Here the taps of a row are constants, each window row is bounds-checked once
//! per block, and a row's bookkeeping is one comparison per window row.
//!
//! Taps are visited in the reference's row-major order with the padding holding the op's
//! neutral value (−∞ never wins a max; a sum that starts at +0 is never −0, so adding +0
//! changes no bits), so results are bit-identical to the reference.

use std::ops::Range;

use pulp::{Simd, WithSimd};

use super::channels_first::{chunking, counted_taps};
use super::prefetch::Prefetcher;
use super::reduce::{Acc, Reducer};
use super::scratch;
use super::simd_io::{lanes, load, load_deinterleaved, store, store_first};
use crate::Plan;
use crate::geometry::Axis;
use crate::plan::Reduction;

/// Window widths and x strides with a compiled kernel: `(kx, sx)`.
pub(crate) const SHAPES: [(usize, usize); 6] = [(2, 1), (2, 2), (3, 1), (3, 2), (5, 1), (5, 2)];

/// Inputs from this many elements (4 MiB, past L2) ask for the input row [`PREFETCH_ROWS`]
/// ahead of each row they copy. Starting at 512 KiB (session 4) or 256 KiB (session 5) made
/// `resnet` and `alexnet` NCHW no faster in alternated runs.
pub(crate) const PREFETCH_FROM: usize = 1 << 20;

/// How far ahead a row copy prefetches, in input rows. Measured with `profile_case nchw vgg`
/// and `train` (51 MB and 26 MB inputs, v3, 3 alternations of 0, 8 and 16 rows): none 8.3-10.6
/// ms and 7.2-8.3 ms, 8 rows 6.3-8.7 ms and 5.1-6.8 ms, 16 rows 8.7-9.4 ms and 5.1-7.1 ms.
pub(crate) const PREFETCH_ROWS: usize = 8;

/// Most rows a window may have (the ring's size, and a stack array of slots per output row).
const MAX_KY: usize = 16;

/// Whether the plan's geometry has a compiled kernel here (the caller checks the op).
pub(crate) fn applies(plan: &Plan<f32>, lanes: usize) -> bool {
    let [az, ay, ax] = &plan.axes;
    let z_trivial = az.kernel == 1 && az.pad_begin == 0 && az.pad_end == 0;
    z_trivial
        && ax.dilation == 1
        && ay.dilation == 1
        && ay.kernel <= MAX_KY
        && SHAPES.contains(&(ax.kernel, ax.stride))
        && chunking(plan, lanes).is_some()
}

/// One task: the output rows `rows` (flattened (n, c, oz, oy)) of a plan for which [`applies`]
/// holds, with `KX` and `SX` its x kernel and stride.
pub(crate) struct FixedWindow<'a, R, const KX: usize, const SX: usize> {
    pub rule: R,
    pub plan: &'a Plan<f32>,
    pub input: &'a [f32],
    pub output: &'a mut [f32],
    pub rows: Range<usize>,
}

impl<R: Reducer, const KX: usize, const SX: usize> WithSimd for FixedWindow<'_, R, KX, SX> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Self {
            rule,
            plan,
            input,
            output,
            rows,
        } = self;
        let lanes = lanes::<S>();
        let Some((chunk, phase_len)) = chunking(plan, lanes) else {
            unreachable!("the plan chose this kernel only where the rows fit the scratch");
        };
        let [az, ay, ax] = plan.axes;
        debug_assert_eq!((ax.kernel, ax.stride), (KX, SX));
        // A power of two, so that a row's slot is a mask, not a division.
        let ring_rows = ay.kernel.next_power_of_two();
        let row_len = SX * phase_len;
        let mut buffer = scratch::take(ring_rows * row_len + chunk);
        let prefetcher = Prefetcher::new(input.len() >= PREFETCH_FROM);
        {
            let (ring, x_counts) = buffer.split_at_mut(ring_rows * row_len);
            let x_counts = &mut x_counts[..chunk];
            let strides = plan.input_strides;
            let mut x0 = 0;
            while x0 < ax.output {
                let width = chunk.min(ax.output - x0);
                ring.fill(R::FILL);
                let spans = RowSpans::<SX>::new(&ax, x0, phase_len);
                if R::DIVIDES {
                    x_counts.fill(1.0);
                    for (i, count) in x_counts[..width].iter_mut().enumerate() {
                        *count = counted_taps(plan.reduction, ax.taps(x0 + i)) as f32;
                    }
                }
                // The ring holds the rows before `loaded_to` (at most `ring_rows` of them) of
                // the input plane at offset `base` ((n, c, z)), row y in slot y mod ring_rows.
                let y_interior = ay.interior();
                let mut base = usize::MAX;
                let mut loaded_to = 0;
                let mut cursor = super::RowCursor::new(rows.start, az.output, ay.output);
                for local_row in 0..rows.len() {
                    let (plane, oz, oy) = (cursor.outer, cursor.oz, cursor.oy);
                    cursor.advance();
                    let ty = ay.taps_given_interior(oy, &y_interior);
                    let row_base = plane * strides[1] + oz * az.stride * strides[2];
                    if row_base != base {
                        base = row_base;
                        loaded_to = ty.first;
                    }
                    let mut slots = [0usize; MAX_KY];
                    for (j, slot_of_row) in slots[..ty.count].iter_mut().enumerate() {
                        let y = ty.first + j;
                        let slot = (y & (ring_rows - 1)) * row_len;
                        *slot_of_row = slot;
                        if y >= loaded_to {
                            let row_start = base + y * strides[3];
                            let later = (row_start + PREFETCH_ROWS * strides[3]).min(input.len());
                            prefetcher.fetch(&input[later..], ax.input);
                            let source = &input[row_start..][..ax.input];
                            spans.copy(simd, &mut ring[slot..][..row_len], source);
                        }
                    }
                    loaded_to = loaded_to.max(ty.first + ty.count);
                    let window = WindowRows {
                        ring,
                        slots: &slots[..ty.count],
                        row_len,
                        phase_len,
                    };
                    let divisor = RowDivisor::new(simd, plan.reduction, ty.count, &ay, oy);
                    let out = &mut output[local_row * ax.output + x0..][..width];
                    let mut v = 0;
                    while v + 4 * lanes <= width {
                        let accs = window.block::<S, R, KX, SX, 4>(simd, rule, v);
                        for (i, acc) in accs.into_iter().enumerate() {
                            let at = v + i * lanes;
                            let d = divisor.at::<R>(simd, x_counts, at);
                            store::<S>(out, at, rule.finish(simd, acc, d));
                        }
                        v += 4 * lanes;
                    }
                    // The last 1-4 vectors as one block of independent chains (one vector at
                    // a time, each is a chain of dependent taps); a last partial vector overlaps
                    // the one before it, recomputing the same outputs. `resnet`, `alexnet`,
                    // `inception` NCHW: 5-10 % faster (best of 20 alternated runs).
                    // Tried and not kept: sums' last 5-8 vectors as one block (`inception`
                    // 25 % slower), and two output rows per block with their taps interleaved
                    // (generic over the row count: 1.2x slower with one row, 2.5x with two;
                    // the accumulators no longer stayed in registers).
                    let remaining = width - v;
                    if width < lanes {
                        let [acc] = window.block::<S, R, KX, SX, 1>(simd, rule, 0);
                        let value = rule.finish(simd, acc, divisor.at::<R>(simd, x_counts, 0));
                        store_first::<S>(simd, out, 0, width, value);
                    } else if remaining > 0 {
                        let tail = Tail {
                            window: &window,
                            divisor: &divisor,
                            x_counts,
                            v,
                        };
                        match remaining.div_ceil(lanes) {
                            1 => tail.run::<R, KX, SX, 1>(simd, rule, out),
                            2 => tail.run::<R, KX, SX, 2>(simd, rule, out),
                            3 => tail.run::<R, KX, SX, 3>(simd, rule, out),
                            _ => tail.run::<R, KX, SX, 4>(simd, rule, out),
                        }
                    }
                }
                x0 += width;
            }
        }
        scratch::give_back(buffer);
    }
}

/// Where a chunk's input elements sit in a ring row, the same for every row: slot `i` of phase
/// `p` holds input element `start + SX * i + p`, for slots `lo[p]..hi[p]` (the others keep the
/// padding). Computed once per chunk, so that a row copy is loops and nothing else: the
/// compile-time-stride counterpart of `channels_first::copy_row`, which the general and
/// separable kernels (any stride) still use and recompute per row.
struct RowSpans<const SX: usize> {
    start: isize,
    lo: [usize; SX],
    hi: [usize; SX],
    phase_len: usize,
}

impl<const SX: usize> RowSpans<SX> {
    fn new(ax: &Axis, x0: usize, phase_len: usize) -> Self {
        let start = (x0 * SX) as isize - ax.pad_begin as isize;
        let mut lo = [0; SX];
        let mut hi = [0; SX];
        for p in 0..SX {
            let first = start + p as isize;
            // Slots before position `at` (0 if `at` <= 0).
            let slots_before = |at: isize| (at.max(0) as usize).div_ceil(SX);
            lo[p] = slots_before(-first).min(phase_len);
            hi[p] = slots_before(ax.input as isize - first).clamp(lo[p], phase_len);
        }
        RowSpans {
            start,
            lo,
            hi,
            phase_len,
        }
    }

    /// Copies `source` (one input row) into `row`: whole vectors where every phase holds input
    /// (the last overlapping the one before), element by element at the ends.
    #[inline(always)]
    fn copy<S: Simd>(&self, simd: S, row: &mut [f32], source: &[f32]) {
        let lanes = lanes::<S>();
        let at = |slot: usize, p: usize| (self.start + (SX * slot + p) as isize) as usize;
        let lo = self.lo.into_iter().max().unwrap_or(0);
        let hi = self.hi.into_iter().min().unwrap_or(0).max(lo);
        let (vector_lo, vector_hi) = if hi - lo >= lanes { (lo, hi) } else { (lo, lo) };
        if vector_hi > vector_lo {
            let mut i = vector_lo;
            loop {
                if SX == 1 {
                    store::<S>(row, i, load::<S>(source, at(i, 0)));
                } else {
                    let [even, odd] = load_deinterleaved(simd, source, at(i, 0));
                    store::<S>(row, i, even);
                    store::<S>(row, self.phase_len + i, odd);
                }
                if i + lanes == vector_hi {
                    break;
                }
                i = (i + lanes).min(vector_hi - lanes);
            }
        }
        for p in 0..SX {
            let phase = &mut row[p * self.phase_len..][..self.phase_len];
            for slot in (self.lo[p]..vector_lo).chain(vector_hi.max(self.lo[p])..self.hi[p]) {
                phase[slot] = source[at(slot, p)];
            }
        }
    }
}

/// The ring rows of one output row's window, in window order.
struct WindowRows<'a> {
    ring: &'a [f32],
    /// Offset in `ring` of each window row.
    slots: &'a [usize],
    /// Elements of one ring row (all phases).
    row_len: usize,
    /// Elements of one phase of a ring row.
    phase_len: usize,
}

impl WindowRows<'_> {
    /// `V` output vectors from chunk slot `v0`: every window row, every x tap, in order.
    #[inline(always)]
    fn block<S: Simd, R: Reducer, const KX: usize, const SX: usize, const V: usize>(
        &self,
        simd: S,
        rule: R,
        v0: usize,
    ) -> [Acc<S>; V] {
        let lanes = lanes::<S>();
        // The elements of one phase that V vectors read across the x taps: a constant, so
        // that one check per phase covers the loads below.
        let span = V * lanes + (KX - 1) / SX;
        let rows = self.slots.iter().map(|&slot| {
            let row = &self.ring[slot..][..self.row_len];
            let phases: [&[f32]; SX] =
                core::array::from_fn(|p| &row[p * self.phase_len + v0..][..span]);
            phases
        });
        fold_rows::<S, R, KX, SX, V>(simd, rule, rows, core::array::from_fn(|v| v * lanes))
    }

    /// `V` output vectors at chunk slots `offsets` (any order, possibly overlapping): as
    /// [`Self::block`], with a bounds check per load.
    #[inline(always)]
    fn block_at<S: Simd, R: Reducer, const KX: usize, const SX: usize, const V: usize>(
        &self,
        simd: S,
        rule: R,
        offsets: [usize; V],
    ) -> [Acc<S>; V] {
        let rows = self.slots.iter().map(|&slot| {
            let row = &self.ring[slot..][..self.row_len];
            let phases: [&[f32]; SX] =
                core::array::from_fn(|p| &row[p * self.phase_len..][..self.phase_len]);
            phases
        });
        fold_rows::<S, R, KX, SX, V>(simd, rule, rows, offsets)
    }
}

/// The window results of `V` vectors at `at` in each window row's phases, rows in window
/// order. Sums add every tap in order along one chain. Value-only max gives each row's taps a
/// chain of their own and folds the rows' maxima in order: the max rule is associative when
/// earlier operands stay on the left (first maximum, last NaN), so the bits are the same, and
/// a 3x3 window's chain is 4 rules long instead of 9. On v4 the 9-rule chains of short rows
/// (two vectors per `alexnet` row) left the kernel waiting on `maxps` latency.
#[inline(always)]
fn fold_rows<'a, S: Simd, R: Reducer, const KX: usize, const SX: usize, const V: usize>(
    simd: S,
    rule: R,
    rows: impl Iterator<Item = [&'a [f32]; SX]>,
    at: [usize; V],
) -> [Acc<S>; V] {
    let split = !R::SUMS && !R::TRACKS_INDEX;
    let first_tap = usize::from(split);
    let zero = simd.splat_u32s(0);
    let mut accs = [rule.init(simd, zero); V];
    for (r, phases) in rows.enumerate() {
        let mut row_accs = if split {
            core::array::from_fn(|v| Acc {
                value: load::<S>(phases[0], at[v]),
                index: zero,
            })
        } else {
            accs
        };
        for tx in first_tap..KX {
            let phase = phases[tx % SX];
            for (acc, &at) in row_accs.iter_mut().zip(&at) {
                *acc = rule.add(simd, *acc, load::<S>(phase, at + tx / SX), zero);
            }
        }
        accs = if split && r > 0 {
            core::array::from_fn(|v| rule.add(simd, accs[v], row_accs[v].value, zero))
        } else {
            row_accs
        };
    }
    accs
}

/// The last vectors of an output row, from output `v` (fewer than 4 vectors' worth, and at
/// least one whole vector in the row).
struct Tail<'a, S: Simd> {
    window: &'a WindowRows<'a>,
    divisor: &'a RowDivisor<S>,
    x_counts: &'a [f32],
    v: usize,
}

impl<S: Simd> Tail<'_, S> {
    /// Computes and stores the tail as `V` vectors, the last one ending at the row's end.
    #[inline(always)]
    fn run<R: Reducer, const KX: usize, const SX: usize, const V: usize>(
        &self,
        simd: S,
        rule: R,
        out: &mut [f32],
    ) {
        let lanes = lanes::<S>();
        let offsets: [usize; V] = core::array::from_fn(|i| {
            if i + 1 == V {
                out.len() - lanes
            } else {
                self.v + i * lanes
            }
        });
        let accs = self.window.block_at::<S, R, KX, SX, V>(simd, rule, offsets);
        for (acc, at) in accs.into_iter().zip(offsets) {
            let d = self.divisor.at::<R>(simd, self.x_counts, at);
            store::<S>(out, at, rule.finish(simd, acc, d));
        }
    }
}

/// The divisor of an output row's averages: per lane, the counted y taps times the counted x
/// taps (the reference's integer product: both are small, so the f32 product is exact), or
/// the override.
#[derive(Clone, Copy)]
struct RowDivisor<S: Simd> {
    y_count: S::f32s,
    fixed: Option<S::f32s>,
}

impl<S: Simd> RowDivisor<S> {
    #[inline(always)]
    fn new(simd: S, reduction: Reduction, y_taps: usize, ay: &Axis, oy: usize) -> Self {
        let fixed = match reduction {
            Reduction::Average {
                divisor_override: Some(d),
                ..
            } => Some(simd.splat_f32s(d)),
            Reduction::Average { .. } => None,
            _ => Some(simd.splat_f32s(1.0)),
        };
        let y_count = match reduction {
            Reduction::Average {
                count_include_pad: true,
                ..
            } => ay.taps(oy).padded_count,
            _ => y_taps,
        };
        RowDivisor {
            y_count: simd.splat_f32s(y_count as f32),
            fixed,
        }
    }

    #[inline(always)]
    fn at<R: Reducer>(&self, simd: S, x_counts: &[f32], at: usize) -> S::f32s {
        match self.fixed {
            Some(d) => d,
            None if R::DIVIDES => simd.mul_f32s(self.y_count, load::<S>(x_counts, at)),
            None => simd.splat_f32s(1.0),
        }
    }
}
