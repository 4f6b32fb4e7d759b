//! The table itself: creating it, checking its schema, point-in-time recovery.

use anyhow::{Result, anyhow};
use aws_sdk_dynamodb::Client;

use super::settings::DynamoSettings;
use crate::aws::{self, Call};

/// What `firn init` creates: the table with firn's key schema, on-demand billing.
pub async fn create_table(client: &Client, table: &str) -> Result<()> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let request = client
        .create_table()
        .table_name(table)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("set_id")
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("path")
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("set_id")
                .key_type(KeyType::Hash)
                .build()?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("path")
                .key_type(KeyType::Range)
                .build()?,
        )
        .billing_mode(BillingMode::PayPerRequest);
    match aws::send(Call::Write, || request.clone().send()).await {
        Ok(_) => Ok(()),
        // A try that created it lost its answer.
        Err(e) if aws::has_code(&e, "ResourceInUseException") => Ok(()),
        Err(e) => Err(aws::explain(&e, &format!("DynamoDB table {table:?}"))),
    }
}

/// Waits (up to a minute) until a new table accepts reads and writes.
pub async fn wait_until_active(client: &Client, table: &str) -> Result<()> {
    use aws_sdk_dynamodb::types::TableStatus;
    for _ in 0..120 {
        let out = aws::send(Call::Read, || {
            client.describe_table().table_name(table).send()
        })
        .await
        .map_err(|e| aws::explain(&e, &format!("DynamoDB table {table:?}")))?;
        if out.table.and_then(|t| t.table_status) == Some(TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    Err(anyhow!(
        "DynamoDB table {table:?} did not become active within a minute"
    ))
}

/// None when the table does not exist; Some(true) when its key schema is firn's.
pub async fn table_schema_matches(client: &Client, table: &str) -> Result<Option<bool>> {
    use aws_sdk_dynamodb::types::KeyType;
    let out = match aws::send(Call::Read, || {
        client.describe_table().table_name(table).send()
    })
    .await
    {
        Ok(out) => out,
        Err(e) if crate::aws::is_not_found(&e) => {
            return Ok(None);
        }
        Err(e) => return Err(aws::explain(&e, &format!("DynamoDB table {table:?}"))),
    };
    let schema = out
        .table
        .as_ref()
        .map(|t| t.key_schema())
        .unwrap_or_default();
    let has = |name: &str, kind: KeyType| {
        schema
            .iter()
            .any(|k| k.attribute_name() == name && *k.key_type() == kind)
    };
    Ok(Some(
        schema.len() == 2 && has("set_id", KeyType::Hash) && has("path", KeyType::Range),
    ))
}

/// Whether the table exists with firn's key schema (creating it, on-demand
/// billing, once the plan is accepted), and, with `recovery`, whether its
/// point-in-time recovery is on: the table is the only copy of the catalog on this
/// backend, and continuous backups let it be restored to any second of the last 35
/// days.
pub async fn readiness(
    settings: &DynamoSettings,
    recovery: bool,
) -> Result<Vec<crate::provision::Readiness>> {
    use crate::provision::Readiness;
    let config = aws::sdk_config(&settings.aws()).await?;
    let client = Client::new(&config);
    let region = config.region().map(|r| r.to_string()).unwrap_or_default();
    let what = format!("DynamoDB table {:?} in {region}", settings.table);
    let exists = match table_schema_matches(&client, &settings.table).await? {
        Some(true) => true,
        Some(false) => {
            return Err(crate::model::usage(format!(
                "{what} exists with another key schema (firn needs partition key set_id and sort key path, both strings); name another table in the config"
            )));
        }
        None => false,
    };
    let mut steps = Vec::new();
    if exists {
        steps.push(Readiness::Exists(what.clone()));
    } else {
        let (client, table) = (client.clone(), settings.table.clone());
        steps.push(Readiness::Missing {
            plan: format!(
                "create {what} (on-demand billing; keys: set_id (S) partition, path (S) sort)"
            ),
            create: Box::pin(async move {
                create_table(&client, &table).await?;
                wait_until_active(&client, &table).await?;
                Ok(format!("created: DynamoDB table {table:?}"))
            }),
        });
    }
    if !recovery {
        return Ok(steps);
    }
    if exists && point_in_time_recovery(&client, &settings.table).await? {
        steps.push(Readiness::Exists(format!(
            "point-in-time recovery of {what}"
        )));
        return Ok(steps);
    }
    let table = settings.table.clone();
    steps.push(Readiness::Missing {
        plan: format!(
            "turn on point-in-time recovery for {what} (continuous backups of the catalog, billed per GB-month of the table; --no-point-in-time-recovery leaves it off)"
        ),
        create: Box::pin(async move {
            use aws_sdk_dynamodb::types::PointInTimeRecoverySpecification;
            let recovery = PointInTimeRecoverySpecification::builder()
                .point_in_time_recovery_enabled(true)
                .build()?;
            aws::send(Call::Write, || {
                client
                    .update_continuous_backups()
                    .table_name(&table)
                    .point_in_time_recovery_specification(recovery.clone())
                    .send()
            })
            .await
            .map_err(|e| aws::explain(&e, &format!("DynamoDB table {table:?}")))?;
            Ok(format!(
                "turned on: point-in-time recovery for DynamoDB table {table:?}"
            ))
        }),
    });
    Ok(steps)
}

/// Whether the table's point-in-time recovery is on.
pub async fn point_in_time_recovery(client: &Client, table: &str) -> Result<bool> {
    use aws_sdk_dynamodb::types::PointInTimeRecoveryStatus;
    let out = aws::send(Call::Read, || {
        client
            .describe_continuous_backups()
            .table_name(table)
            .send()
    })
    .await
    .map_err(|e| aws::explain(&e, &format!("DynamoDB table {table:?}")))?;
    Ok(out
        .continuous_backups_description()
        .and_then(|d| d.point_in_time_recovery_description())
        .and_then(|p| p.point_in_time_recovery_status())
        == Some(&PointInTimeRecoveryStatus::Enabled))
}
