output "endpoints" {
  description = "Electrum endpoints (tcp, ssl, ws, wss)."
  value       = module.servers.endpoints
}

output "lb_dns_name" {
  description = "Point public_hostname at this name."
  value       = module.servers.lb_dns_name
}

output "bucket_name" {
  description = "The snapshot bucket."
  value       = module.bucket.bucket_name
}

output "snapshot_url" {
  description = "SNAPSHOT_URL of the deployment, for amber snapshot list/verify from an operator's machine."
  value       = module.bucket.snapshot_url
}

output "builder_task_definition_arn" {
  description = "Run this task by hand for the first build (see README.md)."
  value       = module.builder.task_definition_arn
}

output "daemon_url_secret_arn" {
  description = "Put the daemon URL in this secret."
  value       = aws_secretsmanager_secret.daemon_url.arn
}

output "signing_key_secret_arn" {
  description = "Put the signing key seed (amber snapshot keygen) in this secret; its public key goes in trusted_keys."
  value       = aws_secretsmanager_secret.signing_key.arn
}
