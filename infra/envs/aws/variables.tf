variable "region" {
  description = "AWS region of the stack."
  type        = string
}

variable "stack_name" {
  description = "Prefix of every resource (BRANDLENS_STACK_NAME)."
  type        = string
  default     = "brandlens"
}

variable "bucket_suffix" {
  description = "Appended to bucket names to make them globally unique (for example -<account id>)."
  type        = string
}

variable "image_tag" {
  description = "Tag of the service images pushed to the stack's ECR repositories."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the services."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (with NAT or VPC endpoints) for the tasks."
  type        = list(string)
}

variable "api_allowed_cidrs" {
  description = "CIDR blocks that may reach the REST API (port 8080 on the ingest tasks)."
  type        = list(string)
  default     = []
}

variable "use_model_server" {
  description = "Run the self-hosted model-server instead of Amazon Rekognition Custom Labels."
  type        = bool
  default     = true
}

variable "ground_truth_role_arns" {
  description = "SageMaker Ground Truth execution roles the labeler may pass."
  type        = list(string)
  default     = []
}

variable "min_tasks" {
  description = "Fewest running tasks per service (default 1 each)."
  type        = map(number)
  default     = {}
}

variable "max_tasks" {
  description = "Most running tasks per service (default 4; inferer 8)."
  type        = map(number)
  default     = { inferer = 8 }
}

variable "kms_key_arn" {
  description = "Customer KMS key for buckets, tables, queues and logs; null: AWS-managed encryption."
  type        = string
  default     = null
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention (days)."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}
