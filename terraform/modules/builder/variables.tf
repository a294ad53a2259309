variable "name" {
  description = "Name prefix for the task, schedules and roles, e.g. amber-mainnet."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,39}$", var.name))
    error_message = "name must be 1-40 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "cluster_arn" {
  description = "ARN of the ECS cluster the builder task runs in."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:ecs:[a-z0-9-]+:[0-9]{12}:cluster/", var.cluster_arn))
    error_message = "cluster_arn must be an ECS cluster ARN."
  }
}

variable "vpc_id" {
  description = "VPC of the builder task."
  type        = string
  validation {
    condition     = can(regex("^vpc-[0-9a-f]+$", var.vpc_id))
    error_message = "vpc_id must be a VPC id (vpc-...)."
  }
}

variable "subnet_ids" {
  description = "Subnets the builder task runs in (with a route to the daemon and S3)."
  type        = list(string)
  validation {
    condition     = length(var.subnet_ids) > 0 && alltrue([for s in var.subnet_ids : startswith(s, "subnet-")])
    error_message = "subnet_ids must be one or more subnet ids (subnet-...)."
  }
}

variable "image" {
  description = "Container image of amber (built from infra/Dockerfile)."
  type        = string
  validation {
    condition     = length(var.image) > 0
    error_message = "image must be set."
  }
}

variable "task_role_arn" {
  description = "Role the task runs as: the iam module's builder_role_arn (read-write on the snapshot line)."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/", var.task_role_arn))
    error_message = "task_role_arn must be an IAM role ARN."
  }
}

variable "network" {
  description = "NET for amber: mainnet, testnet, testnet4, signet or regtest."
  type        = string
  default     = "mainnet"
  validation {
    condition     = contains(["mainnet", "testnet", "testnet4", "signet", "regtest"], var.network)
    error_message = "network must be mainnet, testnet, testnet4, signet or regtest."
  }
}

variable "snapshot_url" {
  description = "SNAPSHOT_URL the builder resumes from and publishes to (the snapshot_bucket module's snapshot_url)."
  type        = string
  validation {
    condition     = startswith(var.snapshot_url, "s3://")
    error_message = "snapshot_url must be an s3:// URL."
  }
}

variable "daemon_url_secret_arn" {
  description = "Secrets Manager secret holding DAEMON_URL (http://user:pass@host:port/) of the Bitcoin daemon the builder syncs from."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:secretsmanager:", var.daemon_url_secret_arn))
    error_message = "daemon_url_secret_arn must be a Secrets Manager secret ARN."
  }
}

variable "signing_key_secret_arn" {
  description = "Secrets Manager secret holding the hex ed25519 seed (amber snapshot keygen) that signs every manifest; servers accept only signed snapshots (SNAPSHOT_TRUSTED_KEYS)."
  type        = string
  validation {
    condition     = var.signing_key_secret_arn != null && can(regex("^arn:aws[a-z-]*:secretsmanager:", var.signing_key_secret_arn))
    error_message = "signing_key_secret_arn must be a Secrets Manager secret ARN: snapshots are always signed."
  }
}

variable "key_writer_image" {
  description = "Small image with a shell that writes the signing key to a file for amber (the amber image has no shell)."
  type        = string
  default     = "public.ecr.aws/docker/library/busybox:stable"
}

variable "schedule_expression" {
  description = "When the builder runs amber build --once: it restores the latest snapshot, syncs to the daemon's tip and publishes a new one."
  type        = string
  default     = "rate(1 hour)"
  validation {
    condition     = can(regex("^(rate|cron)\\(.+\\)$", var.schedule_expression))
    error_message = "schedule_expression must be an EventBridge Scheduler rate(...) or cron(...) expression."
  }
}

variable "gc_schedule_expression" {
  description = "When amber snapshot gc removes manifests beyond the newest three; null disables it."
  type        = string
  default     = "rate(1 day)"
  validation {
    condition     = var.gc_schedule_expression == null || can(regex("^(rate|cron)\\(.+\\)$", var.gc_schedule_expression))
    error_message = "gc_schedule_expression must be a rate(...) or cron(...) expression, or null."
  }
}

variable "cpu" {
  description = "Fargate CPU units of the builder task."
  type        = number
  default     = 2048
}

variable "memory" {
  description = "Fargate memory of the builder task in MiB (CACHE_MB is derived from it)."
  type        = number
  default     = 8192
}

variable "ephemeral_storage_gib" {
  description = "Fargate ephemeral storage in GiB; it holds the index and its publishing mirror (about 2.1x the index) while the task runs."
  type        = number
  default     = 200
  validation {
    condition     = var.ephemeral_storage_gib >= 21 && var.ephemeral_storage_gib <= 200
    error_message = "Fargate ephemeral storage must be between 21 and 200 GiB."
  }
}

variable "extra_environment" {
  description = "More amber settings (README configuration table), e.g. { BUILD_VERIFY = \"on\" }."
  type        = map(string)
  default     = {}
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the builder's logs."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
