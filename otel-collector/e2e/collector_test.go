package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestCollectorConfigsValidate runs `otelcol-bulwark validate` on both collector configs when
// the binary has been built (otel-collector/build-collector.sh); it is skipped otherwise.
func TestCollectorConfigsValidate(t *testing.T) {
	root := repoRoot(t)
	bin := filepath.Join(root, "bin", "otelcol-bulwark")
	if _, err := os.Stat(bin); err != nil {
		t.Skip("bin/otelcol-bulwark not built")
	}
	local := []string{"OTLP_GRPC_PORT=14317", "OTLP_HTTP_PORT=14318", "PROM_EXPORTER_PORT=18889",
		"COLLECTOR_HEALTH_PORT=13133", "JAEGER_OTLP_GRPC_PORT=24317"}
	for cfg, env := range map[string][]string{"config.yaml": nil, "config.local.yaml": local} {
		cmd := exec.Command(bin, "validate", "--config", filepath.Join(root, "otel-collector", cfg))
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", cfg, err, out)
		}
	}
}
