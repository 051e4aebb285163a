#!/usr/bin/env bash
# cfn-lint.sh — lint infra/template.yaml as CloudFormation sees it after the
# SAM transform (cfn-lint runs the real aws-sam-translator), informational
# checks included, once per combination of the parameters that choose
# resources: the shared or the tenant-isolated infer function, with and
# without provisioned concurrency, train reserved or not. Any finding fails.
#
# cfn-lint is a Python tool; this workplace's machines have it preinstalled
# (pip cannot reach its registry here, so the script cannot install it).
# Without it the step fails, unless AIAAS_SKIP_CFN_LINT=1 says to skip.
set -euo pipefail
cd "$(dirname "$0")/../infra"
if ! command -v cfn-lint >/dev/null 2>&1; then
  if [ "${AIAAS_SKIP_CFN_LINT:-}" = 1 ]; then
    echo "cfn-lint not found; skipped (AIAAS_SKIP_CFN_LINT=1)" >&2
    exit 0
  fi
  echo "cfn-lint not found: pip install cfn-lint (it brings aws-sam-translator), or AIAAS_SKIP_CFN_LINT=1" >&2
  exit 1
fi
cfn-lint --version >&2
status=0
layer=arn:aws:lambda:us-east-1:177933569100:layer:AWS-Parameters-and-Secrets-Lambda-Extension-Arm64:12
for params in \
  "TenancyMode=NONE ProvisionedConcurrency=0" \
  "TenancyMode=NONE ProvisionedConcurrency=2" \
  "TenancyMode=PER_TENANT ProvisionedConcurrency=0" \
  "TenancyMode=PER_TENANT ProvisionedConcurrency=2 TrainReservedConcurrency=0"; do
  # --include-checks takes several values: the template goes first.
  # shellcheck disable=SC2086
  if out=$(cfn-lint template.yaml --parameters SecretsExtensionLayerArn=$layer $params --include-checks I 2>&1); then
    echo "cfn-lint clean: $params" >&2
  else
    printf 'cfn-lint findings with %s:\n%s\n' "$params" "$out" >&2
    status=1
  fi
done
exit $status
