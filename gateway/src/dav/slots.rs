//! Requests of one user handled at once, bounded: one user's client (or a stolen app
//! password) with many connections cannot take every worker from the others. Beyond
//! the bound a request is answered 429 with Retry-After.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

/// Per-user request slots.
#[derive(Debug)]
pub struct UserSlots {
    users: Mutex<HashMap<Uuid, Arc<Semaphore>>>,
    per_user: usize,
}

/// Users tracked before idle entries are dropped.
const TIDY_AT: usize = 10_000;

impl UserSlots {
    /// `per_user` requests at once for each user.
    pub fn new(per_user: usize) -> Self {
        UserSlots {
            users: Mutex::default(),
            per_user: per_user.max(1),
        }
    }

    /// A slot for `user`, held until dropped; `None` when they have every slot.
    pub fn try_take(&self, user: Uuid) -> Option<OwnedSemaphorePermit> {
        let sem = {
            let mut users = self.users.lock().ok()?;
            if users.len() >= TIDY_AT {
                let full = self.per_user;
                users.retain(|_, s| s.available_permits() < full);
            }
            users
                .entry(user)
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_user)))
                .clone()
        };
        sem.try_acquire_owned().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_user_has_their_own_bound() {
        let slots = UserSlots::new(2);
        let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let a1 = slots.try_take(alice).unwrap();
        let _a2 = slots.try_take(alice).unwrap();
        assert!(slots.try_take(alice).is_none(), "alice has both");
        assert!(slots.try_take(bob).is_some(), "bob is not affected");
        drop(a1);
        assert!(slots.try_take(alice).is_some());
    }
}
