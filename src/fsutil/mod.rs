//! The two file-system mechanisms every module that writes shares, so no copy
//! can drift from the others: replacing a file atomically and durably
//! ([`atomic`]) and holding a lock file, shared or exclusive, with a bounded
//! wait that names the holder ([`lock`]).

pub mod atomic;
pub mod lock;

pub use atomic::{AtomicWrite, commit, commit_remaking_dir, sync_dir};
pub use lock::{Access, Busy, Held, LockFile, Wait, written_line};
