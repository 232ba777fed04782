//! Support for bypass's criterion benchmarks. The benchmark groups will live in `benches/`;
//! this crate holds nothing yet.

#![deny(missing_docs)]
