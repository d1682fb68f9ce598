variable "endpoint_url" {
  description = "The AWS emulation: the moto server (http://127.0.0.1:<port>) or LocalStack (http://localhost:4566)."
  type        = string
  default     = "http://127.0.0.1:5000"
}

variable "region" {
  description = "Region the emulation answers for."
  type        = string
  default     = "us-east-1"
}

variable "stack_name" {
  description = "Prefix of every resource (BRANDLENS_STACK_NAME of the services run against it)."
  type        = string
  default     = "brandlens"
}

variable "use_model_server" {
  description = "Declare the model-server service too."
  type        = bool
  default     = true
}
