variable "bucket_name" {
  description = "Name of the S3 bucket that holds Amber snapshots (globally unique)."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be 3-63 lowercase letters, digits, dots or hyphens, starting and ending with a letter or digit."
  }
}

variable "prefix" {
  description = "Key prefix of the snapshot line inside the bucket (no leading or trailing slash), e.g. mainnet/v1. A new index schema gets a new prefix."
  type        = string
  default     = "mainnet/v1"
  validation {
    condition     = can(regex("^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$", var.prefix))
    error_message = "prefix must be slash-separated path segments without leading or trailing slashes."
  }
}

variable "noncurrent_version_days" {
  description = "Days a deleted or overwritten object (an unreferenced snapshot file) is kept as a noncurrent version before it expires, so a bad retention run can be undone."
  type        = number
  default     = 14
  validation {
    condition     = var.noncurrent_version_days >= 1 && var.noncurrent_version_days <= 365
    error_message = "noncurrent_version_days must be between 1 and 365."
  }
}

variable "abort_incomplete_upload_days" {
  description = "Days after which multipart uploads left by a crashed publish are aborted."
  type        = number
  default     = 2
  validation {
    condition     = var.abort_incomplete_upload_days >= 1
    error_message = "abort_incomplete_upload_days must be at least 1."
  }
}

variable "kms_key_arn" {
  description = "KMS key for server-side encryption; null uses S3-managed keys (SSE-S3)."
  type        = string
  default     = null
  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN or null."
  }
}

variable "force_destroy" {
  description = "Allow terraform destroy to delete a bucket that still holds snapshots."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
