//! CloudWatch adapter: the alarm gate's alarms. An alarm's "since when" is its
//! StateTransitionedTimestamp (when StateValue last changed), not StateUpdatedTimestamp, which
//! also moves when only the reason is re-written while the alarm stays in ALARM.

use super::{classify, seconds};
use crate::domain::gates::AlarmSnapshot;
use crate::error::Result;
use crate::ports::Alarms;
use aws_sdk_cloudwatch::types::{AlarmType, StateValue};
use aws_sdk_cloudwatch::Client;

pub struct CloudWatchAdapter {
    client: Client,
}

impl CloudWatchAdapter {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self { client: Client::new(config) }
    }
}

impl Alarms for CloudWatchAdapter {
    async fn describe_alarms(&self, names: &[String]) -> Result<Vec<AlarmSnapshot>> {
        if names.is_empty() {
            return Ok(vec![]);
        }
        let mut found = Vec::new();
        // Without AlarmTypes, DescribeAlarms returns metric alarms only: a composite alarm
        // named in the tag would look missing.
        let mut pages = self
            .client
            .describe_alarms()
            .set_alarm_names(Some(names.to_vec()))
            .alarm_types(AlarmType::MetricAlarm)
            .alarm_types(AlarmType::CompositeAlarm)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("DescribeAlarms", e))?;
            for alarm in page.metric_alarms() {
                found.push(AlarmSnapshot {
                    name: alarm.alarm_name().unwrap_or_default().to_string(),
                    in_alarm: alarm.state_value() == Some(&StateValue::Alarm),
                    state_changed_at: seconds(alarm.state_transitioned_timestamp().or(alarm.state_updated_timestamp())),
                    state_reason: alarm.state_reason().unwrap_or_default().to_string(),
                });
            }
            for alarm in page.composite_alarms() {
                found.push(AlarmSnapshot {
                    name: alarm.alarm_name().unwrap_or_default().to_string(),
                    in_alarm: alarm.state_value() == Some(&StateValue::Alarm),
                    state_changed_at: seconds(alarm.state_transitioned_timestamp().or(alarm.state_updated_timestamp())),
                    state_reason: alarm.state_reason().unwrap_or_default().to_string(),
                });
            }
        }
        Ok(found)
    }
}
