# brandlens on AWS: `terraform apply` here, then push the images (docker/README.md).
provider "aws" {
  region = var.region
  default_tags {
    tags = merge({ "app" = "brandlens", "brandlens:stack" = var.stack_name }, var.tags)
  }
}

module "brandlens" {
  source = "../../modules/stack"

  stack_name             = var.stack_name
  bucket_suffix          = var.bucket_suffix
  image_tag              = var.image_tag
  vpc_id                 = var.vpc_id
  subnet_ids             = var.subnet_ids
  api_allowed_cidrs      = var.api_allowed_cidrs
  use_model_server       = var.use_model_server
  ground_truth_role_arns = var.ground_truth_role_arns
  min_tasks              = var.min_tasks
  max_tasks              = var.max_tasks
  kms_key_arn            = var.kms_key_arn
  log_retention_days     = var.log_retention_days
}
