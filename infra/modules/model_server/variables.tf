variable "stack_name" {
  description = "Stack name."
  type        = string
}

variable "image" {
  description = "Model-server image (repository URL and tag)."
  type        = string
}

variable "repository_arn" {
  description = "ECR repository of the image."
  type        = string
}

variable "artifacts_bucket_arn" {
  description = "The artifacts bucket (datasets, frames, its state under model-server/)."
  type        = string
}

variable "account_id" {
  description = "Account id the server writes into the ARNs it makes."
  type        = string
}

variable "namespace_id" {
  description = "Cloud Map private DNS namespace the service registers in."
  type        = string
}

variable "port" {
  description = "TCP port of the HTTP API."
  type        = number
  default     = 9321
}

variable "environment" {
  description = "Extra settings (BRANDLENS_MODEL_SERVER_*; never secrets)."
  type        = map(string)
  default     = {}
}

variable "cpu" {
  description = "Fargate task CPU units (1024 = 1 vCPU); training is CPU bound."
  type        = number
  default     = 4096
}

variable "memory" {
  description = "Fargate task memory (MiB)."
  type        = number
  default     = 16384
}

variable "ephemeral_storage_gib" {
  description = "Task scratch space (GiB): models and training work directories."
  type        = number
  default     = 50
}

variable "tasks" {
  description = "Running tasks (one: the server keeps models in memory and its state is not shared)."
  type        = number
  default     = 1
}

variable "cluster_arn" {
  description = "ECS cluster ARN."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets of the task."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups of the task (the services must reach its port)."
  type        = list(string)
}

variable "assign_public_ip" {
  description = "Give the task a public IP (only for public subnets without NAT)."
  type        = bool
  default     = false
}

variable "kms_key_arn" {
  description = "Customer KMS key for the logs; null: default encryption."
  type        = string
  default     = null
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention (days)."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
