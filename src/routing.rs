//! The routing table: which target receives an event, chosen by its cache and topic.
//!
//! Pure and checked once at start-up; no AWS types here. The first matching route wins, and an
//! event that matches none is dropped on purpose (the caller acknowledges it).

use serde::{Deserialize, Serialize};

use crate::arn::StateMachineArn;

/// Where an event is delivered. Serialises as in `ROUTES`: `{"event_bus": "..."}` or
/// `{"state_machine_arn": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    /// An EventBridge bus, by name or ARN.
    #[serde(rename = "event_bus")]
    EventBus(String),
    /// A Step Functions state machine, by ARN.
    #[serde(rename = "state_machine_arn")]
    StateMachine(String),
}

/// The kind of a target, named as in responses, logs and the `Target` metric dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::Display, strum::EnumIter)]
#[strum(serialize_all = "lowercase")]
pub enum TargetKind {
    EventBridge,
    StepFunctions,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl Target {
    pub fn kind(&self) -> TargetKind {
        match self {
            Self::EventBus(_) => TargetKind::EventBridge,
            Self::StateMachine(_) => TargetKind::StepFunctions,
        }
    }

    /// The bus name or ARN, or the state machine ARN.
    pub fn name(&self) -> &str {
        match self {
            Self::EventBus(name) | Self::StateMachine(name) => name,
        }
    }
}

/// A `*` glob over a cache or topic name. `*` matches any run of characters (including
/// none); every other character matches itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    source: String,
}

impl Pattern {
    pub fn new(source: impl Into<String>) -> Self {
        Self { source: source.into() }
    }

    /// The pattern as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    fn matches_everything(&self) -> bool {
        !self.source.is_empty() && self.source.bytes().all(|b| b == b'*')
    }

    pub fn matches(&self, name: &str) -> bool {
        let mut parts = self.source.split('*');
        // `split` yields at least one part; with no `*` it is the whole pattern.
        let first = parts.next().unwrap_or_default();
        let Some(mut rest) = name.strip_prefix(first) else {
            return false;
        };
        let mut parts: Vec<&str> = parts.collect();
        let Some(last) = parts.pop() else {
            return rest.is_empty(); // no `*`: exact match
        };
        // Middle pieces: leftmost match is optimal for `*`-only globs.
        for piece in parts {
            match rest.find(piece) {
                Some(at) => rest = &rest[at + piece.len()..],
                None => return false,
            }
        }
        rest.ends_with(last)
    }
}

/// One line of the routing table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub name: Option<String>,
    pub cache: Pattern,
    pub topic: Pattern,
    pub target: Target,
}

/// The routes in order. The first match wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingTable {
    routes: Vec<Route>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteSpec {
    name: Option<String>,
    #[serde(default = "star")]
    cache: String,
    #[serde(default = "star")]
    topic: String,
    target: TargetSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetSpec {
    event_bus: Option<String>,
    state_machine_arn: Option<String>,
}

fn star() -> String {
    "*".to_owned()
}

impl RoutingTable {
    /// Every event to one EventBridge bus: the behaviour without `ROUTES`.
    pub fn single(target: Target) -> Self {
        Self { routes: vec![Route { name: None, cache: Pattern::new("*"), topic: Pattern::new("*"), target }] }
    }

    /// Parses and checks a `ROUTES` JSON array; the error names the route by position (and name,
    /// when it has one).
    pub fn parse(json: &str) -> Result<Self, String> {
        // Parse as generic values first so one bad route is reported by its position.
        let values: Vec<serde_json::Value> =
            serde_json::from_str(json).map_err(|e| format!("it is not a JSON array of routes: {e}"))?;
        if values.is_empty() {
            return Err("it is not a JSON array of routes: the array is empty, so every event would be ignored; unset ROUTES to send everything to EVENT_BUS_NAME".to_owned());
        }
        let mut routes: Vec<Route> = Vec::with_capacity(values.len());
        for (i, value) in values.into_iter().enumerate() {
            let label = route_label(i, value.get("name").and_then(|n| n.as_str()));
            let fail = |problem: String| format!("route {label}: {problem}");
            let spec: RouteSpec = serde_json::from_value(value).map_err(|e| fail(e.to_string()))?;
            let target = match (spec.target.event_bus, spec.target.state_machine_arn) {
                (Some(bus), None) if !bus.trim().is_empty() => Target::EventBus(bus),
                (None, Some(arn)) if StateMachineArn::parse(&arn).is_some() => Target::StateMachine(arn),
                (None, Some(arn)) => {
                    return Err(fail(format!(
                        "state_machine_arn {arn:?} is not a state machine ARN (arn:<partition>:states:<region>:<account>:stateMachine:<name>[:<version or alias>])"
                    )));
                }
                (Some(_), None) => return Err(fail("event_bus is empty".to_owned())),
                _ => {
                    return Err(fail("target must have exactly one of `event_bus` or `state_machine_arn`".to_owned()));
                }
            };
            for (field, pattern) in [("cache", &spec.cache), ("topic", &spec.topic)] {
                if pattern.is_empty() {
                    return Err(fail(format!("{field} pattern is empty and can never match; use \"*\" for any")));
                }
            }
            let route =
                Route { name: spec.name, cache: Pattern::new(spec.cache), topic: Pattern::new(spec.topic), target };
            if let Some(earlier) =
                routes.iter().position(|r| r.cache.matches_everything() && r.topic.matches_everything())
            {
                return Err(fail(format!(
                    "it can never match, because route {} before it matches every cache and topic",
                    route_label(earlier, routes[earlier].name.as_deref())
                )));
            }
            routes.push(route);
        }
        Ok(Self { routes })
    }

    /// The target of the first route that matches, if any.
    pub fn route(&self, cache: &str, topic: &str) -> Option<&Target> {
        self.routes.iter().find(|r| r.cache.matches(cache) && r.topic.matches(topic)).map(|r| &r.target)
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }
}

fn route_label(index: usize, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("{} ({name:?})", index + 1),
        None => format!("{}", index + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_as_globs() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "anything", true),
            ("*", "", true),
            ("orders", "orders", true),
            ("orders", "orders2", false),
            ("orders", "order", false),
            ("checkout-*", "checkout-eu", true),
            ("checkout-*", "checkout-", true),
            ("checkout-*", "checkout", false),
            ("*-eu", "checkout-eu", true),
            ("*-eu", "checkout-us", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "a-b-b-c", true),
            ("a*b*c", "acb", false),
            ("ab*ba", "aba", false),
            ("ab*ba", "abba", true),
            ("**", "x", true),
            ("a**", "a", true),
            ("*.*", "a.b", true),
            ("*.*", "ab", false),
            ("caché-*", "caché-ü", true),
            ("?", "x", false),
            // Each middle piece must be consumed before the next is looked for.
            ("a*b*b*c", "abbc", true),
            ("a*b*b*c", "abc", false),
            ("x*ab*ab*y", "xaby", false),
            ("x*ab*ab*y", "xababy", true),
            ("*a*", "", false),
            ("*a*", "bab", true),
        ];
        for (pattern, name, expected) in cases {
            assert_eq!(Pattern::new(*pattern).matches(name), *expected, "{pattern:?} vs {name:?}");
        }
    }

    fn table() -> RoutingTable {
        RoutingTable::parse(
            r#"[
              {"name": "fulfil", "cache": "orders", "topic": "checkout-*",
               "target": {"state_machine_arn": "arn:aws:states:us-east-1:123456789012:stateMachine:fulfil"}},
              {"cache": "orders", "target": {"event_bus": "orders-bus"}},
              {"topic": "chat-*", "target": {"event_bus": "chat-bus"}}
            ]"#,
        )
        .unwrap()
    }

    #[test]
    fn first_matching_route_wins() {
        let t = table();
        let sfn = Target::StateMachine("arn:aws:states:us-east-1:123456789012:stateMachine:fulfil".into());
        let cases: &[(&str, &str, Option<Target>)] = &[
            ("orders", "checkout-1", Some(sfn.clone())),
            ("orders", "refunds", Some(Target::EventBus("orders-bus".into()))),
            ("orders", "chat-x", Some(Target::EventBus("orders-bus".into()))),
            ("lobby", "chat-x", Some(Target::EventBus("chat-bus".into()))),
            ("lobby", "metrics", None),
        ];
        for (cache, topic, expected) in cases {
            assert_eq!(t.route(cache, topic), expected.as_ref(), "{cache}/{topic}");
        }
    }

    #[test]
    fn the_single_table_routes_everything() {
        let t = RoutingTable::single(Target::EventBus("default".into()));
        assert_eq!(t.route("any", "thing"), Some(&Target::EventBus("default".into())));
    }

    #[test]
    fn invalid_tables_name_the_route_and_the_problem() {
        let arn = "arn:aws:states:us-east-1:123456789012:stateMachine:m";
        let cases: &[(String, &str)] = &[
            ("{}".into(), "not a JSON array"),
            ("[]".into(), "empty"),
            (r#"[{"target": {"event_bus": "b"}}, {"cache": "x"}]"#.into(), "route 2: missing field `target`"),
            (r#"[{"name": "n", "target": {}}]"#.into(), "route 1 (\"n\"): target must have exactly one"),
            (format!(r#"[{{"target": {{"event_bus": "b", "state_machine_arn": "{arn}"}}}}]"#), "exactly one"),
            (r#"[{"target": {"state_machine_arn": "fulfil"}}]"#.into(), "not a state machine ARN"),
            (
                r#"[{"target": {"state_machine_arn": "arn::states:r:1:stateMachine:m"}}]"#.into(),
                "not a state machine ARN",
            ),
            (
                r#"[{"target": {"state_machine_arn": "arn:aws:states::1:stateMachine:m"}}]"#.into(),
                "not a state machine ARN",
            ),
            (
                r#"[{"target": {"state_machine_arn": "arn:aws:states:r::stateMachine:m"}}]"#.into(),
                "not a state machine ARN",
            ),
            (
                r#"[{"target": {"state_machine_arn": "arn:aws:states:r:1:stateMachine:"}}]"#.into(),
                "not a state machine ARN",
            ),
            (
                r#"[{"target": {"state_machine_arn": "arn:aws:lambda:r:1:stateMachine:m"}}]"#.into(),
                "not a state machine ARN",
            ),
            (
                r#"[{"target": {"state_machine_arn": "arn:aws:states:r:1:activity:m"}}]"#.into(),
                "not a state machine ARN",
            ),
            (r#"[{"target": {"event_bus": " "}}]"#.into(), "event_bus is empty"),
            (r#"[{"topic": "", "target": {"event_bus": "b"}}]"#.into(), "topic pattern is empty"),
            (r#"[{"cach": "x", "target": {"event_bus": "b"}}]"#.into(), "unknown field `cach`"),
            (
                r#"[{"target": {"event_bus": "b"}}, {"name": "late", "cache": "x", "target": {"event_bus": "c"}}]"#
                    .into(),
                "route 2 (\"late\"): it can never match, because route 1",
            ),
        ];
        for (json, expected) in cases {
            let err = RoutingTable::parse(json).unwrap_err().to_string();
            assert!(err.contains(expected), "{json}\n  gave: {err}\n  wanted: {expected}");
        }
    }

    #[test]
    fn a_target_names_its_bus_or_state_machine() {
        let arn = "arn:aws:states:us-east-1:123456789012:stateMachine:m";
        assert_eq!(Target::EventBus("orders-bus".into()).name(), "orders-bus");
        assert_eq!(Target::StateMachine(arn.into()).name(), arn);
        assert_eq!(Target::StateMachine(arn.into()).kind().as_str(), "stepfunctions");
        assert_eq!(Target::EventBus("b".into()).kind().as_str(), "eventbridge");
    }

    #[test]
    fn targets_serialise_in_the_routes_shape() {
        let bus = serde_json::to_string(&Target::EventBus("b".into())).unwrap();
        assert_eq!(bus, r#"{"event_bus":"b"}"#);
        let arn = "arn:aws:states:us-east-1:1:stateMachine:m";
        let sfn: Target = serde_json::from_str(&format!(r#"{{"state_machine_arn":"{arn}"}}"#)).unwrap();
        assert_eq!(sfn, Target::StateMachine(arn.into()));
    }
}
