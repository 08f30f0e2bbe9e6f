//! The bridge's checkpoint table as the template creates it (`cache` and `topic` as its key), in
//! moto's DynamoDB: for the bridge's end-to-end tests and its throughput benchmark.

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};

/// Creates the table `name`; its name.
pub async fn create(sdk: &SdkConfig, name: String) -> String {
    let key = |name: &str, kind| KeySchemaElement::builder().attribute_name(name).key_type(kind).build().unwrap();
    let attribute = |name: &str| {
        AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build().unwrap()
    };
    aws_sdk_dynamodb::Client::new(sdk)
        .create_table()
        .table_name(&name)
        .key_schema(key("cache", KeyType::Hash))
        .key_schema(key("topic", KeyType::Range))
        .attribute_definitions(attribute("cache"))
        .attribute_definitions(attribute("topic"))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    name
}
