//! Per-axis window arithmetic: output size, effective pads, which taps of a window fall inside
//! the input, and the check that no window is made of padding alone. All of it is checked
//! integer arithmetic; nothing here touches data.
//!
//! Notation (per spatial axis): `in` input size, `k` kernel, `s` stride, `d` dilation,
//! `pb`/`pe` pads at begin/end, `ek = d*(k-1) + 1` the effective kernel extent. Output `o`'s
//! window starts at `st = o*s - pb` and its taps are at `st + j*d` for `j` in `0..k`.

use crate::PoolError;

/// How one axis is padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AxisPadding {
    Explicit { begin: usize, end: usize },
    Valid,
    SameUpper,
    SameLower,
}

/// One spatial axis of a validated plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Axis {
    pub input: usize,
    pub output: usize,
    pub kernel: usize,
    pub stride: usize,
    pub dilation: usize,
    pub pad_begin: usize,
    pub pad_end: usize,
}

/// The taps of one output window that fall inside the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Taps {
    /// Input position of the first tap inside the input.
    pub first: usize,
    /// Number of taps inside the input (at least 1 in a validated plan).
    pub count: usize,
    /// Number of taps inside the padded input `[-pb, in + pe)` (the `count_include_pad` divisor).
    pub padded_count: usize,
}

impl Axis {
    /// A trivial axis (size 1, window 1) used to lift 1-D and 2-D problems to 3-D.
    pub const UNIT: Axis = Axis {
        input: 1,
        output: 1,
        kernel: 1,
        stride: 1,
        dilation: 1,
        pad_begin: 0,
        pad_end: 0,
    };

    /// Validates one axis and computes its output size and effective pads.
    pub fn new(
        axis: usize,
        input: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
        padding: AxisPadding,
        ceil_mode: bool,
    ) -> Result<Axis, PoolError> {
        let zero = |argument| PoolError::ZeroWindowParameter { argument, axis };
        if kernel == 0 {
            return Err(zero("kernel"));
        }
        if stride == 0 {
            return Err(zero("strides"));
        }
        if dilation == 0 {
            return Err(zero("dilations"));
        }
        let overflow = |what| PoolError::Overflow { what };
        let effective_kernel = dilation
            .checked_mul(kernel - 1)
            .and_then(|x| x.checked_add(1))
            .ok_or(overflow("dilations * (kernel - 1) + 1"))?;

        let (output, pad_begin, pad_end) = match padding {
            AxisPadding::Explicit { begin, end } => {
                let padded = input
                    .checked_add(begin)
                    .and_then(|x| x.checked_add(end))
                    .ok_or(overflow("input + pads_begin + pads_end"))?;
                let too_small = PoolError::WindowLargerThanInput {
                    axis,
                    effective_kernel,
                    padded_input: padded,
                };
                let output = if ceil_mode {
                    ceil_mode_output(input, begin, padded, effective_kernel, stride)
                } else {
                    padded
                        .checked_sub(effective_kernel)
                        .map(|span| span / stride + 1)
                };
                (output.ok_or(too_small)?, begin, end)
            }
            auto => {
                if ceil_mode {
                    let padding = match auto {
                        AxisPadding::Valid => "valid",
                        AxisPadding::SameUpper => "same",
                        _ => "same-lower",
                    };
                    return Err(PoolError::CeilModeWithAutoPadding { padding });
                }
                if auto == AxisPadding::Valid {
                    let span = input.checked_sub(effective_kernel).ok_or(
                        PoolError::WindowLargerThanInput {
                            axis,
                            effective_kernel,
                            padded_input: input,
                        },
                    )?;
                    (span / stride + 1, 0, 0)
                } else {
                    let output = input.div_ceil(stride);
                    // (output - 1) * stride < input, so this cannot overflow once ek fits.
                    let total = ((output - 1) * stride)
                        .checked_add(effective_kernel)
                        .ok_or(overflow("same padding"))?
                        .saturating_sub(input);
                    let small = total / 2;
                    if auto == AxisPadding::SameUpper {
                        (output, small, total - small)
                    } else {
                        (output, total - small, small)
                    }
                }
            }
        };

        // Kernels address positions with isize arithmetic.
        let fits_isize = |x: usize| x <= isize::MAX as usize;
        let padded = input
            .checked_add(pad_begin)
            .and_then(|x| x.checked_add(pad_end));
        if !(padded.is_some_and(fits_isize) && fits_isize(effective_kernel)) {
            return Err(overflow("input + pads_begin + pads_end"));
        }
        let axis_geometry = Axis {
            input,
            output,
            kernel,
            stride,
            dilation,
            pad_begin,
            pad_end,
        };
        if axis_geometry.has_empty_window()? {
            return Err(PoolError::EmptyWindow { axis });
        }
        Ok(axis_geometry)
    }

    /// `d*(k-1) + 1`; fits because [`Axis::new`] checked it.
    pub fn effective_kernel(&self) -> usize {
        self.dilation * (self.kernel - 1) + 1
    }

    /// Start of output `o`'s window relative to the input's first element (negative in padding).
    fn start(&self, o: usize) -> i128 {
        o as i128 * self.stride as i128 - self.pad_begin as i128
    }

    /// Whether some output window holds no input element. Windows that start inside the input
    /// always hold their first tap; windows that start at or past its end hold none; a window
    /// that starts in the begin padding is empty when its first tap at or past 0 lies past the
    /// input, i.e. when `st mod d >= in` (given `pb < ek`). Those windows are counted in
    /// O(log) with floor sums, so huge shapes cost no loop.
    fn has_empty_window(&self) -> Result<bool, PoolError> {
        let last_start = self.start(self.output - 1);
        if last_start >= self.input as i128 {
            return Ok(true);
        }
        if self.pad_begin == 0 {
            return Ok(false);
        }
        if self.pad_begin >= self.effective_kernel() {
            return Ok(true); // the first window lies entirely in the begin padding
        }
        if self.input >= self.dilation {
            return Ok(false); // every run of d consecutive positions meets the input
        }
        // Windows o in 0..n start in the begin padding.
        let n = self.output.min(self.pad_begin.div_ceil(self.stride)) as u128;
        let (s, d, pb) = (
            self.stride as u128,
            self.dilation as u128,
            self.pad_begin as u128,
        );
        // Shift the starts by a multiple of d to make them non-negative: (st + shift) mod d = st mod d.
        let shift = pb.div_ceil(d) * d;
        let b = shift - pb;
        // #{o : st mod d >= in} = sum_o floor((st + d - in) / d) - floor(st / d).
        let overflow = PoolError::Overflow {
            what: "empty-window check",
        };
        let upper = floor_sum(n, d, s, b + d - self.input as u128).ok_or(overflow.clone())?;
        let lower = floor_sum(n, d, s, b).ok_or(overflow)?;
        Ok(upper > lower)
    }

    /// The taps of output `o`'s window that fall inside the input, and inside the padded input.
    /// Plain `isize` arithmetic: [`Axis::new`] checked that the padded extent fits.
    #[inline]
    pub fn taps(&self, o: usize) -> Taps {
        let st = (o * self.stride) as isize - self.pad_begin as isize;
        let (d, k) = (self.dilation as isize, self.kernel as isize);
        // ceil(a / d) for a > 0, without a division in the common undilated case.
        let taps_within = |a: isize| if d == 1 { a } else { (a + d - 1) / d };
        // First tap j with st + j*d >= 0, and one past the last with st + j*d < limit.
        let first_tap = if st >= 0 { 0 } else { taps_within(-st) };
        let end_tap = |limit: isize| {
            let span = limit - st;
            if span <= 0 {
                0
            } else {
                taps_within(span).min(k)
            }
        };
        let end_in = end_tap(self.input as isize);
        let end_padded = end_tap((self.input + self.pad_end) as isize);
        debug_assert!(first_tap < end_in, "validated plans have no empty window");
        Taps {
            first: (st + first_tap * d) as usize,
            count: (end_in - first_tap) as usize,
            padded_count: end_padded as usize,
        }
    }

    /// Output `o`'s taps, without clipping arithmetic when `o` is in `interior` (the range
    /// [`Axis::interior`] returns): all `k` taps, the first at `o*s - pb`.
    #[inline(always)]
    pub fn taps_given_interior(&self, o: usize, interior: &std::ops::Range<usize>) -> Taps {
        if interior.contains(&o) {
            Taps {
                first: o * self.stride - self.pad_begin,
                count: self.kernel,
                padded_count: self.kernel,
            }
        } else {
            self.taps(o)
        }
    }

    /// The input positions that the windows of `outputs` (not empty) read, clipped to the
    /// input: from the first window's start to the last one's end. Windows start further on
    /// with each output, but their first tap inside the input need not (a dilated window skips
    /// padding in whole steps, so a later one may read a position before the first one's).
    pub fn input_span(&self, outputs: std::ops::Range<usize>) -> std::ops::Range<usize> {
        let reach = (self.kernel - 1) * self.dilation + 1;
        let start = (outputs.start * self.stride).saturating_sub(self.pad_begin);
        let end = ((outputs.end - 1) * self.stride + reach).saturating_sub(self.pad_begin);
        start.min(self.input)..end.min(self.input).max(start.min(self.input))
    }

    /// Outputs whose whole window lies inside the input (no tap in padding).
    pub fn interior(&self) -> std::ops::Range<usize> {
        let lo = self.pad_begin.div_ceil(self.stride).min(self.output);
        let hi = match (self.input + self.pad_begin).checked_sub(self.effective_kernel()) {
            Some(span) => (span / self.stride + 1).min(self.output),
            None => 0,
        };
        lo..hi.max(lo)
    }
}

/// PyTorch's ceil-mode output size: `floor((padded - ek + s - 1) / s) + 1` rounded toward -inf,
/// then one less if the last window would start at or past `in + pb`. `None` when it is < 1.
fn ceil_mode_output(
    input: usize,
    pad_begin: usize,
    padded: usize,
    effective_kernel: usize,
    stride: usize,
) -> Option<usize> {
    let (padded, ek, s) = (padded as i128, effective_kernel as i128, stride as i128);
    let mut output = (padded - ek + s - 1).div_euclid(s) + 1;
    if output >= 1 && (output - 1) * s >= input as i128 + pad_begin as i128 {
        output -= 1;
    }
    (output >= 1).then_some(output as usize)
}

/// `sum_{i=0}^{n-1} floor((a*i + b) / m)` for `m > 0`, in O(log m) steps (the Euclid-like
/// reduction); `None` on overflow.
pub(crate) fn floor_sum(mut n: u128, mut m: u128, mut a: u128, mut b: u128) -> Option<u128> {
    let mut sum: u128 = 0;
    loop {
        if a >= m {
            let pairs = if n % 2 == 0 {
                (n / 2).checked_mul(n.saturating_sub(1))?
            } else {
                n.checked_mul((n.saturating_sub(1)) / 2)?
            };
            sum = sum.checked_add(pairs.checked_mul(a / m)?)?;
            a %= m;
        }
        if b >= m {
            sum = sum.checked_add(n.checked_mul(b / m)?)?;
            b %= m;
        }
        let y_max = a.checked_mul(n)?.checked_add(b)?;
        if y_max < m {
            return Some(sum);
        }
        n = y_max / m;
        b = y_max % m;
        std::mem::swap(&mut m, &mut a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn brute_floor_sum(n: u128, m: u128, a: u128, b: u128) -> u128 {
        (0..n).map(|i| (a * i + b) / m).sum()
    }

    fn brute_has_empty(axis: &Axis) -> bool {
        (0..axis.output).any(|o| {
            let st = axis.start(o);
            (0..axis.kernel as i128).all(|j| {
                let p = st + j * axis.dilation as i128;
                p < 0 || p >= axis.input as i128
            })
        })
    }

    proptest! {
        #[test]
        fn floor_sum_matches_brute_force(n in 0u128..60, m in 1u128..40, a in 0u128..100, b in 0u128..100) {
            prop_assert_eq!(floor_sum(n, m, a, b), Some(brute_floor_sum(n, m, a, b)));
        }

        #[test]
        fn empty_window_check_matches_brute_force(
            input in 1usize..12, kernel in 1usize..5, stride in 1usize..5, dilation in 1usize..8,
            begin in 0usize..20, end in 0usize..20, ceil in any::<bool>(),
        ) {
            let padding = AxisPadding::Explicit { begin, end };
            let result = Axis::new(0, input, kernel, stride, dilation, padding, ceil);
            // Build the unchecked axis the same way to compare.
            let ek = dilation * (kernel - 1) + 1;
            let padded = input + begin + end;
            let output = if ceil {
                ceil_mode_output(input, begin, padded, ek, stride)
            } else {
                padded.checked_sub(ek).map(|x| x / stride + 1)
            };
            match output {
                None => {
                    let too_small = matches!(result, Err(PoolError::WindowLargerThanInput { .. }));
                    prop_assert!(too_small, "got {:?}", result);
                }
                Some(output) => {
                    let axis = Axis { input, output, kernel, stride, dilation, pad_begin: begin, pad_end: end };
                    if brute_has_empty(&axis) {
                        prop_assert_eq!(result, Err(PoolError::EmptyWindow { axis: 0 }));
                    } else {
                        prop_assert_eq!(result, Ok(axis));
                    }
                }
            }
        }
    }

    #[test]
    fn input_span_reaches_rows_a_later_dilated_window_reads_first() {
        // in 5, k 2, s 1, d 2, pads 1/1: window 0 reads -1 and 1, window 1 reads 0 and 2.
        let axis = Axis::new(
            0,
            5,
            2,
            1,
            2,
            AxisPadding::Explicit { begin: 1, end: 1 },
            false,
        )
        .unwrap();
        assert_eq!(axis.taps(0).first, 1);
        assert_eq!(axis.input_span(0..2), 0..3);
        assert_eq!(axis.input_span(0..1), 0..2);
        // The last window (start 3: reads 3 and 5) is clipped to the input.
        assert_eq!(axis.input_span(1..axis.output), 0..5);
    }

    #[test]
    fn taps_of_a_padded_dilated_axis() {
        // in 5, k 3, s 2, d 2, pads 2/2: windows start at -2, 0, 2 (taps -2,0,2 | 0,2,4 | 2,4,6).
        let axis = Axis::new(
            0,
            5,
            3,
            2,
            2,
            AxisPadding::Explicit { begin: 2, end: 2 },
            false,
        )
        .unwrap();
        assert_eq!(axis.output, 3);
        let t: Vec<_> = (0..3).map(|o| axis.taps(o)).collect();
        assert_eq!(
            t[0],
            Taps {
                first: 0,
                count: 2,
                padded_count: 3
            }
        );
        assert_eq!(
            t[1],
            Taps {
                first: 0,
                count: 3,
                padded_count: 3
            }
        );
        assert_eq!(
            t[2],
            Taps {
                first: 2,
                count: 2,
                padded_count: 3
            }
        );
        assert_eq!(axis.interior(), 1..2);
    }

    #[test]
    fn huge_axes_do_not_loop_or_overflow() {
        let big = usize::MAX / 8;
        // Dilation larger than the input with a long run of windows in the begin padding: the
        // window starting at -8 has its taps at -8 and big - 8 >= in.
        let r = Axis::new(
            0,
            big - 7,
            2,
            1,
            big,
            AxisPadding::Explicit {
                begin: big - 1,
                end: 10,
            },
            false,
        );
        assert_eq!(r, Err(PoolError::EmptyWindow { axis: 0 }));
        // Without the end padding the last window starts at -8 and its second tap, big - 8, is
        // inside the input.
        let padding = AxisPadding::Explicit {
            begin: big - 1,
            end: 0,
        };
        assert!(Axis::new(0, big - 7, 2, 1, big, padding, false).is_ok());
        let r = Axis::new(
            0,
            usize::MAX,
            2,
            1,
            usize::MAX,
            AxisPadding::SameUpper,
            false,
        );
        assert!(matches!(r, Err(PoolError::Overflow { .. })));
    }
}
