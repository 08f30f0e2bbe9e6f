//! What a bridge process may hold of messages, all topics together ([`BRIDGE_HELD_BYTES`]): an
//! item read from a subscription holds its weight in the budget until it has been handled or let
//! go. Not the only memory the process uses (the runtime, the clients, the events built for a
//! call in flight), but the only part that grows with how busy the topics are.
//!
//! [`BRIDGE_HELD_BYTES`]: crate::bounds::BRIDGE_HELD_BYTES

use tokio::sync::{Semaphore, SemaphorePermit};

use super::topic::{Item, Payload};

/// What an item costs beyond its payload and publisher id: its struct, the deque slot, the
/// allocator's rounding.
const ITEM_OVERHEAD: usize = 128;

/// The budget: one permit a byte.
pub(super) struct Budget {
    bytes: Semaphore,
    total: u32,
}

/// An item and its share of the budget, given back when it is dropped.
pub(super) struct Held<'a> {
    pub item: Item,
    _share: Option<SemaphorePermit<'a>>,
}

impl Budget {
    pub fn new(bytes: usize) -> Self {
        let total =
            u32::try_from(bytes).unwrap_or(u32::MAX).min(u32::try_from(Semaphore::MAX_PERMITS).unwrap_or(u32::MAX));
        Self { bytes: Semaphore::new(total as usize), total }
    }

    /// What `item` weighs, never more than the whole budget (so it can always be held alone).
    fn weight(&self, item: &Item) -> u32 {
        let payload = match &item.payload {
            Payload::Text(text) => text.len(),
            Payload::Binary(bytes) => bytes.len(),
        };
        let bytes = payload + item.publisher_id.len() + ITEM_OVERHEAD;
        u32::try_from(bytes).unwrap_or(u32::MAX).min(self.total)
    }

    /// Holds `item`, waiting until the budget has room for it (an owner's reading: Momento holds
    /// what is not read meanwhile).
    pub async fn hold(&self, item: Item) -> Held<'_> {
        // The semaphore is never closed, so acquiring only ever waits.
        let share = self.bytes.acquire_many(self.weight(&item)).await.ok();
        Held { item, _share: share }
    }

    /// Holds `item` if the budget has room for it now; gives it back otherwise.
    pub fn try_hold(&self, item: Item) -> Result<Held<'_>, Item> {
        match self.bytes.try_acquire_many(self.weight(&item)) {
            Ok(share) => Ok(Held { item, _share: Some(share) }),
            Err(_) => Err(item),
        }
    }

    /// Holds `item` whether or not the budget has room: one item over, where waiting could
    /// never end (what would free the budget waits on this item).
    pub fn hold_anyway(&self, item: Item) -> Held<'_> {
        self.try_hold(item).unwrap_or_else(|item| Held { item, _share: None })
    }

    /// Bytes free now.
    #[cfg(test)]
    pub fn free(&self) -> usize {
        self.bytes.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::Position;

    fn item(bytes: usize) -> Item {
        Item {
            position: Position { page: 1, sequence: 1 },
            publisher_id: "p".into(),
            payload: Payload::Binary(vec![0; bytes]),
        }
    }

    #[tokio::test]
    async fn an_item_holds_its_weight_until_dropped_and_never_more_than_the_whole_budget() {
        let budget = Budget::new(10_000);
        let held = budget.hold(item(1_000)).await;
        assert_eq!(budget.free(), 10_000 - 1_000 - 1 - ITEM_OVERHEAD);
        assert!(budget.try_hold(item(9_000)).is_err(), "no room");
        drop(held);
        assert_eq!(budget.free(), 10_000);
        let huge = budget.try_hold(item(50_000)).expect("an item larger than the budget is held alone");
        assert_eq!(budget.free(), 0);
        let over = budget.hold_anyway(item(10));
        assert_eq!(budget.free(), 0, "held over the budget");
        drop((huge, over));
        assert_eq!(budget.free(), 10_000);
    }
}
