terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60, < 6.0"
    }
  }
  # Keep state in S3 with locking (uncomment and fill in; see infra/README.md):
  # backend "s3" {
  #   bucket       = "my-terraform-state"
  #   key          = "brandlens/terraform.tfstate"
  #   region       = "eu-west-1"
  #   encrypt      = true
  #   use_lockfile = true
  # }
}
