//! Do the stack's alarms reach anyone? The SNS topics they notify (the stack's `AlarmTopics`
//! output) and who has confirmed a subscription to them. An email subscription stays "pending
//! confirmation" until someone clicks the link AWS sent when the stack was created; SNS deletes
//! it unconfirmed after 48 hours, and a redeploy never sends another. Momento never retries, so
//! an alarm nobody gets is an event lost without anyone knowing.

use aws_config::SdkConfig;
use aws_sdk_sns::types::Subscription;

/// The stack output that lists the alarm topics, comma-separated.
pub const OUTPUT: &str = "AlarmTopics";

/// What SNS lists in place of a subscription's ARN until it is confirmed.
const PENDING: &str = "PendingConfirmation";

/// Who a topic reaches.
#[derive(Debug, Default, PartialEq, Eq)]
struct Reach {
    /// `protocol endpoint` of each confirmed subscription.
    confirmed: Vec<String>,
    /// Email addresses (or other endpoints) still to confirm.
    pending: Vec<String>,
}

fn reach(subscriptions: &[Subscription]) -> Reach {
    let mut reach = Reach::default();
    for subscription in subscriptions {
        let endpoint = subscription.endpoint().unwrap_or("?").to_owned();
        match subscription.subscription_arn() {
            Some(arn) if arn.starts_with("arn:") => {
                reach.confirmed.push(format!("{} {endpoint}", subscription.protocol().unwrap_or("?")));
            }
            Some(PENDING) => reach.pending.push(endpoint),
            // "Deleted" (an unsubscribe on its way) or nothing: reaches nobody.
            _ => {}
        }
    }
    reach
}

/// What to tell the operator about `topic`, whose subscriptions are `listed` (or could not be
/// read), with what to do when it reaches nobody.
fn words(topic: &str, listed: Result<Reach, String>) -> String {
    let subscribe = |endpoint: &str| {
        format!("aws sns subscribe --topic-arn {topic} --protocol email --notification-endpoint {endpoint}")
    };
    match listed {
        Err(error) => format!("ALARMS: could not check who topic {topic} reaches ({error})."),
        Ok(reach) if !reach.confirmed.is_empty() => {
            let mut text = format!("ALARMS reach {} (topic {topic}).", reach.confirmed.join(", "));
            if !reach.pending.is_empty() {
                text.push_str(&format!(" Not yet confirmed: {}.", reach.pending.join(", ")));
            }
            text
        }
        Ok(reach) if !reach.pending.is_empty() => format!(
            "ALARMS REACH NOBODY YET: the subscription of {} to topic {topic} is pending confirmation. Click the link in \
             the email AWS sent when the stack was created; SNS deletes an unconfirmed subscription after 48 hours, and \
             a redeploy does not send another. For a new email: {}",
            reach.pending.join(", "),
            subscribe(&reach.pending[0])
        ),
        Ok(_) => format!(
            "ALARMS REACH NOBODY: topic {topic} has no subscription, so an alarm (lost events, a secret out of step) \
             tells no one. Subscribe, then confirm the email: {}",
            subscribe("you@example.com")
        ),
    }
}

/// One line per alarm topic in `topics` (the `AlarmTopics` output), each saying who it reaches
/// and what to do when that is nobody.
pub async fn report(sdk: &SdkConfig, topics: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for topic in topics.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let region = topic.split(':').nth(3).filter(|r| !r.is_empty()).map(|r| aws_config::Region::new(r.to_owned()));
        let sns = aws_sdk_sns::Client::from_conf(aws_sdk_sns::config::Builder::from(sdk).region(region).build());
        let mut subscriptions = Vec::new();
        let mut next = None;
        let listed = loop {
            match sns.list_subscriptions_by_topic().topic_arn(topic).set_next_token(next).send().await {
                Ok(page) => {
                    subscriptions.extend_from_slice(page.subscriptions());
                    match page.next_token() {
                        Some(token) => next = Some(token.to_owned()),
                        None => break Ok(reach(&subscriptions)),
                    }
                }
                Err(error) => break Err(crate::aws::error_text(&error)),
            }
        };
        lines.push(words(topic, listed));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:alarms";

    fn subscription(arn: &str, endpoint: &str) -> Subscription {
        Subscription::builder().subscription_arn(arn).protocol("email").endpoint(endpoint).build()
    }

    #[test]
    fn a_confirmed_subscription_reaches_someone() {
        let listed = reach(&[
            subscription(&format!("{TOPIC}:0b6c"), "ops@example.com"),
            subscription(PENDING, "late@example.com"),
        ]);
        assert_eq!(listed.confirmed, ["email ops@example.com"]);
        let text = words(TOPIC, Ok(listed));
        assert!(text.starts_with("ALARMS reach email ops@example.com") && text.contains("late@example.com"), "{text}");
    }

    #[test]
    fn an_unconfirmed_email_is_named_with_what_to_do() {
        let text = words(TOPIC, Ok(reach(&[subscription(PENDING, "ops@example.com")])));
        assert!(text.starts_with("ALARMS REACH NOBODY YET"), "{text}");
        assert!(text.contains("48 hours") && text.contains("--notification-endpoint ops@example.com"), "{text}");
        assert!(text.contains(&format!("--topic-arn {TOPIC}")), "{text}");
    }

    #[test]
    fn no_subscription_or_a_deleted_one_reaches_nobody() {
        for subscriptions in [vec![], vec![subscription("Deleted", "gone@example.com")]] {
            let text = words(TOPIC, Ok(reach(&subscriptions)));
            assert!(text.starts_with("ALARMS REACH NOBODY:") && text.contains("aws sns subscribe"), "{text}");
        }
    }

    #[test]
    fn a_topic_that_cannot_be_read_is_said_so() {
        let text = words(TOPIC, Err("AuthorizationError: denied".into()));
        assert!(text.contains("could not check") && text.contains("AuthorizationError"), "{text}");
    }
}
