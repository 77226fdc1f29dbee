//! The one error type of the crate: every invalid descriptor, shape or buffer is reported here,
//! with the argument it concerns and the value that was wrong. Nothing in the crate panics on
//! bad input.

use std::fmt;

/// Why a plan could not be built or run.
///
/// Every variant names the argument it concerns (`kernel`, `strides`, `input_shape`, `output`, …)
/// and, where there is one, the spatial axis (0 = the first spatial axis: D in 3-D, H in 2-D, W in
/// 1-D) and the offending value, so that the `Display` text alone says what to fix.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PoolError {
    /// The input shape is not `[N, C, spatial...]` with 1, 2 or 3 spatial axes.
    UnsupportedRank {
        /// Number of dimensions given in `input_shape`.
        dims: usize,
    },
    /// A per-axis argument has a different number of entries than the input has spatial axes.
    RankMismatch {
        /// The argument (`kernel`, `strides`, `dilations`, `pads_begin`, `pads_end`).
        argument: &'static str,
        /// Number of spatial axes of the input.
        expected: usize,
        /// Number of entries given.
        got: usize,
    },
    /// A dimension of the input shape is zero.
    ZeroDimension {
        /// Index into `input_shape` (0 = N, 1 = C, 2.. = spatial).
        dim: usize,
    },
    /// A kernel, stride or dilation entry is zero.
    ZeroWindowParameter {
        /// `kernel`, `strides` or `dilations`.
        argument: &'static str,
        /// Spatial axis.
        axis: usize,
    },
    /// The (dilated) window does not fit in the padded input along an axis, so the output would
    /// be empty.
    WindowLargerThanInput {
        /// Spatial axis.
        axis: usize,
        /// `dilation * (kernel - 1) + 1`.
        effective_kernel: usize,
        /// `input + pad_begin + pad_end`.
        padded_input: usize,
    },
    /// Some output window would cover padding only and no input element.
    EmptyWindow {
        /// Spatial axis.
        axis: usize,
    },
    /// `ceil_mode` was asked for together with a padding mode that fixes the output size itself
    /// (`same`, `same-lower`, `valid`).
    CeilModeWithAutoPadding {
        /// The padding mode's name.
        padding: &'static str,
    },
    /// Shape arithmetic overflowed (`usize`, the byte size of a buffer, or the `i64` index type).
    Overflow {
        /// What was being computed.
        what: &'static str,
    },
    /// A buffer passed to `run` has the wrong number of elements.
    BufferLength {
        /// `input`, `output` or `indices`.
        argument: &'static str,
        /// Number of elements the plan needs.
        expected: usize,
        /// Number of elements given.
        got: usize,
    },
    /// Lp pooling needs a finite `p >= 1`.
    InvalidP {
        /// The value given.
        p: f32,
    },
    /// The average divisor override must be finite and non-zero.
    InvalidDivisor {
        /// The value given.
        divisor: f32,
    },
    /// A setting was given that the op or the window does not take (strides on a global window,
    /// `count_include_pad` on max pooling, ...).
    NotApplicable {
        /// The setting.
        argument: &'static str,
        /// What does not take it.
        reason: &'static str,
    },
    /// An instruction-set level was asked for that this CPU does not run.
    IsaUnavailable {
        /// The level's name.
        isa: &'static str,
    },
    /// Argmax indices were asked for from an op that has none (only max pooling has them).
    IndicesUnsupported {
        /// The op's name.
        op: &'static str,
    },
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsupportedRank { dims } => write!(
                f,
                "input_shape has {dims} dimensions: expected [N, C, spatial...] with 1, 2 or 3 spatial axes (3 to 5 dimensions)"
            ),
            Self::RankMismatch {
                argument,
                expected,
                got,
            } => write!(
                f,
                "{argument} has {got} entries: the input has {expected} spatial axes"
            ),
            Self::ZeroDimension { dim } => {
                write!(
                    f,
                    "input_shape[{dim}] = 0: every dimension must be at least 1"
                )
            }
            Self::ZeroWindowParameter { argument, axis } => {
                write!(f, "{argument}[{axis}] = 0: must be at least 1")
            }
            Self::WindowLargerThanInput {
                axis,
                effective_kernel,
                padded_input,
            } => write!(
                f,
                "kernel on spatial axis {axis}: the dilated window spans {effective_kernel} elements but the padded input has only {padded_input}, so the output would be empty"
            ),
            Self::EmptyWindow { axis } => write!(
                f,
                "padding on spatial axis {axis}: some output window would cover padding only and no input element (reduce the pads, the dilation or turn off ceil_mode)"
            ),
            Self::CeilModeWithAutoPadding { padding } => write!(
                f,
                "ceil_mode = true with padding = {padding}: ceil mode applies to explicit padding only ({padding} fixes the output size itself)"
            ),
            Self::Overflow { what } => write!(f, "{what} overflows"),
            Self::BufferLength {
                argument,
                expected,
                got,
            } => write!(
                f,
                "{argument} has {got} elements: the plan needs exactly {expected}"
            ),
            Self::InvalidP { p } => write!(f, "p = {p}: Lp pooling needs a finite p >= 1"),
            Self::InvalidDivisor { divisor } => write!(
                f,
                "divisor_override = {divisor}: must be finite and non-zero"
            ),
            Self::NotApplicable { argument, reason } => {
                write!(f, "{argument} was given but {reason} does not take it")
            }
            Self::IsaUnavailable { isa } => {
                write!(
                    f,
                    "isa = {isa}: this CPU does not run that instruction-set level"
                )
            }
            Self::IndicesUnsupported { op } => write!(
                f,
                "indices requested from {op} pooling: only max pooling returns argmax indices"
            ),
        }
    }
}

impl std::error::Error for PoolError {}
