variable "stack_name" {
  description = "Stack name: the queue is <stack_name>-<service>, rules <stack_name>-<rule>."
  type        = string
}

variable "service" {
  description = "Service name (ingest, framer, labeler, trainer, model-manager, inferer)."
  type        = string
}

variable "bus_name" {
  description = "The stack's event bus (rules with bus = \"project\" are created on it)."
  type        = string
}

variable "rules" {
  description = "EventBridge rules that feed the queue, by rule name suffix: the bus (\"default\" or \"project\") and the event pattern (JSON)."
  type = map(object({
    bus           = string
    event_pattern = string
  }))
  default = {}
  validation {
    condition     = alltrue([for r in values(var.rules) : contains(["default", "project"], r.bus)])
    error_message = "A rule's bus is \"default\" or \"project\"."
  }
}

variable "visibility_timeout_seconds" {
  description = "SQS visibility timeout (seconds); the worker extends it while a message is in progress."
  type        = number
  default     = 60
}

variable "max_receive_count" {
  description = "Receives before a message moves to the DLQ."
  type        = number
  default     = 5
}

variable "message_retention_seconds" {
  description = "How long a message waits on the queue (seconds)."
  type        = number
  default     = 345600
}

variable "dlq_message_retention_seconds" {
  description = "How long a message waits on the DLQ for a redrive (seconds)."
  type        = number
  default     = 1209600
}

variable "event_max_age_seconds" {
  description = "EventBridge retries delivery to the queue for at most this long (seconds), then sends the event to the DLQ."
  type        = number
  default     = 3600
}

variable "event_retry_attempts" {
  description = "EventBridge delivery attempts to the queue before the DLQ."
  type        = number
  default     = 20
}

variable "kms_key_arn" {
  description = "Customer KMS key for the queues and logs; null: SQS-managed SSE and default log encryption."
  type        = string
  default     = null
}

variable "policy_statements" {
  description = "What the service may do besides its own queue (least privilege: exact actions and resources)."
  type = list(object({
    sid       = string
    actions   = list(string)
    resources = list(string)
    conditions = optional(list(object({
      test     = string
      variable = string
      values   = list(string)
    })), [])
  }))
  default = []
}

variable "image" {
  description = "Container image (repository URL and tag)."
  type        = string
}

variable "repository_arn" {
  description = "ECR repository the image comes from (the execution role may pull only from it)."
  type        = string
}

variable "environment" {
  description = "Environment variables of the container (settings; never secrets)."
  type        = map(string)
  default     = {}
}

variable "ports" {
  description = "TCP ports the container listens on (the ingest API, the labeler webhook)."
  type        = list(number)
  default     = []
}

variable "health_command" {
  description = "Container health check command; null: the worker heartbeat check."
  type        = list(string)
  default     = null
}

variable "cpu" {
  description = "Fargate task CPU units (1024 = 1 vCPU)."
  type        = number
  default     = 512
}

variable "memory" {
  description = "Fargate task memory (MiB)."
  type        = number
  default     = 1024
}

variable "cpu_architecture" {
  description = "X86_64 or ARM64 (match the image)."
  type        = string
  default     = "X86_64"
}

variable "cluster_arn" {
  description = "ECS cluster ARN."
  type        = string
}

variable "cluster_name" {
  description = "ECS cluster name (for the autoscaling resource id and metrics)."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets of the tasks (private subnets with a NAT gateway or VPC endpoints)."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups of the tasks."
  type        = list(string)
}

variable "assign_public_ip" {
  description = "Give tasks a public IP (only for public subnets without NAT)."
  type        = bool
  default     = false
}

variable "service_discovery_arn" {
  description = "Cloud Map service to register tasks in (null: none)."
  type        = string
  default     = null
}

variable "autoscaling" {
  description = "Scale the service on queue backlog per task (off only where Application Auto Scaling is not emulated)."
  type        = bool
  default     = true
}

variable "min_tasks" {
  description = "Fewest running tasks (0 lets an idle service cost nothing; the first message then waits for a task to start)."
  type        = number
  default     = 1
}

variable "max_tasks" {
  description = "Most running tasks."
  type        = number
  default     = 4
}

variable "backlog_per_task" {
  description = "Visible messages per running task the autoscaler aims for (messages)."
  type        = number
  default     = 10
}

variable "scale_in_cooldown_seconds" {
  description = "Wait after a scale-in before the next (seconds)."
  type        = number
  default     = 300
}

variable "scale_out_cooldown_seconds" {
  description = "Wait after a scale-out before the next (seconds)."
  type        = number
  default     = 60
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
