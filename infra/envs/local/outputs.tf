output "stack" {
  description = "Names the services need (run them with BRANDLENS_AWS_ENDPOINT_URL = endpoint_url)."
  value = {
    stack_name       = module.brandlens.stack_name
    media_bucket     = module.brandlens.media_bucket
    artifacts_bucket = module.brandlens.artifacts_bucket
    event_bus        = module.brandlens.event_bus
    tables           = module.brandlens.tables
  }
}

output "queue_urls" {
  description = "Each service's queue."
  value       = module.brandlens.queue_urls
}
