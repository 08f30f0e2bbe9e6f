//! Consecutive items grouped into calls within a service's limits on the items and the bytes one
//! call may carry (EventBridge's `PutEvents`, SQS's `SendMessageBatch`).

use std::ops::Range;

/// Items of these `sizes`, in order, grouped into ranges of at most `max_items` items and
/// `max_bytes` bytes each; an item larger than `max_bytes` goes alone (for the service to refuse
/// on its own).
pub fn consecutive(sizes: impl IntoIterator<Item = usize>, max_items: usize, max_bytes: usize) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let (mut start, mut bytes, mut end) = (0, 0, 0);
    for (index, size) in sizes.into_iter().enumerate() {
        if index > start && (index - start == max_items || bytes + size > max_bytes) {
            ranges.push(start..index);
            (start, bytes) = (index, 0);
        }
        bytes += size;
        end = index + 1;
    }
    if start < end {
        ranges.push(start..end);
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_hold_at_most_the_items_and_bytes_allowed_in_order() {
        assert_eq!(consecutive([1; 23], 10, 100), [0..10, 10..20, 20..23]);
        assert_eq!(consecutive([1; 10], 10, 100), vec![Range { start: 0, end: 10 }]);
        assert!(consecutive([], 10, 100).is_empty());
        // Exactly the bytes allowed fit; one more does not.
        assert_eq!(consecutive([40, 60, 1, 99, 2], 10, 100), [0..2, 2..4, 4..5]);
        // Larger than a call may be: alone.
        assert_eq!(consecutive([1, 300, 1], 10, 100), [0..1, 1..2, 2..3]);
        assert_eq!(consecutive([300, 1], 10, 100), [0..1, 1..2], "no empty range before a large first item");
    }
}
