"""The systems deckhand's users run (shared/seeds), deployed by a push: every tracking service
ends on the pushed digest and healthy, untracked services are untouched."""

from __future__ import annotations

import pytest

from .aws import Aws, unique

pytestmark = pytest.mark.timeout(300)


def deployed(aws: Aws, digest: str) -> dict:
    execution = aws.finish(aws.execution_for_push(digest))
    assert execution["status"] == "SUCCEEDED", execution
    return execution


def assert_healthy_on(aws: Aws, cluster: str, service: str, container: str, repository: str, digest: str, groups: list[str]) -> None:
    assert aws.running_images(cluster, service)[container] == aws.pinned(repository, digest)
    svc = aws.describe(cluster, service)
    assert len(svc["deployments"]) == 1 and svc["deployments"][0]["rolloutState"] == "COMPLETED"
    for group in groups:
        states = aws.target_states(group)
        assert states and set(states) == {"healthy"}, (group, states)


def test_flask_api_and_react_front_end_behind_one_alb_with_api_path_routing(aws: Aws, events) -> None:
    net = aws.network()
    flask, react = aws.repository(unique("flask-api")), aws.repository(unique("react-front"))
    flask_v1, react_v1 = aws.push(flask, "main"), aws.push(react, "main")
    front_tg = aws.target_group(unique("front"), net, 80)
    api_tg = aws.target_group(unique("api"), net, 5000, "/api/health")
    alb = aws.load_balancer(net, {80: front_tg})
    aws.path_rule(alb.listeners[80], ["/api/*"], api_tg, 10)
    cluster = aws.cluster()
    api_td = aws.task_definition(unique("api"), [("web", aws.pinned(flask, flask_v1), 5000)])
    front_td = aws.task_definition(unique("front"), [("ui", aws.pinned(react, react_v1), 80)])
    aws.service(cluster, "api", api_td, net, [(api_tg, "web", 5000)], track=f"web={flask}:main", desired=2)
    aws.service(cluster, "front", front_td, net, [(front_tg, "ui", 80)], track=f"ui={react}:main")
    aws.service(cluster, "admin", api_td, net, track=None)

    flask_v2 = aws.push(flask, "main")
    execution = deployed(aws, flask_v2)
    assert_healthy_on(aws, cluster, "api", "web", flask, flask_v2, [api_tg])
    assert aws.running_images(cluster, "front")["ui"] == aws.pinned(react, react_v1)
    assert aws.describe(cluster, "admin")["taskDefinition"] == api_td, "untracked service untouched"
    assert events.statuses(execution["executionArn"], "api") == ["STARTED", "SUCCEEDED"]

    react_v2 = aws.push(react, "main")
    deployed(aws, react_v2)
    assert_healthy_on(aws, cluster, "front", "ui", react, react_v2, [front_tg])
    assert_healthy_on(aws, cluster, "api", "web", flask, flask_v2, [api_tg])


def test_flask_and_express_on_two_listeners_with_a_grace_period_pushed_one_after_the_other(aws: Aws) -> None:
    net = aws.network()
    flask, express = aws.repository(unique("flask")), aws.repository(unique("express"))
    back_tg = aws.target_group(unique("back"), net, 8000)
    front_tg = aws.target_group(unique("front"), net, 80)
    aws.load_balancer(net, {80: front_tg, 8000: back_tg})
    cluster = aws.cluster()
    back_td = aws.task_definition(unique("backend"), [("backend", aws.pinned(flask, aws.push(flask, "latest")), 8000)])
    front_td = aws.task_definition(unique("frontend"), [("frontend", aws.pinned(express, aws.push(express, "latest")), 80)])
    aws.service(cluster, "backend", back_td, net, [(back_tg, "backend", 8000)], track=f"backend={flask}:latest", grace=20)
    aws.service(cluster, "frontend", front_td, net, [(front_tg, "frontend", 80)], track=f"frontend={express}:latest", grace=20)

    back_v2 = aws.push(flask, "latest", ready_seconds=3)
    front_v2 = aws.push(express, "latest", ready_seconds=3)
    deployed(aws, back_v2)
    deployed(aws, front_v2)
    assert_healthy_on(aws, cluster, "backend", "backend", flask, back_v2, [back_tg])
    assert_healthy_on(aws, cluster, "frontend", "frontend", express, front_v2, [front_tg])


def test_a_re_push_of_the_same_tag_with_a_new_digest_is_a_new_revision(aws: Aws, events) -> None:
    net = aws.network()
    flask = aws.repository(unique("flask"))
    tg = aws.target_group(unique("api"), net, 5000)
    aws.load_balancer(net, {80: tg})
    cluster = aws.cluster()
    td = aws.task_definition(unique("api"), [("api", aws.pinned(flask, aws.push(flask, "prod")), 5000)])
    aws.service(cluster, "api", td, net, [(tg, "api", 5000)], track=f"api={flask}:prod")

    first = aws.push(flask, "prod")
    deployed(aws, first)
    revision_after_first = aws.describe(cluster, "api")["taskDefinition"]
    second = aws.push(flask, "prod")
    assert second != first
    deployed(aws, second)
    assert aws.describe(cluster, "api")["taskDefinition"] != revision_after_first
    assert_healthy_on(aws, cluster, "api", "api", flask, second, [tg])
    # The new revision keeps what the user configured (roles, environment, logging, tags).
    new = aws.ecs.describe_task_definition(taskDefinition=aws.describe(cluster, "api")["taskDefinition"], include=["TAGS"])
    assert new["taskDefinition"]["taskRoleArn"].endswith("-task")
    assert new["taskDefinition"]["containerDefinitions"][0]["environment"] == [{"name": "SECRET_TOKEN", "value": "not-for-logs"}]
    assert new["tags"] == [{"key": "team", "value": "web"}]


def test_function_logs_never_contain_task_definition_environment_values(aws: Aws, localcloud) -> None:
    net = aws.network()
    flask = aws.repository(unique("flask"))
    cluster = aws.cluster()
    td = aws.task_definition(unique("api"), [("api", aws.pinned(flask, aws.push(flask, "prod")), 5000)])
    aws.service(cluster, "api", td, net, track=f"api={flask}:prod")
    deployed(aws, aws.push(flask, "prod"))
    names = [r.ref for r in localcloud.stack.resources.values() if r.type == "AWS::Lambda::Function"]
    logs = {name: localcloud.lambda_log(name) for name in names}
    assert any(logs.values()), "the functions wrote no logs at all"
    for name, text in logs.items():
        assert "not-for-logs" not in text, f"{name} logged an environment value"


def test_one_task_definition_with_two_containers_from_two_repositories_in_two_target_groups(aws: Aws) -> None:
    net = aws.network()
    main, files = aws.repository(unique("todo/main")), aws.repository(unique("todo/files"))
    main_tg, files_tg = aws.target_group(unique("main"), net, 80), aws.target_group(unique("files"), net, 8080)
    alb = aws.load_balancer(net, {80: main_tg})
    aws.path_rule(alb.listeners[80], ["/files/*"], files_tg, 5)
    cluster = aws.cluster()
    main_v1, files_v1 = aws.push(main, "prod"), aws.push(files, "prod")
    td = aws.task_definition(unique("todo"), [("app", aws.pinned(main, main_v1), 80), ("files", aws.pinned(files, files_v1), 8080)])
    aws.service(cluster, "todo", td, net, [(main_tg, "app", 80), (files_tg, "files", 8080)], track=f"app={main}:prod files={files}:prod")

    files_v2 = aws.push(files, "prod")
    deployed(aws, files_v2)
    images = aws.running_images(cluster, "todo")
    assert images == {"app": aws.pinned(main, main_v1), "files": aws.pinned(files, files_v2)}, "only the pushed container changes"

    main_v2 = aws.push(main, "prod")
    deployed(aws, main_v2)
    assert aws.running_images(cluster, "todo") == {"app": aws.pinned(main, main_v2), "files": aws.pinned(files, files_v2)}

    main_v3, files_v3 = aws.push(main, "prod"), aws.push(files, "prod")
    deployed(aws, main_v3)
    deployed(aws, files_v3)
    assert aws.running_images(cluster, "todo") == {"app": aws.pinned(main, main_v3), "files": aws.pinned(files, files_v3)}, "both land"
    for group in (main_tg, files_tg):
        assert set(aws.target_states(group)) == {"healthy"}


def test_two_microservices_in_private_subnets_behind_one_alb(aws: Aws) -> None:
    net = aws.network(private=True)
    user, product = aws.repository(unique("user-service")), aws.repository(unique("product-service"))
    user_tg = aws.target_group(unique("users"), net, 3000, "/health")
    product_tg = aws.target_group(unique("products"), net, 3001, "/health")
    alb = aws.load_balancer(net, {80: user_tg})
    aws.path_rule(alb.listeners[80], ["/users*"], user_tg, 1)
    aws.path_rule(alb.listeners[80], ["/products*"], product_tg, 2)
    cluster = aws.cluster()
    user_td = aws.task_definition(unique("user"), [("user", aws.pinned(user, aws.push(user, "v1")), 3000)])
    product_v1 = aws.push(product, "v1")
    product_td = aws.task_definition(unique("product"), [("product", aws.pinned(product, product_v1), 3001)])
    aws.service(cluster, "user", user_td, net, [(user_tg, "user", 3000)], track=f"user={user}:v1", desired=2)
    aws.service(cluster, "product", product_td, net, [(product_tg, "product", 3001)], track=f"product={product}:v1", desired=2)

    user_v2 = aws.push(user, "v1")
    deployed(aws, user_v2)
    assert_healthy_on(aws, cluster, "user", "user", user, user_v2, [user_tg])
    assert aws.running_images(cluster, "product")["product"] == aws.pinned(product, product_v1)
