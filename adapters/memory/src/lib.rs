//! Gatehouse in-process adapters for the single-process embedded mode: the
//! token denylist ([`MemoryDenylist`]) kept in this process's memory instead
//! of Redis. It implements the same `Denylist` contract as `gatehouse-redis`
//! (the shared contract suite in that crate's tests runs against both).

mod denylist;

pub use denylist::MemoryDenylist;
