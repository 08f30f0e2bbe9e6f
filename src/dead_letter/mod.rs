//! The dead-letter queue: where a verified event goes when its target would not take it, so
//! that nothing authentic is lost. The message format and the port are in `letter.rs`; the SQS
//! adapter is [`SqsDeadLetterQueue`].

mod letter;
mod sqs;

pub use letter::{DEAD_LETTER_VERSION, DeadLetter, DeadLetterQueue, FailureReason, dedup_key};
pub use sqs::{SqsDeadLetterQueue, queue_counts};
