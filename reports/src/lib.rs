//! Reports on bypass's measurements. This crate is where the charts, tables and backend
//! recommendations will be computed from `bypass compare` and criterion results; it holds
//! nothing yet.

#![deny(missing_docs)]
