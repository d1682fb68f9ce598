variable "name" {
  description = "Name of the event bus (the stack name)."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
