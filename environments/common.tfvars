feature_flags = {
  audit_log = true
  beta_ui   = false
}
