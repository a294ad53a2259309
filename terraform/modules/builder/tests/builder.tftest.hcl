# Plan-mode tests with a mocked AWS provider.
mock_provider "aws" {
  mock_data "aws_region" {
    defaults = { region = "eu-west-1" }
  }
}

variables {
  name                   = "amber-test"
  cluster_arn            = "arn:aws:ecs:eu-west-1:123456789012:cluster/amber"
  vpc_id                 = "vpc-0123456789abcdef0"
  subnet_ids             = ["subnet-aaaa"]
  image                  = "example.invalid/amber:test"
  task_role_arn          = "arn:aws:iam::123456789012:role/amber-test-builder"
  snapshot_url           = "s3://amber-snapshots-test/mainnet/v1?region=eu-west-1"
  daemon_url_secret_arn  = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:amber-daemon-url"
  signing_key_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:amber-signing-key"
}

run "scheduled_build_once" {
  command = plan

  assert {
    condition     = aws_scheduler_schedule.build.schedule_expression == "rate(1 hour)"
    error_message = "the builder runs hourly by default"
  }
  assert {
    condition     = aws_scheduler_schedule.build.target[0].arn == var.cluster_arn && aws_scheduler_schedule.build.target[0].ecs_parameters[0].launch_type == "FARGATE"
    error_message = "the schedule starts a Fargate task in the cluster"
  }
  assert {
    condition     = length(jsondecode(aws_ecs_task_definition.this.container_definitions)) == 2 && jsondecode(aws_ecs_task_definition.this.container_definitions)[1].command == ["build", "--once"]
    error_message = "the task is the key writer, then amber build --once"
  }
  assert {
    condition = {
      for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[1].environment : e.name => e.value
      } == {
      NET                       = "mainnet"
      DB_DIRECTORY              = "/data/db"
      SNAPSHOT_URL              = var.snapshot_url
      SNAPSHOT_SIGNING_KEY_FILE = "/keys/signing.key"
      CACHE_MB                  = "6144"
      HTTP_ADDR                 = "off"
      LOG_FORMAT                = "json"
    }
    error_message = "the builder gets its network, an empty index directory (so it resumes from the latest snapshot) and the snapshot URL"
  }
  assert {
    condition     = jsondecode(aws_ecs_task_definition.this.container_definitions)[1].secrets == [{ name = "DAEMON_URL", valueFrom = var.daemon_url_secret_arn }]
    error_message = "the daemon URL comes from Secrets Manager"
  }
  assert {
    condition     = aws_ecs_task_definition.this.task_role_arn == var.task_role_arn
    error_message = "the task runs with the read-write builder role"
  }
  assert {
    condition     = jsondecode(aws_scheduler_schedule.gc[0].target[0].input).containerOverrides[0].command == ["snapshot", "gc"]
    error_message = "a second schedule runs amber snapshot gc"
  }
}

run "signed_snapshots" {
  command = plan

  variables {
    gc_schedule_expression = null
  }

  assert {
    condition     = [for c in jsondecode(aws_ecs_task_definition.this.container_definitions) : c.name] == ["signing-key", "amber"]
    error_message = "a key-writer container runs before amber"
  }
  assert {
    condition     = contains(jsondecode(aws_ecs_task_definition.this.container_definitions)[1].environment, { name = "SNAPSHOT_SIGNING_KEY_FILE", value = "/keys/signing.key" })
    error_message = "amber reads the signing key from the file the key writer made"
  }
  assert {
    condition     = jsondecode(aws_ecs_task_definition.this.container_definitions)[1].dependsOn == [{ containerName = "signing-key", condition = "SUCCESS" }]
    error_message = "amber starts only after the key is written"
  }
  assert {
    condition     = jsondecode(aws_iam_role_policy.execution_secrets.policy).Statement[0].Resource == [var.daemon_url_secret_arn, var.signing_key_secret_arn]
    error_message = "the execution role may read exactly the two secrets"
  }
  assert {
    condition     = length(aws_scheduler_schedule.gc) == 0
    error_message = "gc_schedule_expression = null disables the gc schedule"
  }
}

run "rejects_bad_schedule" {
  command = plan

  variables {
    schedule_expression = "every hour"
  }

  expect_failures = [var.schedule_expression]
}

run "rejects_unsigned" {
  command = plan

  variables {
    signing_key_secret_arn = null
  }

  expect_failures = [var.signing_key_secret_arn]
}
