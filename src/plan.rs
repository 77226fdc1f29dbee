//! A validated descriptor bound to an input shape and layout: everything a run needs is computed
//! once here (output shape, effective pads, strides), so `run` only checks buffer lengths and
//! calls the kernel. A plan's size does not grow with the tensor's: descriptors of any size can be
//! validated without allocating for them.

use std::marker::PhantomData;

use aligned_vec::{AVec, ConstAlign};

use crate::element::Element;
use crate::geometry::{Axis, AxisPadding};
use crate::isa::{Isa, V3Moves};
use crate::kernels::{Kernel, Rule, small_planes};
use crate::{Layout, Padding, PoolDesc, PoolError, PoolOp};

/// Alignment in bytes of the buffers that [`Plan::run_alloc`] returns.
pub const OUTPUT_ALIGN: usize = 64;

/// An output buffer allocated by the crate, aligned to [`OUTPUT_ALIGN`] bytes.
pub type AlignedVec<T> = AVec<T, ConstAlign<OUTPUT_ALIGN>>;

/// The reduction as the kernels see it, with the op's options resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Reduction {
    Max,
    Average {
        count_include_pad: bool,
        divisor_override: Option<f32>,
    },
    Lp {
        p: f32,
    },
}

/// A pooling operation bound to an input shape and layout: plan once, run many times.
///
/// Building the plan validates the descriptor against the shape and computes the output shape;
/// [`Plan::run`] then writes into a caller-provided buffer and allocates nothing. `T` is the
/// element type (only `f32` today).
///
/// ```
/// use nnpool::{Layout, Padding, Plan, PoolDesc};
/// let desc = PoolDesc::max(&[3, 3]).strides(&[2, 2]).padding(Padding::symmetric(&[1, 1]));
/// let plan = Plan::<f32>::new(&desc, Layout::ChannelsFirst, &[1, 2, 5, 5])?;
/// assert_eq!(plan.output_shape(), &[1, 2, 3, 3]);
/// let input: Vec<f32> = (0..50).map(|i| i as f32).collect();
/// let mut output = vec![0.0; plan.output_len()];
/// plan.run(&input, &mut output)?;
/// assert_eq!(&output[..3], &[6.0, 8.0, 9.0]);
/// # Ok::<(), nnpool::PoolError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Plan<T: Element = f32> {
    pub(crate) reduction: Reduction,
    pub(crate) layout: Layout,
    input_shape: Vec<usize>,
    output_shape: Vec<usize>,
    pub(crate) batch: usize,
    pub(crate) channels: usize,
    /// Spatial axes lifted to 3-D: (depth, height, width), leading unit axes for 1-D and 2-D.
    pub(crate) axes: [Axis; 3],
    /// Element strides of (n, c, z, y, x) in the input and the output.
    pub(crate) input_strides: [usize; 5],
    pub(crate) output_strides: [usize; 5],
    input_len: usize,
    output_len: usize,
    pub(crate) isa: Isa,
    pub(crate) kernel: Kernel,
    pub(crate) parallel: bool,
    pub(crate) allow_separable: bool,
    /// Bands to split every run into, whatever its size (tests only; `None`: by work).
    pub(crate) forced_tasks: Option<usize>,
    /// The channels-first plan of one image that `Kernel::ViaPlanes` runs.
    pub(crate) planes: Option<Box<Plan<T>>>,
    element: PhantomData<fn() -> T>,
}

impl<T: Element> Plan<T> {
    /// Validates `desc` against an input of `input_shape` (`[N, C, spatial...]` with 1, 2 or 3
    /// spatial axes, whatever the layout) and prepares the run.
    pub fn new(desc: &PoolDesc, layout: Layout, input_shape: &[usize]) -> Result<Self, PoolError> {
        let dims = input_shape.len();
        if !(3..=5).contains(&dims) {
            return Err(PoolError::UnsupportedRank { dims });
        }
        if let Some(dim) = input_shape.iter().position(|&x| x == 0) {
            return Err(PoolError::ZeroDimension { dim });
        }
        let input_len = element_count::<T>(input_shape, "input element count")?;
        let reduction = resolve_reduction(desc)?;
        let spatial = &input_shape[2..];
        let axes = spatial_axes(desc, spatial)?;

        let mut output_shape = input_shape[..2].to_vec();
        output_shape.extend(axes.iter().map(|a| a.output));
        let output_len = element_count::<T>(&output_shape, "output element count")?;
        // Argmax indices are i64 positions inside one (n, c) input plane; the plane is smaller
        // than the whole input, whose byte size fits isize, so they always fit i64.

        let mut lifted = [Axis::UNIT; 3];
        lifted[3 - axes.len()..].copy_from_slice(&axes);
        let mut plan = Self {
            reduction,
            layout,
            input_strides: strides(layout, input_shape[1], &lifted.map(|a| a.input)),
            output_strides: strides(layout, input_shape[1], &lifted.map(|a| a.output)),
            input_shape: input_shape.to_vec(),
            output_shape,
            batch: input_shape[0],
            channels: input_shape[1],
            axes: lifted,
            input_len,
            output_len,
            isa: Isa::Portable,
            kernel: Kernel::Scalar,
            parallel: true,
            allow_separable: true,
            forced_tasks: None,
            planes: None,
            element: PhantomData,
        };
        plan.select_kernel(Isa::default_for_process());
        plan.apply_v3_moves(Isa::v3_moves());
        Ok(plan)
    }

    fn select_kernel(&mut self, isa: Isa) {
        self.isa = isa;
        T::select_kernel(self);
    }

    /// Moves a channels-first v4 plan to v3 where `moves` says v3's choice runs faster (see
    /// [`Isa::v3_moves`]): short-rows or separable max where v3 chooses the same kernel or the
    /// pairs kernel (where it would choose small planes, v4's short rows ran faster: `[1, 256,
    /// 28, 28]` 3x3/2, 25.2 against 32.4 µs on Zen 5, 35.6 against 69.4 on Zen 4), and sums
    /// with x stride 2 on the fixed-window, flat-planes or (planes too large for v4's narrow
    /// block) small-planes kernel where v3 chooses small planes.
    fn apply_v3_moves(&mut self, moves: V3Moves) {
        if self.isa != Isa::V4 || self.layout != Layout::ChannelsFirst {
            return;
        }
        let max = moves.channels_first_max
            && matches!(self.kernel, Kernel::ShortRowsMax | Kernel::SeparableMax);
        let sums = moves.strided_sums
            && self.axes[2].stride == 2
            && match self.kernel {
                Kernel::FixedWindow(rule) | Kernel::FlatPlanes(rule) => rule != Rule::Max,
                // (Narrow planes ran as fast on v4: 512 of 14x14, 19.0 against 21.1 µs.)
                Kernel::SmallPlanes(rule) => {
                    rule != Rule::Max && !small_planes::narrow_axes(&self.axes, Isa::V4.lanes())
                }
                _ => false,
            };
        if !max && !sums {
            return;
        }
        let mut on_v3 = self.clone();
        on_v3.select_kernel(Isa::V3);
        let faster = if max {
            matches!(
                on_v3.kernel,
                Kernel::ShortRowsMax | Kernel::SeparableMax | Kernel::Pairs(_)
            )
        } else {
            matches!(on_v3.kernel, Kernel::SmallPlanes(_))
        };
        if faster {
            *self = on_v3;
        }
    }

    /// This plan for one image in channels-first layout (`[1, C, spatial...]`) on the same level
    /// and the calling thread, with its own kernel: what `Kernel::ViaPlanes` runs.
    pub(crate) fn one_image_channels_first(&self) -> Self {
        let layout = Layout::ChannelsFirst;
        let mut input_shape = self.input_shape.clone();
        let mut output_shape = self.output_shape.clone();
        input_shape[0] = 1;
        output_shape[0] = 1;
        let mut image = Self {
            layout,
            input_strides: strides(layout, self.channels, &self.axes.map(|a| a.input)),
            output_strides: strides(layout, self.channels, &self.axes.map(|a| a.output)),
            input_shape,
            output_shape,
            batch: 1,
            input_len: self.input_len / self.batch,
            output_len: self.output_len / self.batch,
            parallel: false,
            forced_tasks: None,
            planes: None,
            ..self.clone()
        };
        image.select_kernel(self.isa);
        image
    }

    /// Runs on instruction-set level `isa` instead of the process default
    /// ([`Isa::default_for_process`]); an error if this CPU lacks it.
    pub fn with_isa(mut self, isa: Isa) -> Result<Self, PoolError> {
        if !isa.is_available() {
            return Err(PoolError::IsaUnavailable { isa: isa.name() });
        }
        self.select_kernel(isa);
        Ok(self)
    }

    /// Whether `run` may split the work over the current rayon pool (the default) or runs on
    /// the calling thread only. Results are bit-identical either way.
    pub fn with_parallel(mut self, parallel: bool) -> Self {
        self.parallel = parallel;
        self
    }

    /// Splits every run into `tasks` bands of output rows (at most one per row) on the current
    /// rayon pool, however small the run, so that tests and fuzz targets exercise band edges on
    /// tiny inputs. Results are the same.
    #[doc(hidden)]
    pub fn with_forced_tasks(mut self, tasks: usize) -> Self {
        self.forced_tasks = Some(tasks.max(1));
        self
    }

    /// Turns the separable max kernel off, so that the direct kernel runs (for benchmarks that
    /// compare the two). Results are the same.
    #[doc(hidden)]
    pub fn without_separable(mut self) -> Self {
        self.allow_separable = false;
        let isa = self.isa;
        self.select_kernel(isa);
        self
    }

    /// The instruction-set level the plan runs on.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The kernel the plan runs, with its level, e.g. `channels_last_max/v4`.
    pub fn kernel_name(&self) -> String {
        match (self.kernel, &self.planes) {
            (Kernel::Scalar, _) => "scalar".to_string(),
            (Kernel::ViaPlanes(_), Some(image)) => {
                format!("channels_last_via_{}", image.kernel_name())
            }
            (kernel, _) => format!(
                "{}/{}",
                kernel.name(),
                kernel.level(&self.axes[2], self.isa)
            ),
        }
    }

    /// Whether the window is the whole unpadded spatial extent (global pooling, or a sliding
    /// window that amounts to it).
    pub fn is_global(&self) -> bool {
        self.axes.iter().all(|a| {
            a.output == 1
                && a.kernel == a.input
                && a.dilation == 1
                && a.pad_begin == 0
                && a.pad_end == 0
        })
    }

    /// Pools `input` into `output`. Both are dense in the plan's layout and must have exactly
    /// [`Plan::input_len`] and [`Plan::output_len`] elements.
    pub fn run(&self, input: &[T], output: &mut [T]) -> Result<(), PoolError> {
        self.check_buffers(input, output)?;
        T::pool(self, input, output, None);
        Ok(())
    }

    /// Max pooling with argmax indices: `indices[i]` is the position of the element chosen for
    /// `output[i]` inside its own (n, c) input volume, `(d * H + h) * W + w` (PyTorch's
    /// convention, whatever the layout). For ONNX `MaxPool`'s whole-tensor index with
    /// `storage_order = 0`, add `(n * C + c) * D * H * W`; for `storage_order = 1` (column-major)
    /// the 2-D index is `w * H + h` plus the same offset.
    pub fn run_with_indices(
        &self,
        input: &[T],
        output: &mut [T],
        indices: &mut [i64],
    ) -> Result<(), PoolError> {
        if self.reduction != Reduction::Max {
            return Err(PoolError::IndicesUnsupported {
                op: self.op().name(),
            });
        }
        self.check_buffers(input, output)?;
        check_len("indices", self.output_len, indices.len())?;
        T::pool(self, input, output, Some(indices));
        Ok(())
    }

    /// Like [`Plan::run`], into a new buffer aligned to [`OUTPUT_ALIGN`] bytes.
    pub fn run_alloc(&self, input: &[T]) -> Result<AlignedVec<T>, PoolError> {
        check_len("input", self.input_len, input.len())?;
        let mut output = AlignedVec::from_iter(
            OUTPUT_ALIGN,
            std::iter::repeat_n(T::default(), self.output_len),
        );
        self.run(input, &mut output)?;
        Ok(output)
    }

    /// Like [`Plan::run_with_indices`], into new buffers (the output aligned to [`OUTPUT_ALIGN`]).
    pub fn run_alloc_with_indices(
        &self,
        input: &[T],
    ) -> Result<(AlignedVec<T>, Vec<i64>), PoolError> {
        check_len("input", self.input_len, input.len())?;
        let mut output = AlignedVec::from_iter(
            OUTPUT_ALIGN,
            std::iter::repeat_n(T::default(), self.output_len),
        );
        let mut indices = vec![0; self.output_len];
        self.run_with_indices(input, &mut output, &mut indices)?;
        Ok((output, indices))
    }

    fn check_buffers(&self, input: &[T], output: &[T]) -> Result<(), PoolError> {
        check_len("input", self.input_len, input.len())?;
        check_len("output", self.output_len, output.len())
    }

    /// The op, with the average options as given.
    pub fn op(&self) -> PoolOp {
        match self.reduction {
            Reduction::Max => PoolOp::Max,
            Reduction::Average { .. } => PoolOp::Average,
            Reduction::Lp { p } => PoolOp::Lp { p },
        }
    }

    /// Average pooling: whether padding taps count in the divisor (`false` for other ops).
    pub fn count_include_pad(&self) -> bool {
        matches!(
            self.reduction,
            Reduction::Average {
                count_include_pad: true,
                ..
            }
        )
    }

    /// Average pooling: the divisor override, if any.
    pub fn divisor_override(&self) -> Option<f32> {
        match self.reduction {
            Reduction::Average {
                divisor_override, ..
            } => divisor_override,
            _ => None,
        }
    }

    /// The memory layout of input and output.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// `[N, C, spatial...]` of the input.
    pub fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }

    /// `[N, C, spatial...]` of the output.
    pub fn output_shape(&self) -> &[usize] {
        &self.output_shape
    }

    /// Number of input elements.
    pub fn input_len(&self) -> usize {
        self.input_len
    }

    /// Number of output elements (and of indices).
    pub fn output_len(&self) -> usize {
        self.output_len
    }

    fn spatial(&self) -> &[Axis] {
        &self.axes[5 - self.input_shape.len()..]
    }

    /// Kernel per spatial axis (the input's spatial shape for global pooling).
    pub fn kernel(&self) -> Vec<usize> {
        self.spatial().iter().map(|a| a.kernel).collect()
    }

    /// Stride per spatial axis.
    pub fn strides(&self) -> Vec<usize> {
        self.spatial().iter().map(|a| a.stride).collect()
    }

    /// Dilation per spatial axis.
    pub fn dilations(&self) -> Vec<usize> {
        self.spatial().iter().map(|a| a.dilation).collect()
    }

    /// Effective padding before each spatial axis (resolved for `same` modes).
    pub fn pads_begin(&self) -> Vec<usize> {
        self.spatial().iter().map(|a| a.pad_begin).collect()
    }

    /// Effective padding after each spatial axis (resolved for `same` modes).
    pub fn pads_end(&self) -> Vec<usize> {
        self.spatial().iter().map(|a| a.pad_end).collect()
    }
}

fn check_len(argument: &'static str, expected: usize, got: usize) -> Result<(), PoolError> {
    if expected == got {
        Ok(())
    } else {
        Err(PoolError::BufferLength {
            argument,
            expected,
            got,
        })
    }
}

/// The product of `shape`, checked so that a buffer of that many `T` fits in `isize` bytes.
fn element_count<T>(shape: &[usize], what: &'static str) -> Result<usize, PoolError> {
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &x| acc.checked_mul(x))
        .ok_or(PoolError::Overflow { what })?;
    let bytes = count
        .checked_mul(std::mem::size_of::<T>())
        .ok_or(PoolError::Overflow { what })?;
    if bytes > isize::MAX as usize {
        return Err(PoolError::Overflow { what });
    }
    Ok(count)
}

fn resolve_reduction(desc: &PoolDesc) -> Result<Reduction, PoolError> {
    if desc.op != PoolOp::Average {
        let not_average = |argument| PoolError::NotApplicable {
            argument,
            reason: match desc.op {
                PoolOp::Max => "max pooling",
                _ => "lp pooling",
            },
        };
        if desc.count_include_pad.is_some() {
            return Err(not_average("count_include_pad"));
        }
        if desc.divisor_override.is_some() {
            return Err(not_average("divisor_override"));
        }
    }
    Ok(match desc.op {
        PoolOp::Max => Reduction::Max,
        PoolOp::Average => {
            if let Some(divisor) = desc.divisor_override {
                if !divisor.is_finite() || divisor == 0.0 {
                    return Err(PoolError::InvalidDivisor { divisor });
                }
            }
            Reduction::Average {
                count_include_pad: desc.count_include_pad.unwrap_or(false),
                divisor_override: desc.divisor_override,
            }
        }
        PoolOp::Lp { p } => {
            if !(p.is_finite() && p >= 1.0) {
                return Err(PoolError::InvalidP { p });
            }
            Reduction::Lp { p }
        }
    })
}

/// Validates the window against the spatial shape, one axis at a time.
fn spatial_axes(desc: &PoolDesc, spatial: &[usize]) -> Result<Vec<Axis>, PoolError> {
    let rank = spatial.len();
    let Some(kernel) = &desc.kernel else {
        let global = |argument| PoolError::NotApplicable {
            argument,
            reason: "a global window",
        };
        for (argument, given) in [
            ("strides", desc.strides.is_some()),
            ("dilations", desc.dilations.is_some()),
            ("padding", desc.padding.is_some()),
            ("ceil_mode", desc.ceil_mode.is_some()),
        ] {
            if given {
                return Err(global(argument));
            }
        }
        let full = |&input| Axis {
            kernel: input,
            input,
            ..Axis::UNIT
        };
        return Ok(spatial.iter().map(full).collect());
    };
    let per_axis = |argument: &'static str, values: &[usize]| {
        if values.len() == rank {
            Ok(())
        } else {
            Err(PoolError::RankMismatch {
                argument,
                expected: rank,
                got: values.len(),
            })
        }
    };
    per_axis("kernel", kernel)?;
    let strides = desc.strides.as_deref().unwrap_or(kernel);
    per_axis("strides", strides)?;
    let ones = vec![1; rank];
    let dilations = desc.dilations.as_deref().unwrap_or(&ones);
    per_axis("dilations", dilations)?;
    // No padding given: zero explicit pads, so that ceil mode applies (PyTorch's default).
    let padding = desc.padding.clone().unwrap_or(Padding::Explicit {
        begin: vec![0; rank],
        end: vec![0; rank],
    });
    let ceil_mode = desc.ceil_mode.unwrap_or(false);
    if let Padding::Explicit { begin, end } = &padding {
        per_axis("pads_begin", begin)?;
        per_axis("pads_end", end)?;
    }
    (0..rank)
        .map(|i| {
            let axis_padding = match &padding {
                Padding::Explicit { begin, end } => AxisPadding::Explicit {
                    begin: begin[i],
                    end: end[i],
                },
                Padding::Valid => AxisPadding::Valid,
                Padding::SameUpper => AxisPadding::SameUpper,
                Padding::SameLower => AxisPadding::SameLower,
            };
            Axis::new(
                i,
                spatial[i],
                kernel[i],
                strides[i],
                dilations[i],
                axis_padding,
                ceil_mode,
            )
        })
        .collect()
}

/// Element strides of (n, c, z, y, x) for a dense tensor of this layout.
fn strides(layout: Layout, c: usize, spatial: &[usize; 3]) -> [usize; 5] {
    let [d, h, w] = *spatial;
    match layout {
        Layout::ChannelsFirst => [c * d * h * w, d * h * w, h * w, w, 1],
        Layout::ChannelsLast => [d * h * w * c, 1, h * w * c, w * c, c],
    }
}
