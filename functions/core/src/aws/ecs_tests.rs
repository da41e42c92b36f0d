use super::*;
use crate::domain::model::ContainerChange;
use crate::domain::taskdef::retarget;
use aws_sdk_ecs::operation::register_task_definition::RegisterTaskDefinitionInput;
use aws_sdk_ecs::types::*;

/// A RegisterTaskDefinition request with every field the API accepts set to a non-default value.
#[allow(deprecated)]
fn full_request() -> RegisterTaskDefinitionInput {
    let container = ContainerDefinition::builder()
        .name("web")
        .image("123456789012.dkr.ecr.us-east-1.amazonaws.com/flask:main")
        .cpu(256)
        .memory(512)
        .memory_reservation(256)
        .essential(true)
        .port_mappings(
            PortMapping::builder().container_port(5000).protocol(TransportProtocol::Tcp).name("http").build(),
        )
        .environment(KeyValuePair::builder().name("MODE").value("prod").build())
        .secrets(
            Secret::builder().name("DB").value_from("arn:aws:secretsmanager:us-east-1:1:secret:db").build().unwrap(),
        )
        .health_check(
            HealthCheck::builder()
                .command("CMD-SHELL")
                .command("curl -f localhost:5000/health")
                .interval(10)
                .build()
                .unwrap(),
        )
        .log_configuration(
            LogConfiguration::builder()
                .log_driver(LogDriver::Awslogs)
                .options("awslogs-group", "/ecs/web")
                .build()
                .unwrap(),
        )
        .mount_points(MountPoint::builder().source_volume("data").container_path("/data").build())
        .ulimits(Ulimit::builder().name(UlimitName::Nofile).soft_limit(1024).hard_limit(4096).build().unwrap())
        .build();
    let sidecar =
        ContainerDefinition::builder().name("envoy").image("public.ecr.aws/appmesh/envoy:v1").essential(false).build();
    RegisterTaskDefinitionInput::builder()
        .family("flask-api")
        .task_role_arn("arn:aws:iam::123456789012:role/task")
        .execution_role_arn("arn:aws:iam::123456789012:role/exec")
        .network_mode(NetworkMode::Awsvpc)
        .container_definitions(container)
        .container_definitions(sidecar)
        .volumes(
            Volume::builder()
                .name("data")
                .efs_volume_configuration(EfsVolumeConfiguration::builder().file_system_id("fs-1").build().unwrap())
                .build(),
        )
        .placement_constraints(
            TaskDefinitionPlacementConstraint::builder()
                .r#type(TaskDefinitionPlacementConstraintType::MemberOf)
                .expression("attribute:ecs.os-type == linux")
                .build(),
        )
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("512")
        .memory("1024")
        .tags(Tag::builder().key("team").value("web").build())
        .pid_mode(PidMode::Task)
        .ipc_mode(IpcMode::Task)
        .proxy_configuration(
            ProxyConfiguration::builder()
                .container_name("envoy")
                .properties(KeyValuePair::builder().name("AppPorts").value("5000").build())
                .build()
                .unwrap(),
        )
        .inference_accelerators(
            InferenceAccelerator::builder().device_name("a").device_type("eia2.medium").build().unwrap(),
        )
        .ephemeral_storage(EphemeralStorage::builder().size_in_gib(50).build())
        .runtime_platform(
            RuntimePlatform::builder()
                .cpu_architecture(CpuArchitecture::Arm64)
                .operating_system_family(OsFamily::Linux)
                .build(),
        )
        .enable_fault_injection(true)
        .build()
        .unwrap()
}

/// What DescribeTaskDefinition returns for that request (plus the read-only fields).
#[allow(deprecated)]
fn described(request: &RegisterTaskDefinitionInput) -> TaskDefinition {
    let r = request.clone();
    TaskDefinition::builder()
        .task_definition_arn("arn:aws:ecs:us-east-1:123456789012:task-definition/flask-api:7")
        .revision(7)
        .status(TaskDefinitionStatus::Active)
        .compatibilities(Compatibility::Ec2)
        .compatibilities(Compatibility::Fargate)
        .requires_attributes(Attribute::builder().name("ecs.capability.execution-role-awslogs").build().unwrap())
        .registered_by("arn:aws:iam::123456789012:user/ci")
        .set_family(r.family)
        .set_task_role_arn(r.task_role_arn)
        .set_execution_role_arn(r.execution_role_arn)
        .set_network_mode(r.network_mode)
        .set_container_definitions(r.container_definitions)
        .set_volumes(r.volumes)
        .set_placement_constraints(r.placement_constraints)
        .set_requires_compatibilities(r.requires_compatibilities)
        .set_cpu(r.cpu)
        .set_memory(r.memory)
        .set_pid_mode(r.pid_mode)
        .set_ipc_mode(r.ipc_mode)
        .set_proxy_configuration(r.proxy_configuration)
        .set_inference_accelerators(r.inference_accelerators)
        .set_ephemeral_storage(r.ephemeral_storage)
        .set_runtime_platform(r.runtime_platform)
        .set_enable_fault_injection(r.enable_fault_injection)
        .build()
}

fn offline_client() -> aws_sdk_ecs::Client {
    let config = aws_sdk_ecs::Config::builder()
        .behavior_version(aws_sdk_ecs::config::BehaviorVersion::latest())
        .region(aws_sdk_ecs::config::Region::new("us-east-1"))
        .build();
    aws_sdk_ecs::Client::from_conf(config)
}

#[test]
fn register_keeps_every_registrable_field() {
    let original = full_request();
    let current = described(&original);
    let change = ContainerChange {
        name: "web".into(),
        image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/flask@sha256:abc".into(),
    };
    let (next, _) = retarget(&current, std::slice::from_ref(&change)).unwrap();
    let request = register_request(offline_client().register_task_definition(), &next, original.tags())
        .as_input()
        .clone()
        .build()
        .unwrap();

    let mut expected = original.clone();
    expected.container_definitions.as_mut().unwrap()[0].image = Some(change.image);
    assert_eq!(request, expected, "a registrable field was lost or changed in the clone");
}

#[test]
fn the_fixture_really_sets_every_field() {
    // Guards the test above: a top-level field left unset in the fixture would pass vacuously.
    // Scan the Debug output at nesting depth 1 (the input's own fields) for `None`.
    let debug = format!("{:?}", full_request());
    let (mut depth, mut unset, mut field) = (0, Vec::new(), String::new());
    for c in debug.chars() {
        match c {
            '{' | '[' | '(' => depth += 1,
            '}' | ']' | ')' => depth -= 1,
            ',' if depth == 1 => field.clear(),
            _ if depth == 1 => field.push(c),
            _ => {}
        }
        if depth == 1 && field.trim_end().ends_with(": None") {
            unset.push(field.trim().to_string());
            field.clear();
        }
    }
    assert!(unset.is_empty(), "fixture leaves fields unset: {unset:?}");
}
