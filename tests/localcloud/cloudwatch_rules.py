"""CloudWatch alarms as deckhand's alarm gate reads them, where moto is kinder than AWS.

* **StateTransitionedTimestamp.** AWS reports when an alarm's ``StateValue`` last *changed*
  ("StateTransitionedTimestamp: The date and time that the alarm's StateValue most recently
  changed") apart from ``StateUpdatedTimestamp`` ("The time stamp of the last update to the value
  of either the StateValue or StateReason"); Amazon CloudWatch API Reference, data type
  MetricAlarm: https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_MetricAlarm.html
  moto has no transition time at all, so an alarm whose reason is re-written while it stays in
  ALARM (every evaluation does that on AWS) would look to a reader of StateUpdatedTimestamp as if
  it had just fired. Here the transition time is kept, and SetAlarmState to the same state
  updates the reason and StateUpdatedTimestamp only.
* **At most 100 alarm names** per DescribeAlarms ("AlarmNames ... Array Members: Maximum number of
  100 items"; API Reference, DescribeAlarms), refused with ValidationError like any parameter
  that breaks its constraint:
  https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html
* **AlarmTypes.** "If you omit this parameter, only metric alarms are returned, even if composite
  alarms exist in the account" (same page); moto returns both. (moto cannot create composite
  alarms, PutCompositeAlarm is not implemented; the test asks for composites only and sees the
  metric alarms left out.)
"""

from __future__ import annotations

from typing import Any, Callable

from moto.cloudwatch import models as cw_models
from moto.cloudwatch import responses as cw_responses
from moto.cloudwatch.exceptions import ValidationError

Patch = tuple[Any, str, Callable[..., Any]]

MAX_ALARM_NAMES = 100


def _tracking_transitions(original_init: Callable[..., Any], original_update: Callable[..., Any]) -> list[Patch]:
    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.state_transitioned_timestamp = self.state_updated_timestamp

    def update_state(self: Any, reason: str, reason_data: str, state_value: str) -> None:
        changed = state_value != self.state_value
        original_update(self, reason, reason_data, state_value)
        if changed or not hasattr(self, "state_transitioned_timestamp"):
            self.state_transitioned_timestamp = self.state_updated_timestamp

    return [(cw_models.Alarm, "__init__", init), (cw_models.Alarm, "update_state", update_state)]


def _describe_alarms(original: Callable[..., Any]) -> Callable[..., Any]:
    def describe_alarms(self: Any) -> Any:
        names = self._get_param("AlarmNames", [])
        if len(names) > MAX_ALARM_NAMES:
            raise ValidationError(
                f"1 validation error detected: Value at 'alarmNames' failed to satisfy constraint: "
                f"Member must have length less than or equal to {MAX_ALARM_NAMES}"
            )
        types = self._get_param("AlarmTypes", []) or ["MetricAlarm"]
        result = original(self)
        kept = result.result if hasattr(result, "result") else None
        if isinstance(kept, dict):
            if "MetricAlarm" not in types:
                kept["MetricAlarms"] = []
            if "CompositeAlarm" not in types:
                kept["CompositeAlarms"] = []
        return result

    return describe_alarms


def patches() -> list[Patch]:
    return [
        *_tracking_transitions(cw_models.Alarm.__init__, cw_models.Alarm.update_state),
        (cw_responses.CloudWatchResponse, "describe_alarms", _describe_alarms(cw_responses.CloudWatchResponse.describe_alarms)),
    ]

