//! The channels-last kernel's sum rules (average, L1, L2) as a task type of their own module.
//!
//! rustc optimizes a task's instances in the codegen unit of the module that defines the task
//! type (see `isa::OnLevels`), whatever its rule. With every rule a `ChannelsLast`, the six
//! rules × four levels × two loop instances were one unit, the longest of the fuzz build (about
//! 17 of its 33 CPU minutes, on one core). Wrapping the sum rules here gives them a unit of
//! their own, built beside the max rules' on the other core. Nothing else differs: the wrapper
//! runs the same kernel.

use pulp::{Simd, WithSimd};

use super::channels_last::ChannelsLast;
use super::reduce::Reducer;

/// A [`ChannelsLast`] task whose instances are compiled in this module's codegen unit.
pub(crate) struct ChannelsLastSums<'a, R>(pub ChannelsLast<'a, R>);

impl<R: Reducer> WithSimd for ChannelsLastSums<'_, R> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        self.0.with_simd(simd)
    }
}
