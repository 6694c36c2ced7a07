//! Getting a new token from Upstox: the OAuth login with its loopback callback ([`oauth`],
//! [`callback`], [`browser`], [`login`]) and the v3 token request's notifier webhook
//! ([`notifier`]).

pub mod browser;
pub mod callback;
pub mod login;
pub mod notifier;
pub mod oauth;
