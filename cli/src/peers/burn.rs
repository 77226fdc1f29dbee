//! burn (burn-tensor on its pure-Rust CPU backend, `Device::flex()`): `module::max_pool2d` and
//! `module::avg_pool2d` on NCHW tensors with explicit padding; global average as
//! `adaptive_avg_pool2d` to 1x1. burn's pooling takes NCHW tensors only.

use burn_tensor::module::{adaptive_avg_pool2d, avg_pool2d, max_pool2d};
use burn_tensor::ops::{AvgPoolOptions, MaxPoolOptions};
use burn_tensor::{Device, Tensor, TensorData};
use nnpool::{Layout, PoolOp};

use super::{Prepared, Spec};

struct Call {
    spec: Spec,
    input: Tensor<4>,
    output: Option<Tensor<4>>,
}

pub fn prepare(spec: &Spec, input: &[f32]) -> Result<Box<dyn Prepared>, String> {
    if spec.layout == Layout::ChannelsLast {
        return Err("burn pools NCHW tensors only".into());
    }
    let device = Device::flex();
    let input = Tensor::<4>::from_data(TensorData::new(input.to_vec(), spec.shape), &device);
    Ok(Box::new(Call {
        spec: spec.clone(),
        input,
        output: None,
    }))
}

impl Prepared for Call {
    fn call(&mut self) -> Result<(), String> {
        let s = &self.spec;
        let padding = [
            (s.pad_begin[0], s.pad_end[0]),
            (s.pad_begin[1], s.pad_end[1]),
        ];
        let x = self.input.clone();
        self.output = Some(match (s.op, s.global) {
            (PoolOp::Max, _) => max_pool2d(
                x,
                MaxPoolOptions::new(s.kernel)
                    .with_stride(s.stride)
                    .with_padding_pairs(padding),
            ),
            (_, true) => adaptive_avg_pool2d(x, [1, 1]),
            (_, false) => {
                let mut options = AvgPoolOptions::new(s.kernel)
                    .with_stride(s.stride)
                    .with_padding_pairs(padding);
                options.count_include_pad = s.count_include_pad;
                avg_pool2d(x, options)
            }
        });
        Ok(())
    }

    fn output(&mut self) -> Result<Vec<f32>, String> {
        let output = self.output.clone().ok_or("no call yet")?;
        output
            .into_data()
            .try_into_vec::<f32>()
            .map_err(|e| format!("{e:?}"))
    }
}
