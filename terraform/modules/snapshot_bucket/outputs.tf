output "bucket_name" {
  description = "Name of the snapshot bucket."
  value       = aws_s3_bucket.this.bucket
}

output "bucket_arn" {
  description = "ARN of the snapshot bucket."
  value       = aws_s3_bucket.this.arn
}

output "prefix" {
  description = "Key prefix of the snapshot line."
  value       = var.prefix
}

output "snapshot_url" {
  description = "SNAPSHOT_URL for amber build and amber serve."
  value       = "s3://${aws_s3_bucket.this.bucket}/${var.prefix}?region=${data.aws_region.current.region}"
}
