//! Separable max pooling (values only), for windows whose rows are shared between output rows
//! (stride in y smaller than the kernel, as in the 5x5 stride-1 SPPF block):
//!
//! ```text
//! for each output row (outer, oz, oy) of the task:
//!     for each input row y of the window (inside the input):
//!         h[y] = the row's horizontal window maxima, one per output x (computed once per task
//!                and kept in a ring of (ky - 1) * dy + 1 rows)
//!     output row = elementwise max over those h rows, in window order
//! ```
//!
//! Per output this costs `kx` taps per new input row plus `ky` to merge instead of `kx * ky`.
//! It is exact: max is taken with the reference's rule ("greater or NaN replaces") first along
//! each row, then across rows in order, which selects the same element as the row-major scan (the
//! first maximum, the last NaN). Max with indices uses the direct kernels.
//!
//! Channels-last h rows with x stride 1 take their interior pixels as one flat run (element j
//! the max of the input row at j shifted by each tap), and long runs start their blocks on a
//! vector boundary ([`from_boundary`]); the ring sits as far off one as the input. `sppf` NHWC
//! (`profile_case`, v3, `BEST=10`, best of 3 alternated rounds): 163 to 131 µs on 64-byte
//! boundaries, 176 to 134 µs 16 bytes off.
//!
//! Channels-first plans with x stride 1 take [`super::separable_bands`] instead (whole bands of
//! a plane as one flat block). Rows are combined a block of 8 (then 4) vectors at a time, one
//! bounds check per source row and block; a row without NaN (checked once, [`any_nan`], or
//! probed by the quads of its row pass: [`quads_probing_nan`]) is combined with the
//! one-instruction [`MaxOfNumbers`].
//!
//! With y stride and dilation 1, output rows oy and oy + 1 of a slab are merged together: the
//! window rows they share are merged once for both ([`max_of_row_pair`]), so a 5-row window
//! reads 3 h rows per output row instead of 5. `sppf` NHWC, whose h rows (40 pixels x 256
//! channels) are read from L2: 313 -> 280 µs (`profile_case nhwc sppf`, best of 5 alternated).
//! Channels-last 5-row windows go four output rows at a time instead ([`max_of_row_quad`]): 8
//! h rows read for 4 output rows, 9 rule steps instead of 10 for two pairs; their 5-pixel rows
//! do the same along x on pixels of [`QUADS_X_FROM`] vectors or more.

use std::ops::Range;

use pulp::{Simd, WithSimd};

use super::channels_first::{MAX_TAPS_X, chunking, copy_row};
use super::prefetch::Prefetcher;
use super::reduce::{Acc, MaxOfNumbers, MaxValue, Reducer, any_nan};
use super::scratch;
use super::separable_bands;
use super::simd_io::{lanes, load, load_first, store, store_first, to_boundary};
use super::whole_windows::ALIGN_FROM;
use crate::{Layout, Plan};

/// Most rows the ring of horizontal maxima holds.
pub(crate) const MAX_RING: usize = 64;

/// Most elements the ring may take (16 MiB of f32): beyond it the direct kernel runs, so that a
/// huge row never makes a run allocate without bound.
pub(crate) const MAX_RING_ELEMENTS: usize = 1 << 22;

/// Whether the separable kernel applies to the plan and saves work on a level with `lanes`.
pub(crate) fn applies(plan: &Plan<f32>, lanes: usize) -> bool {
    let [az, ay, ax] = &plan.axes;
    let z_trivial = az.kernel == 1 && az.pad_begin == 0 && az.pad_end == 0;
    let ring = (ay.kernel - 1)
        .saturating_mul(ay.dilation)
        .saturating_add(1)
        .checked_next_power_of_two()
        .unwrap_or(usize::MAX);
    // Found by the descriptor fuzz target: kernels near usize::MAX overflowed a plain `+`.
    let saves = ax
        .kernel
        .saturating_mul(ay.stride.min(ay.kernel))
        .saturating_add(ay.kernel)
        < ax.kernel.saturating_mul(ay.kernel);
    let h_row = match plan.layout {
        Layout::ChannelsLast => ax.output.saturating_mul(plan.channels),
        Layout::ChannelsFirst => ax.output.saturating_add(lanes),
    };
    let ring_fits = ring.saturating_mul(h_row) <= MAX_RING_ELEMENTS;
    // A window row's tap offsets live in a stack array (wider windows run direct).
    let row_fits = ring_fits
        && ax.kernel <= MAX_TAPS_X
        && match plan.layout {
            Layout::ChannelsLast => true,
            Layout::ChannelsFirst => {
                chunking(plan, lanes).is_some_and(|(chunk, _)| chunk >= ax.output)
            }
        };
    z_trivial && ay.kernel > 1 && ring <= MAX_RING && saves && row_fits
}

/// One task: the output rows `rows` of a plan for which [`applies`] holds.
pub(crate) struct SeparableMax<'a> {
    pub plan: &'a Plan<f32>,
    pub input: &'a [f32],
    pub output: &'a mut [f32],
    pub rows: Range<usize>,
}

impl WithSimd for SeparableMax<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Self {
            plan,
            input,
            output,
            rows,
        } = self;
        if plan.layout == Layout::ChannelsFirst && separable_bands::shape(plan).is_some() {
            separable_bands::run(simd, plan, input, output, rows);
            return;
        }
        let lanes = lanes::<S>();
        let [az, ay, ax] = plan.axes;
        // A power of two, so that a row's slot is a mask, not a division.
        let ring = ((ay.kernel - 1) * ay.dilation + 1).next_power_of_two();
        let channels_last = plan.layout == Layout::ChannelsLast;
        // One h row: the output row's length (rounded up to whole vectors channels-first).
        let (row_len, h_len, row_buffer) = if channels_last {
            let len = ax.output * plan.channels;
            (len, len, 0)
        } else {
            let (_, phase_len) = chunking(plan, lanes).unwrap_or((0, 0));
            (
                ax.output,
                ax.output.div_ceil(lanes) * lanes,
                ax.stride * phase_len,
            )
        };
        // Ring slots `pitch` apart, a cache line more than a whole number of lines: rows a
        // multiple of 4 KiB long (`sppf` NHWC: 40 pixels x 256 channels) put every slot's
        // element i in one L1 set, and the y pass reads 6-8 slots at once (see [`quad_rows`]).
        let pitch = if channels_last {
            h_len.next_multiple_of(16) + 16
        } else {
            h_len
        };
        // Not a closure: the loops must stay inside this function's SIMD context.
        let mut buffer = scratch::take(ring * pitch + row_buffer + lanes);
        {
            // Channels-last h rows as far off a vector boundary as the input (and, as callers'
            // buffers come, the output): loads and stores that start on boundaries meet there.
            let shift = if channels_last {
                (to_boundary::<S>(&buffer, 0) + lanes - to_boundary::<S>(input, 0)) % lanes
            } else {
                0
            };
            let (ring_rows, row_scratch) = buffer[shift..].split_at_mut(ring * pitch);
            let row_scratch = &mut row_scratch[..row_buffer];
            // The row buffer's padding slots never change: written once, then each row copy
            // writes input elements only.
            row_scratch.fill(f32::NEG_INFINITY);
            let phase_len = row_buffer / ax.stride.max(1);
            // Tap tx reads padded position ox*s + tx*d: phase (tx*d) mod s, slot ox + (tx*d) / s.
            let mut tap_slots = [0usize; MAX_TAPS_X];
            if !channels_last {
                for (tx, slot) in tap_slots[..ax.kernel].iter_mut().enumerate() {
                    let offset = tx * ax.dilation;
                    *slot = (offset % ax.stride) * phase_len + offset / ax.stride;
                }
            }
            let mut row_taps = RowTaps {
                buffer: row_scratch,
                phase_len,
                tap_slots: &tap_slots[..if channels_last { 0 } else { ax.kernel }],
            };
            // Which input row each ring slot holds, as `row_key` (0: none).
            let mut keys = [0usize; MAX_RING];
            // Whether each slot's input row holds a NaN (its h row then may).
            let mut nans = [false; MAX_RING];
            let row_key = |outer: usize, z: usize, y: usize| {
                ((outer * az.input + z) * ay.input + y).wrapping_add(1)
            };
            // Output rows oy and oy + 1 of one slab (y stride and dilation 1) share their middle
            // window rows: with a ring that holds both windows' rows, the two are computed
            // together and each middle h row is read once for both.
            let pairs = ay.stride == 1 && ay.dilation == 1 && ring > ay.kernel;
            // Four output rows of 5-row windows at a time ([`max_of_row_quad`]), the 8 rows
            // they read in the ring at once.
            let quads = quad_rows(plan) && ring >= 8;
            let mut cursor = super::RowCursor::new(rows.start, az.output, ay.output);
            let mut local_row = 0;
            while local_row < rows.len() {
                let (outer, oz, oy) = (cursor.outer, cursor.oz, cursor.oy);
                cursor.advance();
                let z = az.taps(oz).first;
                let ty = ay.taps(oy);
                let quad = quads
                    && local_row + 3 < rows.len()
                    && oy + 3 < ay.output
                    && (0..4).all(|i| {
                        let t = ay.taps(oy + i);
                        t.count == 5 && t.first == ty.first + i
                    });
                let paired = !quad && pairs && local_row + 1 < rows.len() && cursor.oy == oy + 1;
                let next = if paired { ay.taps(oy + 1) } else { ty };
                // Window rows of both windows (one window: `next` is `ty`; four: rows
                // `ty.first..ty.first + 8`), each h row where it starts in the ring.
                let last = if quad {
                    ty.first + 7
                } else {
                    (ty.first + (ty.count - 1) * ay.dilation)
                        .max(next.first + (next.count - 1) * ay.dilation)
                };
                let mut starts = [0usize; MAX_RING];
                let mut nan = false;
                for y in (ty.first..=last).step_by(ay.dilation) {
                    let slot = y & (ring - 1);
                    starts[(y - ty.first) / ay.dilation] = slot * pitch;
                    let key = row_key(outer, z, y);
                    if keys[slot] != key {
                        keys[slot] = key;
                        let h = &mut ring_rows[slot * pitch..][..h_len];
                        nans[slot] = if channels_last {
                            h_row_channels_last(simd, plan, input, (outer, z, y), h)
                        } else {
                            h_row_channels_first(simd, plan, input, (outer, z, y), h, &mut row_taps)
                        };
                    }
                    nan |= nans[slot];
                }
                // Rows [0, middle.start) of the union belong to `ty` only, [middle.end, ..) to
                // `next` only.
                let middle = (next.first - ty.first)..ty.count;
                if quad {
                    let out = &mut output[local_row * row_len..][..4 * row_len];
                    let (r0, rest) = out.split_at_mut(row_len);
                    let (r1, rest) = rest.split_at_mut(row_len);
                    let (r2, r3) = rest.split_at_mut(row_len);
                    let starts: [usize; 8] = starts[..8].try_into().expect("8 rows");
                    max_of_row_quad_given(simd, nan, ring_rows, starts, [r0, r1, r2, r3]);
                    for _ in 0..3 {
                        cursor.advance();
                    }
                    local_row += 4;
                } else if paired && !middle.is_empty() {
                    let union = (last - ty.first) / ay.dilation + 1;
                    let (first_row, second_row) =
                        output[local_row * row_len..][..2 * row_len].split_at_mut(row_len);
                    let groups = (
                        &starts[..middle.start],
                        &starts[middle.clone()],
                        &starts[middle.end..union],
                    );
                    max_of_row_pair_given(simd, nan, ring_rows, groups, first_row, second_row);
                    cursor.advance();
                    local_row += 2;
                } else {
                    // Alone: a row's own window, whatever `nan` says of a neighbour's rows.
                    let out = &mut output[local_row * row_len..][..row_len];
                    max_of_rows_given(simd, nan, ring_rows, &starts[..ty.count], out);
                    local_row += 1;
                }
            }
        }
        scratch::give_back(buffer);
    }
}

/// `out[i] = max over s in `starts` (in order) of data[s + i]`, in blocks of 8 and 4 vectors so
/// that each source costs one bounds check per block (8 instead of 4: `sppf` 5.38 -> 4.44 M
/// instructions per call NCHW, 3.36 -> 2.52 M NHWC). A last partial vector reads only `out.len()`
/// elements of each source.
#[inline(always)]
pub(super) fn max_of_rows<S: Simd, R: Reducer>(
    simd: S,
    rule: R,
    data: &[f32],
    starts: &[usize],
    out: &mut [f32],
) {
    let lanes = lanes::<S>();
    let mut i = 0;
    while i + 8 * lanes <= out.len() {
        let block = max_block::<S, R, 8>(simd, rule, data, starts, i);
        store_block::<S, 8>(out, i, &block);
        i += 8 * lanes;
    }
    if i + 4 * lanes <= out.len() {
        let block = max_block::<S, R, 4>(simd, rule, data, starts, i);
        store_block::<S, 4>(out, i, &block);
        i += 4 * lanes;
    }
    match (out.len() - i) / lanes {
        0 => {}
        1 => {
            store_block::<S, 1>(out, i, &max_block::<S, R, 1>(simd, rule, data, starts, i));
            i += lanes;
        }
        2 => {
            store_block::<S, 2>(out, i, &max_block::<S, R, 2>(simd, rule, data, starts, i));
            i += 2 * lanes;
        }
        _ => {
            store_block::<S, 3>(out, i, &max_block::<S, R, 3>(simd, rule, data, starts, i));
            i += 3 * lanes;
        }
    }
    if i < out.len() {
        let count = out.len() - i;
        let zero = simd.splat_u32s(0);
        let mut acc = rule.init(simd, zero);
        for &start in starts {
            let value = load_first(simd, data, start + i, count, f32::NEG_INFINITY);
            acc = rule.add(simd, acc, value, zero);
        }
        store_first::<S>(simd, out, i, count, acc.value);
    }
}

/// [`max_of_rows`] for long rows (a band's flat rows): with 3 or 5 sources (3x3 and 5x5
/// windows), the whole 8-vector blocks read from an array of rows of `out.len()` elements, so
/// that the compiler knows every block is inside its row and checks nothing per block; the rest
/// as [`max_of_rows`]. `sppf` NCHW at v3 (callgrind): 4.40 -> 3.51 M instructions per call; at
/// v4, 316 -> 302 µs (best of 15 alternated runs, on a noisy day). Channels-last per-pixel rows
/// through arrays were slower at v4 (280 -> 307 µs), so they keep [`max_of_rows`].
#[inline(always)]
pub(super) fn max_of_long_rows<S: Simd, R: Reducer>(
    simd: S,
    rule: R,
    data: &[f32],
    starts: &[usize],
    out: &mut [f32],
) {
    let len = out.len();
    let done = match *starts {
        // Array literals, not `map`: through the closure the compiler lost the slices'
        // lengths and checked every block's loads. With them and the first source taken as
        // the start: `sppf` NCHW 2.70 M against 2.87 M instructions a call, 270 against
        // 303 µs (`profile_case nchw sppf`, best of 6 alternated).
        [a, b, c] => {
            let sources = [&data[a..][..len], &data[b..][..len], &data[c..][..len]];
            whole_blocks(simd, rule, sources, out)
        }
        [a, b, c, d, e] => {
            let sources = [
                &data[a..][..len],
                &data[b..][..len],
                &data[c..][..len],
                &data[d..][..len],
                &data[e..][..len],
            ];
            whole_blocks(simd, rule, sources, out)
        }
        _ => 0,
    };
    // data[s + done + i] is (&data[done..])[s + i].
    max_of_rows(simd, rule, &data[done..], starts, &mut out[done..]);
}

/// The whole 8-vector blocks of [`max_of_long_rows`]; returns how many elements they cover.
#[inline(always)]
fn whole_blocks<S: Simd, R: Reducer, const N: usize>(
    simd: S,
    rule: R,
    sources: [&[f32]; N],
    out: &mut [f32],
) -> usize {
    let lanes = lanes::<S>();
    let zero = simd.splat_u32s(0);
    let mut i = 0;
    while i + 8 * lanes <= out.len() {
        // From the first source (one fold fewer than from −∞, the same bits).
        let first = &sources[0][i..][..8 * lanes];
        let mut accs = [rule.init(simd, zero); 8];
        for (v, acc) in accs.iter_mut().enumerate() {
            *acc = rule.first(simd, load::<S>(first, v * lanes), zero);
        }
        for source in &sources[1..] {
            let block = &source[i..][..8 * lanes];
            for (v, acc) in accs.iter_mut().enumerate() {
                *acc = rule.add(simd, *acc, load::<S>(block, v * lanes), zero);
            }
        }
        let mut values = [simd.splat_f32s(0.0); 8];
        for (value, acc) in values.iter_mut().zip(&accs) {
            *value = acc.value;
        }
        store_block::<S, 8>(out, i, &values);
        i += 8 * lanes;
    }
    i
}

/// Two output rows whose windows share their middle sources: `first[i]` is the max over
/// `pre` then `middle` of `data[s + i]`, `second[i]` the max over `middle` then `post`, each in
/// that order. The middle's maximum is taken once for both: the max rule is associative when
/// earlier operands stay on the left (the first maximum and the last NaN win), so the bits are
/// those of [`max_of_rows`] over each window.
#[inline(always)]
fn max_of_row_pair<S: Simd, R: Reducer>(
    simd: S,
    rule: R,
    data: &[f32],
    groups: (&[usize], &[usize], &[usize]),
    first: &mut [f32],
    second: &mut [f32],
) {
    let lanes = lanes::<S>();
    // Long rows whose output is off a vector boundary: the first vector, then the rest from
    // the output's boundary on (stores across cache lines cost more than loads: see
    // [`max_of_row_quad`]).
    let head = if !groups.1.is_empty() && first.len() >= ALIGN_FROM * lanes {
        to_boundary::<S>(first, 0)
    } else {
        0
    };
    let (data, first, second) = if head == 0 {
        (data, first, second)
    } else {
        let (upper, lower) = (&mut first[..lanes], &mut second[..lanes]);
        let [a, b] = pair_block::<S, R, 1>(simd, rule, data, groups, 0);
        store_block::<S, 1>(upper, 0, &a);
        store_block::<S, 1>(lower, 0, &b);
        (&data[head..], &mut first[head..], &mut second[head..])
    };
    let len = first.len();
    // 3x3 and 5x5 windows inside the input (one row before the shared ones, one after): the
    // whole 8-vector blocks with the rows' loops unrolled.
    let mut i = match groups {
        (&[pre], &[a, b, c, d], &[post]) => {
            fixed_pair_blocks(simd, rule, data, (pre, [a, b, c, d], post), first, second)
        }
        (&[pre], &[a, b], &[post]) => {
            fixed_pair_blocks(simd, rule, data, (pre, [a, b], post), first, second)
        }
        _ => 0,
    };
    while i + 4 * lanes <= len {
        let [a, b] = pair_block::<S, R, 4>(simd, rule, data, groups, i);
        store_block::<S, 4>(first, i, &a);
        store_block::<S, 4>(second, i, &b);
        i += 4 * lanes;
    }
    while i + lanes <= len {
        let [a, b] = pair_block::<S, R, 1>(simd, rule, data, groups, i);
        store_block::<S, 1>(first, i, &a);
        store_block::<S, 1>(second, i, &b);
        i += lanes;
    }
    if i < len {
        // The last partial vector: only its `count` elements are read from each source.
        let count = len - i;
        let zero = simd.splat_u32s(0);
        // A macro, not a closure: closures are compiled without the level's target features.
        macro_rules! row {
            ($start:expr) => {
                load_first(simd, data, $start + i, count, f32::NEG_INFINITY)
            };
        }
        let (pre, middle, post) = groups;
        let mut shared = rule.init(simd, zero);
        for &start in middle {
            shared = rule.add(simd, shared, row!(start), zero);
        }
        let mut a = rule.init(simd, zero);
        for &start in pre {
            a = rule.add(simd, a, row!(start), zero);
        }
        a = rule.add(simd, a, shared.value, zero);
        let mut b = shared;
        for &start in post {
            b = rule.add(simd, b, row!(start), zero);
        }
        store_first::<S>(simd, first, i, count, a.value);
        store_first::<S>(simd, second, i, count, b.value);
    }
}

/// `V` vectors of both rows of [`max_of_row_pair`] at `at`.
#[inline(always)]
fn pair_block<S: Simd, R: Reducer, const V: usize>(
    simd: S,
    rule: R,
    data: &[f32],
    (pre, middle, post): (&[usize], &[usize], &[usize]),
    at: usize,
) -> [[S::f32s; V]; 2] {
    let shared = max_block::<S, R, V>(simd, rule, data, middle, at);
    let zero = simd.splat_u32s(0);
    let mut first = max_block::<S, R, V>(simd, rule, data, pre, at);
    for (value, &shared) in first.iter_mut().zip(&shared) {
        let acc = Acc {
            value: *value,
            index: zero,
        };
        *value = rule.add(simd, acc, shared, zero).value;
    }
    let mut second = shared;
    for &start in post {
        let block = &data[start + at..start + at + V * lanes::<S>()];
        for (v, value) in second.iter_mut().enumerate() {
            let acc = Acc {
                value: *value,
                index: zero,
            };
            *value = rule
                .add(simd, acc, load::<S>(block, v * lanes::<S>()), zero)
                .value;
        }
    }
    [first, second]
}

/// The whole 8-vector blocks of [`max_of_row_pair`] for a pair of windows of `M + 1` rows that
/// share `M` (`middle`), with one row `pre` before them and one `post` after; returns how many
/// elements they cover. The rows' loops are unrolled and each maximum starts from its first
/// row ([`Reducer::first`]): the bits of [`pair_block`], with fewer instructions. `sppf` NHWC's
/// y pass (callgrind): about 1.0 M instructions a call (some 158 per 4-vector block, the loops
/// over runtime lists of rows) to 0.42 M (147 per 8-vector block); the call 2.24 -> 1.74 M.
#[inline(always)]
fn fixed_pair_blocks<S: Simd, R: Reducer, const M: usize>(
    simd: S,
    rule: R,
    data: &[f32],
    (pre, middle, post): (usize, [usize; M], usize),
    first: &mut [f32],
    second: &mut [f32],
) -> usize {
    const V: usize = 8;
    let lanes = lanes::<S>();
    let zero = simd.splat_u32s(0);
    let len = first.len().min(second.len());
    let mut i = 0;
    while i + V * lanes <= len {
        let top = &data[middle[0] + i..][..V * lanes];
        let mut shared = [rule.init(simd, zero); V];
        for (v, acc) in shared.iter_mut().enumerate() {
            *acc = rule.first(simd, load::<S>(top, v * lanes), zero);
        }
        for &start in &middle[1..] {
            let block = &data[start + i..][..V * lanes];
            for (v, acc) in shared.iter_mut().enumerate() {
                *acc = rule.add(simd, *acc, load::<S>(block, v * lanes), zero);
            }
        }
        let before = &data[pre + i..][..V * lanes];
        let after = &data[post + i..][..V * lanes];
        let upper = &mut first[i..][..V * lanes];
        let lower = &mut second[i..][..V * lanes];
        for (v, shared) in shared.iter().enumerate() {
            let own = rule.first(simd, load::<S>(before, v * lanes), zero);
            let a = rule.add(simd, own, shared.value, zero);
            let b = rule.add(simd, *shared, load::<S>(after, v * lanes), zero);
            store::<S>(upper, v * lanes, a.value);
            store::<S>(lower, v * lanes, b.value);
        }
        i += V * lanes;
    }
    i
}

/// Whether output rows go four at a time through [`max_of_row_quad`]: channels-last 5-row
/// windows with y stride and dilation 1 (channels-first plans reach this kernel only with x
/// strides other than 1, and were not measured with quads). With the ring's slots a cache
/// line apart mod 4 KiB as well (`OFFSET=4 BEST=10 ITERS=300 profile_case nhwc sppf`, Zen 3,
/// v3, 6 alternated rounds, µs): row pairs as before 167-182 (one 229), the same with the
/// slots apart 162-172, quads with them 147-153 (twice 173 and 213); quads without them
/// 239-248 (8 ring rows and 4 output rows in one 8-way L1 set).
fn quad_rows(plan: &Plan<f32>) -> bool {
    let ay = &plan.axes[1];
    plan.layout == Layout::ChannelsLast && ay.kernel == 5 && ay.stride == 1 && ay.dilation == 1
}

/// Four output rows of 5-row windows one row apart: window `k` is rows `k..k + 5` of the 8
/// rows at `starts` (`outs[k][i]` the max over them of `data[s + i]`, in order). With `M` =
/// rows 3-4, `A` = rows 1-2 then `M`, `B` = `M` then rows 5-6: window 0 is row 0 then `A`,
/// window 1 `A` then row 5, window 2 row 2 then `B`, window 3 `B` then row 7 (9 rules for 4
/// outputs from 8 loads, against 10 rules from 12 loads for two pairs). The rule is
/// associative with earlier operands on the left (the first maximum, the last NaN), so the
/// bits are those of each window's rows in order.
///
/// With `write_ahead` > 0 (the y pass, [`WRITE_AHEAD`]), each vector's store comes after a
/// request for the output lines that many elements on, in the state for writing.
///
/// With `PROBE`, also returns whether rows 0-3 may hold a NaN (else `false`): their loads are
/// summed on the side (a NaN term makes the sum NaN; +∞ and −∞ together, or an overflow met by
/// −∞, also do, a false alarm).
///
/// Rows of a vector or more are taken in whole vectors only: long ones whose output is off a
/// vector boundary take a first vector, then the vectors from the output's boundary on (see
/// [`ALIGN_FROM`]), and a row that does not end on a vector takes a last one ending at its end;
/// both overlap their neighbours, writing the same bits twice, and their loads join the
/// probe. Before, those parts ran as calls of their own (a partial last vector, and scans of
/// the parts for a NaN), which on 256-channel pixels off a boundary cost more than the quads'
/// vectors: `sppf` NHWC with the buffers 16 bytes off one (`OFFSET=4 profile_case nhwc sppf`,
/// as the bench's `Vec`s often are; the old code behind a switch in one binary, 3-5 alternated
/// rounds, µs, on the Zen 4 of session 65) 112-121 against 134-137, v3 113-114 against
/// 121-123, 512 channels of 20x20 59-63 against 63-64; on a boundary 102-106 against 99-105
/// at v4, 109-114 against 103-107 at v3 (cause not found: a variant running the old loop for
/// rows on a boundary measured as this one).
///
/// The boundary is the output's, not the sources': on an Intel Xeon with full-width AVX-512
/// (session 66) a 64-byte store across two cache lines costs far more than a load across two,
/// and with the input and output off boundaries by different amounts every store of the y
/// pass crossed lines. `sppf` NHWC v4 (`OFFSET=i OUT_OFFSET=o profile_case nhwc sppf`, µs,
/// the sources' boundary against the output's, two rounds): input 16 bytes off and output on
/// a boundary 222-290 against 165, the other way round 275-289 against 163-166, output 32
/// bytes off 284-287 against 161-162, both 16 bytes off 164-165 against 164-166. Taking the h
/// rows' ring as far off as the output instead (so that the y pass's loads meet boundaries
/// too) measured the same or 2-5 % slower.
#[inline(always)]
fn max_of_row_quad<S: Simd, R: Reducer, const PROBE: bool>(
    simd: S,
    rule: R,
    data: &[f32],
    starts: [usize; 8],
    outs: [&mut [f32]; 4],
    write_ahead: usize,
) -> bool {
    let lanes = lanes::<S>();
    let prefetcher = Prefetcher::new(write_ahead > 0);
    let [o0, o1, o2, o3] = outs;
    let len = o0.len();
    if len < lanes {
        let mut nan = false;
        if PROBE {
            for &start in &starts[..4] {
                nan |= any_nan(simd, &data[start..][..len]);
            }
        }
        for (k, out) in [o0, o1, o2, o3].into_iter().enumerate() {
            max_of_rows(simd, rule, data, &starts[k..k + 5], &mut out[..len]);
        }
        return nan;
    }
    let head = if len >= ALIGN_FROM * lanes {
        to_boundary::<S>(o0, 0)
    } else {
        0
    };
    let [s0, s1, s2, s3, s4, s5, s6, s7] = starts;
    let rows = [
        &data[s0..][..len],
        &data[s1..][..len],
        &data[s2..][..len],
        &data[s3..][..len],
        &data[s4..][..len],
        &data[s5..][..len],
        &data[s6..][..len],
        &data[s7..][..len],
    ];
    let (o0, o1, o2, o3) = (
        &mut o0[..len],
        &mut o1[..len],
        &mut o2[..len],
        &mut o3[..len],
    );
    let zero = simd.splat_u32s(0);
    let mut sums = [simd.splat_f32s(0.0); 2];
    // Macros, not closures: closures are compiled without the level's target features.
    macro_rules! row {
        ($r:literal, $i:expr) => {
            rule.first(simd, load::<S>(rows[$r], $i), zero)
        };
    }
    macro_rules! then {
        ($a:expr, $b:expr) => {
            rule.add(simd, $a, $b.value, zero)
        };
    }
    // One loop over the vectors' starts: the first vector (at 0), then from the boundary
    // (`head`) on, the last clamped to end at the row's end.
    let last = len - lanes;
    let mut at = 0;
    while at < len {
        let i = at.min(last);
        if PROBE {
            let pairs = [
                simd.add_f32s(load::<S>(rows[0], i), load::<S>(rows[1], i)),
                simd.add_f32s(load::<S>(rows[2], i), load::<S>(rows[3], i)),
            ];
            for (sum, pair) in sums.iter_mut().zip(pairs) {
                *sum = simd.add_f32s(*sum, pair);
            }
        }
        let m = then!(row!(3, i), row!(4, i));
        let a = then!(then!(row!(1, i), row!(2, i)), m);
        let b = then!(m, then!(row!(5, i), row!(6, i)));
        if write_ahead > 0 {
            prefetcher.fetch_for_write(o0, i + write_ahead);
            prefetcher.fetch_for_write(o1, i + write_ahead);
            prefetcher.fetch_for_write(o2, i + write_ahead);
            prefetcher.fetch_for_write(o3, i + write_ahead);
        }
        store::<S>(o0, i, then!(row!(0, i), a).value);
        store::<S>(o1, i, then!(a, row!(5, i)).value);
        store::<S>(o2, i, then!(row!(2, i), b).value);
        store::<S>(o3, i, then!(b, row!(7, i)).value);
        at = if at < head { head } else { at + lanes };
    }
    if PROBE {
        let sum = simd.add_f32s(sums[0], sums[1]);
        simd.first_true_m32s(simd.not_m32s(simd.equal_f32s(sum, sum))) < lanes
    } else {
        false
    }
}

/// How far ahead (in elements) the y pass's quads ask for their output rows' lines in the state
/// for writing ([`Prefetcher::fetch_for_write`]): the output, 1.6 MB for `sppf` NHWC, is not
/// in L1, and each store's line must otherwise be read and claimed when the store reaches it.
/// On the Intel Xeon of session 67 (`OFFSET=4 BEST=5 ITERS=300 profile_case nhwc sppf`, a
/// switch in one binary, 3 alternated rounds, µs, none / 128 / 256 ahead): 173-175 / 160-164 /
/// 161-164; on a boundary 167 / 158 (2 rounds), v3 203 / 183-185, `PAR=1` 188-190 / 181-182.
/// Not measured on AMD.
const WRITE_AHEAD: usize = 128;

/// [`max_of_row_quad`] with the rule its sources allow (see [`max_of_rows_given`]).
#[inline(always)]
fn max_of_row_quad_given<S: Simd>(
    simd: S,
    nan: bool,
    data: &[f32],
    starts: [usize; 8],
    outs: [&mut [f32]; 4],
) {
    if nan {
        max_of_row_quad::<S, _, false>(simd, MaxValue, data, starts, outs, WRITE_AHEAD);
    } else {
        max_of_row_quad::<S, _, false>(simd, MaxOfNumbers, data, starts, outs, WRITE_AHEAD);
    }
}

/// [`max_of_row_pair`] with the rule its sources allow (see [`max_of_rows_given`]).
#[inline(always)]
fn max_of_row_pair_given<S: Simd>(
    simd: S,
    nan: bool,
    data: &[f32],
    groups: (&[usize], &[usize], &[usize]),
    first: &mut [f32],
    second: &mut [f32],
) {
    if nan {
        max_of_row_pair(simd, MaxValue, data, groups, first, second);
    } else {
        max_of_row_pair(simd, MaxOfNumbers, data, groups, first, second);
    }
}

/// [`max_of_rows`] with the rule its sources allow: the one-instruction [`MaxOfNumbers`] unless
/// one of them may hold a NaN (`nan`).
#[inline(always)]
fn max_of_rows_given<S: Simd>(simd: S, nan: bool, data: &[f32], starts: &[usize], out: &mut [f32]) {
    if nan {
        max_of_rows(simd, MaxValue, data, starts, out);
    } else {
        max_of_rows(simd, MaxOfNumbers, data, starts, out);
    }
}

/// `V` vectors of maxima at `at`: vector v is the max over `starts` of `data[s + at + v * lanes..]`.
#[inline(always)]
fn max_block<S: Simd, R: Reducer, const V: usize>(
    simd: S,
    rule: R,
    data: &[f32],
    starts: &[usize],
    at: usize,
) -> [S::f32s; V] {
    let lanes = lanes::<S>();
    let zero = simd.splat_u32s(0);
    let mut accs = [rule.init(simd, zero); V];
    for &start in starts {
        let block = &data[start + at..start + at + V * lanes];
        for (v, acc) in accs.iter_mut().enumerate() {
            *acc = rule.add(simd, *acc, load::<S>(block, v * lanes), zero);
        }
    }
    let mut values = [simd.splat_f32s(0.0); V];
    for (value, acc) in values.iter_mut().zip(&accs) {
        *value = acc.value;
    }
    values
}

/// Stores `V` whole vectors at `out[at..]`.
#[inline(always)]
fn store_block<S: Simd, const V: usize>(out: &mut [f32], at: usize, values: &[S::f32s; V]) {
    let lanes = lanes::<S>();
    let block = &mut out[at..at + V * lanes];
    for (v, value) in values.iter().enumerate() {
        store::<S>(block, v * lanes, *value);
    }
}

/// Channels-last pixels of at least this many vectors take the interior of 5-tap rows four
/// outputs at a time ([`max_of_row_quad`] along x: 8 pixel loads and 9 rule steps for 4 outputs
/// instead of 20 and 16). Measured on the Zen 4 with `SHAPE=1,c,h,w profile_case nhwc sppf`
/// (v4 unless said, a switch in one binary, 2-3 alternated rounds, µs, quads / flat): 256
/// channels of 40x40 108 / 114, v3 110-112 / 115-118; 512 of 20x20 56.9-57.1 / 57.4; 128 of
/// 80x80 217 / 235; 64 of 40x40 27.5-27.8 / 29.8-30.2; 48 21.0-21.9 / 23.0-23.2; 32 15.3-15.8 /
/// 15.6-15.7; 16 9.7-10.4 / 9.3-9.4 (one vector a pixel: the per-call work outweighs the
/// saving).
const QUADS_X_FROM: usize = 3;

/// The first `quads` fours of 5-tap outputs of a channels-last row (window `k` from pixel
/// `first + k`) into `h`, and whether the row holds a NaN, with no pass of its own over the
/// row: the quads run with the NaN-free rule and probe the 4 pixels each starts on (pixels
/// `first..first + 4 quads`), the others are scanned; if any may hold a NaN, the quads run
/// again with [`MaxValue`]. The scan was the row's first touch, about a sixth of `sppf` NHWC
/// (a profile); measured with `profile_case nhwc sppf` (the scan first behind a temporary
/// switch in one binary, Zen 4, 2-4 alternated rounds, µs, probe / scan): 256 channels of
/// 40x40 97.4-98.4 / 108.0-109.2, v3 103.8-104.3 / 110.4-112.4, 128 of 80x80 203-204 /
/// 220-221, 64 of 40x40 26.7-26.9 / 28.1-28.4, 48 22.6-22.8 / 22.4-22.5, 512 of 20x20
/// 51.1-63.7 / 56.3-56.5 (noisy); buffers 16 bytes off a boundary (`OFFSET=4`) 132-136 /
/// 129-132.
#[inline(always)]
fn quads_probing_nan<S: Simd>(
    simd: S,
    row: &[f32],
    channels: usize,
    first: usize,
    quads: usize,
    h: &mut [f32],
) -> bool {
    let probed = first * channels..(first + 4 * quads) * channels;
    let nan = any_nan(simd, &row[..probed.start]) || any_nan(simd, &row[probed.end..]);
    // Macros, not closures: closures are compiled without the level's target features.
    macro_rules! quads {
        ($probe:literal, $rule:expr) => {{
            let mut nan = false;
            for q in 0..quads {
                let x = first + 4 * q;
                let starts: [usize; 8] = std::array::from_fn(|k| (x + k) * channels);
                let out = &mut h[4 * q * channels..][..4 * channels];
                let (r0, rest) = out.split_at_mut(channels);
                let (r1, rest) = rest.split_at_mut(channels);
                let (r2, r3) = rest.split_at_mut(channels);
                let outs = [r0, r1, r2, r3];
                nan |= max_of_row_quad::<S, _, $probe>(simd, $rule, row, starts, outs, 0);
            }
            nan
        }};
    }
    if !nan && !quads!(true, MaxOfNumbers) {
        return false;
    }
    quads!(false, MaxValue);
    true
}

/// Horizontal maxima of input row (n, z, y), channels-last: `h[ox * C + c]`. Returns whether
/// the row holds a NaN.
#[inline(always)]
fn h_row_channels_last<S: Simd>(
    simd: S,
    plan: &Plan<f32>,
    input: &[f32],
    (n, z, y): (usize, usize, usize),
    h: &mut [f32],
) -> bool {
    let ax = &plan.axes[2];
    let channels = plan.channels;
    let strides = &plan.input_strides;
    let row = &input[n * strides[0] + z * strides[2] + y * strides[3]..][..ax.input * channels];
    let interior = ax.interior();
    let mut starts = [0usize; MAX_TAPS_X];
    // With x stride 1, the interior's windows are one flat run: element j of it is the max of
    // the row at j shifted by each tap, one long row for the blocks (`sppf` NHWC).
    let flat = ax.stride == 1 && !interior.is_empty() && matches!(ax.kernel, 3 | 5);
    // 5-tap windows one pixel apart on pixels of [`QUADS_X_FROM`] vectors or more: four
    // outputs at a time from 8 pixels ([`max_of_row_quad`]), the rest as one flat run.
    let quads =
        if flat && ax.kernel == 5 && ax.dilation == 1 && channels >= QUADS_X_FROM * lanes::<S>() {
            interior.len() / 4
        } else {
            0
        };
    let first = if flat {
        ax.taps_given_interior(interior.start, &interior).first
    } else {
        0
    };
    // The quads probe the row for a NaN as they go, where they apply (see
    // [`quads_probing_nan`]); other rows are scanned first.
    let nan = if quads > 0 {
        let h = &mut h[interior.start * channels..];
        quads_probing_nan(simd, row, channels, first, quads, h)
    } else {
        any_nan(simd, row)
    };
    if flat {
        let from = interior.start + 4 * quads;
        // The run's first window starts `from - interior.start` pixels after the interior's.
        let x = first + (from - interior.start);
        for (ix, start) in starts[..ax.kernel].iter_mut().enumerate() {
            *start = (x + ix * ax.dilation) * channels;
        }
        let out = &mut h[from * channels..interior.end * channels];
        match ax.kernel {
            3 => max_of_n_rows_given::<S, 3>(simd, nan, row, &starts, out),
            _ => max_of_n_rows_given::<S, 5>(simd, nan, row, &starts, out),
        }
    }
    for ox in 0..ax.output {
        if flat && interior.contains(&ox) {
            continue;
        }
        let tx = ax.taps_given_interior(ox, &interior);
        for (ix, start) in starts[..tx.count].iter_mut().enumerate() {
            *start = (tx.first + ix * ax.dilation) * channels;
        }
        let out = &mut h[ox * channels..][..channels];
        // 3- and 5-tap windows (`sppf`'s 5x5) with their tap loops unrolled.
        match tx.count {
            3 => max_of_n_rows_given::<S, 3>(simd, nan, row, &starts, out),
            5 => max_of_n_rows_given::<S, 5>(simd, nan, row, &starts, out),
            count => max_of_rows_given(simd, nan, row, &starts[..count], out),
        }
    }
    nan
}

/// [`max_of_rows_given`] over exactly `N` sources (`starts[..N]`): the sources' loop unrolled
/// and the first source taken as the start of each block (one fold fewer than from −∞, the
/// same bits: [`Reducer::first`]).
#[inline(always)]
fn max_of_n_rows_given<S: Simd, const N: usize>(
    simd: S,
    nan: bool,
    data: &[f32],
    starts: &[usize; MAX_TAPS_X],
    out: &mut [f32],
) {
    let starts: &[usize; N] = starts[..N].try_into().expect("N <= MAX_TAPS_X");
    if nan {
        max_of_n_rows(simd, MaxValue, data, starts, out);
    } else {
        max_of_n_rows(simd, MaxOfNumbers, data, starts, out);
    }
}

/// [`max_of_rows`] over exactly `N` sources, whole 8-vector blocks unrolled (see
/// [`max_of_n_rows_given`]); the rest as [`max_of_rows`].
#[inline(always)]
fn max_of_n_rows<S: Simd, R: Reducer, const N: usize>(
    simd: S,
    rule: R,
    data: &[f32],
    starts: &[usize; N],
    out: &mut [f32],
) {
    let lanes = lanes::<S>();
    let zero = simd.splat_u32s(0);
    // Each source sliced to the output's length once, so that the blocks' loads need no
    // checks (`sppf` NHWC: 1.59 M against 1.74 M instructions a call; 221 against 227 µs, best
    // of 6 alternated).
    let (data, out) = from_boundary(simd, rule, data, starts, out);
    let len = out.len();
    let mut sources = [&data[..0]; N];
    for (source, &start) in sources.iter_mut().zip(starts) {
        *source = &data[start..][..len];
    }
    let mut i = 0;
    while i + 8 * lanes <= len {
        let first = &sources[0][i..][..8 * lanes];
        let mut accs = [rule.init(simd, zero); 8];
        for (v, acc) in accs.iter_mut().enumerate() {
            *acc = rule.first(simd, load::<S>(first, v * lanes), zero);
        }
        for source in &sources[1..] {
            let block = &source[i..][..8 * lanes];
            for (v, acc) in accs.iter_mut().enumerate() {
                *acc = rule.add(simd, *acc, load::<S>(block, v * lanes), zero);
            }
        }
        let mut values = [simd.splat_f32s(0.0); 8];
        for (value, acc) in values.iter_mut().zip(&accs) {
            *value = acc.value;
        }
        store_block::<S, 8>(out, i, &values);
        i += 8 * lanes;
    }
    // data[s + i + j] is (&data[i..])[s + j].
    max_of_rows(simd, rule, &data[i..], starts, &mut out[i..]);
}

/// For long rows whose output is off a vector boundary: the first vector of `out` from
/// `starts`, then the data and output from the output's boundary on (`data[s + head..]` is
/// `data[head..][s..]`), whose stores the caller then makes on the boundary (see
/// [`max_of_row_quad`]). The first vector's overlap with the rest is written twice with the
/// same bits. Otherwise `data` and `out`.
#[inline(always)]
fn from_boundary<'d, 'o, S: Simd, R: Reducer>(
    simd: S,
    rule: R,
    data: &'d [f32],
    starts: &[usize],
    out: &'o mut [f32],
) -> (&'d [f32], &'o mut [f32]) {
    let lanes = lanes::<S>();
    let head = if !starts.is_empty() && out.len() >= ALIGN_FROM * lanes {
        to_boundary::<S>(out, 0)
    } else {
        0
    };
    if head == 0 {
        return (data, out);
    }
    max_of_rows(simd, rule, data, starts, &mut out[..lanes]);
    (&data[head..], &mut out[head..])
}

/// The channels-first row buffer (padded, split by phase) and where each x tap reads in it.
struct RowTaps<'a> {
    buffer: &'a mut [f32],
    phase_len: usize,
    tap_slots: &'a [usize],
}

/// Horizontal maxima of input row (plane, z, y), channels-first: `h[ox]`, through the padded
/// phase-split row buffer of the direct kernel (its padding already written). Returns whether
/// the row holds a NaN.
#[inline(always)]
fn h_row_channels_first<S: Simd>(
    simd: S,
    plan: &Plan<f32>,
    input: &[f32],
    (plane, z, y): (usize, usize, usize),
    h: &mut [f32],
    row: &mut RowTaps<'_>,
) -> bool {
    let ax = &plan.axes[2];
    let strides = &plan.input_strides;
    let source = &input[plane * strides[1] + z * strides[2] + y * strides[3]..][..ax.input];
    copy_row(simd, row.buffer, source, ax, 0, row.phase_len);
    let nan = any_nan(simd, source);
    max_of_rows_given(simd, nan, row.buffer, row.tap_slots, h);
    nan
}
