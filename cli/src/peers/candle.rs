//! candle (candle-core, CPU device): `max_pool2d_with_stride` / `avg_pool2d_with_stride` on NCHW
//! tensors; global pooling as a mean or max over the flattened plane. candle has no padding
//! argument and no channels-last pooling.

use candle_core::{Device, Tensor};
use nnpool::{Layout, PoolOp};

use super::{Prepared, Spec};

struct Call {
    spec: Spec,
    input: Tensor,
    output: Option<Tensor>,
}

pub fn prepare(spec: &Spec, input: &[f32]) -> Result<Box<dyn Prepared>, String> {
    if spec.layout == Layout::ChannelsLast {
        return Err("candle pools NCHW tensors only".into());
    }
    if spec.padded() {
        return Err("candle's pooling has no padding argument".into());
    }
    let input = Tensor::from_slice(input, spec.shape.as_slice(), &Device::Cpu)
        .map_err(|e| e.to_string())?;
    Ok(Box::new(Call {
        spec: spec.clone(),
        input,
        output: None,
    }))
}

impl Prepared for Call {
    fn call(&mut self) -> Result<(), String> {
        let s = &self.spec;
        let window = (s.kernel[0], s.kernel[1]);
        let stride = (s.stride[0], s.stride[1]);
        let result = match (s.op, s.global) {
            (PoolOp::Max, false) => self.input.max_pool2d_with_stride(window, stride),
            (_, false) => self.input.avg_pool2d_with_stride(window, stride),
            (PoolOp::Max, true) => self.input.flatten_from(2).and_then(|t| t.max_keepdim(2)),
            (_, true) => self.input.flatten_from(2).and_then(|t| t.mean_keepdim(2)),
        };
        self.output = Some(result.map_err(|e| e.to_string())?);
        Ok(())
    }

    fn output(&mut self) -> Result<Vec<f32>, String> {
        let output = self.output.as_ref().ok_or("no call yet")?;
        output
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| e.to_string())
    }
}
