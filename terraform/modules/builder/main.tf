# The builder as a scheduled job: EventBridge Scheduler starts an ECS
# Fargate task that runs `amber build --once`. With an empty DB_DIRECTORY
# amber resumes from the latest snapshot, syncs to the tip, publishes and
# exits. A second schedule runs `amber snapshot gc`.

locals {
  key_file = "/keys/signing.key"
  environment = merge({
    NET          = var.network
    DB_DIRECTORY = "/data/db"
    SNAPSHOT_URL = var.snapshot_url
    # Leave a quarter of the task's memory to Go and the page cache.
    CACHE_MB   = tostring(floor(var.memory * 3 / 4))
    HTTP_ADDR  = "off"
    LOG_FORMAT = "json"
    # Every manifest is signed: servers accept only SNAPSHOT_TRUSTED_KEYS.
    SNAPSHOT_SIGNING_KEY_FILE = local.key_file
  }, var.extra_environment)

  log_options = {
    awslogs-group         = aws_cloudwatch_log_group.this.name
    awslogs-region        = data.aws_region.current.region
    awslogs-stream-prefix = "build"
  }

  amber = {
    name        = "amber"
    image       = var.image
    command     = ["build", "--once"]
    essential   = true
    environment = [for k in sort(keys(local.environment)) : { name = k, value = local.environment[k] }]
    secrets     = [{ name = "DAEMON_URL", valueFrom = var.daemon_url_secret_arn }]
    mountPoints = [{ sourceVolume = "keys", containerPath = "/keys", readOnly = true }]
    dependsOn   = [{ containerName = "signing-key", condition = "SUCCESS" }]
    logConfiguration = {
      logDriver = "awslogs"
      options   = local.log_options
    }
  }

  # amber runs as the nonroot user (65532) and cannot chown: a one-shot root
  # container writes the key from the secret to a file only amber can read.
  key_writer = {
    name      = "signing-key"
    image     = var.key_writer_image
    essential = false
    command = ["sh", "-c",
    "umask 077 && printf '%s\\n' \"$SIGNING_KEY\" > ${local.key_file} && chown 65532 ${local.key_file}"]
    secrets     = [{ name = "SIGNING_KEY", valueFrom = var.signing_key_secret_arn }]
    mountPoints = [{ sourceVolume = "keys", containerPath = "/keys" }]
    logConfiguration = {
      logDriver = "awslogs"
      options   = local.log_options
    }
  }

  secret_arns = [var.daemon_url_secret_arn, var.signing_key_secret_arn]
}

data "aws_region" "current" {}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/amber/${var.name}/build"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_iam_role" "execution" {
  name = "${var.name}-build-execution"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "ecs-tasks.amazonaws.com" }
    }]
  })
  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

resource "aws_iam_role_policy" "execution_secrets" {
  name = "builder-secrets"
  role = aws_iam_role.execution.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = "secretsmanager:GetSecretValue"
      Resource = local.secret_arns
    }]
  })
}

resource "aws_security_group" "this" {
  name        = "${var.name}-build"
  description = "amber build task: outbound only (daemon and S3)"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_egress_rule" "this" {
  security_group_id = aws_security_group.this.id
  description       = "daemon and S3"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_ecs_task_definition" "this" {
  family                   = "${var.name}-build"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  task_role_arn            = var.task_role_arn
  execution_role_arn       = aws_iam_role.execution.arn

  ephemeral_storage {
    size_in_gib = var.ephemeral_storage_gib
  }

  dynamic "volume" {
    for_each = ["keys"]
    content {
      name = volume.value
    }
  }

  container_definitions = jsonencode([local.key_writer, local.amber])
  tags                  = var.tags
}

resource "aws_iam_role" "scheduler" {
  name = "${var.name}-build-scheduler"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "scheduler.amazonaws.com" }
    }]
  })
  tags = var.tags
}

resource "aws_iam_role_policy" "scheduler" {
  name = "run-builder"
  role = aws_iam_role.scheduler.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Effect    = "Allow"
        Action    = "ecs:RunTask"
        Resource  = "${aws_ecs_task_definition.this.arn_without_revision}:*"
        Condition = { ArnLike = { "ecs:cluster" = var.cluster_arn } }
      },
      {
        Effect   = "Allow"
        Action   = "iam:PassRole"
        Resource = [var.task_role_arn, aws_iam_role.execution.arn]
      },
    ]
  })
}

resource "aws_scheduler_schedule" "build" {
  name                = "${var.name}-build"
  description         = "amber build --once: sync to the tip and publish a snapshot"
  schedule_expression = var.schedule_expression

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = var.cluster_arn
    role_arn = aws_iam_role.scheduler.arn

    ecs_parameters {
      task_definition_arn = aws_ecs_task_definition.this.arn
      launch_type         = "FARGATE"
      task_count          = 1
      network_configuration {
        subnets          = var.subnet_ids
        security_groups  = [aws_security_group.this.id]
        assign_public_ip = false
      }
    }

    # Each run has its own disk and publishing skips files already in the
    # bucket, so retrying a failed run is harmless.
    retry_policy {
      maximum_retry_attempts = 1
    }
  }
}

resource "aws_scheduler_schedule" "gc" {
  count               = var.gc_schedule_expression == null ? 0 : 1
  name                = "${var.name}-snapshot-gc"
  description         = "amber snapshot gc: drop manifests beyond the newest three"
  schedule_expression = var.gc_schedule_expression

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = var.cluster_arn
    role_arn = aws_iam_role.scheduler.arn
    input = jsonencode({
      containerOverrides = [{ name = "amber", command = ["snapshot", "gc"] }]
    })

    ecs_parameters {
      task_definition_arn = aws_ecs_task_definition.this.arn
      launch_type         = "FARGATE"
      task_count          = 1
      network_configuration {
        subnets          = var.subnet_ids
        security_groups  = [aws_security_group.this.id]
        assign_public_ip = false
      }
    }
  }
}
