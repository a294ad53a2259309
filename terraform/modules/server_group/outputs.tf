output "lb_dns_name" {
  description = "DNS name of the network load balancer; point public_hostname at it (CNAME or alias)."
  value       = aws_lb.this.dns_name
}

output "lb_zone_id" {
  description = "Hosted zone of the load balancer, for a Route 53 alias record."
  value       = aws_lb.this.zone_id
}

output "endpoints" {
  description = "Electrum endpoints clients connect to."
  value = {
    tcp = "${var.public_hostname}:${var.ports.tcp}:t"
    ssl = "${var.public_hostname}:${var.ports.ssl}:s"
    ws  = "ws://${var.public_hostname}:${var.ports.ws}"
    wss = "wss://${var.public_hostname}:${var.ports.wss}"
  }
}

output "service_name" {
  description = "Name of the ECS service."
  value       = aws_ecs_service.this.name
}

output "security_group_id" {
  description = "Security group of the tasks."
  value       = aws_security_group.tasks.id
}

output "target_group_arns" {
  description = "Target groups by kind (electrum, websocket)."
  value       = { for k, tg in aws_lb_target_group.this : k => tg.arn }
}

output "environment" {
  description = "The settings amber gets besides DAEMON_URL (which comes from the secret)."
  value       = local.environment
}

output "task_definition_arn" {
  description = "ARN of the servers' task definition."
  value       = aws_ecs_task_definition.this.arn
}
