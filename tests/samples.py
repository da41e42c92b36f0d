"""The sample inputs in events/ and what the plan function (and, for ECS events, the signal
function) must answer to each, on a fresh local cloud: shared by the `cargo lambda invoke` and the `sam local invoke` tests."""

from __future__ import annotations

from pathlib import Path

EVENTS = Path(__file__).resolve().parents[1] / "events"

# Sample → what the plan function must answer: a plan action, or an error name.
EXPECTED = {
    "ecr-push.json": ("action", "nothing"),  # nothing in the fresh cloud tracks flask-backend:main
    "ecr-push-untagged.json": ("action", "nothing"),
    "ecr-delete.json": ("action", "nothing"),
    "ecr-push-semver.json": ("action", "nothing"),  # nothing tracks shop/api here (semver:1.x would take v1.5.0)
    "manual-deploy.json": ("error", "InvalidInput"),  # cluster "prod" does not exist here
    "manual-deploy-digest.json": ("error", "InvalidInput"),
    "manual-rollback.json": ("error", "InvalidInput"),
    "manual-dry-run.json": ("error", "InvalidInput"),
    "manual-rollback-dry-run.json": ("error", "InvalidInput"),
    "bad-typo-field.json": ("error", "InvalidInput"),
    "bad-missing-image.json": ("error", "InvalidInput"),
    "bad-foreign-registry.json": ("error", "InvalidInput"),
    "bad-image-and-rollback.json": ("error", "InvalidInput"),
    "bad-not-an-object.json": ("error", "InvalidInput"),
    # ECS events are the signal function's input; to the plan they are no request.
    "ecs-deployment-completed.json": ("error", "InvalidInput"),
    "ecs-task-stopped.json": ("error", "InvalidInput"),
    # ECS invoking deckhand's lifecycle hook (the hook function, the check binary): no request.
    "ecs-lifecycle-hook.json": ("error", "InvalidInput"),
    # deckhand's own event (what a chat or e-mail integration receives): no request either.
    "deckhand-awaiting-approval.json": ("error", "InvalidInput"),
}
# The signal function's samples: no rollout of that service is parked in a fresh cloud.
SIGNAL_SAMPLES = ("ecs-deployment-completed.json", "ecs-task-stopped.json")
