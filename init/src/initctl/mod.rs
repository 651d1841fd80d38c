//! `initctl`, the control channel of PID 1: the [`protocol`] both ends
//! speak, the [`client`] face of the binary and the [`server`] inside PID 1.
pub mod client;
pub mod protocol;
pub mod server;
