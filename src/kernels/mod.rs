//! The inner loops behind a plan. Each kernel sees validated geometry and checked buffer
//! lengths; it writes every output element exactly once.

pub(crate) mod scalar;
