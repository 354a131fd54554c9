//! The other side of a federation, emulated: a Cisco Expressway-E as a TLS SIP client (calls into the Edge) and
//! as a TLS SIP server (answers the Edge's outbound calls). Tests, scenarios and the load generator use these.

pub mod client;
pub mod server;
pub mod strict;
