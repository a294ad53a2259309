#!/usr/bin/env bash
# Checks every module and example with the real terraform binary:
# fmt, init, validate, tflint and terraform test (mock_provider "aws").
# Run through `make terraform-check`, which installs the tools and sets
# TF_CLI_CONFIG_FILE to the schema-only provider's filesystem mirror
# (unless REAL_PROVIDER=1).
set -euo pipefail
cd "$(dirname "$0")"
TERRAFORM=${TERRAFORM:-terraform}
TFLINT=${TFLINT:?set TFLINT to the tflint binary}
export TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1 TF_INPUT=0

dirs=(modules/*/ examples/*/)
failed=0
step() { # name dir command...
	local name=$1 dir=$2
	shift 2
	local out
	if ! out=$(cd "$dir" && "$@" 2>&1); then
		echo "FAIL $name ${dir%/}"
		echo "$out" | sed 's/^/    /'
		failed=$((failed + 1))
		return 1
	fi
	echo "ok   $name ${dir%/}"
}

step fmt . "$TERRAFORM" fmt -check -recursive -diff || true
for d in "${dirs[@]}"; do
	# The lock file would pin whichever provider build was installed last.
	rm -rf "$d/.terraform" "$d/.terraform.lock.hcl"
	step init "$d" "$TERRAFORM" init -backend=false -input=false -no-color || continue
	step validate "$d" "$TERRAFORM" validate -no-color || true
	step tflint "$d" "$TFLINT" --config "$PWD/.tflint.hcl" --minimum-failure-severity=notice --no-color || true
	if compgen -G "$d/tests/*.tftest.hcl" >/dev/null; then
		step test "$d" "$TERRAFORM" test -no-color || true
	fi
done
if [ "$failed" -gt 0 ]; then
	echo "terraform-check: $failed step(s) failed"
	exit 1
fi
echo "terraform-check: every module and example passed fmt, init, validate, tflint and test"
