//! `nnpool pool`: pools a float32 tensor stored in a .npy file with every parameter of the
//! library, and writes the result (and, for max, the indices) as .npy files.
//!
//! Nothing is written unless the whole run succeeds: each output goes to a temporary file in the
//! destination directory and is renamed into place at the end.

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use nnpool::{Layout, Padding, Plan, PoolDesc, PoolOp};
use npyz::WriterBuilder;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Op {
    Max,
    Avg,
    Lp,
    GlobalMax,
    GlobalAvg,
    GlobalLp,
}

impl Op {
    fn is_global(self) -> bool {
        matches!(self, Op::GlobalMax | Op::GlobalAvg | Op::GlobalLp)
    }

    fn is_max(self) -> bool {
        matches!(self, Op::Max | Op::GlobalMax)
    }

    fn is_lp(self) -> bool {
        matches!(self, Op::Lp | Op::GlobalLp)
    }

    fn name(self) -> &'static str {
        match self {
            Op::Max => "max",
            Op::Avg => "avg",
            Op::Lp => "lp",
            Op::GlobalMax => "global-max",
            Op::GlobalAvg => "global-avg",
            Op::GlobalLp => "global-lp",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PaddingMode {
    /// Keras/TF `same`, ONNX SAME_UPPER: the odd padding element at the end.
    Same,
    /// ONNX SAME_LOWER: the odd padding element at the begin.
    SameLower,
    /// No padding.
    Valid,
}

#[derive(Args, Debug)]
pub struct Options {
    /// The input tensor: a float32 .npy file in C order, shape [N, C, spatial...] (channels
    /// first) or [N, spatial..., C] (channels last), with 1 to 3 spatial axes.
    pub input: PathBuf,
    /// Where to write the pooled tensor (.npy, float32, same layout as the input).
    pub output: PathBuf,
    /// The reduction.
    #[arg(long, value_enum)]
    pub op: Op,
    /// The input's layout: channels-first (ncw, nchw, ncdhw) or channels-last (nwc, nhwc,
    /// ndhwc). The rank comes from the file; a name that implies a rank must match it.
    #[arg(long, default_value = "channels-first")]
    pub layout: String,
    /// Window size per spatial axis (required unless the op is global).
    #[arg(long, value_delimiter = ',')]
    pub kernel: Option<Vec<usize>>,
    /// Strides per spatial axis (default: the kernel size, as in PyTorch and Keras).
    #[arg(long, value_delimiter = ',')]
    pub stride: Option<Vec<usize>>,
    /// Dilations per spatial axis (default 1).
    #[arg(long, value_delimiter = ',')]
    pub dilation: Option<Vec<usize>>,
    /// Explicit padding, ONNX order: the begins of every spatial axis, then the ends.
    #[arg(long, value_delimiter = ',', conflicts_with = "padding")]
    pub pads: Option<Vec<usize>>,
    /// A padding mode instead of explicit pads.
    #[arg(long, value_enum)]
    pub padding: Option<PaddingMode>,
    /// Output sizes rounded up instead of down.
    #[arg(long)]
    pub ceil_mode: bool,
    /// Average: divide by the whole window, padding included.
    #[arg(long)]
    pub count_include_pad: bool,
    /// Average: divide every window by this number instead.
    #[arg(long)]
    pub divisor: Option<f32>,
    /// Lp: the exponent (default 2, as in ONNX).
    #[arg(long)]
    pub p: Option<f32>,
    /// Max: also write the argmax indices here (.npy, int64, the index within the input's
    /// (n, c) spatial plane, PyTorch's convention).
    #[arg(long)]
    pub indices: Option<PathBuf>,
}

pub fn run(options: &Options) -> Result<(), String> {
    check_op_arguments(options)?;
    let (shape, input) = read_input(&options.input)?;
    let layout = layout(&options.layout, shape.len())?;
    let plan_shape = to_plan_shape(&shape, layout);
    let plan = Plan::<f32>::new(&descriptor(options, shape.len() - 2)?, layout, &plan_shape)
        .map_err(|e| e.to_string())?;
    let mut output = vec![0.0f32; plan.output_len()];
    let mut indices = vec![0i64; plan.output_len()];
    if options.indices.is_some() {
        plan.run_with_indices(&input, &mut output, &mut indices)
    } else {
        plan.run(&input, &mut output)
    }
    .map_err(|e| e.to_string())?;
    let output_shape = from_plan_shape(plan.output_shape(), layout);
    let mut staged = vec![Staged::write(&options.output, &output_shape, &output)?];
    if let Some(path) = &options.indices {
        staged.push(Staged::write(path, &output_shape, &indices)?);
    }
    for file in staged {
        file.commit()?;
    }
    Ok(())
}

/// Options that only some ops take are errors on the others, never silently ignored.
fn check_op_arguments(o: &Options) -> Result<(), String> {
    let op = o.op;
    let refuse = |given: bool, flag: &str, who: &str| {
        if given {
            Err(format!(
                "--{flag} is not used by --op {}: it applies to {who}",
                op.name()
            ))
        } else {
            Ok(())
        }
    };
    refuse(o.p.is_some() && !op.is_lp(), "p", "lp and global-lp")?;
    refuse(
        o.indices.is_some() && !op.is_max(),
        "indices",
        "max and global-max",
    )?;
    refuse(o.divisor.is_some() && op != Op::Avg, "divisor", "avg")?;
    refuse(
        o.count_include_pad && op != Op::Avg,
        "count-include-pad",
        "avg",
    )?;
    let windowed = "max, avg and lp (global ops pool the whole plane)";
    refuse(o.kernel.is_some() && op.is_global(), "kernel", windowed)?;
    refuse(o.stride.is_some() && op.is_global(), "stride", windowed)?;
    refuse(o.dilation.is_some() && op.is_global(), "dilation", windowed)?;
    refuse(o.pads.is_some() && op.is_global(), "pads", windowed)?;
    refuse(o.padding.is_some() && op.is_global(), "padding", windowed)?;
    refuse(o.ceil_mode && op.is_global(), "ceil-mode", windowed)?;
    if o.kernel.is_none() && !op.is_global() {
        return Err(format!(
            "--op {} needs --kernel K[,K...] (one size per spatial axis)",
            op.name()
        ));
    }
    if let Some(path) = &o.indices {
        if path == &o.output {
            return Err("--indices must name another file than OUTPUT".to_string());
        }
    }
    Ok(())
}

fn descriptor(o: &Options, spatial: usize) -> Result<PoolDesc, String> {
    let p = o.p.unwrap_or(2.0);
    let Some(kernel) = &o.kernel else {
        return Ok(match o.op {
            Op::GlobalMax => PoolDesc::global_max(),
            Op::GlobalAvg => PoolDesc::global_average(),
            _ => PoolDesc::global_lp(p),
        });
    };
    let op = match o.op {
        Op::Max => PoolOp::Max,
        Op::Avg => PoolOp::Average,
        _ => PoolOp::Lp { p },
    };
    let mut desc = PoolDesc::new(op, kernel);
    if let Some(stride) = &o.stride {
        desc = desc.strides(stride);
    }
    if let Some(dilation) = &o.dilation {
        desc = desc.dilations(dilation);
    }
    if let Some(pads) = &o.pads {
        if pads.len() != 2 * spatial {
            return Err(format!(
                "--pads has {} values; the input has {spatial} spatial axes, so it needs {} \
                 (all begins, then all ends)",
                pads.len(),
                2 * spatial
            ));
        }
        let (begin, end) = pads.split_at(spatial);
        desc = desc.padding(Padding::explicit(begin, end));
    }
    if let Some(mode) = o.padding {
        desc = desc.padding(match mode {
            PaddingMode::Same => Padding::SameUpper,
            PaddingMode::SameLower => Padding::SameLower,
            PaddingMode::Valid => Padding::Valid,
        });
    }
    if o.ceil_mode {
        desc = desc.ceil_mode(true);
    }
    if o.count_include_pad {
        desc = desc.count_include_pad(true);
    }
    if let Some(divisor) = o.divisor {
        desc = desc.divisor_override(divisor);
    }
    Ok(desc)
}

/// The layout a `--layout` name asks for; names that imply a rank must match the file's.
fn layout(name: &str, rank: usize) -> Result<Layout, String> {
    let (layout, implied_rank) = match name.to_ascii_lowercase().as_str() {
        "channels-first" | "channels_first" | "ncx" => (Layout::ChannelsFirst, None),
        "channels-last" | "channels_last" | "nxc" => (Layout::ChannelsLast, None),
        "ncw" => (Layout::ChannelsFirst, Some(3)),
        "nchw" => (Layout::ChannelsFirst, Some(4)),
        "ncdhw" => (Layout::ChannelsFirst, Some(5)),
        "nwc" => (Layout::ChannelsLast, Some(3)),
        "nhwc" => (Layout::ChannelsLast, Some(4)),
        "ndhwc" => (Layout::ChannelsLast, Some(5)),
        _ => {
            return Err(format!(
                "--layout '{name}' is not a layout: use channels-first (ncw, nchw, ncdhw) or \
                 channels-last (nwc, nhwc, ndhwc)"
            ));
        }
    };
    match implied_rank {
        Some(r) if r != rank => Err(format!(
            "--layout {name} needs a rank-{r} tensor, but INPUT has rank {rank}"
        )),
        _ => Ok(layout),
    }
}

/// The library takes shapes as `[N, C, spatial...]` in both layouts.
fn to_plan_shape(shape: &[usize], layout: Layout) -> Vec<usize> {
    match layout {
        Layout::ChannelsFirst => shape.to_vec(),
        Layout::ChannelsLast => {
            let mut plan = vec![shape[0], shape[shape.len() - 1]];
            plan.extend_from_slice(&shape[1..shape.len() - 1]);
            plan
        }
    }
}

/// The file's shape for a plan shape: `[N, spatial..., C]` for channels-last.
fn from_plan_shape(shape: &[usize], layout: Layout) -> Vec<u64> {
    let mut file: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    if layout == Layout::ChannelsLast {
        let channels = file.remove(1);
        file.push(channels);
    }
    file
}

/// Reads a float32, C-order .npy file of rank 3 to 5.
fn read_input(path: &Path) -> Result<(Vec<usize>, Vec<f32>), String> {
    let shown = path.display();
    let file = File::open(path).map_err(|e| format!("cannot open INPUT '{shown}': {e}"))?;
    let file_len = file
        .metadata()
        .map_err(|e| format!("cannot read INPUT '{shown}': {e}"))?
        .len();
    let npy = npyz::NpyFile::new(BufReader::new(file))
        .map_err(|e| format!("INPUT '{shown}' is not a valid .npy file: {e}"))?;
    let dtype = match npy.dtype() {
        npyz::DType::Plain(type_str) => type_str.to_string(),
        other => other.descr(),
    };
    if dtype != "<f4" && dtype != ">f4" {
        return Err(format!(
            "INPUT '{shown}' has dtype '{dtype}'; nnpool pools float32 ('<f4'): convert it, \
             e.g. numpy's a.astype(np.float32)"
        ));
    }
    if npy.order() != npyz::Order::C {
        return Err(format!(
            "INPUT '{shown}' is stored in Fortran order; write it in C order \
             (numpy's np.ascontiguousarray)"
        ));
    }
    let shape: Vec<u64> = npy.shape().to_vec();
    if !(3..=5).contains(&shape.len()) {
        return Err(format!(
            "INPUT '{shown}' has shape {shape:?}: pooling needs rank 3 to 5, [N, C, spatial...] \
             or [N, spatial..., C]"
        ));
    }
    let elements = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n.checked_mul(4).is_some_and(|bytes| bytes <= file_len))
        .ok_or_else(|| {
            format!("INPUT '{shown}': its header's shape {shape:?} does not fit the file's {file_len} bytes")
        })?;
    let shape: Vec<usize> = shape
        .iter()
        .map(|&d| {
            usize::try_from(d).map_err(|_| format!("INPUT '{shown}': dimension {d} is too large"))
        })
        .collect::<Result<_, _>>()?;
    let data: Vec<f32> = npy
        .into_vec()
        .map_err(|e| format!("INPUT '{shown}': cannot read its data: {e}"))?;
    if data.len() as u64 != elements {
        return Err(format!(
            "INPUT '{shown}' holds {} elements, its shape {shape:?} says {elements}",
            data.len()
        ));
    }
    Ok((shape, data))
}

/// A complete .npy file written next to its destination, renamed into place by `commit`, removed
/// if never committed.
struct Staged {
    temporary: PathBuf,
    destination: PathBuf,
    committed: bool,
}

impl Staged {
    fn write<T: npyz::AutoSerialize>(
        destination: &Path,
        shape: &[u64],
        values: &[T],
    ) -> Result<Staged, String> {
        let shown = destination.display();
        let name = destination
            .file_name()
            .ok_or_else(|| format!("'{shown}' is not a file name"))?;
        let mut temporary_name = std::ffi::OsString::from(".");
        temporary_name.push(name);
        temporary_name.push(format!(".{}.tmp", std::process::id()));
        let staged = Staged {
            temporary: destination.with_file_name(temporary_name),
            destination: destination.to_path_buf(),
            committed: false,
        };
        let mut bytes = Vec::with_capacity(128 + std::mem::size_of_val(values));
        let mut writer = npyz::WriteOptions::new()
            .default_dtype()
            .shape(shape)
            .writer(&mut bytes)
            .begin_nd()
            .map_err(|e| format!("cannot encode '{shown}': {e}"))?;
        writer
            .extend(values.iter())
            .and_then(|()| writer.finish())
            .map_err(|e| format!("cannot encode '{shown}': {e}"))?;
        File::create(&staged.temporary)
            .and_then(|mut file| {
                file.write_all(&bytes)?;
                file.sync_all()
            })
            .map_err(|e| format!("cannot write '{shown}': {e}"))?;
        Ok(staged)
    }

    fn commit(mut self) -> Result<(), String> {
        std::fs::rename(&self.temporary, &self.destination)
            .map_err(|e| format!("cannot write '{}': {e}", self.destination.display()))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temporary);
        }
    }
}
