variable "stack_name" {
  description = "Stack name: roles are <stack_name>-<service>-execution|task."
  type        = string
}

variable "service" {
  description = "The service the task runs."
  type        = string
}

variable "repository_arn" {
  description = "ECR repository the image comes from (the execution role may pull only from it)."
  type        = string
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
