environment    = "production"
instance_count = 3
