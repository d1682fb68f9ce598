variable "stack_name" {
  description = "Stack name: buckets are <stack_name>-media<suffix> and <stack_name>-artifacts<suffix>."
  type        = string
}

variable "bucket_suffix" {
  description = "Appended to bucket names to make them globally unique (for example -123456789012-eu-west-1)."
  type        = string
  default     = ""
}

variable "kms_key_arn" {
  description = "KMS key for SSE-KMS; null: SSE-S3 (AES256). The services' roles then also need kms:Decrypt/GenerateDataKey on it."
  type        = string
  default     = null
}

variable "frames_expiration_days" {
  description = "Sampled frames (artifacts frames/) are deleted after this many days."
  type        = number
  default     = 30
}

variable "detections_expiration_days" {
  description = "Per-batch detections (artifacts detections/) are deleted after this many days (summaries and reports stay)."
  type        = number
  default     = 90
}

variable "media_noncurrent_days" {
  description = "Overwritten media versions are deleted this many days after they stop being current."
  type        = number
  default     = 30
}

variable "require_tls" {
  description = "Deny every request not made over TLS (bucket policy). Off only for a local emulation that speaks plain HTTP."
  type        = bool
  default     = true
}

variable "force_destroy" {
  description = "Allow destroying buckets that still hold objects (tests, throw-away stacks)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
