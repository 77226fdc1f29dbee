//! tract (tract-core): a one-node typed model (`MaxPool` or `SumPool` with `normalize`), optimized
//! and made runnable once; each call runs the plan. Both layouts (tract's `DataFormat`), explicit
//! padding; global average as a whole-plane window.

use nnpool::{Layout, PoolOp};
use tract_core::internal::*;
use tract_core::ops::cnn::{MaxPool, PaddingSpec, PoolSpec, SumPool};
use tract_core::ops::nn::DataFormat;
use tract_core::plan::SimplePlan;

use super::{Prepared, Spec};

struct Call {
    plan: Arc<TypedSimplePlan>,
    input: TValue,
    output: Option<TValue>,
}

fn build(spec: &Spec) -> TractResult<Arc<TypedSimplePlan>> {
    let shape = spec.memory_shape();
    let mut model = TypedModel::default();
    let source = model.add_source("x", f32::fact(shape))?;
    let pool_spec = PoolSpec {
        data_format: match spec.layout {
            Layout::ChannelsFirst => DataFormat::NCHW,
            Layout::ChannelsLast => DataFormat::NHWC,
        },
        kernel_shape: spec.kernel.iter().copied().collect(),
        padding: PaddingSpec::Explicit(
            spec.pad_begin.iter().copied().collect(),
            spec.pad_end.iter().copied().collect(),
        ),
        dilations: None,
        strides: Some(spec.stride.iter().copied().collect()),
        input_channels: spec.shape[1],
        output_channels: spec.shape[1],
    };
    let output = if spec.op == PoolOp::Max {
        model.wire_node(
            "pool",
            MaxPool {
                pool_spec,
                with_index_outputs: None,
            },
            &[source],
        )?
    } else {
        model.wire_node(
            "pool",
            SumPool {
                pool_spec,
                count_include_pad: spec.count_include_pad,
                normalize: true,
            },
            &[source],
        )?
    };
    model.select_output_outlets(&output)?;
    SimplePlan::new(model.into_optimized()?)
}

pub fn prepare(spec: &Spec, input: &[f32]) -> Result<Box<dyn Prepared>, String> {
    let plan = build(spec).map_err(|e| format!("{e:#}"))?;
    let input = Tensor::from_shape(&spec.memory_shape(), input)
        .map_err(|e| format!("{e:#}"))?
        .into_tvalue();
    Ok(Box::new(Call {
        plan,
        input,
        output: None,
    }))
}

impl Prepared for Call {
    fn call(&mut self) -> Result<(), String> {
        let mut outputs = self
            .plan
            .run(tvec![self.input.clone()])
            .map_err(|e| format!("{e:#}"))?;
        self.output = outputs.pop();
        Ok(())
    }

    fn output(&mut self) -> Result<Vec<f32>, String> {
        let output = self.output.as_ref().ok_or("no call yet")?;
        output
            .to_plain_array_view::<f32>()
            .map(|view| view.iter().copied().collect())
            .map_err(|e| format!("{e:#}"))
    }
}
