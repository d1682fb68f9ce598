# The stack's own event bus: every brandlens.* event travels on it. S3 (and SageMaker
# Ground Truth) publish on the account's default bus; rules there are created by the
# queue_worker module with bus = "default".
resource "aws_cloudwatch_event_bus" "this" {
  name = var.name
  tags = var.tags
}
