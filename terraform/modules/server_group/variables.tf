variable "name" {
  description = "Name prefix for the service, load balancer and target groups (at most 20 characters: target group names are limited to 32)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,19}$", var.name))
    error_message = "name must be 1-20 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "cluster_name" {
  description = "Name of the ECS cluster the service runs in."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,255}$", var.cluster_name))
    error_message = "cluster_name must be an ECS cluster name, not an ARN."
  }
}

variable "vpc_id" {
  description = "VPC of the service and the load balancer."
  type        = string
  validation {
    condition     = can(regex("^vpc-[0-9a-f]+$", var.vpc_id))
    error_message = "vpc_id must be a VPC id (vpc-...)."
  }
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC: the load balancer's addresses, allowed to reach the tasks and trusted for PROXY protocol headers."
  type        = string
  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0))
    error_message = "vpc_cidr must be a CIDR block such as 10.0.0.0/16."
  }
}

variable "task_subnet_ids" {
  description = "Subnets the tasks run in (private subnets with a route to the daemon and S3)."
  type        = list(string)
  validation {
    condition     = length(var.task_subnet_ids) > 0 && alltrue([for s in var.task_subnet_ids : startswith(s, "subnet-")])
    error_message = "task_subnet_ids must be one or more subnet ids (subnet-...)."
  }
}

variable "lb_subnet_ids" {
  description = "Subnets of the network load balancer (public subnets for an internet-facing one)."
  type        = list(string)
  validation {
    condition     = length(var.lb_subnet_ids) > 0 && alltrue([for s in var.lb_subnet_ids : startswith(s, "subnet-")])
    error_message = "lb_subnet_ids must be one or more subnet ids (subnet-...)."
  }
}

variable "internal" {
  description = "Make the load balancer internal instead of internet-facing."
  type        = bool
  default     = false
}

variable "image" {
  description = "Container image of amber (built from infra/Dockerfile), e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/amber:v1.0.0."
  type        = string
  validation {
    condition     = length(var.image) > 0
    error_message = "image must be set."
  }
}

variable "task_role_arn" {
  description = "Role the tasks run as: the iam module's server_role_arn (read-only on the snapshot line)."
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
  description = "SNAPSHOT_URL the nodes bootstrap from (the snapshot_bucket module's snapshot_url)."
  type        = string
  validation {
    condition     = startswith(var.snapshot_url, "s3://")
    error_message = "snapshot_url must be an s3:// URL."
  }
}

variable "trusted_keys" {
  description = "Hex ed25519 public keys (SNAPSHOT_TRUSTED_KEYS) whose signed snapshots the nodes accept; at least one: unsigned snapshots are refused."
  type        = list(string)
  validation {
    condition     = length(var.trusted_keys) > 0 && alltrue([for k in var.trusted_keys : can(regex("^[0-9a-f]{64}$", k))])
    error_message = "trusted_keys needs at least one key, each 64 lowercase hex digits (amber snapshot keygen prints them)."
  }
}

variable "daemon_url_secret_arn" {
  description = "Secrets Manager secret holding DAEMON_URL (http://user:pass@host:port/, comma-separated for failover)."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:secretsmanager:", var.daemon_url_secret_arn))
    error_message = "daemon_url_secret_arn must be a Secrets Manager secret ARN."
  }
}

variable "public_hostname" {
  description = "DNS name clients use (a record pointing at the load balancer), advertised in REPORT_SERVICES."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$", var.public_hostname))
    error_message = "public_hostname must be a lowercase DNS name such as electrum.example.org."
  }
}

variable "certificate_arn" {
  description = "ACM certificate for public_hostname; the load balancer terminates TLS (ssl:// and wss://) with it."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:acm:", var.certificate_arn))
    error_message = "certificate_arn must be an ACM certificate ARN."
  }
}

variable "ports" {
  description = "Public ports: Electrum TCP, TLS, WebSocket and secure WebSocket. The tasks listen on the tcp and ws ports; TLS ends at the load balancer."
  type = object({
    tcp = optional(number, 50001)
    ssl = optional(number, 50002)
    ws  = optional(number, 50003)
    wss = optional(number, 50004)
  })
  default = {}
  validation {
    condition     = length(distinct([var.ports.tcp, var.ports.ssl, var.ports.ws, var.ports.wss])) == 4
    error_message = "the four ports must differ."
  }
}

variable "http_port" {
  description = "Port of amber's HTTP listener (/readyz for health checks, /metrics)."
  type        = number
  default     = 8080
  validation {
    condition     = var.http_port > 0 && var.http_port < 65536
    error_message = "http_port must be a TCP port."
  }
}

variable "cpu" {
  description = "Fargate CPU units per node."
  type        = number
  default     = 1024
}

variable "memory" {
  description = "Fargate memory per node in MiB."
  type        = number
  default     = 4096
}

variable "ephemeral_storage_gib" {
  description = "Fargate ephemeral storage per node in GiB; it holds the index restored from the snapshot."
  type        = number
  default     = 100
  validation {
    condition     = var.ephemeral_storage_gib >= 21 && var.ephemeral_storage_gib <= 200
    error_message = "Fargate ephemeral storage must be between 21 and 200 GiB."
  }
}

variable "min_nodes" {
  description = "Fewest nodes; also the starting count."
  type        = number
  default     = 2
  validation {
    condition     = var.min_nodes >= 1
    error_message = "min_nodes must be at least 1."
  }
}

variable "max_nodes" {
  description = "Most nodes autoscaling may run."
  type        = number
  default     = 6
  validation {
    condition     = var.max_nodes >= var.min_nodes
    error_message = "max_nodes must be at least min_nodes."
  }
}

variable "cpu_target_percent" {
  description = "Average CPU the autoscaling keeps the nodes at."
  type        = number
  default     = 60
  validation {
    condition     = var.cpu_target_percent > 0 && var.cpu_target_percent < 100
    error_message = "cpu_target_percent must be between 0 and 100."
  }
}

variable "health_check_grace_seconds" {
  description = "Seconds a new node has to restore the snapshot and catch up before failed health checks count."
  type        = number
  default     = 900
}

variable "extra_environment" {
  description = "More amber settings (README configuration table), e.g. { MAX_SESSIONS = \"5000\" }."
  type        = map(string)
  default     = {}
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the nodes' logs."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
