# tflint with its bundled Terraform ruleset, every rule on: documented and
# typed variables and outputs, standard module structure, no unused
# declarations, pinned versions and naming.
config {
  call_module_type = "local"
}

plugin "terraform" {
  enabled = true
  preset  = "all"
}
