//! # nnpool
//!
//! Pooling kernels for convolutional neural networks: max (with argmax indices), average, Lp and
//! global pooling over 1, 2 or 3 spatial axes, in channels-first (NCHW) and channels-last (NHWC)
//! layouts, with the semantics of PyTorch, Keras and ONNX.
//!
//! Describe the operation once with a [`PoolDesc`], bind it to an input shape and layout with
//! [`Plan::new`] (which validates everything and computes the output shape), then call
//! [`Plan::run`] as often as you like: it writes into your buffer and allocates nothing.
//!
//! ```
//! use nnpool::{Layout, Padding, Plan, PoolDesc};
//!
//! // PyTorch: max_pool2d(x, kernel_size=3, stride=2, padding=1), x of shape [1, 64, 112, 112]
//! let desc = PoolDesc::max(&[3, 3]).strides(&[2, 2]).padding(Padding::symmetric(&[1, 1]));
//! let plan = Plan::<f32>::new(&desc, Layout::ChannelsFirst, &[1, 64, 112, 112])?;
//! assert_eq!(plan.output_shape(), &[1, 64, 56, 56]);
//!
//! let input = vec![1.0f32; plan.input_len()];
//! let mut output = vec![0.0f32; plan.output_len()];
//! let mut indices = vec![0i64; plan.output_len()];
//! plan.run_with_indices(&input, &mut output, &mut indices)?;
//! assert!(output.iter().all(|&v| v == 1.0));
//! # Ok::<(), nnpool::PoolError>(())
//! ```
//!
//! ## Semantics
//!
//! Per spatial axis, with input size `in`, kernel `k`, stride `s`, dilation `d`, pads `pb`/`pe`
//! and `ek = d*(k-1) + 1`:
//!
//! - floor mode: `out = floor((in + pb + pe - ek) / s) + 1`;
//! - ceil mode (explicit padding only): `out = floor((in + pb + pe - ek + s - 1) / s) + 1`, minus
//!   one if the last window would start at or past `in + pb`;
//! - `same` / `SAME_UPPER` and `SAME_LOWER`: `out = ceil(in / s)`, total pad
//!   `max((out - 1)*s + ek - in, 0)` split with the odd element at the end (upper) or begin
//!   (lower); `valid`: no padding;
//! - a configuration in which any window holds no input element is rejected;
//! - max: padding never wins, NaN propagates, the first maximum in row-major window order wins
//!   ties; indices are positions inside each (n, c) input volume (see [`Plan::run_with_indices`]);
//! - average: sum in row-major window order divided by the number of input elements in the
//!   window, or with `count_include_pad` by the taps inside `[-pb, in + pe)`, or by the override;
//! - Lp: `(sum |x|^p)^(1/p)` over the input elements; global: the window is the whole extent.
//!
//! [`reference`](mod@reference) implements exactly this, naively; it is the oracle every fast path is tested
//! against.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod desc;
mod element;
mod error;
mod geometry;
mod isa;
mod kernels;
mod parallel;
mod plan;
pub mod reference;
#[doc(hidden)]
pub mod testing;

pub use desc::{Layout, Padding, PoolDesc, PoolOp};
pub use element::Element;
pub use error::PoolError;
pub use isa::Isa;
pub use plan::{AlignedVec, OUTPUT_ALIGN, Plan};

/// The README's examples run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
