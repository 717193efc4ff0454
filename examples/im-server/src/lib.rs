//! # im-server
//!
//! The application around the imspec runtime: configuration ([`config`]), the embedded
//! pre-defined group store ([`groups`]) and the invitee router with its REGISTER location
//! table ([`router`]). The binary (`src/main.rs`) parses flags, loads these and starts the
//! runtime.

pub mod app;
pub mod config;
pub mod groups;
pub mod metrics;
pub mod offline;
pub mod router;
pub mod store;
pub mod uri;
pub mod users;
pub mod xcap;
