variable "name" {
  description = "Name of the ECS cluster (the stack name)."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
