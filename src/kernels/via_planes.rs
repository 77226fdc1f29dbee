//! Channels-last images with fewer channels than a vector has lanes (3-channel images, 8-channel
//! layers on AVX-512), run through the channels-first kernels:
//!
//! ```text
//! for each image n of the task, with its output rows r0..r1 (flattened (oz, oy)):
//!     planes[c][z][y][x] = input[n][z][y][x][c]   for the input rows those windows read
//!     results[c][r][x]   = the channels-first kernel of the plan's `planes` (one image,
//!                          [1, C, spatial]) for rows (c, r0..r1)
//!     output[n][r][x][c] = results[c][r][x]
//! ```
//!
//! The channels-last kernel vectorizes over channels, so with C < lanes most lanes idle and its
//! per-pixel loops cost the same whatever C is. On v4, 112x112 images (`SHAPE=1,C,112,112
//! profile_case nchw|nhwc inception|resnet`, µs): 3x3/1 average with C = 1, 3, 8, 12 ran
//! 342, 489, 307, 327 channels-last against 13, 30, 72, 105 channels-first, and 3x3/2 max
//! 131, 78, 76, 76 against 6, 10, 51, 39. Through planes (transposes included) the same ran
//! 16, 51, 138, 263 and 6, 26, 64, 113 (see [`applies`] for where it is used). The transposes'
//! loops have the channel count compiled in (element by element, the first version spent 1.7 ns
//! an element on them: C = 8 average 242 µs); 8 channels go through 8x8 register transposes on
//! v3 and v4 (C = 8 max 92 -> 74 µs, measured while another build ran); with 1 channel both
//! layouts are the same bytes and the channels-first kernel reads the input itself.
//!
//! Each output element comes from the channels-first kernel, which matches the reference, so
//! the results are the same bits. Max with indices runs the channels-last kernel (the plane
//! positions it reports are the same in both layouts, but the transposes would need a second
//! buffer of indices).

use std::ops::Range;

use pulp::{Simd, WithSimd};

use super::reduce::Rule;
use super::{go, run_rows, scratch};
use crate::{Layout, Plan};

/// Most elements of one image's planes plus its results (4 Mi f32, 16 MiB of scratch per
/// thread): larger images keep the channels-last kernel rather than make each thread hold
/// a copy of them.
const MAX_IMAGE: usize = 1 << 22;

/// Runs `$body` with the const `$c` equal to `channels` (2 to 8: the kernel runs with at most
/// half of 16 lanes, and 1 channel needs no transpose), so that the transposes' inner loops
/// have a fixed length.
macro_rules! with_channels {
    ($channels:expr, $c:ident => $body:expr) => {
        seq_channels!($channels, $c => $body; 2 3 4 5 6 7 8)
    };
}

macro_rules! seq_channels {
    ($channels:expr, $c:ident => $body:expr; $($n:literal)*) => {
        match $channels {
            $($n => {
                const $c: usize = $n;
                $body
            })*
            _ => unreachable!("the plan transposes only 2 to 8 channels"),
        }
    };
}

/// The rule to run through planes, if the plan is a channels-last, non-global one with at most
/// half as many channels as `lanes` whose image fits [`MAX_IMAGE`]. The caller checks that the
/// planes' own kernel is a vector one. Measured on 112x112 images (`SHAPE=1,C,112,112
/// profile_case nhwc inception|resnet`, channels-last kernel against this one, µs): on v4,
/// 3x3/1 average gains at every C up to 12 (C = 9: 508 against 210, C = 12: 325 against 263),
/// 3x3/2 max up to 8 (C = 8: 76 against 64), not from 9 (C = 9: 89 against 100, C = 12: 77
/// against 113); on v3 (8 lanes), C = 4: 324 against 82 and 129 against 49, C = 6: 382 against
/// 205 and 87 against 119.
pub(crate) fn applies(plan: &Plan<f32>, lanes: usize) -> Option<Rule> {
    let image = plan
        .axes
        .iter()
        .map(|a| a.input)
        .product::<usize>()
        .saturating_add(plan.axes.iter().map(|a| a.output).product::<usize>())
        .saturating_mul(plan.channels);
    let fits = plan.layout == Layout::ChannelsLast
        && !plan.is_global()
        && plan.channels <= lanes.min(16) / 2
        && image <= MAX_IMAGE;
    if fits { Rule::of(plan.reduction) } else { None }
}

/// Output rows `rows` (flattened (n, oz, oy)) of a plan whose kernel is `ViaPlanes`, into
/// `output` (exactly those rows).
pub(crate) fn run(plan: &Plan<f32>, input: &[f32], output: &mut [f32], rows: Range<usize>) {
    let Some(image) = plan.planes.as_deref() else {
        unreachable!("a ViaPlanes plan holds its planes' plan");
    };
    let [_, _, ax] = &plan.axes;
    let rows_per_image = plan.axes[0].output * plan.axes[1].output;
    let row_len = ax.output * plan.channels;
    let planes_len = image.input_len();
    // The task's rows of each image it touches: (image, its rows, their offset in `output`).
    let bands = image_bands(rows.clone(), rows_per_image).map(|(n, band, row)| {
        let out_start = (row - rows.start) * row_len;
        (
            &input[n * plan.input_strides[0]..][..planes_len],
            band,
            out_start,
        )
    });
    if plan.channels == 1 {
        // Both layouts are the same bytes, and the rows the same rows.
        for (image_input, band, out_start) in bands {
            let out = &mut output[out_start..][..band.len() * row_len];
            run_rows(image, image.kernel, image.isa, image_input, out, None, band);
        }
        return;
    }
    let mut buffer = scratch::take_outer(planes_len + image.output_len());
    {
        let (planes, results) = buffer.split_at_mut(planes_len);
        for (image_input, band, out_start) in bands {
            let to_planes = ToPlanes {
                plan,
                image: image_input,
                planes,
                band: &band,
            };
            go(plan.isa, to_planes);
            let results = &mut results[..plan.channels * band.len() * ax.output];
            pool_planes(image, planes, results, &band, rows_per_image);
            let from_planes = FromPlanes {
                results,
                out: &mut output[out_start..][..band.len() * row_len],
                channels: plan.channels,
                per_plane: band.len() * ax.output,
            };
            go(plan.isa, from_planes);
        }
    }
    scratch::give_back_outer(buffer);
}

/// Splits output rows `rows` (flattened (n, oz, oy), `per_image` to an image) by image:
/// `(n, the rows within image n, the first of them as a flattened row)`.
fn image_bands(
    rows: Range<usize>,
    per_image: usize,
) -> impl Iterator<Item = (usize, Range<usize>, usize)> {
    let mut row = rows.start;
    core::iter::from_fn(move || {
        if row >= rows.end {
            return None;
        }
        let n = row / per_image;
        let band = row - n * per_image..(rows.end - n * per_image).min(per_image);
        let first = row;
        row += band.len();
        Some((n, band, first))
    })
}

/// The band's rows of every plane into `results` (plane c's rows from `c * band.len() * X`):
/// one kernel call when the band is the whole image, else one per plane.
fn pool_planes(
    image: &Plan<f32>,
    planes: &[f32],
    results: &mut [f32],
    band: &Range<usize>,
    rows_per_image: usize,
) {
    let (kernel, isa) = (image.kernel, image.isa);
    if band.len() == rows_per_image {
        let rows = 0..image.channels * rows_per_image;
        run_rows(image, kernel, isa, planes, results, None, rows);
        return;
    }
    let plane_results = band.len() * image.axes[2].output;
    for (c, out) in results.chunks_exact_mut(plane_results).enumerate() {
        let start = c * rows_per_image;
        let rows = start + band.start..start + band.end;
        run_rows(image, kernel, isa, planes, out, None, rows);
    }
}

/// The input rows that output rows `band` of one image read, from `(z, y, x, c)` to planes
/// `(c, z, y, x)` (the other rows of `planes` are left as they are: no window reads them). A
/// level's task, so that the per-channel-count loops below are compiled with its vectors.
struct ToPlanes<'a> {
    plan: &'a Plan<f32>,
    image: &'a [f32],
    planes: &'a mut [f32],
    band: &'a Range<usize>,
}

impl WithSimd for ToPlanes<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) {
        let Self {
            plan,
            image,
            planes,
            band,
        } = self;
        let [az, ay, ax] = &plan.axes;
        let channels = plan.channels;
        let (width, height) = (ax.input, ay.input);
        let plane_len = az.input * height * width;
        // The rows the band's windows read (all of each depth slice when it spans several).
        let (oz_first, oz_last) = (band.start / ay.output, (band.end - 1) / ay.output);
        let ys = if oz_first == oz_last {
            ay.input_span(band.start % ay.output..(band.end - 1) % ay.output + 1)
        } else {
            0..height
        };
        for z in az.input_span(oz_first..oz_last + 1) {
            let first = (z * height + ys.start) * width;
            let pixels = ys.len() * width;
            let source = &image[first * channels..][..pixels * channels];
            #[cfg(target_arch = "x86_64")]
            if let (8, Some(v3)) = (channels, super::transpose::as_v3(_simd)) {
                split_8(v3, source, &mut planes[first..], plane_len, pixels);
                continue;
            }
            with_channels!(channels, C => split::<C>(source, planes, plane_len, first, pixels));
        }
    }
}

/// `source` (pixels of `C` channels) into planes of `plane_len`, from pixel `first`.
#[inline(always)]
fn split<const C: usize>(
    source: &[f32],
    planes: &mut [f32],
    plane_len: usize,
    first: usize,
    pixels: usize,
) {
    let mut chunks = planes.chunks_exact_mut(plane_len);
    let mut rows: [&mut [f32]; C] = core::array::from_fn(|_| {
        chunks
            .next()
            .map_or(&mut [][..], |p| &mut p[first..][..pixels])
    });
    for (x, pixel) in source.chunks_exact(C).enumerate() {
        for (row, &value) in rows.iter_mut().zip(pixel) {
            row[x] = value;
        }
    }
}

/// Results `(c, r, x)`, `per_plane` of them a plane, into the channels-last rows `(r, x, c)`.
struct FromPlanes<'a> {
    results: &'a [f32],
    out: &'a mut [f32],
    channels: usize,
    per_plane: usize,
}

impl WithSimd for FromPlanes<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) {
        let Self {
            results,
            out,
            channels,
            per_plane,
        } = self;
        #[cfg(target_arch = "x86_64")]
        if let (8, Some(v3)) = (channels, super::transpose::as_v3(_simd)) {
            merge_8(v3, results, out, per_plane);
            return;
        }
        with_channels!(channels, C => merge::<C>(&results[..C * per_plane], out, per_plane));
    }
}

/// Planes of `per_plane` results into pixels of `C` channels.
#[inline(always)]
fn merge<const C: usize>(results: &[f32], out: &mut [f32], per_plane: usize) {
    let mut chunks = results.chunks_exact(per_plane);
    let rows: [&[f32]; C] = core::array::from_fn(|_| chunks.next().unwrap_or(&[]));
    for (x, pixel) in out.chunks_exact_mut(C).enumerate() {
        for (value, row) in pixel.iter_mut().zip(&rows) {
            *value = row[x];
        }
    }
}

/// [`split`] for 8 channels on v3 and v4: 8 pixels at a time through an 8x8 register
/// transpose. `planes` starts at the first pixel's place in plane 0.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn split_8(v3: pulp::x86::V3, source: &[f32], planes: &mut [f32], plane_len: usize, pixels: usize) {
    use super::transpose::{read_strided, rows_of_mut, write_transposed};
    let mut rows = rows_of_mut(planes, plane_len, pixels);
    let whole = pixels / 8 * 8;
    for x in (0..whole).step_by(8) {
        write_transposed(v3, &mut rows, x, read_strided(source, x * 8, 8));
    }
    for x in whole..pixels {
        for (c, row) in rows.iter_mut().enumerate() {
            row[x] = source[x * 8 + c];
        }
    }
}

/// [`merge`] for 8 channels on v3 and v4, as [`split_8`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn merge_8(v3: pulp::x86::V3, results: &[f32], out: &mut [f32], per_plane: usize) {
    use super::transpose::{read_transposed, rows_of, write_strided};
    let rows = rows_of(results, 0, per_plane, per_plane);
    let whole = per_plane / 8 * 8;
    for x in (0..whole).step_by(8) {
        write_strided(out, x * 8, 8, read_transposed(v3, &rows, x));
    }
    for x in whole..per_plane {
        for (c, row) in rows.iter().enumerate() {
            out[x * 8 + c] = row[x];
        }
    }
}
