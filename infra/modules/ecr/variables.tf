variable "prefix" {
  description = "Repository name prefix (the stack name): repositories are <prefix>/<service>."
  type        = string
}

variable "services" {
  description = "Services that get a repository."
  type        = list(string)
}

variable "untagged_expiry_days" {
  description = "Untagged images are deleted this many days (days) after their push."
  type        = number
  default     = 14
}

variable "force_delete" {
  description = "Allow destroying repositories that still hold images."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
