//! Element types a plan can run on. Only `f32` today; the trait is sealed so that f64, f16,
//! bf16, i8 and u8 can be added later without breaking anyone.

use crate::Plan;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
}

/// An element type the kernels support (only `f32` today).
pub trait Element: sealed::Sealed + Copy + Default + Send + Sync + 'static {
    /// Runs the plan's kernel; buffer lengths were checked by the caller.
    #[doc(hidden)]
    fn pool(plan: &Plan<Self>, input: &[Self], output: &mut [Self], indices: Option<&mut [i64]>);

    /// Chooses the kernel a plan of this element type runs on its level.
    #[doc(hidden)]
    fn select_kernel(plan: &mut Plan<Self>);
}

impl Element for f32 {
    fn pool(plan: &Plan<f32>, input: &[f32], output: &mut [f32], indices: Option<&mut [i64]>) {
        crate::parallel::run(plan, input, output, indices);
    }

    fn select_kernel(plan: &mut Plan<f32>) {
        use crate::kernels::{Kernel, via_planes};
        let lanes = plan.isa().lanes();
        plan.kernel = Kernel::choose(plan, lanes);
        plan.planes = None;
        if let Some(rule) = via_planes::applies(plan, lanes) {
            let image = plan.one_image_channels_first();
            if image.kernel != Kernel::Scalar {
                plan.kernel = Kernel::ViaPlanes(rule);
                plan.planes = Some(Box::new(image));
            }
        }
    }
}
