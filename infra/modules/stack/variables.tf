variable "stack_name" {
  description = "Prefix of every bucket, queue, bus, rule, table and service (BRANDLENS_STACK_NAME)."
  type        = string
  default     = "brandlens"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.stack_name))
    error_message = "3-32 lowercase letters, digits and '-', starting with a letter."
  }
}

variable "bucket_suffix" {
  description = "Appended to bucket names to make them globally unique (for example -<account id>)."
  type        = string
  default     = ""
}

variable "image_tag" {
  description = "Tag of every service image in the stack's ECR repositories."
  type        = string
  default     = "latest"
}

variable "vpc_id" {
  description = "VPC of the services."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets of the tasks: private subnets with a NAT gateway or VPC endpoints (S3, SQS, EventBridge, DynamoDB, ECR, Logs, Rekognition)."
  type        = list(string)
}

variable "assign_public_ip" {
  description = "Give tasks public IPs (only for public subnets without NAT)."
  type        = bool
  default     = false
}

variable "api_allowed_cidrs" {
  description = "CIDR blocks that may reach the REST API on the ingest tasks (port 8080); put a load balancer in front for the internet."
  type        = list(string)
  default     = []
}

variable "service_namespace" {
  description = "Private DNS namespace (Cloud Map) the model-server registers in."
  type        = string
  default     = "brandlens.internal"
}

variable "use_model_server" {
  description = "Run the self-hosted model-server and point the services at it instead of Amazon Rekognition Custom Labels."
  type        = bool
  default     = true
}

variable "model_server_cpu" {
  description = "Model-server task CPU units (1024 = 1 vCPU)."
  type        = number
  default     = 4096
}

variable "model_server_memory" {
  description = "Model-server task memory (MiB)."
  type        = number
  default     = 16384
}

variable "model_server_environment" {
  description = "Extra model-server settings (BRANDLENS_MODEL_SERVER_*)."
  type        = map(string)
  default     = {}
}

variable "service_environment" {
  description = "Extra settings for every queue-fed service (BRANDLENS_*; never secrets)."
  type        = map(string)
  default     = {}
}

variable "task_cpu" {
  description = "Fargate CPU units per service (1024 = 1 vCPU); default 512."
  type        = map(number)
  default     = { framer = 2048 }
}

variable "task_memory" {
  description = "Fargate memory per service (MiB); default 1024."
  type        = map(number)
  default     = { framer = 4096 }
}

variable "autoscaling" {
  description = "Scale each service on its queue backlog per task (the local env turns it off: moto does not emulate Application Auto Scaling's tagging)."
  type        = bool
  default     = true
}

variable "min_tasks" {
  description = "Fewest running tasks per service; default 1."
  type        = map(number)
  default     = {}
}

variable "max_tasks" {
  description = "Most running tasks per service; default 4."
  type        = map(number)
  default     = { inferer = 8 }
}

variable "backlog_per_task" {
  description = "Visible queue messages per running task the autoscaler aims for, per service; default 10."
  type        = map(number)
  default     = { framer = 2, inferer = 20 }
}

variable "ground_truth_role_arns" {
  description = "SageMaker Ground Truth execution roles the labeler may pass (the roles projects name in their ground_truth options)."
  type        = list(string)
  default     = []
}

variable "frames_expiration_days" {
  description = "Sampled frames are deleted after this many days."
  type        = number
  default     = 30
}

variable "detections_expiration_days" {
  description = "Per-batch detections are deleted after this many days."
  type        = number
  default     = 90
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention (days)."
  type        = number
  default     = 30
}

variable "kms_key_arn" {
  description = "Customer KMS key for buckets, tables, queues and logs; null: AWS-managed encryption."
  type        = string
  default     = null
}

variable "require_tls" {
  description = "Buckets deny requests not made over TLS. Off only for a local emulation that speaks plain HTTP (moto enforces the policy)."
  type        = bool
  default     = true
}

variable "force_destroy" {
  description = "Throw-away stack: buckets, repositories and tables may be destroyed with their contents."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
