//! The specification in code: a naive implementation of every op, written to be obviously right
//! and never optimised. Every fast path, fuzz target and benchmark is checked against it.
//!
//! ```text
//! for n, c, every output position o (row-major over depth, height, width):
//!     for every tap t of the window (row-major), at input position o*stride - pad_begin + t*dilation:
//!         skip the tap if it lies outside the input (it is padding)
//!         max:     replace the running value if x > it or x is NaN (first maximum wins ties,
//!                  the last NaN wins among NaNs); its index is the tap's position in the plane
//!         average: sum += x (in window order); the divisor counts the taps inside the input, or
//!                  with count_include_pad those inside [-pad_begin, in + pad_end)
//!         lp:      sum += |x|^p
//!     write max, sum / divisor (or sum / divisor_override), or sum^(1/p)
//! ```

use crate::{Layout, Plan, PoolError, PoolOp};

/// The max rule shared by every path: `x` replaces the running maximum when it is greater or
/// NaN (PyTorch's update rule). With the running value starting at −∞ and the index at the
/// window's first input element, the first maximum wins ties, a NaN propagates (the last NaN in
/// window order wins among NaNs), and an all-(−∞) window gives −∞ at its first element.
#[inline(always)]
pub fn max_replaces(x: f32, running: f32) -> bool {
    x > running || x.is_nan()
}

/// One element's term in an Lp sum: `|x|`, `x*x` or `|x|^p`.
#[inline(always)]
pub fn lp_term(x: f32, p: f32) -> f32 {
    if p == 1.0 {
        x.abs()
    } else if p == 2.0 {
        x * x
    } else {
        x.abs().powf(p)
    }
}

/// The root that finishes an Lp sum: `sum`, `sqrt(sum)` or `sum^(1/p)`.
#[inline(always)]
pub fn lp_root(sum: f32, p: f32) -> f32 {
    if p == 1.0 {
        sum
    } else if p == 2.0 {
        sum.sqrt()
    } else {
        sum.powf(1.0 / p)
    }
}

/// Lifts a per-spatial-axis list to 3 entries (depth, height, width) with `fill` in front.
fn lift(values: &[usize], fill: usize) -> [usize; 3] {
    let mut out = [fill; 3];
    out[3 - values.len()..].copy_from_slice(values);
    out
}

/// Position of element (n, c, z, y, x) in a dense tensor of shape `[n, c, d, h, w]`.
fn offset(
    layout: Layout,
    shape: [usize; 5],
    n: usize,
    c: usize,
    z: usize,
    y: usize,
    x: usize,
) -> usize {
    let [_, cs, d, h, w] = shape;
    match layout {
        Layout::ChannelsFirst => (((n * cs + c) * d + z) * h + y) * w + x,
        Layout::ChannelsLast => (((n * d + z) * h + y) * w + x) * cs + c,
    }
}

/// Pools `input` into `output` (and `indices`, for max pooling) by the naive definition.
pub fn pool(
    plan: &Plan<f32>,
    input: &[f32],
    output: &mut [f32],
    mut indices: Option<&mut [i64]>,
) -> Result<(), PoolError> {
    let expect = |argument, expected: usize, got: usize| {
        if expected == got {
            Ok(())
        } else {
            Err(PoolError::BufferLength {
                argument,
                expected,
                got,
            })
        }
    };
    expect("input", plan.input_len(), input.len())?;
    expect("output", plan.output_len(), output.len())?;
    if let Some(indices) = indices.as_deref() {
        if plan.op() != PoolOp::Max {
            return Err(PoolError::IndicesUnsupported {
                op: plan.op().name(),
            });
        }
        expect("indices", plan.output_len(), indices.len())?;
    }

    let (ins, outs) = (plan.input_shape(), plan.output_shape());
    let (batch, channels) = (ins[0], ins[1]);
    let in_sp = lift(&ins[2..], 1);
    let out_sp = lift(&outs[2..], 1);
    let kernel = lift(&plan.kernel(), 1);
    let stride = lift(&plan.strides(), 1);
    let dilation = lift(&plan.dilations(), 1);
    let pad_begin = lift(&plan.pads_begin(), 0);
    let pad_end = lift(&plan.pads_end(), 0);
    let in_shape = [batch, channels, in_sp[0], in_sp[1], in_sp[2]];
    let out_shape = [batch, channels, out_sp[0], out_sp[1], out_sp[2]];

    for n in 0..batch {
        for c in 0..channels {
            for oz in 0..out_sp[0] {
                for oy in 0..out_sp[1] {
                    for ox in 0..out_sp[2] {
                        let o = [oz, oy, ox];
                        let mut best = f32::NEG_INFINITY;
                        let mut best_index: Option<usize> = None;
                        let mut sum = 0.0f32;
                        let mut inside = 0usize;
                        let mut inside_padded = 0usize;
                        for tz in 0..kernel[0] {
                            for ty in 0..kernel[1] {
                                for tx in 0..kernel[2] {
                                    let t = [tz, ty, tx];
                                    // Signed input position of this tap on each axis.
                                    let pos: [i128; 3] = std::array::from_fn(|a| {
                                        (o[a] * stride[a]) as i128 - pad_begin[a] as i128
                                            + (t[a] * dilation[a]) as i128
                                    });
                                    let in_padded = (0..3).all(|a| {
                                        pos[a] >= -(pad_begin[a] as i128)
                                            && pos[a] < (in_sp[a] + pad_end[a]) as i128
                                    });
                                    inside_padded += usize::from(in_padded);
                                    let in_input =
                                        (0..3).all(|a| pos[a] >= 0 && pos[a] < in_sp[a] as i128);
                                    if !in_input {
                                        continue;
                                    }
                                    inside += 1;
                                    let [z, y, x] = pos.map(|p| p as usize);
                                    let value =
                                        input[offset(plan.layout(), in_shape, n, c, z, y, x)];
                                    let plane_index = (z * in_sp[1] + y) * in_sp[2] + x;
                                    if best_index.is_none() {
                                        best_index = Some(plane_index);
                                    }
                                    if max_replaces(value, best) {
                                        best = value;
                                        best_index = Some(plane_index);
                                    }
                                    sum += match plan.op() {
                                        PoolOp::Lp { p } => lp_term(value, p),
                                        _ => value,
                                    };
                                }
                            }
                        }
                        debug_assert!(inside > 0, "a validated plan has no empty window");
                        let result = match plan.op() {
                            PoolOp::Max => best,
                            PoolOp::Lp { p } => lp_root(sum, p),
                            _ => {
                                let divisor = match plan.divisor_override() {
                                    Some(d) => d,
                                    None if plan.count_include_pad() => inside_padded as f32,
                                    None => inside as f32,
                                };
                                sum / divisor
                            }
                        };
                        let at = offset(plan.layout(), out_shape, n, c, oz, oy, ox);
                        output[at] = result;
                        if let Some(indices) = indices.as_deref_mut() {
                            indices[at] = best_index.unwrap_or(0) as i64;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}
