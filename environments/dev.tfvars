environment    = "dev"
instance_count = 1
feature_flags = {
  audit_log = true
  beta_ui   = true
}
