//! What the caller asks for: the op, the window and the padding. Nothing here is validated;
//! [`crate::Plan::new`] checks a descriptor against an input shape and reports every problem as a
//! [`crate::PoolError`].

/// How a tensor's dimensions sit in memory. Shapes are always given as `[N, C, spatial...]`
/// whatever the layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// NCW, NCHW, NCDHW: each (n, c) plane is contiguous (PyTorch and ONNX default).
    ChannelsFirst,
    /// NWC, NHWC, NDHWC: the channels of one pixel are contiguous (Keras and TensorFlow default).
    ChannelsLast,
}

/// How the input is padded, per spatial axis.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Padding {
    /// Explicit padding: `begin[i]` elements before and `end[i]` after spatial axis `i` (ONNX
    /// `pads = [begin..., end...]`; PyTorch `padding=p` is `begin = end = p`). Ceil mode may be
    /// used with it.
    Explicit {
        /// Padding before each spatial axis.
        begin: Vec<usize>,
        /// Padding after each spatial axis.
        end: Vec<usize>,
    },
    /// No padding, floor mode (Keras `valid`, ONNX `VALID`).
    Valid,
    /// `out = ceil(in / stride)`, the odd padding element at the end (Keras/TF `same`, ONNX
    /// `SAME_UPPER`).
    SameUpper,
    /// `out = ceil(in / stride)`, the odd padding element at the begin (ONNX `SAME_LOWER`).
    SameLower,
}

impl Padding {
    /// The same explicit padding before and after each spatial axis (PyTorch's `padding`).
    pub fn symmetric(pads: &[usize]) -> Self {
        Self::Explicit {
            begin: pads.to_vec(),
            end: pads.to_vec(),
        }
    }

    /// Explicit, possibly asymmetric padding.
    pub fn explicit(begin: &[usize], end: &[usize]) -> Self {
        Self::Explicit {
            begin: begin.to_vec(),
            end: end.to_vec(),
        }
    }

    /// The mode's name, as used in error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Explicit { .. } => "explicit",
            Self::Valid => "valid",
            Self::SameUpper => "same",
            Self::SameLower => "same-lower",
        }
    }
}

/// The reduction applied to each window.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum PoolOp {
    /// The maximum; padding never wins and a NaN in the window gives NaN.
    Max,
    /// The mean of the window's elements (see [`PoolDesc::count_include_pad`] and
    /// [`PoolDesc::divisor_override`] for the divisor).
    Average,
    /// `(sum |x|^p)^(1/p)` over the window's input elements (ONNX `LpPool`); padding adds 0.
    Lp {
        /// The exponent, finite and `>= 1`.
        p: f32,
    },
}

impl PoolOp {
    /// The op's name, as used in error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Max => "max",
            Self::Average => "average",
            Self::Lp { .. } => "lp",
        }
    }
}

/// A pooling descriptor: an op, a window and the op's options. Build one with
/// [`PoolDesc::max`], [`PoolDesc::average`], [`PoolDesc::lp`] or [`PoolDesc::global`], refine it
/// with the builder methods, then bind it to a shape with [`crate::Plan::new`], which rejects a
/// setting the op or window does not take (strides on a global window, `count_include_pad` on max
/// pooling, ...) rather than ignoring it.
///
/// Defaults: stride = kernel (PyTorch and Keras; ONNX's default stride is 1, so give it when
/// translating an ONNX node), dilation 1, no padding, floor mode, and for average pooling a
/// divisor that counts input elements only (`count_include_pad = false`, the Keras, TensorFlow and
/// ONNX default; PyTorch's default is `true`).
///
/// ```
/// use nnpool::{Padding, PoolDesc};
/// let desc = PoolDesc::max(&[3, 3]).strides(&[2, 2]).padding(Padding::symmetric(&[1, 1]));
/// # let _ = desc;
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PoolDesc {
    pub(crate) op: PoolOp,
    /// `None`: global pooling.
    pub(crate) kernel: Option<Vec<usize>>,
    pub(crate) strides: Option<Vec<usize>>,
    pub(crate) dilations: Option<Vec<usize>>,
    pub(crate) padding: Option<Padding>,
    pub(crate) ceil_mode: Option<bool>,
    pub(crate) count_include_pad: Option<bool>,
    pub(crate) divisor_override: Option<f32>,
}

impl PoolDesc {
    /// A sliding window of `kernel` taps per spatial axis.
    pub fn new(op: PoolOp, kernel: &[usize]) -> Self {
        Self {
            op,
            kernel: Some(kernel.to_vec()),
            strides: None,
            dilations: None,
            padding: None,
            ceil_mode: None,
            count_include_pad: None,
            divisor_override: None,
        }
    }

    /// Global pooling: the window is the whole spatial extent, the output's spatial size is 1.
    pub fn global(op: PoolOp) -> Self {
        Self {
            kernel: None,
            ..Self::new(op, &[])
        }
    }

    /// Global max pooling.
    pub fn global_max() -> Self {
        Self::global(PoolOp::Max)
    }

    /// Global average pooling.
    pub fn global_average() -> Self {
        Self::global(PoolOp::Average)
    }

    /// Global Lp pooling.
    pub fn global_lp(p: f32) -> Self {
        Self::global(PoolOp::Lp { p })
    }

    /// Max pooling with a sliding window.
    pub fn max(kernel: &[usize]) -> Self {
        Self::new(PoolOp::Max, kernel)
    }

    /// Average pooling with a sliding window.
    pub fn average(kernel: &[usize]) -> Self {
        Self::new(PoolOp::Average, kernel)
    }

    /// Lp pooling with a sliding window.
    pub fn lp(kernel: &[usize], p: f32) -> Self {
        Self::new(PoolOp::Lp { p }, kernel)
    }

    /// Step per spatial axis (default: the kernel size).
    pub fn strides(mut self, value: &[usize]) -> Self {
        self.strides = Some(value.to_vec());
        self
    }

    /// Distance between taps per spatial axis (default: 1).
    pub fn dilations(mut self, value: &[usize]) -> Self {
        self.dilations = Some(value.to_vec());
        self
    }

    /// Padding mode and amounts (default: none).
    pub fn padding(mut self, value: Padding) -> Self {
        self.padding = Some(value);
        self
    }

    /// PyTorch/ONNX ceil mode, with explicit padding only (default: off).
    pub fn ceil_mode(mut self, value: bool) -> Self {
        self.ceil_mode = Some(value);
        self
    }

    /// Average pooling: count every window tap inside the padded input in the divisor (PyTorch's
    /// default) instead of the input elements only (default: `false`).
    pub fn count_include_pad(mut self, value: bool) -> Self {
        self.count_include_pad = Some(value);
        self
    }

    /// Average pooling: divide by `value` instead (PyTorch `divisor_override`).
    pub fn divisor_override(mut self, value: f32) -> Self {
        self.divisor_override = Some(value);
        self
    }

    /// The op.
    pub fn op(&self) -> PoolOp {
        self.op
    }

    /// The kernel, or `None` for a global window.
    pub fn kernel(&self) -> Option<&[usize]> {
        self.kernel.as_deref()
    }
}
