//! Upstox: the API client tokenwatch uses ([`client`]) and the embedded simulator that
//! reproduces the API's shapes for tests ([`sim`]).

pub mod client;
pub mod sim;
