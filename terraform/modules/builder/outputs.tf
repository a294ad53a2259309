output "task_definition_arn" {
  description = "ARN of the builder's task definition (run it by hand for a first sync: aws ecs run-task)."
  value       = aws_ecs_task_definition.this.arn
}

output "schedule_name" {
  description = "Name of the EventBridge schedule that runs the builder."
  value       = aws_scheduler_schedule.build.name
}

output "log_group" {
  description = "CloudWatch log group of the builder."
  value       = aws_cloudwatch_log_group.this.name
}

output "security_group_id" {
  description = "Security group of the builder task; allow it on the daemon's RPC port."
  value       = aws_security_group.this.id
}

output "environment" {
  description = "The settings amber gets besides DAEMON_URL (which comes from the secret)."
  value       = local.environment
}
