//! The scalar kernel for every op, layout and rank (1-D and 2-D run as 3-D with unit leading
//! axes). The plan uses it where no vector kernel applies: Lp with `p` other than 1 and 2 (it
//! needs `powf`), planes too large for 32-bit vector indices, windows too large for the
//! channels-first row buffers. It follows the interior/border split of the vector kernels:
//!
//! ```text
//! for n, c, oz, oy:                       taps of z and y clipped to the input
//!     for ox in left border:  window with the x taps clipped to the input
//!     for ox in interior:     window with all k x taps, first at ox*s - pb (no table, no clipping)
//!     for ox in right border: as the left border
//! ```
//!
//! Inside a window the taps are visited in row-major order, so sums are bit-identical to the
//! reference's.

use std::ops::Range;

use crate::geometry::{Axis, Taps};
use crate::plan::Reduction;
use crate::reference::{lp_root, lp_term, max_replaces};
use crate::{Layout, Plan};

/// Where a window's taps sit: per-axis taps and how to address them.
struct Window<'a> {
    taps: [Taps; 3],
    axes: &'a [Axis; 3],
    strides: &'a [usize; 5],
    base: usize,
}

impl Window<'_> {
    /// Calls `f(input offset, index in the (n, c) plane)` for each tap inside the input, in
    /// row-major window order.
    #[inline(always)]
    fn for_each(&self, mut f: impl FnMut(usize, usize)) {
        let [tz, ty, tx] = self.taps;
        let [az, ay, ax] = self.axes;
        for iz in 0..tz.count {
            let z = tz.first + iz * az.dilation;
            for iy in 0..ty.count {
                let y = ty.first + iy * ay.dilation;
                let row = self.base + z * self.strides[2] + y * self.strides[3];
                let plane_row = (z * ay.input + y) * ax.input;
                for ix in 0..tx.count {
                    let x = tx.first + ix * ax.dilation;
                    f(row + x * self.strides[4], plane_row + x);
                }
            }
        }
    }
}

/// Pools the output rows `rows` (see [`super::row_shape`]) into `output`, which holds exactly
/// those rows.
pub(crate) fn pool_rows(
    plan: &Plan<f32>,
    input: &[f32],
    output: &mut [f32],
    mut indices: Option<&mut [i64]>,
    rows: Range<usize>,
) {
    let [az, ay, ax] = &plan.axes;
    let (is, os) = (&plan.input_strides, &plan.output_strides);
    let interior = ax.interior();
    let (channels, first_row) = (plan.channels, rows.start);
    let channels_last = plan.layout == Layout::ChannelsLast;
    // Output offset of the task's first row: rows are contiguous in both layouts.
    let row_start = first_row * super::row_shape(plan).1;
    for row in rows {
        let oy = row % ay.output;
        let oz = (row / ay.output) % az.output;
        let outer = row / (ay.output * az.output);
        // Channels-first rows are (n, c, oz, oy); channels-last rows (n, oz, oy) hold every c.
        let (n, channel_range) = if channels_last {
            (outer, 0..channels)
        } else {
            (outer / channels, outer % channels..outer % channels + 1)
        };
        let (taps_z, taps_y) = (az.taps(oz), ay.taps(oy));
        for c in channel_range {
            let base = n * is[0] + c * is[1];
            let row_out = n * os[0] + c * os[1] + oz * os[2] + oy * os[3] - row_start;
            for ox in 0..ax.output {
                let tx = ax.taps_given_interior(ox, &interior);
                let window = Window {
                    taps: [taps_z, taps_y, tx],
                    axes: &plan.axes,
                    strides: is,
                    base,
                };
                let at = row_out + ox * os[4];
                match plan.reduction {
                    Reduction::Max => {
                        let (value, index) = window_max(&window, input);
                        output[at] = value;
                        if let Some(indices) = indices.as_deref_mut() {
                            indices[at] = index as i64;
                        }
                    }
                    Reduction::Average { .. } => {
                        let mut sum = 0.0f32;
                        window.for_each(|i, _| sum += input[i]);
                        output[at] = sum / super::divisor(plan.reduction, &window.taps);
                    }
                    Reduction::Lp { p } => {
                        let mut sum = 0.0f32;
                        window.for_each(|i, _| sum += lp_term(input[i], p));
                        output[at] = lp_root(sum, p);
                    }
                }
            }
        }
    }
}

/// The window's maximum and its plane index, by the shared max rule.
#[inline(always)]
fn window_max(window: &Window<'_>, input: &[f32]) -> (f32, usize) {
    let mut best = f32::NEG_INFINITY;
    let mut best_index = usize::MAX;
    window.for_each(|i, plane_index| {
        if best_index == usize::MAX {
            best_index = plane_index;
        }
        let x = input[i];
        if max_replaces(x, best) {
            best = x;
            best_index = plane_index;
        }
    });
    (best, best_index)
}
