//! firn: keep a directory tree backed up, file by file, in cold storage.
//!
//! The flow (see DESIGN.md): `config` → `scan` → `status` (against `catalog`, with
//! the fingerprint cache in `state`) → `engine` (uploads to `store`, records in
//! `catalog`, typed progress events) → front ends (`cli`).

pub mod aws;
pub mod backend;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod cost;
pub mod description;
pub mod engine;
pub mod fmt;
pub mod hash;
pub mod lock;
pub mod model;
pub mod pathkey;
pub mod provision;
pub mod scan;
pub mod state;
pub mod status;
pub mod store;
pub mod tui;
