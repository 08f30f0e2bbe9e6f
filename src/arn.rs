//! Amazon Resource Names: the parts the function reads from the ARNs it is configured with (the
//! region to call, whether an ARN names a state machine, a version or an alias of one).
//!
//! Not a validator of every service's resource syntax; AWS refuses what it does not know.

/// `arn:<partition>:<service>:<region>:<account>:<resource>`, borrowed from the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arn<'a> {
    pub partition: &'a str,
    pub service: &'a str,
    /// Empty for global services.
    pub region: &'a str,
    pub account: &'a str,
    /// The rest, colons included (`stateMachine:name`, `secret:name-AbCdEf`).
    pub resource: &'a str,
}

impl<'a> Arn<'a> {
    pub fn parse(text: &'a str) -> Option<Self> {
        let mut parts = text.splitn(6, ':');
        let mut next = || parts.next();
        let (prefix, partition, service, region, account, resource) =
            (next()?, next()?, next()?, next()?, next()?, next()?);
        (prefix == "arn" && !partition.is_empty() && !service.is_empty() && !resource.is_empty()).then_some(Self {
            partition,
            service,
            region,
            account,
            resource,
        })
    }
}

/// A state machine to start: `arn:<partition>:states:<region>:<account>:stateMachine:<name>`,
/// optionally followed by `:<version>` or `:<alias>` (StartExecution accepts both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateMachineArn<'a> {
    pub arn: Arn<'a>,
    pub name: &'a str,
    pub qualifier: Option<&'a str>,
}

impl<'a> StateMachineArn<'a> {
    pub fn parse(text: &'a str) -> Option<Self> {
        let arn = Arn::parse(text).filter(|arn| arn.service == "states")?;
        let rest = arn.resource.strip_prefix("stateMachine:")?;
        let (name, qualifier) = match rest.split_once(':') {
            Some((name, qualifier)) => (name, Some(qualifier)),
            None => (rest, None),
        };
        let valid = !arn.region.is_empty()
            && !arn.account.is_empty()
            && !name.is_empty()
            && qualifier.is_none_or(|q| !q.is_empty() && !q.contains(':'));
        valid.then_some(Self { arn, name, qualifier })
    }

    /// The ARN Step Functions gives an execution of this state machine (of any of its versions
    /// or aliases) named `execution`.
    pub fn execution_arn(&self, execution: &str) -> String {
        let Arn { partition, region, account, .. } = self.arn;
        format!("arn:{partition}:states:{region}:{account}:execution:{}:{execution}", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_arn_splits_into_its_six_parts_and_keeps_colons_in_the_resource() {
        let arn = Arn::parse("arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:a:b-AbCdEf").unwrap();
        assert_eq!(
            arn,
            Arn {
                partition: "aws-cn",
                service: "secretsmanager",
                region: "cn-north-1",
                account: "123456789012",
                resource: "secret:a:b-AbCdEf"
            }
        );
        for bad in
            ["", "arn", "arn:aws:s3", "arn::states:r:1:x", "urn:aws:states:r:1:x", "arn:aws::r:1:x", "arn:aws:s:r:1:"]
        {
            assert_eq!(Arn::parse(bad), None, "{bad}");
        }
        assert_eq!(Arn::parse("arn:aws:iam::123456789012:role/r").map(|a| a.region), Some(""));
    }

    #[test]
    fn state_machine_arns_may_name_a_version_or_an_alias() {
        let plain = StateMachineArn::parse("arn:aws:states:eu-west-1:123456789012:stateMachine:order.flow").unwrap();
        assert_eq!((plain.arn.region, plain.name, plain.qualifier), ("eu-west-1", "order.flow", None));
        let version = StateMachineArn::parse("arn:aws:states:eu-west-1:123456789012:stateMachine:m:7").unwrap();
        assert_eq!((version.name, version.qualifier), ("m", Some("7")));
        let alias = StateMachineArn::parse("arn:aws:states:eu-west-1:123456789012:stateMachine:m:prod").unwrap();
        assert_eq!(alias.execution_arn("run-1"), "arn:aws:states:eu-west-1:123456789012:execution:m:run-1");
        for bad in [
            "arn:aws:states::1:stateMachine:m",
            "arn:aws:states:r::stateMachine:m",
            "arn:aws:states:r:1:stateMachine:",
            "arn:aws:states:r:1:stateMachine:m:",
            "arn:aws:states:r:1:stateMachine:m:a:b",
            "arn:aws:states:r:1:activity:m",
            "arn:aws:lambda:r:1:stateMachine:m",
            "fulfil",
        ] {
            assert_eq!(StateMachineArn::parse(bad), None, "{bad}");
        }
    }
}
