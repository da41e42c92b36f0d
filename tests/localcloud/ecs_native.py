"""ECS-native blue/green, linear and canary deployments for the ECS simulator (``ecs_sim``).

A service whose ``deploymentConfiguration.strategy`` is BLUE_GREEN, LINEAR or CANARY (ECS
deployment controller) is deployed the way the ECS Developer Guide describes ("Amazon ECS
blue/green service deployments workflow",
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/blue-green-deployment-how-it-works.html;
"Amazon ECS linear deployments",
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-type-linear.html; "Amazon ECS
canary deployments",
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/canary-deployment.html): each new
deployment (CreateService, or an UpdateService that needs one) is a service deployment
(``ecs_service_deployments``) from the running revision (blue) to a new one (green) that goes
through the lifecycle stages, in this order:

  RECONCILE_SERVICE   only "when you start a new service deployment with more than 1 service
                      revision in an ACTIVE state" (another deployment was interrupted): production
                      goes back to one revision and the others are stopped (which one is kept is
                      the local cloud's choice: the one with most production traffic, the older on
                      a tie; ECS does not document it);
  PRE_SCALE_UP        hooks;
  SCALE_UP            "the green service revision scales up to 100% and launches new tasks": the
                      desired count at once, each task registered in the target group of the pair
                      that is not serving production ("The two target groups swap roles on every
                      deployment. Amazon ECS registers the new service revision's tasks with
                      whichever target group isn't serving production traffic", VPC Lattice
                      resources page; the ALB and NLB pages describe the same); done when they all
                      pass their health checks;
  POST_SCALE_UP       hooks;
  TEST_TRAFFIC_SHIFT  the test listener rule forwards to green (when there is one), then hooks;
  POST_TEST_TRAFFIC_SHIFT   hooks;
  PRODUCTION_TRAFFIC_SHIFT  for each step: PRE_PRODUCTION_TRAFFIC_SHIFT hooks, the production
                      rule's weights rewritten (``ecs_traffic``), PRODUCTION_TRAFFIC_SHIFT hooks, then
                      the step's bake before the next step ("Hooks configured for
                      PRODUCTION_TRAFFIC_SHIFT or PRE_PRODUCTION_TRAFFIC_SHIFT are invoked at every
                      production traffic shift step"). BLUE_GREEN: one step, 100 % ("all traffic is
                      shifted from the blue service to the green service at once"); LINEAR:
                      stepPercent, 2 x stepPercent, ... 100 %, stepBakeTimeInMinutes between ("last
                      step bake time is skipped once traffic is shifted 100.0%"); CANARY:
                      canaryPercent, canaryBakeTimeInMinutes, then 100 %;
  POST_PRODUCTION_TRAFFIC_SHIFT hooks;
  BAKE_TIME           bakeTimeInMinutes with both revisions running;
  CLEAN_UP            "The blue service revision has completely scaled down to 0 running tasks":
                      the blue tasks are stopped (deregistered, drained); then SUCCESSFUL.

The first deployment of a new service has no blue: green goes into the group the production rule
does not forward to, and production shifts to it (users observe green 100 / blue 0 on the rule
after the initial deployment).

Failures and rollback ("Amazon ECS deployment failure detection",
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-failure-detection.html: the
circuit breaker and CloudWatch alarms "support rolling update deployment and blue/green deployment
types"; "The rollback method requires a previous deployment in COMPLETED state"):

* the deployment circuit breaker (green tasks that fail to start or fail their health checks,
  counted as for a rolling update) and ``deploymentConfiguration.alarms`` (an alarm in ALARM while
  the deployment is ongoing) fail the deployment: SERVICE_DEPLOYMENT_FAILED, then with
  ``rollback`` ROLLBACK_IN_PROGRESS, without it STOP_REQUESTED → STOPPED (nothing more is done);
* a hook that answers FAILED, errors, answers no valid hookStatus, cannot be invoked, or times out
  with the ROLLBACK action rolls back ("If your function doesn't return a valid hookStatus, or if it
  fails, Amazon ECS rolls back the deployment");
* StopServiceDeployment(ROLLBACK): ROLLBACK_REQUESTED, then ROLLBACK_IN_PROGRESS.

A rollback ("When a deployment rolls back ... Amazon ECS reverts the listener rule weights to route
all traffic back to the previous service revision and stops the new tasks", VPC Lattice resources
page, Considerations) makes blue PRIMARY again, re-runs the PRODUCTION_TRAFFIC_SHIFT and
TEST_TRAFFIC_SHIFT hooks with the weights going back ("There is no dedicated ROLLBACK lifecycle
stage. When a rollback occurs, Amazon ECS re-invokes hooks registered at the
PRODUCTION_TRAFFIC_SHIFT and TEST_TRAFFIC_SHIFT stages", Lambda hooks page; here only for stages the
deployment had reached), stops green and ends ROLLBACK_SUCCESSFUL (ROLLBACK_FAILED when a hook
fails meanwhile or there is no revision to go back to).

Another UpdateService during a deployment starts a new service deployment; the interrupted one is
STOP_REQUESTED → STOPPED, and the new one begins with RECONCILE_SERVICE.

Events ("Amazon ECS service deployment state change events",
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_service_deployment_events.html): the
detail type is ``ECS Deployment State Change`` and the documented event names are
SERVICE_DEPLOYMENT_IN_PROGRESS ("sent for both initial deployments and rollback deployments"),
SERVICE_DEPLOYMENT_COMPLETED and SERVICE_DEPLOYMENT_FAILED; no event is documented per lifecycle
stage, so none is sent.

Time: ECS waits minutes (bakes, step bakes, hook timeouts) and seconds (callBackDelay). They are
real time by default. ``WAIT_SCALE`` (module constant, read at each use, and the control route
``/_localcloud/ecs/native-timing {"scale": s}``) multiplies every such wait: 0.01 turns a 6-minute
step bake into 3.6 s. Task timings are ``ecs_sim``'s.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Generator

from . import ecs_native_rules as rules
from . import ecs_service_deployments as sd
from . import ecs_traffic as traffic
from .ecs_hooks import HookRun, HookRunner

LOG = logging.getLogger("localcloud.ecs_native")

# Seconds of the simulator's clock per second ECS waits (bakes, callBackDelay, hook timeouts).
WAIT_SCALE = 1.0
MAX_WAIT_SCALE = 1.0

# ServiceDeployment.lifecycleStage - API Reference
# (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ServiceDeployment.html).
RECONCILE_SERVICE, PRE_SCALE_UP, SCALE_UP, POST_SCALE_UP = "RECONCILE_SERVICE", "PRE_SCALE_UP", "SCALE_UP", "POST_SCALE_UP"
TEST_TRAFFIC_SHIFT, POST_TEST_TRAFFIC_SHIFT = "TEST_TRAFFIC_SHIFT", "POST_TEST_TRAFFIC_SHIFT"
PRE_PRODUCTION_TRAFFIC_SHIFT = "PRE_PRODUCTION_TRAFFIC_SHIFT"  # a hook stage, reported as PRODUCTION_TRAFFIC_SHIFT
PRODUCTION_TRAFFIC_SHIFT, POST_PRODUCTION_TRAFFIC_SHIFT = "PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT"
BAKE_TIME, CLEAN_UP = "BAKE_TIME", "CLEAN_UP"

# "deployment failed: hook execution failure(s) detected." is ECS's reason as users report it
# (aws/containers-roadmap#2664); the others follow ecs_sim's rolling-update wording.
HOOK_FAILURE_REASON = "deployment failed: hook execution failure(s) detected."
CIRCUIT_BREAKER_REASON = "ECS deployment circuit breaker: task failed to start."


def scaled(seconds: float) -> float:
    return seconds * WAIT_SCALE


def minutes(value: float) -> float:
    return scaled(60.0 * value)


class _Rollback(Exception):
    """Raised inside a flow when it must roll back."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# =============================================================================================
# One service deployment under a native strategy
# =============================================================================================


class Flow:
    """Carries one service deployment through its lifecycle stages (a generator advanced on every
    tick of the service; it yields whenever it has to wait)."""

    def __init__(self, controller: "NativeController", record: sd.ServiceDeploymentRecord, green: Any, now: float) -> None:
        self.controller = controller
        self.sim = controller.sim
        self.state = controller.state
        self.record = record
        self.green = green
        self.blue: Any = None
        self.now = now
        self.configuration = dict(record.configuration)
        self.strategy = rules.strategy_of(self.configuration)
        self.pairs = traffic.pairs_of(self.state.moto_service.load_balancers)
        self.blue_groups: list[str | None] = [None] * len(self.pairs)
        self.green_groups: list[str | None] = [None] * len(self.pairs)
        self.green_scaled = False
        self.keep: set[int] = set()  # id() of the deployments the scheduler keeps at desired count
        self.test_shifted = False
        self.production_percent = 0.0
        self.runs: list[HookRun] = []
        self.hooks = HookRunner(self.sim, scaled)
        self.running = True
        self.rolling_back = False
        self._rollback_request: str | None = None
        self._generator: Generator[None, None, None] = self._deploy()
        record.native = True
        record.controller = self

    # ----- driving ------------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        self.now = now
        if self.running and not self.rolling_back:
            self._detect_failures()
        if self.running and self._rollback_request is not None and not self.rolling_back:
            reason, self._rollback_request = self._rollback_request, None
            self._start_rollback(reason, requested=True)
        if self.running:
            try:
                next(self._generator)
            except StopIteration:
                self.running = False
            except _Rollback as rollback:
                if self.rolling_back:
                    self._finish(sd.ROLLBACK_FAILED, rollback.reason)
                else:
                    self._start_rollback(rollback.reason, requested=False)
                    self._advance_quietly()
        self._schedule()
        self.record.hook_details = [run.detail() for run in self.runs]

    def _advance_quietly(self) -> None:
        try:
            next(self._generator)
        except StopIteration:
            self.running = False
        except _Rollback as rollback:
            self._finish(sd.ROLLBACK_FAILED, rollback.reason)

    def superseded(self, now: float) -> None:
        """Another deployment started: this one does nothing more (its tasks are the next one's
        to reconcile)."""
        self.running = False

    def request_rollback(self, reason: str, now: float) -> None:
        """StopServiceDeployment(ROLLBACK): "The service deployment moves to the ROLLBACK_REQUESTED
        state, and then the rollback operation starts." (stop-service-deployment.html)."""
        self.record.set_status(sd.ROLLBACK_REQUESTED, now, reason)
        self._rollback_request = reason

    def resolve_pause(self, hook_id: str, action: str, now: float) -> bool:
        return HookRunner.resolve_pause(self.runs, hook_id, action)

    # ----- the scheduler ------------------------------------------------------------------------

    def _schedule(self) -> None:
        """Keeps each revision at its wanted number of tasks: the desired count for blue until
        CLEAN_UP and for green from SCALE_UP (or during a rollback, as the flow says), none for any
        other revision. A task that stops (crash, failed health checks) is replaced."""
        state, now = self.state, self.now
        desired = state.desired_count if not state.deleting else 0
        for deployment in list(state.deployments):
            wanted = desired if id(deployment) in self.keep else 0
            mine = [t for t in state.tasks if t.deployment is deployment and t.active]
            if len(mine) > wanted:
                ranked = sorted(mine, key=lambda t: (state.task_health(t, now) == "healthy", -t.created_at))
                for task in ranked[: len(mine) - wanted]:
                    state._request_stop(
                        task, now, f"Scaling activity initiated by (deployment {deployment.id})",
                        "ServiceSchedulerInitiated", failed=False,
                    )
            else:
                for _ in range(wanted - len(mine)):
                    state._launch(deployment, now)
        for revision in (self.blue, self.green):
            if revision is not None:
                self.record.requested[self.sim.service_deployments.revision(state, revision, now).arn] = (
                    desired if id(revision) in self.keep else 0)

    # ----- failure detection --------------------------------------------------------------------

    def _detect_failures(self) -> None:
        if self.record.status != sd.IN_PROGRESS:
            return
        settings = self.state.settings
        if settings.breaker_enabled and self.green.failed_tasks >= settings.failure_threshold(self.state.desired_count):
            self.record.breaker_status = sd.TRIGGERED
            self._fail(CIRCUIT_BREAKER_REASON, settings.breaker_rollback)
            return
        alarms = self.configuration.get("alarms") or {}
        if alarms.get("enable") and alarms.get("alarmNames"):
            in_alarm = alarms_in_alarm(self.state.account, self.state.region, alarms["alarmNames"])
            if in_alarm:
                self.record.alarm_status = sd.TRIGGERED
                self.record.triggered_alarms = in_alarm
                self._fail(f"ECS deployment alarm(s) in ALARM: {', '.join(in_alarm)}.", bool(alarms.get("rollback")))

    def _fail(self, reason: str, roll_back: bool) -> None:
        green, now = self.green, self.now
        green.rollout_state = "FAILED"
        green.rollout_reason = reason
        green.updated_at = now
        self.record.status_reason = reason
        self.controller.emit(green, "SERVICE_DEPLOYMENT_FAILED", now)
        self.state._add_event(f"(service {self.state.name}) (deployment {green.id}) deployment failed: {reason}", now)
        if roll_back:
            self._start_rollback(reason, requested=False)
        else:
            # "STOP_REQUESTED - ... when ... The rollback option is not in use for the failure
            # detection mechanism (the circuit breaker or alarm-based) and the service does not
            # reach the SUCCESSFUL state. The state moves to STOPPED." (service-deployment.html)
            self.record.set_status(sd.STOP_REQUESTED, now)
            self.record.set_status(sd.STOPPED, now)
            self.running = False

    # ----- the forward flow ---------------------------------------------------------------------

    def _enter(self, stage: str) -> None:
        self.record.lifecycle_stage = stage
        self.record.updated_at = self.now

    def _wait_for(self, done: Any) -> Generator[None, None, None]:
        while not done():
            yield

    def _wait_minutes(self, value: float) -> Generator[None, None, None]:
        until = self.now + minutes(value)
        while self.now < until:
            yield

    def _run_hooks(self, stage: str, test: dict[str, Any] | None = None, production: dict[str, Any] | None = None) -> Generator[None, None, None]:
        hooks = [h for h in self.configuration.get("lifecycleHooks") or [] if stage in (h.get("lifecycleStages") or [])]
        if not hooks:
            return
        self.runs = self.hooks.start(hooks, stage, self.now)
        test, production = dict(test or {}), dict(production or {})

        def payload(run: HookRun) -> dict[str, Any]:
            event = {
                "executionId": run.hook_id,
                "lifecycleStage": stage,
                "resourceArn": self.record.arn,
                "executionDetails": {
                    "serviceArn": self.state.arn,
                    "targetServiceRevisionArn": self.record.target.arn,
                    "testTrafficWeights": test,
                    "productionTrafficWeights": production,
                },
            }
            if run.details:
                event["hookDetails"] = dict(run.details)
            return event

        while True:
            self.hooks.poll(self.runs, payload, self.now)
            failed = [r for r in self.runs if r.finished and r.wants_rollback]
            if failed:
                LOG.info("service %s: %s hook failed: %s", self.state.name, stage, failed[0].failure)
                raise _Rollback(HOOK_FAILURE_REASON)
            if all(r.finished for r in self.runs):
                return
            yield

    def _weights(self, green_percent: float) -> dict[str, Any]:
        """{revision ARN: percentage} for hook payloads (empty without a load balancer)."""
        if not self.pairs:
            return {}
        weights = {self.record.target.arn: traffic.percent(green_percent)}
        if self.blue is not None:
            weights[self._revision(self.blue).arn] = traffic.percent(100.0 - green_percent)
        return weights

    def _revision(self, deployment: Any) -> sd.ServiceRevision:
        return self.sim.service_deployments.revision(self.state, deployment, self.now)

    def _steps(self) -> list[float]:
        if self.strategy == rules.LINEAR:
            linear = self.configuration.get("linearConfiguration") or {}
            step = float(linear.get("stepPercent", rules.DEFAULT_STEP_PERCENT))
            count = math.ceil(round(100.0 / step, 6))
            return [min(100.0, round(step * (i + 1), 1)) for i in range(count)]
        if self.strategy == rules.CANARY:
            canary = float((self.configuration.get("canaryConfiguration") or {}).get("canaryPercent", rules.DEFAULT_CANARY_PERCENT))
            return [canary, 100.0] if canary < 100.0 else [100.0]
        return [100.0]

    def _step_bake_minutes(self) -> float:
        if self.strategy == rules.LINEAR:
            return (self.configuration.get("linearConfiguration") or {}).get("stepBakeTimeInMinutes", rules.DEFAULT_STEP_BAKE_MINUTES)
        if self.strategy == rules.CANARY:
            return (self.configuration.get("canaryConfiguration") or {}).get("canaryBakeTimeInMinutes", rules.DEFAULT_CANARY_BAKE_MINUTES)
        return 0

    def _deploy(self) -> Generator[None, None, None]:
        state = self.state
        sources = [d for d in state.deployments if d is not self.green and self._has_tasks(d)]
        for source in sources:
            self.keep.add(id(source))
        if len(sources) > 1:
            self._enter(RECONCILE_SERVICE)
            yield from self._run_hooks(RECONCILE_SERVICE)
            yield from self._reconcile(sources)
        elif sources:
            self.blue = sources[0]
        # Which target group of each pair serves production decides where green goes.
        for index, pair in enumerate(self.pairs):
            if traffic.has_non_forward_actions(state.account, state.region, pair.production_rule):
                raise _Rollback(f"listener rule {pair.production_rule} mixes forward and non-forward actions")
            serving, why = traffic.production_target_group(state.account, state.region, pair)
            if serving is None:
                raise _Rollback(f"Amazon ECS cannot shift traffic: {why}")
            self.blue_groups[index], self.green_groups[index] = serving, pair.other(serving)
        self._resolve_load_balancers()
        if self.pairs:
            self.record.production_weights = {self.record.target.arn: 0.0}
            if self.blue is not None:
                self.record.production_weights[self._revision(self.blue).arn] = 100.0

        self._enter(PRE_SCALE_UP)
        yield from self._run_hooks(PRE_SCALE_UP)

        self._enter(SCALE_UP)
        self.keep.add(id(self.green))
        yield from self._wait_for(lambda: self._healthy_count(self.green) >= state.desired_count)

        self._enter(POST_SCALE_UP)
        yield from self._run_hooks(POST_SCALE_UP)

        self._enter(TEST_TRAFFIC_SHIFT)
        test_weights: dict[str, Any] = {}
        if any(pair.test_rule for pair in self.pairs):
            self._shift_test(100.0)
            test_weights = self._weights(100.0)
        yield from self._run_hooks(TEST_TRAFFIC_SHIFT, test=test_weights)

        self._enter(POST_TEST_TRAFFIC_SHIFT)
        yield from self._run_hooks(POST_TEST_TRAFFIC_SHIFT)

        self._enter(PRODUCTION_TRAFFIC_SHIFT)
        steps = self._steps()
        for number, percent in enumerate(steps):
            yield from self._run_hooks(PRE_PRODUCTION_TRAFFIC_SHIFT, production=self._weights(self.production_percent))
            self._shift_production(percent)
            yield from self._run_hooks(PRODUCTION_TRAFFIC_SHIFT, production=self._weights(percent))
            if number < len(steps) - 1:
                yield from self._wait_minutes(self._step_bake_minutes())

        self._enter(POST_PRODUCTION_TRAFFIC_SHIFT)
        yield from self._run_hooks(POST_PRODUCTION_TRAFFIC_SHIFT)

        self._enter(BAKE_TIME)
        yield from self._wait_minutes(self.configuration.get("bakeTimeInMinutes") or 0)

        self._enter(CLEAN_UP)
        self.keep = {id(self.green)}
        yield from self._wait_for(lambda: not any(t.alive for t in state.tasks if t.deployment is not self.green))
        self._complete(self.green, sd.SUCCESSFUL)

    def _reconcile(self, sources: list[Any]) -> Generator[None, None, None]:
        """Production goes back to one revision; the others stop (see the module docstring)."""
        state = self.state

        def production_share(deployment: Any) -> float:
            share = 0.0
            revision = self._revision(deployment)
            for pair in self.pairs:
                group = _group_of(revision, pair)
                weights = traffic.current_weights(state.account, state.region, pair.production_rule) or {}
                if group is not None:
                    share += traffic.serving_share(weights, group)
            return share

        ordered = sorted(sources, key=lambda d: (-production_share(d), d.created_at))
        self.blue = ordered[0]
        blue_revision = self._revision(self.blue)
        for pair in self.pairs:
            group = _group_of(blue_revision, pair) or pair.primary_target_group
            traffic.shift(state.account, state.region, pair.production_rule, group, pair.other(group), 100.0)
            if pair.test_rule:
                traffic.shift(state.account, state.region, pair.test_rule, group, pair.other(group), 100.0)
        self.keep = {id(self.blue)}
        yield from self._wait_for(lambda: not any(t.alive for t in state.tasks if t.deployment in sources and t.deployment is not self.blue))
        state.deployments = [d for d in state.deployments if d is self.green or d is self.blue]

    def _resolve_load_balancers(self) -> None:
        """Green's tasks register in the green target group of each pair; the revisions say so."""
        configured = [dict(lb) for lb in self.state.moto_service.load_balancers or []]
        green_lbs, resolved_green, resolved_blue = [], [], []
        pair_index = 0
        for lb in configured:
            if lb.get("advancedConfiguration") and lb.get("targetGroupArn") and pair_index < len(self.pairs):
                pair = self.pairs[pair_index]
                green_group, blue_group = self.green_groups[pair_index], self.blue_groups[pair_index]
                green_lbs.append({**lb, "targetGroupArn": green_group})
                resolved_green.append({"targetGroupArn": green_group, "productionListenerRule": pair.production_rule})
                resolved_blue.append({"targetGroupArn": blue_group, "productionListenerRule": pair.production_rule})
                pair_index += 1
            else:
                green_lbs.append(lb)
        self.green.load_balancers = green_lbs
        self._revision(self.green).resolved_load_balancers = resolved_green
        if self.blue is not None and self._revision(self.blue).resolved_load_balancers is None and resolved_blue:
            self._revision(self.blue).resolved_load_balancers = resolved_blue

    def _shift_test(self, green_percent: float) -> None:
        for index, pair in enumerate(self.pairs):
            if pair.test_rule:
                traffic.shift(self.state.account, self.state.region, pair.test_rule,
                              self.green_groups[index], self.blue_groups[index], green_percent)
        self.test_shifted = green_percent > 0
        self.record.test_weights = {k: float(v) for k, v in self._weights(green_percent).items()}

    def _shift_production(self, green_percent: float) -> None:
        for index, pair in enumerate(self.pairs):
            traffic.shift(self.state.account, self.state.region, pair.production_rule,
                          self.green_groups[index], self.blue_groups[index], green_percent)
        self.production_percent = green_percent
        if self.pairs:
            self.record.production_weights = {k: float(v) for k, v in self._weights(green_percent).items()}
        self.record.updated_at = self.now

    def _has_tasks(self, deployment: Any) -> bool:
        return any(t.alive and t.active for t in self.state.tasks if t.deployment is deployment)

    def _healthy_count(self, deployment: Any) -> int:
        return sum(1 for t in self.state.tasks if t.deployment is deployment and self.state.task_health(t, self.now) == "healthy")

    # ----- rollback -----------------------------------------------------------------------------

    def _start_rollback(self, reason: str, requested: bool) -> None:
        self.rolling_back = True
        self.runs = []
        self._generator = self._roll_back(reason, requested)

    def _roll_back(self, reason: str, requested: bool) -> Generator[None, None, None]:
        state, record, green = self.state, self.record, self.green
        if requested:
            yield  # ROLLBACK_REQUESTED shows until the next tick
        record.set_status(sd.ROLLBACK_IN_PROGRESS, self.now, reason)
        if self.blue is None:
            # "The rollback method requires a previous deployment in COMPLETED state."
            self._finish(sd.ROLLBACK_FAILED, "There is no previous service revision to roll back to.")
            return
        blue = self.blue
        record.rollback = {"reason": reason, "startedAt": sd._dt(self.now), "serviceRevisionArn": self._revision(blue).arn}
        if green.rollout_state == "IN_PROGRESS":
            green.rollout_state = "FAILED"
            green.rollout_reason = reason
        green.status = "ACTIVE"
        blue.start_rollout(f"ECS deployment {green.id} rolling back to deploymentId {blue.id}.", state.desired_count, self.now)
        state.deployments = [blue] + [d for d in state.deployments if d is not blue]
        self.controller.emit(blue, "SERVICE_DEPLOYMENT_IN_PROGRESS", self.now)
        state._add_event(f"(service {state.name}) rolling back to deployment {blue.id}.", self.now)
        self.keep.add(id(blue))
        yield from self._wait_for(lambda: self._healthy_count(blue) >= state.desired_count)
        if self.production_percent > 0:
            self._enter(PRODUCTION_TRAFFIC_SHIFT)
            self._shift_production(0.0)
            yield from self._run_hooks(PRODUCTION_TRAFFIC_SHIFT, production=self._weights(0.0))
        if self.test_shifted:
            self._enter(TEST_TRAFFIC_SHIFT)
            self._shift_test(0.0)
            yield from self._run_hooks(TEST_TRAFFIC_SHIFT, test=self._weights(0.0))
        self._enter(CLEAN_UP)
        self.keep = {id(blue)}
        yield from self._wait_for(lambda: not any(t.alive for t in state.tasks if t.deployment is not blue))
        self._complete(blue, sd.ROLLBACK_SUCCESSFUL)

    # ----- endings ------------------------------------------------------------------------------

    def _complete(self, deployment: Any, status: str) -> None:
        state, now = self.state, self.now
        deployment.status = "PRIMARY"
        deployment.rollout_state = "COMPLETED"
        deployment.rollout_reason = f"ECS deployment {deployment.id} completed."
        deployment.updated_at = now
        state.deployments = [deployment]
        state.last_completed = deployment
        self.record.set_status(status, now)
        self.running = False
        self.controller.emit(deployment, "SERVICE_DEPLOYMENT_COMPLETED", now)
        state._add_event(f"(service {state.name}) (deployment {deployment.id}) deployment completed.", now)

    def _finish(self, status: str, reason: str) -> None:
        self.record.set_status(status, self.now, reason)
        self.running = False


def _group_of(revision: sd.ServiceRevision, pair: traffic.TrafficPair) -> str | None:
    for resolved in revision.resolved_load_balancers or []:
        if resolved.get("productionListenerRule") == pair.production_rule:
            return resolved.get("targetGroupArn")
    for lb in revision.deployment.load_balancers or []:
        if lb.get("targetGroupArn") in pair.target_groups:
            return lb["targetGroupArn"]
    return None


def alarms_in_alarm(account: str, region: str, names: list[str]) -> list[str]:
    """The named CloudWatch alarms whose state is ALARM (moto's CloudWatch; set by SetAlarmState)."""
    from moto.cloudwatch.models import cloudwatch_backends

    alarms = cloudwatch_backends[account][region].alarms
    return [name for name in names if name in alarms and alarms[name].state_value == "ALARM"]


# =============================================================================================
# Per service, and for the simulator
# =============================================================================================


class NativeController:
    """A service's native deployments (ServiceState.native)."""

    def __init__(self, sim: Any, state: Any) -> None:
        self.sim = sim
        self.state = state
        self.flow: Flow | None = None

    @property
    def active(self) -> bool:
        return self.flow is not None and self.flow.running

    def start(self, green: Any, now: float) -> None:
        sources = [d for d in self.state.deployments if d is not green]
        record = self.sim.service_deployments.create(self.state, green, sources, now)
        self.flow = Flow(self, record, green, now)

    def tick(self, now: float) -> bool:
        """True when the native flow scheduled the service's tasks this tick."""
        if self.flow is None or not self.flow.running or self.state.deleting:
            return False
        self.flow.tick(now)
        return True

    def emit(self, deployment: Any, event_name: str, now: float) -> None:
        registry = self.sim.service_deployments
        registry.native_emitting = True
        try:
            self.sim.emit_deployment_event(self.state, deployment, event_name, now)
        finally:
            registry.native_emitting = False


class NativeDeployments:
    """The simulator's entry point (Simulator.native_deployments)."""

    def __init__(self, sim: Any) -> None:
        self.sim = sim

    def deployment_started(self, state: Any, deployment: Any, now: float) -> None:
        """ServiceState.start_deployment: a native strategy takes the new deployment over."""
        if rules.strategy_of(state.settings.to_api()) in rules.NATIVE_STRATEGIES:
            if state.native is None:
                state.native = NativeController(self.sim, state)
            state.native.start(deployment, now)
        elif state.native is not None:
            state.native.flow = None  # back to rolling updates; the record is stopped by the next one

    def control(self, method: str, body: dict[str, Any]) -> tuple[int, Any]:
        """``/_localcloud/ecs/native-timing``: GET shows, POST sets {"scale": s} (0 < s <= 1),
        DELETE restores real time."""
        global WAIT_SCALE
        if method == "GET":
            return 200, {"scale": WAIT_SCALE}
        if method == "POST":
            unknown = sorted(set(body) - {"scale"})
            if unknown:
                raise ValueError(f"unknown setting(s) {', '.join(unknown)}; only scale")
            scale = body.get("scale")
            if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale <= MAX_WAIT_SCALE:
                raise ValueError("'scale' must be a number greater than 0 and at most 1")
            WAIT_SCALE = float(scale)
            return 200, {"scale": WAIT_SCALE}
        if method == "DELETE":
            WAIT_SCALE = 1.0
            return 200, {"scale": WAIT_SCALE}
        return 405, {"error": f"{method} not allowed"}


def install(sim: Any) -> None:
    """Native deployments, service deployment records and their API for `sim` (ecs_sim.install)."""
    sim.service_deployments = sd.ServiceDeployments(sim)
    sim.native_deployments = NativeDeployments(sim)
    for owner, name, make in rules.response_checks(sim):
        sim._patches._wrap(owner, name, make)
    for owner, name, function in sd.added_operations():
        sim._patches._add(owner, name, function)
