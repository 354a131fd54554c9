//! The lab tools around the Edge: the emulated Expressway-E (`peer`), the load generator (`load`), the
//! scenario runner (`scenario`), and the one lab builder they, the tests and the load harness share
//! (`builder`).

pub mod builder;
pub mod load;
pub mod peer;
pub mod scenario;
