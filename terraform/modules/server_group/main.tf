# amber serve on ECS Fargate behind a network load balancer. The tasks
# listen on plain TCP and WebSocket; the load balancer adds TLS listeners
# for ssl:// and wss://, and every target group sends a PROXY protocol v2
# header so amber sees (and rate-limits) the real client address.

locals {
  host = var.public_hostname
  environment = merge({
    NET                   = var.network
    DB_DIRECTORY          = "/data/db"
    SNAPSHOT_URL          = var.snapshot_url
    SNAPSHOT_TRUSTED_KEYS = join(",", var.trusted_keys)
    SERVICES              = "tcp://0.0.0.0:${var.ports.tcp},ws://0.0.0.0:${var.ports.ws}"
    REPORT_SERVICES       = "tcp://${local.host}:${var.ports.tcp},ssl://${local.host}:${var.ports.ssl},ws://${local.host}:${var.ports.ws},wss://${local.host}:${var.ports.wss}"
    HTTP_ADDR             = "0.0.0.0:${var.http_port}"
    PROXY_PROTOCOL        = "on"
    PROXY_TRUSTED         = var.vpc_cidr
    LOG_FORMAT            = "json"
  }, var.extra_environment)

  # Which listener goes to which target group, and whether TLS ends at the
  # load balancer.
  listeners = {
    tcp = { port = var.ports.tcp, tls = false, target = "electrum" }
    ssl = { port = var.ports.ssl, tls = true, target = "electrum" }
    ws  = { port = var.ports.ws, tls = false, target = "websocket" }
    wss = { port = var.ports.wss, tls = true, target = "websocket" }
  }
  targets = {
    electrum  = var.ports.tcp
    websocket = var.ports.ws
  }
}

data "aws_region" "current" {}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/amber/${var.name}/serve"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_iam_role" "execution" {
  name = "${var.name}-serve-execution"
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
  name = "daemon-url"
  role = aws_iam_role.execution.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = "secretsmanager:GetSecretValue"
      Resource = var.daemon_url_secret_arn
    }]
  })
}

resource "aws_security_group" "tasks" {
  name        = "${var.name}-serve"
  description = "amber serve tasks: Electrum, WebSocket and health checks from the load balancer"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "tasks" {
  for_each          = { electrum = var.ports.tcp, websocket = var.ports.ws, http = var.http_port }
  security_group_id = aws_security_group.tasks.id
  description       = "${each.key} from the load balancer"
  ip_protocol       = "tcp"
  from_port         = each.value
  to_port           = each.value
  cidr_ipv4         = var.vpc_cidr
}

resource "aws_vpc_security_group_egress_rule" "tasks" {
  security_group_id = aws_security_group.tasks.id
  description       = "daemon, S3 and peers"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_ecs_task_definition" "this" {
  family                   = "${var.name}-serve"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  task_role_arn            = var.task_role_arn
  execution_role_arn       = aws_iam_role.execution.arn

  ephemeral_storage {
    size_in_gib = var.ephemeral_storage_gib
  }

  container_definitions = jsonencode([{
    name      = "amber"
    image     = var.image
    command   = ["serve"]
    essential = true
    portMappings = [
      { containerPort = var.ports.tcp, protocol = "tcp" },
      { containerPort = var.ports.ws, protocol = "tcp" },
      { containerPort = var.http_port, protocol = "tcp" },
    ]
    environment = [for k in sort(keys(local.environment)) : { name = k, value = local.environment[k] }]
    secrets     = [{ name = "DAEMON_URL", valueFrom = var.daemon_url_secret_arn }]
    # DRAIN_DELAY + SHUTDOWN_GRACE (15 s by default) fit in it.
    stopTimeout = 30
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.this.name
        awslogs-region        = data.aws_region.current.region
        awslogs-stream-prefix = "serve"
      }
    }
  }])

  tags = var.tags
}

resource "aws_lb" "this" {
  name                             = "${var.name}-nlb"
  load_balancer_type               = "network"
  internal                         = var.internal
  subnets                          = var.lb_subnet_ids
  enable_cross_zone_load_balancing = true
  tags                             = var.tags
}

resource "aws_lb_target_group" "this" {
  for_each             = local.targets
  name                 = "${var.name}-${each.key}"
  port                 = each.value
  protocol             = "TCP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  proxy_protocol_v2    = true
  deregistration_delay = 30

  # /readyz turns red while a node restores, lags the tip or drains.
  health_check {
    protocol            = "HTTP"
    port                = tostring(var.http_port)
    path                = "/readyz"
    matcher             = "200"
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }

  tags = var.tags
}

resource "aws_lb_listener" "this" {
  for_each          = local.listeners
  load_balancer_arn = aws_lb.this.arn
  port              = each.value.port
  protocol          = each.value.tls ? "TLS" : "TCP"
  certificate_arn   = each.value.tls ? var.certificate_arn : null
  ssl_policy        = each.value.tls ? "ELBSecurityPolicy-TLS13-1-2-2021-06" : null

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this[each.value.target].arn
  }

  tags = var.tags
}

resource "aws_ecs_service" "this" {
  name                              = "${var.name}-serve"
  cluster                           = var.cluster_name
  task_definition                   = aws_ecs_task_definition.this.arn
  desired_count                     = var.min_nodes
  launch_type                       = "FARGATE"
  health_check_grace_period_seconds = var.health_check_grace_seconds

  network_configuration {
    subnets          = var.task_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  dynamic "load_balancer" {
    for_each = local.targets
    content {
      target_group_arn = aws_lb_target_group.this[load_balancer.key].arn
      container_name   = "amber"
      container_port   = load_balancer.value
    }
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  # Autoscaling owns the count after the first deploy.
  lifecycle {
    ignore_changes = [desired_count]
  }

  depends_on = [aws_lb_listener.this]
  tags       = var.tags
}

resource "aws_appautoscaling_target" "this" {
  service_namespace  = "ecs"
  resource_id        = "service/${var.cluster_name}/${aws_ecs_service.this.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.min_nodes
  max_capacity       = var.max_nodes
}

resource "aws_appautoscaling_policy" "cpu" {
  name               = "${var.name}-serve-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this.service_namespace
  resource_id        = aws_appautoscaling_target.this.resource_id
  scalable_dimension = aws_appautoscaling_target.this.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.cpu_target_percent
    scale_in_cooldown  = 600
    scale_out_cooldown = 120
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}
