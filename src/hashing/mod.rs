//! Password hashing machinery: argon2 computed by the implementation the
//! operator chose, in memory that goes back to the system, on the blocking
//! pool at the idle scheduling class, admitted by expected wait. No rules
//! live here and nothing here imports the domain: what to hash, what a
//! stored hash may cost and when to rehash are the domain's
//! (`domain::PasswordHasher`).

mod admission;
mod engine;
mod error;
mod implementation;
mod pool;

pub use admission::HashTicket;
pub use engine::{ARGON2_MEMORY_LINGER, Argon2Engine};
pub use error::HashError;
pub use implementation::{Argon2Hasher, Argon2Implementation};
pub use pool::HashPool;
