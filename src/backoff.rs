//! The one back-off of every retry here: a pause that doubles after each failure in a row, up to
//! a ceiling, and starts again from the first after a success.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    ceiling: Duration,
    next: Duration,
}

impl Backoff {
    pub const fn new(first: Duration, ceiling: Duration) -> Self {
        Self { first, ceiling, next: first }
    }

    /// The pause before the next try, without taking it.
    pub fn peek(&self) -> Duration {
        self.next
    }

    /// The pause before the next try; the one after it is twice as long, up to the ceiling.
    pub fn pause(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(self.ceiling);
        pause
    }

    /// After a success: the next failure pauses for the first pause again.
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_ceiling_and_start_again_after_a_success() {
        let ms = Duration::from_millis;
        let mut backoff = Backoff::new(ms(50), ms(300));
        assert_eq!(backoff.peek(), ms(50));
        let pauses: Vec<Duration> = (0..5).map(|_| backoff.pause()).collect();
        assert_eq!(pauses, [ms(50), ms(100), ms(200), ms(300), ms(300)]);
        backoff.reset();
        assert_eq!(backoff.pause(), ms(50));
    }
}
