output "stack" {
  description = "Names the services, producers and the CLI (`brandlens --aws`) need."
  value = {
    stack_name       = module.brandlens.stack_name
    media_bucket     = module.brandlens.media_bucket
    artifacts_bucket = module.brandlens.artifacts_bucket
    event_bus        = module.brandlens.event_bus
    tables           = module.brandlens.tables
    cluster_name     = module.brandlens.cluster_name
  }
}

output "queue_urls" {
  description = "Each service's queue."
  value       = module.brandlens.queue_urls
}

output "dlq_urls" {
  description = "Each service's dead-letter queue (see docs/OPERATIONS.md for redrive)."
  value       = module.brandlens.dlq_urls
}

output "repository_urls" {
  description = "Push each service's image to <url>:<image_tag>."
  value       = module.brandlens.repository_urls
}

output "task_role_arns" {
  description = "Each service's task role."
  value       = module.brandlens.task_role_arns
}
