//! The lab tools around the Edge: the emulated Expressway-E (`peer`), the load generator (`load`) and the
//! scenario runner (`scenario`).

pub mod load;
pub mod peer;
pub mod scenario;
