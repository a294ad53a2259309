# Plan-mode tests with a mocked AWS provider.
mock_provider "aws" {
  mock_data "aws_region" {
    defaults = { region = "eu-west-1" }
  }
}

variables {
  name                  = "amber-test"
  cluster_name          = "amber"
  vpc_id                = "vpc-0123456789abcdef0"
  vpc_cidr              = "10.20.0.0/16"
  task_subnet_ids       = ["subnet-aaaa", "subnet-bbbb"]
  lb_subnet_ids         = ["subnet-cccc", "subnet-dddd"]
  image                 = "example.invalid/amber:test"
  task_role_arn         = "arn:aws:iam::123456789012:role/amber-test-server"
  snapshot_url          = "s3://amber-snapshots-test/mainnet/v1?region=eu-west-1"
  trusted_keys          = ["3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29"]
  daemon_url_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:amber-daemon-url"
  public_hostname       = "electrum.example.org"
  certificate_arn       = "arn:aws:acm:eu-west-1:123456789012:certificate/abcd"
}

run "listeners_and_proxy_protocol" {
  command = plan

  assert {
    condition     = aws_lb.this.load_balancer_type == "network" && !aws_lb.this.internal
    error_message = "an internet-facing network load balancer by default"
  }
  assert {
    condition     = { for k, l in aws_lb_listener.this : k => [l.port, l.protocol] } == { tcp = [50001, "TCP"], ssl = [50002, "TLS"], ws = [50003, "TCP"], wss = [50004, "TLS"] }
    error_message = "TCP, TLS, WebSocket and secure WebSocket listeners on the Electrum ports"
  }
  assert {
    condition     = alltrue([for k in ["ssl", "wss"] : aws_lb_listener.this[k].certificate_arn == var.certificate_arn])
    error_message = "the TLS listeners use the certificate"
  }
  assert {
    condition     = length(aws_lb_target_group.this) == 2 && alltrue([for tg in aws_lb_target_group.this : tg.proxy_protocol_v2])
    error_message = "every target group must send PROXY protocol v2 headers"
  }
  assert {
    condition     = aws_lb_target_group.this["electrum"].port == 50001 && aws_lb_target_group.this["websocket"].port == 50003
    error_message = "TLS ends at the load balancer: ssl goes to the tcp port and wss to the ws port"
  }
  assert {
    condition = alltrue([for tg in aws_lb_target_group.this :
    tg.health_check[0].path == "/readyz" && tg.health_check[0].protocol == "HTTP" && tg.health_check[0].port == "8080"])
    error_message = "health checks must ask /readyz on amber's HTTP port"
  }
  assert {
    condition     = output.endpoints.ssl == "electrum.example.org:50002:s" && output.endpoints.wss == "wss://electrum.example.org:50004"
    error_message = "endpoints name the public host and ports"
  }
}

run "container_runs_amber_serve_with_proxy_settings" {
  command = plan

  assert {
    condition     = jsondecode(aws_ecs_task_definition.this.container_definitions)[0].command == ["serve"]
    error_message = "the container runs amber serve"
  }
  assert {
    condition = {
      for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[0].environment : e.name => e.value
      if contains(["PROXY_PROTOCOL", "PROXY_TRUSTED", "SERVICES", "HTTP_ADDR", "SNAPSHOT_TRUSTED_KEYS"], e.name)
      } == {
      PROXY_PROTOCOL        = "on"
      PROXY_TRUSTED         = "10.20.0.0/16"
      SERVICES              = "tcp://0.0.0.0:50001,ws://0.0.0.0:50003"
      HTTP_ADDR             = "0.0.0.0:8080"
      SNAPSHOT_TRUSTED_KEYS = "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29"
    }
    error_message = "amber must read PROXY headers from the VPC, listen on the target ports and serve /readyz to the load balancer"
  }
  assert {
    condition     = jsondecode(aws_ecs_task_definition.this.container_definitions)[0].secrets == [{ name = "DAEMON_URL", valueFrom = var.daemon_url_secret_arn }]
    error_message = "the daemon URL (with its password) comes from Secrets Manager, not the task definition"
  }
  assert {
    condition     = aws_ecs_task_definition.this.task_role_arn == var.task_role_arn
    error_message = "tasks run with the read-only server role"
  }
  assert {
    condition     = aws_ecs_service.this.desired_count == 2
    error_message = "the service starts min_nodes tasks"
  }
}

# Target group ARNs are only known after apply: apply against the mock.
run "service_registers_with_both_target_groups" {
  command = apply

  assert {
    condition = toset([for lb in aws_ecs_service.this.load_balancer : [lb.target_group_arn, lb.container_port]]) == toset([
      [aws_lb_target_group.this["electrum"].arn, 50001],
      [aws_lb_target_group.this["websocket"].arn, 50003],
    ])
    error_message = "the service registers the tcp port with the electrum target group and the ws port with the websocket one"
  }
}

run "scales_on_cpu" {
  command = plan

  variables {
    min_nodes          = 3
    max_nodes          = 10
    cpu_target_percent = 50
  }

  assert {
    condition     = aws_appautoscaling_target.this.min_capacity == 3 && aws_appautoscaling_target.this.max_capacity == 10
    error_message = "scaling bounds come from min_nodes and max_nodes"
  }
  assert {
    condition     = aws_appautoscaling_policy.cpu.target_tracking_scaling_policy_configuration[0].target_value == 50
    error_message = "scaling tracks the CPU target"
  }
  assert {
    condition     = aws_appautoscaling_target.this.resource_id == "service/amber/amber-test-serve"
    error_message = "scaling acts on this service"
  }
}

run "extra_environment_overrides" {
  command = plan

  variables {
    extra_environment = { MAX_SESSIONS = "5000" }
  }

  assert {
    condition     = contains(jsondecode(aws_ecs_task_definition.this.container_definitions)[0].environment, { name = "MAX_SESSIONS", value = "5000" })
    error_message = "extra settings reach the container"
  }
}

run "rejects_bad_inputs" {
  command = plan

  variables {
    trusted_keys          = ["not-a-key"]
    max_nodes             = 1
    ephemeral_storage_gib = 500
  }

  expect_failures = [var.trusted_keys, var.max_nodes, var.ephemeral_storage_gib]
}

run "rejects_no_trusted_keys" {
  command = plan

  variables {
    trusted_keys = []
  }

  expect_failures = [var.trusted_keys]
}
