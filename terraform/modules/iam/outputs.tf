output "builder_role_arn" {
  description = "ARN of the builder's role (read-write on the snapshot line)."
  value       = aws_iam_role.builder.arn
}

output "builder_role_name" {
  description = "Name of the builder's role."
  value       = aws_iam_role.builder.name
}

output "server_role_arn" {
  description = "ARN of the servers' role (read-only on the snapshot line)."
  value       = aws_iam_role.server.arn
}

output "server_role_name" {
  description = "Name of the servers' role."
  value       = aws_iam_role.server.name
}

output "builder_instance_profile" {
  description = "Name of the builder's instance profile, or null when create_instance_profiles is off."
  value       = one(aws_iam_instance_profile.builder[*].name)
}

output "server_instance_profile" {
  description = "Name of the servers' instance profile, or null when create_instance_profiles is off."
  value       = one(aws_iam_instance_profile.server[*].name)
}
