//! Checks a password against an Argon2 PHC hash in memory that is kept and
//! reused: each check needs its `m` KiB (19 MiB by default), and allocating
//! that afresh per check let a burst of token requests leave the server holding
//! gigabytes (glibc keeps freed blocks per thread arena). The server runs a
//! bounded number of checks at once, so a bounded number of buffers exist.

use std::sync::Mutex;

use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;

/// Buffers kept for reuse at most; one per concurrent check is all that's needed.
const MAX_KEPT: usize = 16;

#[derive(Default)]
pub struct Verifier {
    kept: Mutex<Vec<Vec<Block>>>,
}

impl Verifier {
    /// Whether `password` hashes to `hash`; false for a hash that does not parse.
    pub fn verify(&self, hash: &str, password: &str) -> bool {
        let Ok(parsed) = argon2::PasswordHash::new(hash) else {
            return false;
        };
        let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
            return false;
        };
        let Ok(params) = Params::try_from(&parsed) else {
            return false;
        };
        let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
            return false;
        };
        let version = match parsed.version.map(Version::try_from).transpose() {
            Ok(v) => v.unwrap_or_default(),
            Err(_) => return false,
        };
        let blocks_needed = params.block_count();
        let argon = Argon2::new(algorithm, version, params);
        let mut memory = self.take();
        if memory.len() < blocks_needed {
            memory.resize(blocks_needed, Block::default());
        }
        let mut out = vec![0u8; expected.len()];
        let hashed = memory.get_mut(..blocks_needed).is_some_and(|blocks| {
            argon
                .hash_password_into_with_memory(
                    password.as_bytes(),
                    salt.as_ref(),
                    &mut out,
                    blocks,
                )
                .is_ok()
        });
        self.give_back(memory);
        hashed && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
    }

    fn take(&self) -> Vec<Block> {
        self.kept
            .lock()
            .ok()
            .and_then(|mut k| k.pop())
            .unwrap_or_default()
    }

    fn give_back(&self, memory: Vec<Block>) {
        if let Ok(mut kept) = self.kept.lock()
            && kept.len() < MAX_KEPT
        {
            kept.push(memory);
        }
    }

    #[cfg(test)]
    fn kept(&self) -> usize {
        self.kept.lock().map(|k| k.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordHasher;

    #[test]
    fn verifies_as_argon2_does_and_reuses_its_memory() {
        let hash = Argon2::default()
            .hash_password(b"right password")
            .unwrap()
            .to_string();
        let v = Verifier::default();
        assert!(v.verify(&hash, "right password"));
        assert!(!v.verify(&hash, "wrong password"));
        assert!(!v.verify(&hash, "right passwor"));
        assert!(!v.verify("not a hash", "right password"));
        assert_eq!(v.kept(), 1, "one buffer, reused");
        // Other parameters and algorithms, as `--hash-password` of another version might make.
        let params = Params::new(8, 1, 1, Some(32)).unwrap();
        let other = Argon2::new(Algorithm::Argon2i, Version::V0x10, params)
            .hash_password(b"pw")
            .unwrap()
            .to_string();
        assert!(v.verify(&other, "pw"));
        assert!(!v.verify(&other, "pW"));
        assert_eq!(v.kept(), 1);
    }
}
