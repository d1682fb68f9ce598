variable "stack_name" {
  description = "Stack name: tables are <stack_name>-<key>."
  type        = string
}

variable "tables" {
  description = "Tables by logical name: keys, attribute types (S, N, B) of every key, TTL attribute, global secondary indexes."
  type = map(object({
    hash_key      = string
    range_key     = optional(string)
    ttl_attribute = optional(string)
    attributes    = map(string)
    indexes = optional(list(object({
      name      = string
      hash_key  = string
      range_key = optional(string)
    })), [])
  }))
}

variable "kms_key_arn" {
  description = "Customer KMS key for encryption at rest; null: the AWS-owned key."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Refuse to delete tables (turn off to destroy a throw-away stack)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
